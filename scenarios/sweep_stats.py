"""A sweep's runs merged into one table: per scenario x engine set x metric the mean over seeds with its 95 %
interval, and the paired difference to each baseline engine set on the same seeds, with its interval.

Intervals are Student-t: ``mean ± t(0.975, n-1) · s / √n`` over the seeds' values; a paired difference is
the t interval of the per-seed differences ``x(set, seed) − x(baseline, seed)``, so the faults and traffic a
seed draws, which both sets saw, cancel out.  t rather than a bootstrap: sweeps have few seeds (5 to 20) and a
percentile bootstrap is too narrow there; t is exact for normal data and robust enough for means.

Files (``write``)::

    sweep.csv          one row per run: scenario, engines, seed, wall_s, worker, every metric, targets met/missed
    sweep-summary.csv  one row per (scenario, engines, metric, vs): vs empty = the set's own figure over seeds;
                       vs = a baseline set: the paired difference (engines − vs) over the seeds both ran;
                       columns n, mean, std, ci_low, ci_high (95 %), target, runs_met, runs_missed
    sweep.json         {"schema_version", "generated_by", "sweep": {...}, "runs": [...], "summary": [...]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from scenarios.schema import SCHEMA_VERSION, Scenario
from scenarios.scoring import METRICS, NON_NUMERIC_METRICS
from scenarios.sweep import RunKey

LEVEL = 0.95
SUMMARY_COLUMNS = ("scenario", "engines", "metric", "vs", "n", "mean", "std", "ci_low", "ci_high", "target",
                   "runs_met", "runs_missed")


@dataclass
class _Run:
    """The attributes :func:`scenarios.scoring.compare_to_static` and ``check_targets`` read from a result."""

    scenario: Scenario
    engines: str
    seed: int
    score: SimpleNamespace
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)


def finalize(rows: dict[RunKey, dict[str, Any]], scenarios: Sequence[Scenario],
             order: Sequence[RunKey] = ()) -> list[dict[str, Any]]:
    """Flat per-run rows in ``order`` (the plan's; else sorted by key), with cost savings against static on the
    same seed and target statuses (both computed by the scorer's own functions, as ``zeroops suite`` does)."""
    from scenarios.runner import check_targets
    from scenarios.scoring import compare_to_static

    by_name = {s.name: s for s in scenarios}
    keys = [k for k in order if k in rows] + sorted(set(rows) - set(order))
    runs = [_Run(by_name[k.scenario], k.engines, k.seed, SimpleNamespace(metrics=dict(rows[k]["metrics"])))
            for k in keys]
    compare_to_static(runs)
    flat = []
    for k, r in zip(keys, runs, strict=True):
        check_targets(r)  # type: ignore[arg-type]
        st = [t["status"] for t in r.targets.values()]
        flat.append({"scenario": k.scenario, "engines": k.engines, "seed": k.seed,
                     "wall_s": round(rows[k]["wall_s"], 3), "worker": rows[k].get("worker", ""),
                     **{m: r.score.metrics.get(m) for m in METRICS},
                     "targets_met": st.count("met"), "targets_missed": st.count("missed"),
                     "_targets": r.targets})
    return flat


def t_interval(xs: Sequence[float], level: float = LEVEL) -> tuple[float, float | None, float | None, float | None]:
    """(mean, sample std, low, high) of ``xs``; std and bounds are None below two values."""
    a = np.asarray(xs, dtype=float)
    mean = float(a.mean())
    if len(a) < 2:
        return mean, None, None, None
    sd = float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(a) - 1)) * sd / math.sqrt(len(a))
    return mean, sd, mean - half, mean + half


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def summarize(flat: list[dict[str, Any]], baselines: Sequence[str] = ("static", "reactive"),
              level: float = LEVEL) -> list[dict[str, Any]]:
    """The merged table (see the module docstring): own figures, then paired differences to each baseline."""
    metrics = [m for m in METRICS if m not in NON_NUMERIC_METRICS]
    groups: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in flat:
        groups.setdefault((r["scenario"], r["engines"]), {})[r["seed"]] = r
    out: list[dict[str, Any]] = []
    for (scn, eng), by_seed in groups.items():
        seeds = sorted(by_seed)
        for m in metrics:
            xs = [by_seed[s][m] for s in seeds if _numeric(by_seed[s].get(m))]
            if not xs:
                continue
            statuses = [by_seed[s]["_targets"].get(m, {}).get("status") for s in seeds]
            target = next((by_seed[s]["_targets"][m]["target"] for s in seeds if m in by_seed[s]["_targets"]), "")
            out.append(_row(scn, eng, m, "", xs, level) | {
                "target": target, "runs_met": statuses.count("met"), "runs_missed": statuses.count("missed")})
            for b in baselines:
                base = groups.get((scn, b))
                if b == eng or base is None:
                    continue
                ds = [by_seed[s][m] - base[s][m] for s in seeds
                      if s in base and _numeric(by_seed[s].get(m)) and _numeric(base[s].get(m))]
                if ds:
                    out.append(_row(scn, eng, m, b, ds, level) | {"target": "", "runs_met": None, "runs_missed": None})
    return out


