"""Matplotlib (Agg) plots of a results folder written by ``zeroops suite`` (layout: docs/results.md).

``load_run`` reads one run's series (aggregated over services) and incident intervals; the per-scenario
figures are in ``reports/scenario_plots.py``.  ``summary_figure`` compares the engine sets on cost, MTTR and
availability (in nines) across scenarios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ENGINE_COLORS = {"static": "#7f7f7f", "reactive": "#1f77b4"}
FALLBACK_COLORS = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
DPI = 110


@dataclass
class RunSeries:
    """One run's time series (per minute) and incident intervals, aggregated over services."""

    engines: str
    hours: np.ndarray
    offered: np.ndarray
    served: np.ndarray
    p95_worst: np.ndarray
    error_ratio: np.ndarray
    active: np.ndarray
    spend: np.ndarray
    incidents: list[tuple[float, float, str]]  # (start h, end h, type); open incidents end at the run's end


def color(engines: str, order: list[str]) -> str:
    if engines in ENGINE_COLORS:
        return ENGINE_COLORS[engines]
    return FALLBACK_COLORS[order.index(engines) % len(FALLBACK_COLORS)] if engines in order else FALLBACK_COLORS[0]


def _cols(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    cols = [c for c in df.columns if c.startswith(f"{metric}:")]
    return df[cols] if cols else pd.DataFrame(index=df.index)


def load_run(run_dir: Path, duration_s: float | None = None) -> RunSeries:
    """Read ``timeseries.csv`` and ``incidents.csv`` of one ``<scenario>/<engines>`` folder."""
    ts = pd.read_csv(run_dir / "timeseries.csv", index_col=0)
    hours = ts.index.to_numpy(dtype=float) / 3600.0
    req = _cols(ts, "request_rate")
    offered = req.sum(axis=1).to_numpy()
    served = _cols(ts, "served_rate").sum(axis=1).to_numpy()
    err = _cols(ts, "error_ratio")
    if len(err.columns) and len(req.columns):
        weights = req.to_numpy()
        total = weights.sum(axis=1)
        weighted = (err.to_numpy() * weights).sum(axis=1)
        error_ratio = np.divide(weighted, total, out=np.zeros_like(total), where=total > 0)
    else:
        error_ratio = np.zeros(len(ts))
    p95 = _cols(ts, "latency_p95_ms").max(axis=1).to_numpy() if len(_cols(ts, "latency_p95_ms").columns) \
        else np.zeros(len(ts))
    active = _cols(ts, "active_servers").sum(axis=1).to_numpy()
    spend = ts["spend_total"].ffill().fillna(0.0).to_numpy() if "spend_total" in ts else np.zeros(len(ts))
    end_h = (duration_s / 3600.0) if duration_s else (float(hours[-1]) if len(hours) else 0.0)
    incidents: list[tuple[float, float, str]] = []
    inc_path = run_dir / "incidents.csv"
    if inc_path.exists():
        inc = pd.read_csv(inc_path)
        for _, row in inc.iterrows():
            start = float(row["start"]) / 3600.0
            end = float(row["end"]) / 3600.0 if not pd.isna(row["end"]) else end_h
            incidents.append((start, max(end, start), str(row["type"])))
    return RunSeries(run_dir.name, hours, offered, served, p95, error_ratio, active, spend, incidents)


SUMMARY_PANELS = (("cost", "cost, % of the scenario's\nstatic baseline", 1.0), ("mttr_s", "MTTR (minutes)", 1 / 60.0),
                  ("availability", "availability, nines\n(2 = 99 %, 3 = 99.9 %)", 1.0))
MAX_NINES = 6.0  # 100 % availability drawn at 6 nines (an infinite bar otherwise)


def nines(a: float) -> float:
    """Availability as nines, −log10(1 − a): 99 % → 2, 99.9 % → 3 (capped at MAX_NINES)."""
    return MAX_NINES if a >= 1.0 else min(-math.log10(1.0 - a), MAX_NINES)


def _value(by: dict[tuple[str, str], dict[str, Any]], scenario: str, engines: str, metric: str, scale: float,
           all_engines: list[str]) -> float:
    """One bar's height; cost is relative to the scenario's static run (or its most expensive run)."""
    v = by.get((scenario, engines), {}).get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return float("nan")
    if metric == "cost":
        base = by.get((scenario, "static"), {}).get("cost")
        if not base:
            base = max((by.get((scenario, e), {}).get("cost") or 0.0) for e in all_engines)
        return 100.0 * v / base if base else float("nan")
    return float(v) * scale


def summary_figure(runs: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars per scenario and engine set for cost, MTTR and availability; saves a PNG."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    engines = list(dict.fromkeys(r["engines"] for r in runs))
    seeds = list(dict.fromkeys(str(r.get("seed")) for r in runs))
    per_seed = {sd: {(r["scenario"], r["engines"]): r["metrics"] for r in runs if str(r.get("seed")) == sd}
                for sd in seeds}
    fig, axes = plt.subplots(len(SUMMARY_PANELS), 1, figsize=(max(8, 1.3 * len(scenarios) + 3), 10),
                             constrained_layout=True)
    x = np.arange(len(scenarios))
    width = 0.8 / max(len(engines), 1)
    for ax, (metric, label, scale) in zip(axes, SUMMARY_PANELS, strict=True):
        lows = []
        for k, e in enumerate(engines):
            samples = [[v for v in (_value(by, s, e, metric, scale, engines) for by in per_seed.values())
                        if not np.isnan(v)] for s in scenarios]
            f = nines if metric == "availability" else float  # availability: mean over seeds, then in nines
            vals = [f(float(np.mean(xs))) if xs else float("nan") for xs in samples]
            err = np.array([[m - f(min(xs)), f(max(xs)) - m] if len(xs) > 1 else [0.0, 0.0]
                            for m, xs in zip(vals, samples, strict=True)]).T
            lows.extend(v for v in vals if not np.isnan(v))
            bars = ax.bar(x + (k - (len(engines) - 1) / 2) * width, vals, width, label=e, color=color(e, engines),
                          yerr=err if err.any() else None, capsize=3, error_kw={"lw": 0.8})
            for b, v in zip(bars, vals, strict=True):
                text = "n/a" if np.isnan(v) else (f"{100 * (1 - 10 ** -v):.3f}%" if metric == "availability"
                                                  else f"{v:.0f}")
                ax.annotate(text, (b.get_x() + b.get_width() / 2, 0 if np.isnan(v) else v), ha="center",
                            va="bottom", fontsize=7, color="#333333", xytext=(0, 1), textcoords="offset points")
        if metric == "availability" and lows:
            ax.set_ylim(0.0, max(max(lows) + 0.5, 3.5))
        ax.set_ylabel(label)
        ax.set_xticks(x, scenarios, rotation=20, ha="right", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("Engine sets compared across scenarios (missing bar: no value, e.g. no incident)"
                      + ("\nbar: mean over seeds, whiskers: their range" if len(seeds) > 1 else ""), loc="left",
                      fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
