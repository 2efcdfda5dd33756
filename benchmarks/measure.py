"""Run one benchmark case in a fresh process and report wall time, real-time factor and peak memory.

``python -m benchmarks.measure CASE`` prints one JSON object.  Peak memory is
the child's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``
at the end of the run), so it includes the interpreter, numpy, pandas and SimPy
(about 100 MB before the world is built).  Wall time covers building the world,
running it and scoring it (``RunResult.wall_s``); the real-time factor is
simulated seconds / that wall time.  The process CPU time of the same span is
recorded too (``cpu_s``, ``cpu_realtime_factor``): on a shared machine it shows
what the code costs when other jobs steal the cores.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
DAY = 86400.0


@dataclass(frozen=True)
class Case:
    """A benchmark case: a synthetic fleet, the model that runs it, and its targets."""

    name: str
    servers: int
    services: int
    days: float
    model: str = "twin"  # twin (vectorised World) or naive (benchmarks.naive)
    engines: str = "reactive"
    min_rtf: float | None = None  # target: at least this many times faster than real time
    max_rss_mb: float | None = None  # target: peak memory at most this


CASES: dict[str, Case] = {c.name: c for c in (
    Case("fleet-1k-week", 1000, 50, 7.0, min_rtf=10_000, max_rss_mb=1536),
    Case("fleet-10k-day", 10_000, 100, 1.0, min_rtf=26_000),
    Case("twin-100-day-static", 100, 10, 1.0, engines="static"),
    Case("naive-100-day-static", 100, 10, 1.0, model="naive", engines="static"),
    Case("twin-1k-6h-static", 1000, 50, 0.25, engines="static"),
    Case("naive-1k-6h-static", 1000, 50, 0.25, model="naive", engines="static"),
)}


def run_case(case: Case) -> dict[str, Any]:
    """Run ``case`` in this process; returns its figures."""
    from benchmarks.fleet import fleet_scenario

    scn = fleet_scenario(case.servers, case.services, case.days, name=case.name)
    extra: dict[str, Any] = {}
    cpu0 = time.process_time()
    if case.model == "naive":
        from benchmarks.naive import NaiveWorld

        t0 = time.perf_counter()
        nw = NaiveWorld(scn)
        nw.run()
        wall = time.perf_counter() - t0
        extra = {"availability": nw.availability(), "cost": nw.spend_total, "servers_end": len(nw.servers)}
    else:
        from scenarios.runner import run_scenario

        r = run_scenario(scn, case.engines)
        wall = r.wall_s
        m = r.score.metrics
        extra = {"availability": m["availability"], "cost": m["cost"], "actions": m["actions_taken"],
                 "peak_servers": m["peak_servers"], "server_rows": r.world.n, "ticks": r.world.ticks}
    cpu = time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    rtf = scn.duration / wall
    out = {"case": case.name, "model": case.model, "engines": case.engines, "servers": case.servers,
           "services": case.services, "simulated_s": scn.duration, "tick_s": scn.tick, "wall_s": round(wall, 3),
           "realtime_factor": round(rtf), "cpu_s": round(cpu, 3), "cpu_realtime_factor": round(scn.duration / cpu),
           "peak_rss_mb": round(rss_mb, 1), **extra}
    status = []
    if case.min_rtf is not None:
        out["target_rtf"] = case.min_rtf
        status.append(rtf >= case.min_rtf)
    if case.max_rss_mb is not None:
        out["target_rss_mb"] = case.max_rss_mb
        status.append(rss_mb <= case.max_rss_mb)
    out["targets"] = ("met" if all(status) else "missed") if status else "-"
    return out


def measure(name: str, save: bool = True) -> dict[str, Any]:
    """Run case ``name`` in a subprocess (clean peak-memory figure); optionally merge into results.json."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.measure", name], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {name} failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if save:
        save_result(res)
    return res


def save_result(res: dict[str, Any]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    import os
    import platform

    res = res | {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data[res["case"]] = res
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def profile(name: str, top: int = 30) -> None:
    """Run a case under cProfile and print the ``top`` functions by own time (to stderr)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    res = prof.runcall(run_case, CASES[name])
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(top)
    print(json.dumps(res))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--profile"]
    if len(args) != 1 or args[0] not in CASES:
        print(f"usage: python -m benchmarks.measure CASE [--profile]   (CASE one of {', '.join(CASES)})",
              file=sys.stderr)
        sys.exit(2)
    if "--profile" in sys.argv:
        profile(args[0])
    else:
        print(json.dumps(run_case(CASES[args[0]])))