def _row(scn: str, eng: str, metric: str, vs: str, xs: list[float], level: float) -> dict[str, Any]:
    mean, sd, lo, hi = t_interval(xs, level)
    return {"scenario": scn, "engines": eng, "metric": metric, "vs": vs, "n": len(xs), "mean": mean, "std": sd,
            "ci_low": lo, "ci_high": hi}


def write(out: Path, flat: list[dict[str, Any]], summary: list[dict[str, Any]], meta: dict[str, Any]) -> list[Path]:
    """sweep.csv, sweep-summary.csv and sweep.json in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [{k: v for k, v in r.items() if k != "_targets"} | {"targets": r["_targets"]} for r in flat]
    pd.DataFrame([{k: v for k, v in r.items() if k != "targets"} for r in runs]).to_csv(out / "sweep.csv",
                                                                                        index=False)
    table = pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
    table[["runs_met", "runs_missed"]] = table[["runs_met", "runs_missed"]].astype("Int64")  # empty on vs rows
    table.to_csv(out / "sweep-summary.csv", index=False)
    doc = {"schema_version": SCHEMA_VERSION, "generated_by": "zeroops sweep",
           "sweep": meta | {"interval": {"method": "student-t", "level": LEVEL}}, "runs": runs, "summary": summary}
    (out / "sweep.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return [out / "sweep.csv", out / "sweep-summary.csv", out / "sweep.json"]


SHOWN = ("availability", "slo_violation_minutes", "mttd_p50_s", "mttr_p50_s", "automation_rate",
         "human_interventions", "cost")


def table(summary: list[dict[str, Any]], baseline: str | None = "static", metrics: Sequence[str] = SHOWN) -> str:
    """The terminal view: per scenario and set, ``mean ±half-width`` of a few metrics, and below each set its
    paired difference to ``baseline`` (``Δ``)."""
    idx = {(r["scenario"], r["engines"], r["metric"], r["vs"]): r for r in summary}
    pairs = list(dict.fromkeys((r["scenario"], r["engines"]) for r in summary))
    heads = ["scenario", "engines", *metrics]
    rows: list[list[str]] = []
    for scn, eng in pairs:
        rows.append([scn, eng, *(_cell(idx.get((scn, eng, m, "")), m) for m in metrics)])
        if baseline and baseline != eng and any((scn, eng, m, baseline) in idx for m in metrics):
            rows.append(["", f"  Δ vs {baseline}", *(_cell(idx.get((scn, eng, m, baseline)), m, True)
                                                      for m in metrics)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    return "\n".join([line, "-" * len(line), *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                                                for r in rows)])


def _cell(r: dict[str, Any] | None, metric: str = "", signed: bool = False) -> str:
    """``mean ±half-width``; ratios in % (differences of ratios in percentage points)."""
    if r is None:
        return "-"
    pct = metric == "availability" or metric.endswith("_rate")
    k, unit = (100.0, "%" if not signed else " pp") if pct else (1.0, "")
    mean, hi = k * r["mean"], None if r["ci_high"] is None else k * r["ci_high"]
    digits = ".3f" if metric == "availability" else ".1f" if pct else ".4g"
    text = format(mean + 0.0, ("+" if signed else "") + digits)  # + 0.0: no "-0"
    return text + unit if hi is None else f"{text}{unit} ±{hi - mean:.2g}"
