"""Per-scenario figures of the HTML/Markdown report (matplotlib, Agg), read from a run's files.

* ``demand_figure``: offered requests (demand), active servers (capacity) per engine set, and the predictive
  scaler's request-rate forecasts (``forecast_lead`` in its actions' evidence) when the run has them;
* ``service_figure``: worst-service p95 latency and request-weighted error ratio, with the ground-truth fault
  windows of the engine set under test shaded and labelled, and its detection (D), declaration (S),
  mitigation (M) and resolution (R) marked; cumulative spend per engine set below;
* ``funnel_figure``: the alert funnel per engine set (raw alerts → sent to humans → false, and suppressed).

Engine sets whose curves are identical are drawn once and labelled together (``static = reactive``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.plots import DPI, RunSeries, color  # noqa: E402

MARKS = (("detected_at", "D", "#6a1b9a"), ("declared_at", "S", "#1565c0"), ("mitigated_at", "M", "#ef6c00"),
         ("end", "R", "#2e7d32"))


def groups(runs: list[RunSeries], attr: str) -> list[tuple[str, RunSeries]]:
    """Engine sets grouped by identical ``attr`` curves: (label "a = b", first run) per distinct curve."""
    out: list[tuple[list[str], RunSeries]] = []
    for r in runs:
        y = getattr(r, attr)
        for names, first in out:
            z = getattr(first, attr)
            if len(z) == len(y) and np.allclose(np.nan_to_num(z), np.nan_to_num(y), rtol=1e-9, atol=1e-12):
                names.append(r.engines)
                break
        else:
            out.append(([r.engines], r))
    return [(" = ".join(n), first) for n, first in out]


def forecasts(actions: list[dict[str, Any]]) -> pd.DataFrame:
    """The scaler's lead forecasts: time forecast for (h), service, mean, lo, hi (requests / s)."""
    rows = []
    for a in actions:
        ev = a.get("evidence")
        f = ev.get("forecast_lead") if isinstance(ev, dict) else None
        if isinstance(f, dict) and f.get("mean") is not None:
            at = float(a["at"]) + float(f.get("horizon_s") or 0.0)
            rows.append({"h": at / 3600.0, "service": a["target"], "mean": f["mean"], "lo": f.get("lo"),
                         "hi": f.get("hi")})
    return pd.DataFrame(rows, columns=["h", "service", "mean", "lo", "hi"])


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def demand_figure(scenario: str, runs: list[RunSeries], fc: pd.DataFrame, per_service: pd.DataFrame | None,
                  path: Path, order: list[str], primary: str) -> Path:
    """Demand (offered req/s) vs capacity (active servers) vs the primary's forecasts."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    fig.subplots_adjust(left=0.07, right=0.93, top=0.91, bottom=0.13)
    for label, r in groups(runs, "offered"):
        ax.plot(r.hours, r.offered, color="#444444" if " = " in label else color(r.engines, order), lw=1.2,
                label=f"demand, offered req/s ({label})")
    if len(fc) and per_service is not None:
        fc = fc[[f"request_rate:{x}" in per_service for x in fc["service"]]]
        top = fc["service"].value_counts().index[:3]
        for k, svc in enumerate(top):
            f = fc[fc["service"] == svc]
            c = ["#d62728", "#9467bd", "#8c564b"][k]
            if f"request_rate:{svc}" in per_service:
                ax.plot(per_service.index / 3600.0, per_service[f"request_rate:{svc}"], color=c, lw=0.8, alpha=0.6,
                        label=f"demand of {svc}")
            mean = f["mean"].astype(float).to_numpy()
            lo = np.clip(mean - f["lo"].astype(float).to_numpy(), 0, None)
            hi = np.clip(f["hi"].astype(float).to_numpy() - mean, 0, None)
            err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])
            ax.errorbar(f["h"].to_numpy(), mean, yerr=err, fmt=".", ms=3, color=c, alpha=0.7, lw=0.6,
                        label=f"{primary}: forecast for {svc} [interval]")
    ax.set_ylabel("requests / s")
    ax.set_xlabel("simulated time, hours")
    ax2 = ax.twinx()
    for label, r in groups(runs, "active"):
        ax2.step(r.hours, r.active, where="post", color=color(r.engines, order), lw=1.3, ls="--",
                 label=f"capacity, active servers ({label})")
    ax2.set_ylabel("active servers")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=7, ncol=2, framealpha=0.85)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{scenario}: demand vs capacity vs forecast", loc="left", fontsize=11)
    return _save(fig, path)


def _faults(ax: Any, inc: pd.DataFrame, end_h: float, label: bool) -> None:
    ymax = ax.get_ylim()[1]
    for _, row in inc.iterrows():
        s = float(row["start"]) / 3600.0
        e = float(row["end"]) / 3600.0 if not pd.isna(row["end"]) else end_h
        ax.axvspan(s, max(e, s + 1 / 120), color="#c62828", alpha=0.12, lw=0)
        if label:
            ax.text(s, ymax, f" {row['id']}", rotation=90, va="top", ha="right", fontsize=6.5, color="#8e0000")
        for col, mark, c in MARKS:
            v = row.get(col)
            if v is not None and not pd.isna(v):
                x = float(v) / 3600.0
                ax.axvline(x, color=c, lw=0.7, alpha=0.8)
                if label:
                    ax.annotate(mark, (x, ymax), xytext=(1, -10), textcoords="offset points", fontsize=6.5,
                                color=c, annotation_clip=False)


def _gantt(ax: Any, runs: list[RunSeries], order: list[str]) -> None:
    """One row per engine set: its incidents from onset to resolution, labelled with the fault's type."""
    for k, r in enumerate(runs):
        c = color(r.engines, order)
        for start, end, kind in r.incidents:
            w = max(end - start, 1 / 120)
            ax.broken_barh([(start, w)], (k - 0.35, 0.7), color=c, alpha=0.75)
            ax.text(start + w, k, f" {kind}", va="center", fontsize=6.5, color="#333333", clip_on=True)
    ax.set_yticks(range(len(runs)), [r.engines for r in runs], fontsize=8)
    ax.set_ylim(-0.6, len(runs) - 0.4)
    ax.invert_yaxis()
    ax.set_ylabel("incidents open\n(onset to resolution)")


