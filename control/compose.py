"""The composition root: one function wires a world's adapter to an engine set behind the safety controls.

:func:`compose` builds, from an adapter, an engine set (a registered name, an
inline composition or ready engines), a safety configuration or profile, an
approvals source and an audit path:

* the :class:`~control.safety.SafetyGate` with its state store and operator controls,
* the approval queue (a choke-point listener) and the approval executor,
* the audit trail (:class:`~control.audit.AuditLog`) plus any extra action logs,
* the :class:`~control.runtime.ChokePoint` and the :class:`~control.runtime.Runtime`.

``scenarios.runner.run_scenario`` (twin: :class:`SimulatedApprovals`) and
``zeroops live`` (wall clock: :class:`HumanApprovals`, people voting with
``zeroops approvals``) both call it, so an action that needs approval takes the
same path in both: proposed → queued → voted → re-checked → executed through
the same choke point.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import Action, ActionResult, Adapter, Observation
from control.runtime import (
    ActionLog,
    ChokePoint,
    Clock,
    Engine,
    Gate,
    MemoryActionLog,
    Runtime,
    TeeLog,
    Verdict,
)
from control.safety import SafetyConfig, SafetyKit, profile


def default_audit_path() -> str:
    """Where live mode keeps its audit trail and ``zeroops audit verify`` looks by default: ``$ZEROOPS_AUDIT_DB``,
    else ``audit.db`` in the state directory (:func:`control.statedir.state_dir`, an absolute path)."""
    from control.statedir import AUDIT_FILE, state_dir

    return os.environ.get("ZEROOPS_AUDIT_DB") or str(state_dir() / AUDIT_FILE)


def default_state_path() -> str:
    """The safety state database (pauses, overrides, limits, approval queue) shared with the safety CLI:
    ``$ZEROOPS_SAFETY_DB``, else ``safety.db`` in the state directory."""
    from control.statedir import SAFETY_FILE, state_dir

    return os.environ.get("ZEROOPS_SAFETY_DB") or str(state_dir() / SAFETY_FILE)


@dataclass(frozen=True)
class SimulatedApprovals:
    """The twin's people: ``count`` simulated approvers answer ``delay`` seconds after a proposal."""

    count: int = 2
    delay: float = 300.0
    cadence: float = 60.0
    executor_cadence: float = 10.0
    state_path: str = ":memory:"


@dataclass(frozen=True)
class HumanApprovals:
    """Real principals vote with ``zeroops approvals list/approve/deny`` on the shared state database."""

    state_path: str | None = None  # None: $ZEROOPS_SAFETY_DB or safety.db in the state directory
    executor_cadence: float = 5.0  # seconds between runs of approved proposals

    def path(self) -> str:
        return self.state_path or default_state_path()


ApprovalSource = SimulatedApprovals | HumanApprovals


class ObserveOnlyGate:
    """A gate that lets nothing through: every action becomes a proposal (``Verdict("approval")``).

    Observe mode records what the engines would do; its proposals are not queued for votes
    (nothing may change the world in observe mode).
    """

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        return Verdict("approval", rule="observe-only", detail={"mode": "observe"}, approvers=1)

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        raise AssertionError("observe mode must never execute an action")


EngineSetRef = Any  # a registered set's name, an inline composition (mapping or EngineSetSpec), or engines


@dataclass
class ControlPlane:
    """Everything :func:`compose` wired: attach it to a clock, run the clock, close it."""

    adapter: Adapter
    engines: list[Engine]
    runtime: Runtime
    choke: ChokePoint
    gate: Gate
    log: ActionLog
    engine_set: Any = None  # engines.registry.EngineSetSpec when built from a set
    kit: SafetyKit | None = None
    audit: Any = None  # control.audit.AuditLog when auditing
    _closed: bool = field(default=False, repr=False)

    @property
    def queue(self) -> Any:
        """The approval queue (None with a replacement gate or in observe mode)."""
        return self.kit.queue if self.kit is not None else None

    @property
    def name(self) -> str:
        return getattr(self.engine_set, "name", "custom")

    def attach(self, clock: Clock, on_error: Callable[[str], None] | None = None) -> None:
        """Engines, simulated approvers and the approval executor on ``clock``.

        ``on_error`` (live): an adapter error in the approval executor is reported and the step skipped,
        instead of ending the clock's run.
        """
        self.runtime.attach(clock)
        if self.kit is not None:
            self.kit.attach(clock, on_error)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.kit is not None:
            self.kit.close()  # closes the log (and the audit trail in it) and the state store
        else:
            close = getattr(self.log, "close", None)
            if close is not None:
                close()


