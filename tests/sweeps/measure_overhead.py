"""What one Dask task costs beside a run (docs/performance.md, "Sweeps beyond one machine").

    .venv/bin/python -m tests.sweeps.measure_overhead [SCENARIO.yaml]

Prints: the round trip of a no-op task on a 2-process LocalCluster (submit to result, one at a time), the
throughput of 500 no-op tasks, the pickled size of a run's job (the scenario) and of its result row, and the
wall time of that run in this process: the overhead per run as a share of the run.
"""

from __future__ import annotations

import pickle
import statistics
import sys
import time
from pathlib import Path

from scenarios.loader import load_scenario
from scenarios.sweep import execute, plan

STANDARD = Path(__file__).resolve().parents[2] / "scenarios" / "standard"


def _noop(x: int) -> int:
    return x


def main(argv: list[str]) -> int:
    from distributed import Client, LocalCluster

    path = Path(argv[0]) if argv else STANDARD / "hypervisor-failure.yaml"
    jobs = plan([path], [load_scenario(path)], [1], ["reactive"])
    t0 = time.perf_counter()
    row = execute(jobs).rows[jobs[0].key]
    run_s = time.perf_counter() - t0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.submit(_noop, -1, pure=False).result()  # warm
        trips = []
        for i in range(200):
            t = time.perf_counter()
            client.submit(_noop, i, pure=False).result()
            trips.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.gather(client.map(_noop, range(500), pure=False))
        burst = time.perf_counter() - t
    job_kb, row_kb = len(pickle.dumps(jobs[0])) / 1024, len(pickle.dumps(row)) / 1024
    rtt = statistics.median(trips)
    print(f"no-op task round trip: median {rtt * 1e3:.2f} ms, p95 {sorted(trips)[189] * 1e3:.2f} ms (200 tasks)")
    print(f"500 no-op tasks: {burst:.2f} s ({500 / burst:.0f} tasks/s)")
    print(f"{path.stem} · reactive · seed 1: {run_s:.2f} s in this process; job {job_kb:.1f} KiB, row {row_kb:.1f} KiB")
    print(f"per-run overhead (one round trip) / run: {100 * rtt / run_s:.3f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
