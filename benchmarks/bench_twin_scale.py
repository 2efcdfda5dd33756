"""How the twin's cost grows with the fleet: cost per tick at 1k, 10k and 100k servers, and the day/week goals.

Each size runs in **its own process** (``python -m benchmarks.bench_twin_scale --one ...``), so its peak memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: interpreter and libraries included) is its own.

* **Curve** (``CURVE``): a static fleet (no engines, so only the twin is timed) of N servers over N/100
  services (:func:`benchmarks.fleet.fleet_scenario`), simulated for ``CURVE_HOURS``; the world is built first,
  then ``World.run`` is timed, and the cost per tick is that time / ticks.  Linear growth means the µs per
  tick per 1,000 servers stays flat from 1k to 100k.  At 1k and 10k (``NAIVE``) the naive
  process-per-server peer (:mod:`benchmarks.naive`) runs the same fleet right after, for the ratio.
* **Goals** (``GOALS``): ``fleet-10k-day`` (baseline ``reactive`` engines, target ≥ 26,000× real time),
  ``fleet-10k-ops-2h`` (the full ``ops`` engine set in the loop, target ≥ 10,000× for a week; sampled over
  2 h because at today's rate a week takes hours) and ``fleet-100k-day``
  (reactive, target peak memory ≤ 8 GB).  Wall time covers building, running and scoring
  (``RunResult.wall_s``), as in :mod:`benchmarks.measure`.

Run: ``make bench`` (pytest-benchmark, marked ``benchmark_suite``; nothing fails on speed), or
``python -m benchmarks.bench_twin_scale [curve|goals|CASE ...]`` to print the figures.
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

import pytest

pytestmark = pytest.mark.benchmark_suite

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0
CURVE = (1_000, 10_000, 100_000)
CURVE_HOURS = 2.0
SERVERS_PER_SERVICE = 100
NAIVE = (1_000, 10_000)  # sizes where the naive process-per-server peer runs beside the twin (in minutes)


@dataclass(frozen=True)
class Goal:
    """A fleet run with its engine set and targets."""

    name: str
    servers: int
    services: int
    days: float
    engines: str
    min_rtf: float | None = None
    max_rss_mb: float | None = None


GOALS: dict[str, Goal] = {g.name: g for g in (
    Goal("fleet-10k-day", 10_000, 100, 1.0, "reactive", min_rtf=26_000),
    # the week goal with the full ops engines, sampled: 2 h (a week at today's rate would take hours)
    Goal("fleet-10k-ops-2h", 10_000, 100, 2.0 / 24, "ops", min_rtf=10_000),
    Goal("fleet-100k-day", 100_000, 1000, 1.0, "reactive", max_rss_mb=8192),
)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def tick_cost(servers: int, hours: float = CURVE_HOURS, model: str = "twin") -> dict[str, Any]:
    """Build a static fleet of ``servers`` and time its run over ``hours`` (in this process): the vectorised
    ``World`` (``model="twin"``) or the naive process-per-server peer (``"naive"``, :mod:`benchmarks.naive`)."""
    from benchmarks.fleet import fleet_scenario

    services = max(1, servers // SERVERS_PER_SERVICE)
    scn = fleet_scenario(servers, services, hours / 24.0, name=f"scale-{servers}")
    t0 = time.perf_counter()
    if model == "naive":
        from benchmarks.naive import NaiveWorld

        world: Any = NaiveWorld(scn)
    else:
        from twin.world import World

        world = World(scn)
    build = time.perf_counter() - t0
    c0, t1 = time.process_time(), time.perf_counter()
    world.run()
    run = time.perf_counter() - t1
    cpu = time.process_time() - c0
    ticks = world.ticks
    return {"model": model, "servers": servers, "services": services, "simulated_s": scn.duration, "ticks": ticks,
            "build_s": round(build, 3), "run_s": round(run, 3), "cpu_s": round(cpu, 3),
            "us_per_tick": round(run / ticks * 1e6, 1), "cpu_us_per_tick": round(cpu / ticks * 1e6, 1),
            "us_per_tick_per_1k_servers": round(run / ticks * 1e6 / (servers / 1000), 2),
            "peak_rss_mb": round(_rss_mb(), 1)}


def goal_run(goal: Goal) -> dict[str, Any]:
    """Run ``goal`` with its engine set through :func:`scenarios.runner.run_scenario` (in this process)."""
    from benchmarks.fleet import fleet_scenario
    from scenarios.runner import run_scenario

    scn = fleet_scenario(goal.servers, goal.services, goal.days, name=goal.name)
    c0 = time.process_time()
    r = run_scenario(scn, goal.engines)
    cpu = time.process_time() - c0
    m = r.score.metrics
    rtf = scn.duration / r.wall_s
    rss = _rss_mb()
    out: dict[str, Any] = {
        "case": goal.name, "engines": goal.engines, "servers": goal.servers, "services": goal.services,
        "simulated_s": scn.duration, "wall_s": round(r.wall_s, 3), "realtime_factor": round(rtf),
        "cpu_s": round(cpu, 3), "cpu_realtime_factor": round(scn.duration / cpu), "peak_rss_mb": round(rss, 1),
        "ticks": r.world.ticks, "us_per_tick": round(r.wall_s / r.world.ticks * 1e6, 1),
        "availability": m["availability"], "cost": m["cost"], "actions": m["actions_taken"],
        "server_rows": r.world.n}
    met = []
    if goal.min_rtf is not None:
        out["target_rtf"] = goal.min_rtf
        met.append(rtf >= goal.min_rtf)
    if goal.max_rss_mb is not None:
        out["target_rss_mb"] = goal.max_rss_mb
        met.append(rss <= goal.max_rss_mb)
    out["targets"] = "met" if all(met) else "missed"
    return out


def in_subprocess(*args: str) -> dict[str, Any]:
    """Run ``--one ARGS`` in a fresh interpreter (own peak RSS) and return its JSON line."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_twin_scale", "--one", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_twin_scale --one {' '.join(args)} failed:\n{proc.stderr}")
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res


