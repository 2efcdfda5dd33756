"""The ops center's targets (issue 8 §4) pooled over seeds: every fault scenario x seeds x engine sets.

    python -m benchmarks.ops_targets [--seeds 1-5] [--sets static,reactive,ops] [--jobs 2] [--out FILE.json]

Runs each fault scenario of the standard suite at each seed for each engine set (in parallel processes),
pools the scored incidents and prints per set: MTTD and MTTR p50/p95, detection precision and recall, P0/P1
recall, RCA top-1/top-3, automation rate, human-intervention rate, pages, false incidents per day, and per
fault type.  Every figure comes from the scorer (ground truth plus the audit log), nothing is re-derived.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

FAULT_SCENARIOS = ("az-outage", "db-pool-exhaustion", "hypervisor-failure", "incident-mix", "memory-leak-oom")
SUITE = Path(__file__).resolve().parent.parent / "scenarios" / "standard"


def _one(job: tuple[str, str, int]) -> dict[str, Any]:
    from scenarios.loader import load_scenario
    from scenarios.runner import run_scenario

    name, engines, seed = job
    r = run_scenario(load_scenario(SUITE / f"{name}.yaml"), engines, seed=seed)
    m = r.score.metrics
    return {"scenario": name, "engines": engines, "seed": seed,
            "incidents": [i.as_dict() for i in r.score.incidents if not i.chaos],
            "declarations": m.get("declarations", 0), "declarations_matched": m.get("declarations_matched", 0),
            "declarations_false": m.get("declarations_false", 0), "pages": m.get("pages", 0),
            "human_interventions": m.get("human_interventions", 0),
            "human_intervention_rate": m.get("human_intervention_rate"), "duration_s": r.world.now(),
            "slo_minutes": m.get("slo_violation_minutes", 0.0), "cost": m.get("cost", 0.0)}


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The §4 figures over ``runs`` (one engine set)."""
    incs = [i for r in runs for i in r["incidents"]]
    ttd = [i["ttd_s"] for i in incs if i["ttd_s"] is not None]
    ttr = [i["ttr_s"] for i in incs if i["ttr_s"] is not None]
    needed = [i for i in incs if i["resolved_by"] != "self"]  # as the scorer: unresolved ones needed it too
    auto = [i for i in needed if i["resolved_by"] == "automation"]
    declared = [i for i in incs if i["declared_id"] is not None]
    p01 = [i for i in incs if i["true_severity"] in ("P0", "P1")]
    ranked = [i for i in declared]
    decl = sum(r["declarations"] for r in runs)
    matched = sum(r["declarations_matched"] for r in runs)
    days = sum(r["duration_s"] for r in runs) / 86400.0
    return {
        "runs": len(runs), "incidents": len(incs),
        "mttd_p50_s": _pct(ttd, 50), "mttd_p95_s": _pct(ttd, 95), "detected": len(ttd),
        "mttr_p50_s": _pct(ttr, 50), "mttr_p95_s": _pct(ttr, 95),
        "detection_precision": matched / decl if decl else None,
        "detection_recall": len(declared) / len(incs) if incs else None,
        "false_incidents_per_day": sum(r["declarations_false"] for r in runs) / days if days else None,
        "p0p1_recall": (sum(1 for i in p01 if i["declared_id"] is not None) / len(p01)) if p01 else None,
        "p0p1": len(p01),
        "rca_top1": (sum(1 for i in ranked if i["root_cause_rank"] == 1) / len(ranked)) if ranked else None,
        "rca_top3": (sum(1 for i in ranked if i["root_cause_rank"] is not None and i["root_cause_rank"] <= 3)
                     / len(ranked)) if ranked else None,
        "severity_exact": (sum(1 for i in declared if i["declared_severity"] == i["true_severity"]) / len(declared)
                           ) if declared else None,
        "automation_rate": len(auto) / len(needed) if needed else None,
        "human_interventions": sum(r["human_interventions"] for r in runs),
        # the scorer's rate per run ((interventions + approvals) / (interventions + incident actions)), averaged
        "human_intervention_rate": _mean([r["human_intervention_rate"] for r in runs
                                          if r["human_intervention_rate"] is not None]),
        "pages": sum(r["pages"] for r in runs),
        "slo_minutes": sum(r["slo_minutes"] for r in runs), "cost": sum(r["cost"] for r in runs),
        "per_fault": {t: _fault(t, [i for i in incs if i["type"] == t]) for t in sorted({i["type"] for i in incs})},
    }


def _fault(t: str, incs: list[dict[str, Any]]) -> dict[str, Any]:
    ttd = [i["ttd_s"] for i in incs if i["ttd_s"] is not None]
    ttr = [i["ttr_s"] for i in incs if i["ttr_s"] is not None]
    return {"n": len(incs), "mttd_p50_s": _pct(ttd, 50), "mttd_p95_s": _pct(ttd, 95),
            "mttr_p50_s": _pct(ttr, 50), "mttr_p95_s": _pct(ttr, 95),
            "automation": sum(1 for i in incs if i["resolved_by"] == "automation"),
            "rca_top1": sum(1 for i in incs if i["root_cause_rank"] == 1)}


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",") if x]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if not math.isnan(v) else "nan"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-5", help="seeds: 1-5 or 1,2,7 (default 1-5)")
    ap.add_argument("--sets", default="static,reactive,ops", help="engine sets, comma-separated")
    ap.add_argument("--scenarios", default=",".join(FAULT_SCENARIOS), help="standard scenarios, comma-separated")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--out", type=Path, help="write the pooled figures and every run as JSON")
    a = ap.parse_args(argv)
    sets = [s for s in a.sets.split(",") if s]
    jobs = [(n, s, seed) for n in a.scenarios.split(",") if n for s in sets for seed in _seeds(a.seeds)]
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for k, r in enumerate(ex.map(_one, jobs), 1):
            runs.append(r)
            print(f"\r{k}/{len(jobs)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    pooled = {s: pool([r for r in runs if r["engines"] == s]) for s in sets}
    keys = [k for k in next(iter(pooled.values())) if k != "per_fault"]
    print(f"{'figure':28}" + "".join(f"{s:>14}" for s in sets))
    for k in keys:
        print(f"{k:28}" + "".join(f"{_fmt(pooled[s][k]):>14}" for s in sets))
    for s in sets:
        print(f"\nper fault ({s}): n, MTTD p50/p95, MTTR p50/p95, automated, RCA top-1")
        for t, f in pooled[s]["per_fault"].items():
            print(f"  {t:22} {f['n']:3}  {_fmt(f['mttd_p50_s']):>7} / {_fmt(f['mttd_p95_s']):>7}  "
                  f"{_fmt(f['mttr_p50_s']):>7} / {_fmt(f['mttr_p95_s']):>7}  {f['automation']:3}  {f['rca_top1']:3}")
    if a.out:
        a.out.write_text(json.dumps({"pooled": pooled, "runs": runs}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
