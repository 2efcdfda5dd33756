"""Running a scenario: build the world, put engines behind the choke point, run, score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.sim import SimAdapter
from control.runtime import ActionLog, ChokePoint, Gate, MemoryActionLog, Runtime
from control.safety import SafetyConfig, SafetyKit
from engines.baselines import engine_set
from scenarios.schema import Scenario
from scenarios.scoring import Score, score_run
from twin.clock import SimClock
from twin.world import World

Progress = Callable[[float, float], None]  # (simulated seconds done, total)


@dataclass
class RunResult:
    scenario: Scenario
    engines: str
    seed: int
    score: Score
    records: list[Any]
    world: World
    wall_s: float
    targets: dict[str, dict[str, Any]]


def safety_config(scn: Scenario) -> SafetyConfig:
    """The scenario's safety constraints, or the design's defaults when it sets none."""
    return scn.safety if scn.safety is not None else SafetyConfig()


def run_scenario(scn: Scenario, engines: str, *, seed: int | None = None, base_dir: Path | None = None,
                 progress: Progress | None = None, gate: Gate | None = None, log: ActionLog | None = None,
                 audit_path: Path | None = None, chunks: int = 100) -> RunResult:
    """Run one engine set on one scenario and score it (targets are checked by :func:`check_targets`).

    Every engine set, the baselines included, acts through the safety gate at
    the choke point; approvals are answered by the scenario's simulated
    approvers. ``audit_path`` keeps the hash-chained audit trail in SQLite;
    ``gate`` replaces the safety gate (tests).
    """
    import time

    if seed is not None:
        scn = scn.model_copy(update={"seed": seed})
    t0 = time.perf_counter()
    world = World(scn, base_dir=base_dir)
    adapter = SimAdapter(world)
    clock = SimClock(world.env)
    kit = None
    if gate is None:
        if audit_path is not None and log is None:
            audit_path.parent.mkdir(parents=True, exist_ok=True)
            audit_path.unlink(missing_ok=True)
        kit = SafetyKit.build(adapter, safety_config(scn), log=log,
                              audit_path=audit_path if log is None else None,
                              simulated_approvers=scn.approvers.count, approver_delay=scn.approvers.delay,
                              approver_cadence=scn.approvers.cadence)
        choke = kit.choke
    else:
        choke = ChokePoint(adapter, gate, log or MemoryActionLog())
    runtime = Runtime(adapter, engine_set(engines), choke)
    runtime.attach(clock)
    if kit is not None:
        kit.attach(clock)
    records: list[Any] = []
    choke.listeners.append(records.append)
    total = scn.duration
    try:
        for k in range(1, chunks + 1):
            world.run(until=total * k / chunks if k < chunks else None)
            if progress:
                progress(min(world.now(), total), total)
    finally:
        if kit is not None:
            kit.close()
    world.finish()
    score = score_run(world, records)
    return RunResult(scn, engines, scn.seed, score, records, world, time.perf_counter() - t0, {})


def check_targets(result: RunResult) -> dict[str, dict[str, Any]]:
    out = {}
    for metric, target in result.scenario.targets.items():
        value = result.score.metrics.get(metric)
        out[metric] = {"target": target.describe(), "value": value, "status": target.check(value)}
    result.targets = out
    return out


def compare_to_static(results: list[RunResult]) -> None:
    """Savings against the static baseline on the same seed, only at equal or better service (see scoring)."""
    from scenarios.scoring import compare_to_static as _compare

    _compare(results)
