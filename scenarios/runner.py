"""Running a scenario: build the world, compose the control plane around an engine set, run, score."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.sim import SimAdapter
from control.compose import SimulatedApprovals, compose
from control.runtime import ActionLog, Gate
from control.safety import SafetyConfig
from engines.registry import EngineSetSpec
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


def set_operator_route(world: World, spec: EngineSetSpec) -> None:
    """Tell the twin how its simulated human is paged while ``spec`` runs.

    A set that handles alerting pages the human itself (``Page`` actions: the ``"pages"`` route); the
    baselines leave the human paged by raw alerts (``"raw_alerts"``).
    """
    route = spec.operator_route
    setter = getattr(world, "set_operator_route", None)
    if setter is not None:
        setter(route)
    elif hasattr(world, "operator_route"):
        world.operator_route = route  # type: ignore[attr-defined]
    elif route != "raw_alerts":
        warnings.warn(f"engine set {spec.name!r} handles alerting, but this twin cannot route its human through "
                      "pages yet: the human is still paged by raw alerts", RuntimeWarning, stacklevel=2)


def run_scenario(scn: Scenario, engines: str | EngineSetSpec, *, seed: int | None = None,
                 base_dir: Path | None = None, progress: Progress | None = None, gate: Gate | None = None,
                 log: ActionLog | None = None, audit_path: Path | None = None, chunks: int = 100,
                 sinks: Sequence[Any] = ()) -> RunResult:
    """Run one engine set on one scenario and score it (targets are checked by :func:`check_targets`).

    ``engines`` is a set name (the scenario's inline compositions first, then the registry's) or a spec.
    The control plane comes from :func:`control.compose.compose`, as in live mode: every engine set, the
    baselines included, acts through the safety gate at the choke point, and approvals are answered by the
    scenario's simulated approvers.  ``audit_path`` keeps the hash-chained audit trail in SQLite; ``log``
    receives every record too; ``gate`` replaces the safety gate (tests); ``sinks`` (``control.sinks``) receive
    the executed pages and notifications, e.g. a ``RecordingSink`` the caller reads afterwards.
    """
    import time

    if seed is not None:
        scn = scn.model_copy(update={"seed": seed})
    spec = scn.engine_set(engines) if isinstance(engines, str) else engines.resolved()
    t0 = time.perf_counter()
    world = World(scn, base_dir=base_dir)
    set_operator_route(world, spec)
    adapter = SimAdapter(world)
    if audit_path is not None:
        audit_path.parent.mkdir(parents=True, exist_ok=True)
        audit_path.unlink(missing_ok=True)
    plane = compose(adapter, spec, clock=SimClock(world.env), safety=safety_config(scn), gate=gate,
                    approvals=SimulatedApprovals(scn.approvers.count, scn.approvers.delay, scn.approvers.cadence),
                    audit_path=audit_path, logs=[log] if log is not None else (), notify_sinks=sinks,
                    min_cadence=scn.tick)
    records: list[Any] = []
    plane.choke.listeners.append(records.append)
    total = scn.duration
    try:
        for k in range(1, chunks + 1):
            world.run(until=total * k / chunks if k < chunks else None)
            if progress:
                progress(min(world.now(), total), total)
    finally:
        plane.close()
    world.finish()
    score = score_run(world, records)
    return RunResult(scn, spec.name, scn.seed, score, records, world, time.perf_counter() - t0, {})


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