def curve(sizes: tuple[int, ...] = CURVE, naive: tuple[int, ...] = NAIVE) -> list[dict[str, Any]]:
    """The cost-per-tick curve, one subprocess per size; the naive peer beside it where it fits."""
    rows = []
    for n in sizes:
        rows.append(in_subprocess("tick", str(n)))
        if n in naive:
            rows.append(in_subprocess("naive", str(n)))
    return rows


@pytest.mark.parametrize("servers", CURVE)
def test_tick_cost(benchmark: Any, servers: int) -> None:
    res: dict[str, Any] = benchmark.pedantic(in_subprocess, args=("tick", str(servers)), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["ticks"] == int(CURVE_HOURS * 3600 / 5.0)


@pytest.mark.parametrize("servers", NAIVE)
def test_tick_cost_naive_peer(benchmark: Any, servers: int) -> None:
    """The naive process-per-server model on the same static fleet, for the ratio in the same run."""
    twin = in_subprocess("tick", str(servers))
    res: dict[str, Any] = benchmark.pedantic(in_subprocess, args=("naive", str(servers)), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    benchmark.extra_info["twin_speedup_cpu"] = round(res["cpu_s"] / twin["cpu_s"], 1)
    assert res["ticks"] == twin["ticks"]


@pytest.mark.parametrize("name", list(GOALS))
def test_goal(benchmark: Any, name: str) -> None:
    res: dict[str, Any] = benchmark.pedantic(in_subprocess, args=("goal", name), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["simulated_s"] == GOALS[name].days * DAY
    assert res["availability"] > 0.9


def _print_curve(rows: list[dict[str, Any]]) -> None:
    print("| model | servers / services | ticks | build (s) | µs per tick | CPU µs per tick | µs per tick per 1k servers "
          "| peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['servers']:,} / {r['services']:,} | {r['ticks']:,} | {r['build_s']} | {r['us_per_tick']:,} "
              f"| {r['cpu_us_per_tick']:,} | {r['us_per_tick_per_1k_servers']} | {r['peak_rss_mb']:,} |")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        kind, arg = argv[1], argv[2]
        res = goal_run(GOALS[arg]) if kind == "goal" else tick_cost(int(arg), model="naive" if kind == "naive" else "twin")
        print(json.dumps(res))
        return 0
    what = argv or ["curve"]
    for w in what:
        if w == "curve":
            _print_curve(curve())
        elif w == "goals":
            for g in GOALS:
                print(json.dumps(in_subprocess("goal", g)), flush=True)
        elif w in GOALS:
            print(json.dumps(in_subprocess("goal", w)), flush=True)
        elif w.isdigit():
            _print_curve(curve((int(w),)))
        else:
            print(f"usage: python -m benchmarks.bench_twin_scale [curve|goals|N|{'|'.join(GOALS)} ...]",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
