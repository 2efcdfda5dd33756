"""A small twin with the chaos engine and an explicit plan, run in chunks so every scrape sample is kept."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.sim import SimAdapter
from control.compose import SimulatedApprovals, compose
from control.runtime import ActionRecord, Engine
from engines.baselines import CrashRestarter
from engines.chaos import ChaosEngineer, ChaosEngineerConfig, Run, Spec
from scenarios.schema import Scenario
from scenarios.scoring import Score, score_run
from twin.clock import SimClock
from twin.world import World

SMALL = Path(__file__).parent / "chaos-small.yaml"
WATCHED = ("error_ratio", "latency_p95_ms")


def scenario(**overrides: Any) -> Scenario:
    data = yaml.safe_load(SMALL.read_text())
    data.update(overrides)
    return Scenario.model_validate(data)


@dataclass
class ChaosRun:
    world: World
    engine: ChaosEngineer | None
    records: list[ActionRecord]
    score: Score
    samples: dict[tuple[str, str], dict[float, float]] = field(default_factory=dict)  # (metric, service) -> t -> v


def run(plan: list[Spec] | None, *, duration: float, faults: list[dict[str, Any]] = (), seed: int = 3,
        start: float = 1800.0, others: list[Engine] | None = None, safety: dict[str, Any] | None = None,
        **engine_kw: Any) -> ChaosRun:
    """Run ``plan`` from ``start`` (no working hours) beside a crash restarter (or ``others``); keep every sample
    of WATCHED.  ``plan`` None: no chaos engine."""
    scn = scenario(duration=duration, seed=seed, faults=list(faults),
                   **({"safety": safety} if safety is not None else {}))
    cfg = ChaosEngineerConfig(business_days=tuple(range(7)), start_hour=0.0, end_hour=24.0, gap_s=300.0,
                              **engine_kw)
    engine = ChaosEngineer(cfg, plan=plan) if plan is not None else None
    if engine is not None:
        engine.next_at = start
    world = World(scn)
    adapter = SimAdapter(world)
    mine = [engine] if engine is not None else []
    plane = compose(adapter, [CrashRestarter(), *mine] if others is None else [*others, *mine],
                    clock=SimClock(world.env), safety=scn.safety,
                    approvals=SimulatedApprovals(scn.approvers.count, scn.approvers.delay, scn.approvers.cadence))
    records: list[ActionRecord] = []
    plane.choke.listeners.append(records.append)
    samples: dict[tuple[str, str], dict[float, float]] = {}
    t = 0.0
    try:
        while t < duration:
            t = min(t + 1800.0, duration)
            world.run(until=t if t < duration else None)
            for m in WATCHED:
                for s in world.svc_names:
                    w = adapter.metric_window(m, {"service": s}, 2400.0)
                    samples.setdefault((m, s), {}).update(zip(w.t.tolist(), w.v.tolist(), strict=True))
    finally:
        plane.close()
    world.finish()
    return ChaosRun(world, engine, records, score_run(world, records), samples)


def first_violation(r: ChaosRun, x: Run) -> float | None:
    """The first scrape sample after ``x``'s injection (up to its abort or end) outside a probe's tolerance,
    found in the samples the run kept, independently of the engine's own scan."""
    assert x.steady is not None and x.started_at is not None
    end = x.aborted_at if x.aborted_at is not None else x.ends_at + 120.0
    first = math.inf
    for p in x.steady.probes:
        lo, hi = p.bound(x.steady.baseline.get(p.name))
        for t, v in sorted(r.samples[(p.metric, p.service)].items()):
            if x.started_at < t <= end and math.isfinite(v) and not lo <= v <= hi:
                first = min(first, t)
                break
    return None if math.isinf(first) else first