def service_figure(scenario: str, runs: list[RunSeries], incidents: pd.DataFrame | None, path: Path,
                   order: list[str], primary: str, end_h: float) -> Path:
    """p95 latency, error ratio (faults shaded and labelled, D/S/M/R marked), incidents per engine set, spend."""
    fig, (ax_lat, ax_err, ax_inc, ax_cost) = plt.subplots(
        4, 1, figsize=(11, 10), sharex=True,
        gridspec_kw={"height_ratios": [3, 3, 0.5 + 0.35 * len(runs), 2.2], "hspace": 0.12})
    fig.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.06)
    for attr, ax, scale in (("p95_worst", ax_lat, 1.0), ("error_ratio", ax_err, 100.0), ("spend", ax_cost, 1.0)):
        for label, r in groups(runs, attr):
            ax.plot(r.hours, scale * getattr(r, attr), color=color(r.engines, order), lw=1.2, label=label)
    if any(np.nanmax(r.p95_worst, initial=0) > 20 * max(np.nanmin(r.p95_worst, initial=1), 1) for r in runs):
        ax_lat.set_yscale("log")
    if any(np.nanmax(r.error_ratio, initial=0) > 0.01 for r in runs):  # above 1 %: decades apart, symlog
        ax_err.set_yscale("symlog", linthresh=0.1)
    ax_err.set_ylim(bottom=0)
    ax_lat.set_ylabel("p95 latency, ms\n(worst service)")
    ax_err.set_ylabel("error ratio, %\n(request-weighted)")
    ax_cost.set_ylabel("cumulative spend")
    ax_cost.set_xlabel(f"simulated time, hours — shaded: fault windows (ground truth); marks for {primary}: "
                       "D detected, S declared, M mitigated, R resolved")
    for ax in (ax_lat, ax_err, ax_cost):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    if incidents is not None and len(incidents):
        for ax in (ax_lat, ax_err):
            _faults(ax, incidents, end_h, label=ax is ax_lat)
    _gantt(ax_inc, runs, order)
    ax_inc.grid(True, axis="x", alpha=0.3)
    ax_lat.set_title(f"{scenario}: latency and errors with fault windows; spend per engine set", loc="left",
                     fontsize=11, pad=14)
    return _save(fig, path)


FUNNEL = (("alerts_raw", "raw alerts"), ("suppressed", "suppressed"), ("notifications", "sent to humans"),
          ("pages_true", "useful pages"), ("pages_false", "false positives"),
          ("incidents_auto_resolved", "auto-remediated incidents"))


def funnel_values(m: dict[str, Any]) -> dict[str, float | None]:
    """The funnel of one run's metrics; suppressed = raw − sent to humans (never below 0)."""
    out: dict[str, float | None] = {}
    for k, _ in FUNNEL:
        if k == "suppressed":
            raw, sent = m.get("alerts_raw"), m.get("notifications")
            out[k] = None if raw is None or sent is None else max(float(raw) - float(sent), 0.0)
        else:
            v = m.get(k)
            out[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return out


def funnel_figure(scenario: str, metrics: dict[str, dict[str, Any]], path: Path, order: list[str]) -> Path:
    fig, ax = plt.subplots(figsize=(11, 2.9))
    fig.subplots_adjust(left=0.07, right=0.98, top=0.89, bottom=0.12)
    engines = list(metrics)
    x = np.arange(len(FUNNEL))
    w = 0.8 / max(len(engines), 1)
    for k, e in enumerate(engines):
        vals = funnel_values(metrics[e])
        ys = [np.nan if vals[key] is None else vals[key] for key, _ in FUNNEL]
        bars = ax.bar(x + (k - (len(engines) - 1) / 2) * w, ys, w, label=e, color=color(e, order))
        for b, y in zip(bars, ys, strict=True):
            ax.annotate("n/a" if np.isnan(y) else f"{y:.0f}", (b.get_x() + b.get_width() / 2, 0 if np.isnan(y) else y),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(x, [lbl for _, lbl in FUNNEL], fontsize=9)
    ax.set_ylabel("count")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{scenario}: alert funnel", loc="left", fontsize=11)
    return _save(fig, path)
