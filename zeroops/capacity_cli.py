"""``zeroops capacity SCENARIO.yaml [--days 7]``: each zone's vCPU capacity, use, forecast and run-out day.

Runs the scenario's world with an engine set (default ``reactive``: the fleet grows and shrinks as autoscaling
makes it; under ``static`` it never grows) for the scenario's duration, sampling every zone's allocated vCPUs
(as the hypervisor API shows them) every ``--sample``.  At ``--at`` (default: the end of the run) it fits the
provisioner's trend (:func:`engines.provisioning.plan.run_out`: a least-squares line over the last ``--fit``
plus the largest excess of the last day's peaks above it) and prints per zone: capacity, used, the peak of the
last day, the forecast ``--days`` ahead and the day the zone runs out.  With ``--at`` before the end it also
prints when the zone actually filled up later in the run, to check the forecast against what happened.
Days are counted from the run's start (day 1 = its first 24 h).  Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from zeroops.forecast_cli import parse_duration

EXIT_OK, EXIT_INPUT = 0, 2
DAY = 86400.0


def sample_run(scn: Any, engines: str, sample_s: float, until: float | None = None
               ) -> tuple[list[float], dict[str, list[tuple[float, float]]]]:
    """Run ``scn`` under ``engines``; return the sample times and, per zone, (used vCPUs, up capacity) samples."""
    from adapters.sim import SimAdapter
    from control.compose import SimulatedApprovals, compose
    from scenarios.runner import safety_config, set_operator_route
    from twin.clock import SimClock
    from twin.world import World

    spec = scn.engine_set(engines)
    world = World(scn)
    set_operator_route(world, spec)
    adapter = SimAdapter(world)
    plane = compose(adapter, spec, clock=SimClock(world.env), safety=safety_config(scn),
                    approvals=SimulatedApprovals(scn.approvers.count, scn.approvers.delay, scn.approvers.cadence),
                    min_cadence=scn.tick)
    end = scn.duration if until is None else min(until, scn.duration)
    times: list[float] = []
    zones: dict[str, list[tuple[float, float]]] = {}
    t = 0.0
    try:
        while True:
            used: dict[str, float] = {}
            cap: dict[str, float] = {}
            for h in adapter.hypervisors():
                used[h.zone] = used.get(h.zone, 0.0) + h.vcpus_used
                cap[h.zone] = cap.get(h.zone, 0.0) + (h.vcpus if h.state == "up" else 0)
            times.append(t)
            for z in used:
                zones.setdefault(z, []).append((used[z], cap[z]))
            if t >= end:
                break
            t = min(t + sample_s, end)
            world.run(until=t)
    finally:
        plane.close()
    return times, zones


def zone_report(times: Sequence[float], samples: Sequence[tuple[float, float]], at: float, fit_s: float,
                horizon_s: float) -> dict[str, Any]:
    """One zone's line: capacity, use and the forecast made at ``at`` from the samples of ``fit_s`` before it."""
    import numpy as np

    from engines.provisioning.plan import run_out

    t = np.asarray(times, dtype=float)
    used = np.array([u for u, _ in samples])
    cap = np.array([c for _, c in samples])
    k = int(np.searchsorted(t, at, side="right"))
    win = (t[:k] >= at - fit_s)
    last_day = (t[:k] >= at - DAY)
    ro = run_out(t[:k][win], used[:k][win], float(cap[k - 1]), at, horizon_s)
    actual = None
    full = np.flatnonzero((t > at) & (used >= cap) & (cap > 0))
    if len(full):
        actual = float(t[full[0]])
    return {"capacity": float(cap[k - 1]), "used": float(used[k - 1]),
            "peak_last_day": float(used[:k][last_day].max()) if last_day.any() else math.nan,
            "slope_per_day": ro.slope_per_day if ro else math.nan, "forecast": ro.forecast if ro else math.nan,
            "full_at": ro.full_at if ro else None, "actual_full_at": actual,
            "first_full": float(t[np.flatnonzero((used >= cap) & (cap > 0))[0]]) if ((used >= cap) & (cap > 0)).any()
            else None}


def _day(t: float | None) -> str:
    return "-" if t is None else f"day {int(t // DAY) + 1} ({t / DAY:.1f} d)"


def cmd_capacity(a: argparse.Namespace) -> int:
    from engines.registry import RegistryError
    from scenarios.loader import ScenarioError, load_scenario

    try:
        scn = load_scenario(a.scenario)
        if a.seed is not None:
            scn = scn.model_copy(update={"seed": a.seed})
        scn.engine_set(a.engines)
    except (ScenarioError, RegistryError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    at = scn.duration if a.at is None else a.at
    if at > scn.duration:
        print(f"error: --at {at:g} s is after the scenario's end ({scn.duration:g} s)", file=sys.stderr)
        return EXIT_INPUT
    times, zones = sample_run(scn, a.engines, a.sample)
    horizon = a.days * DAY
    print(f"{scn.name}: engines {a.engines}, seed {scn.seed}, run {scn.duration / DAY:.1f} d; forecast at "
          f"{at / DAY:.2f} d from the last {a.fit / DAY:g} d, {a.days:g} d ahead (vCPUs)")
    head = f"{'zone':<12} {'capacity':>8} {'used':>6} {'peak 1d':>7} {'trend/d':>8} {'forecast':>8}  {'runs out':<18}"
    if at < scn.duration:
        head += f" {'actually full':<18}"
    print(head)
    for z in sorted(zones):
        r = zone_report(times, zones[z], at, a.fit, horizon)
        line = (f"{z:<12} {r['capacity']:>8.0f} {r['used']:>6.0f} {r['peak_last_day']:>7.0f} "
                f"{r['slope_per_day']:>+8.1f} {r['forecast']:>8.0f}  {_day(r['full_at']):<18}")
        if at < scn.duration:
            line += f" {_day(r['actual_full_at']):<18}"
        print(line)
    return EXIT_OK


def add_capacity_parser(sub: Any) -> None:
    """Add ``capacity`` to the ``zeroops`` sub-parsers."""
    p = sub.add_parser("capacity", help="forecast each zone's vCPU use and the day it runs out",
                       description="Run a scenario's world (with --engines) and print per zone: capacity, used, "
                                   "the forecast --days ahead and the day the zone runs out. Exit 2 on bad input.")
    p.add_argument("scenario", metavar="SCENARIO.yaml", help="scenario file")
    p.add_argument("--days", type=float, default=7.0, help="forecast horizon in days (7)")
    p.add_argument("--engines", default="reactive", help="engine set that runs the world (reactive)")
    p.add_argument("--at", type=parse_duration, help="when the forecast is made (default: the end of the run)")
    p.add_argument("--fit", type=parse_duration, default=2 * DAY, help="history the trend is fitted over (2d)")
    p.add_argument("--sample", type=parse_duration, default=300.0, help="sampling interval (5m)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.set_defaults(fn=cmd_capacity)