def resolve_safety(safety: SafetyConfig | str | None) -> SafetyConfig:
    """A config, a profile name (week1..week4, observe, full, production), or None for the design's defaults."""
    if safety is None:
        return SafetyConfig()
    if isinstance(safety, SafetyConfig):
        return safety
    try:
        return profile(safety)
    except KeyError as e:
        raise ValueError(str(e).strip("'\"")) from None


def resolve_engines(engines: EngineSetRef, min_cadence: float = 0.0) -> tuple[Any, list[Engine]]:
    """``(spec, fresh engines)`` from a set name, an inline composition, a spec, or ready engines (spec None).
    ``min_cadence``: see :meth:`engines.registry.EngineSetSpec.build`."""
    if isinstance(engines, str | Mapping) or hasattr(engines, "resolved"):
        from engines.registry import REGISTRY  # the registry builds engines; the control plane only runs them

        spec = REGISTRY.resolve(engines)
        return spec, spec.build(min_cadence)
    if isinstance(engines, Iterable):
        return None, list(engines)
    raise TypeError(f"engines: expected a set name, an inline composition or engines, got {type(engines).__name__}")


def compose(
    adapter: Adapter,
    engines: EngineSetRef,
    *,
    clock: Clock | None = None,
    safety: SafetyConfig | str | None = None,
    approvals: ApprovalSource | None = None,
    audit_path: str | Path | None = None,
    audit_batch_size: int = 512,
    logs: Sequence[ActionLog] = (),
    gate: Gate | None = None,
    observe_only: bool = False,
    runtime_factory: Callable[..., Runtime] = Runtime,
    notify_sinks: Sequence[Any] = (),
    min_cadence: float = 0.0,
    **gate_kw: Any,
) -> ControlPlane:
    """Wire one control plane; with ``clock`` it is attached at once.

    * ``safety`` — a :class:`SafetyConfig`, a profile name, or None (the design's limits).
    * ``approvals`` — :class:`SimulatedApprovals` (twin) or :class:`HumanApprovals` (live); default: none
      simulated, queue in memory.
    * ``audit_path`` — the hash-chained audit trail (None: records kept in memory unless ``logs`` are given).
    * ``logs`` — further action logs every record goes to (JSON lines, a test's list).
    * ``gate`` — replaces the safety gate (tests); ``observe_only`` — :class:`ObserveOnlyGate`.
      Either way no approval queue is wired.
    * ``notify_sinks`` — :mod:`control.sinks` sinks; executed ``Page``/``Notify`` records are delivered to them
      after the choke point (engines never deliver anything themselves).
    * ``min_cadence`` — the world's step (the twin passes its tick): engines whose default cadence is shorter
      step once per world step, since nothing they observe changes in between (explicit cadences are kept).
    """
    spec, built = resolve_engines(engines, min_cadence)
    audit = None
    if audit_path is not None:
        from control.audit import AuditLog

        Path(audit_path).parent.mkdir(parents=True, exist_ok=True)
        audit = AuditLog(audit_path, batch_size=audit_batch_size)
    sinks = [x for x in (audit, *logs) if x is not None]
    log: ActionLog = sinks[0] if len(sinks) == 1 else TeeLog(*sinks) if sinks else MemoryActionLog()
    kit: SafetyKit | None = None
    if observe_only or gate is not None:
        the_gate: Gate = gate if gate is not None else ObserveOnlyGate()
        choke = ChokePoint(adapter, the_gate, log)
    else:
        source = approvals or SimulatedApprovals(count=0)
        if isinstance(source, HumanApprovals):
            state, n, delay, cadence = source.path(), 0, 300.0, 60.0
            Path(state).parent.mkdir(parents=True, exist_ok=True)
        else:
            state, n, delay, cadence = source.state_path, source.count, source.delay, source.cadence
        kit = SafetyKit.build(adapter, resolve_safety(safety), state_path=state, log=log,
                              simulated_approvers=n, approver_delay=delay, approver_cadence=cadence,
                              executor_cadence=source.executor_cadence, **gate_kw)
        choke, the_gate = kit.choke, kit.gate
    if notify_sinks:
        from control.sinks import Delivery

        choke.listeners.append(Delivery(notify_sinks))
    runtime = runtime_factory(adapter, built, choke)
    plane = ControlPlane(adapter, built, runtime, choke, the_gate, log, spec, kit, audit)
    if clock is not None:
        plane.attach(clock)
    return plane
