"""The gaming engines of tests/gaming.py on standard scenarios, beside the baselines, for the README.

``python -m benchmarks.gaming_scores [--seed N]`` prints a Markdown table: each
gaming engine on the scenarios where its trick would pay if the scoring let
it, with the figure it tries to game. The baselines run through the same gate
(every action allowed), on the same seed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from scenarios.loader import load_scenario
from scenarios.scoring import compare_to_static
from tests.gaming import run_engines

STANDARD = Path(__file__).resolve().parent.parent / "scenarios" / "standard"
CASES = {  # gaming set -> scenarios where its trick would pay
    "spammer": ["incident-mix", "db-pool-exhaustion"],
    "do-nothing": ["incident-mix"],
    "always-rollback": ["memory-leak-oom", "incident-mix"],
    "scale-everything": ["idle-workload", "product-launch"],
    "simple-detector": ["incident-mix", "db-pool-exhaustion"],
}
COLS = [("mttd_p50_s", "MTTD p50 s", "s"), ("detection_precision", "det. precision", "%"),
        ("false_incidents_per_day", "false inc./day", "n"), ("automation_rate", "automation", "%"),
        ("incidents_missed_p0p1", "missed P0/P1", "n"), ("notifications", "pages to humans", "n"),
        ("availability", "availability", "%3"),
        ("rollbacks_of_good_releases", "good releases rolled back", "n"), ("cost_savings", "savings vs static", "%")]


def fmt(v: object, kind: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "%":
        return f"{100 * float(v):.1f} %"  # type: ignore[arg-type]
    if kind == "%3":
        return f"{100 * float(v):.3f} %"  # type: ignore[arg-type]
    if kind == "s":
        return f"{float(v):,.1f}"  # type: ignore[arg-type]
    return f"{float(v):,.1f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=None, help="override the scenarios' seeds")
    a = ap.parse_args()
    print("| scenario | engines | " + " | ".join(c[1] for c in COLS) + " |")
    print("|---|---|" + "---|" * len(COLS))
    by_scn: dict[str, list[str]] = {}
    for g, scns in CASES.items():
        for s in scns:
            by_scn.setdefault(s, []).append(g)
    for scn_name, games in by_scn.items():
        scn = load_scenario(STANDARD / f"{scn_name}.yaml")
        if a.seed is not None:
            scn = scn.model_copy(update={"seed": a.seed})
        runs = [run_engines(scn, n) for n in ["static", "reactive", *games]]
        compare_to_static(runs)
        for r in runs:
            m = r.score.metrics
            cells = []
            for key, _, kind in COLS:
                v = m.get(key)
                if key == "cost_savings" and m.get("cost_savings_comparable") is False:
                    cells.append(f"n/c ({fmt(m.get('cost_savings_raw'), '%')} raw)")
                else:
                    cells.append(fmt(v, kind))
            name = r.engines if r.engines in ("static", "reactive") else f"**{r.engines}** (gaming)"
            print(f"| {scn_name} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
