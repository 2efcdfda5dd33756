"""Re-measure docs/runbooks.md's table: ``python -m tests.runbooks.measure_twin [SEEDS]`` (default 5).

Each fault of the catalog, correctly diagnosed 10 s after its onset (the test driver of test_twin.py),
over seeds 1..SEEDS with a 30 s onset jitter: the runbook chosen, the run's status, the time from the
onset to the fault's end in the twin's truth, and whether automation is credited.
"""

from __future__ import annotations

import copy
import sys

from tests.builders import BASE
from tests.runbooks.test_twin import CASES, run_fault


def main(seeds: int = 5) -> None:
    cases = dict(CASES, spot_preemption={"type": "spot_preemption", "at": 600, "service": "api"})
    spot = copy.deepcopy(BASE["services"])
    spot[0]["pricing"] = "spot"
    print("| fault | runbook | onset -> fixed (s) | credited to automation | run statuses |")
    print("|---|---|---|---|---|")
    for name, spec in sorted(cases.items()):
        times, credited, statuses, chosen = [], 0, [], ""
        for seed in range(1, seeds + 1):
            extra = {"services": spot} if name == "spot_preemption" else {}
            d, rec = run_fault(dict(spec, jitter=30), seed=seed, **extra)
            chosen = d.chosen
            statuses.append(d.run.status if d.run else "-")
            times.append(f"{rec.end - rec.start:.0f}" if rec.end is not None else "unfixed")
            credited += rec.end is not None and rec.resolved_by == "automation"
        print(f"| {name} | {chosen} | {', '.join(times)} | {credited}/{seeds} | {', '.join(sorted(set(statuses)))} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
