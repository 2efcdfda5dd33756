"""The engine contract and the control loop.

An engine has a ``name``, a ``cadence`` (seconds between steps) and
``step(now, observation) -> actions``.  The :class:`Runtime` drives engines on
any :class:`Clock` (the twin's SimPy clock or :class:`WallClock`), and every
action an engine proposes passes one :class:`ChokePoint`: gate → log → adapter.
Nothing reaches a world around it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from adapters.base import Action, ActionResult, Adapter, AdapterError, Observation

Outcome = Literal["executed", "failed", "denied", "proposed"]


class Engine(Protocol):
    """What the runtime drives. ``step`` must not block and must not sleep."""

    name: str
    cadence: float

    def step(self, now: float, obs: Observation) -> Iterable[Action]: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer for one proposed action."""

    decision: Literal["allow", "deny", "approval"]
    rule: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    approvers: int = 0  # approvals needed when decision == "approval"


ALLOW = Verdict("allow", rule="allow-all")


class Gate(Protocol):
    """Safety controls: review one action before it may execute."""

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict: ...

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None: ...


class AllowAll:
    """The gate when no safety controls are configured: allows everything."""

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        return ALLOW

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        return None


@dataclass(slots=True)
class ActionRecord:
    """One decision as it passed the choke point."""

    seq: int
    at: float
    engine: str
    action: Action
    verdict: Verdict
    outcome: Outcome
    result: ActionResult | None = None
    error: str | None = None  # exception class name when the adapter raised
    audit_id: int | None = None  # set by an ActionLog that assigns durable ids (control.audit)

    @property
    def kind(self) -> str:
        return self.action.kind

    @property
    def target(self) -> str:
        return self.action.target()

    def as_row(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "engine": self.engine,
            "kind": self.kind,
            "target": self.target,
            "params": {k: _plain(v) for k, v in self.action.params().items()},
            "reason": self.action.reason,
            "confidence": self.action.confidence,
            "incident": self.action.incident,
            "verdict": self.verdict.decision,
            "rule": self.verdict.rule,
            "outcome": self.outcome,
            "detail": self.result.detail if self.result else "",
            "server_ids": list(self.result.server_ids) if self.result else [],
            "error": self.error,
        }


def _plain(v: Any) -> Any:
    if isinstance(v, dict | tuple | list):
        return v if not isinstance(v, tuple) else list(v)
    if hasattr(v, "items"):
        return dict(v.items())
    return v


class ActionLog(Protocol):
    def record(self, rec: ActionRecord) -> None: ...


class MemoryActionLog:
    """Keeps every record in memory; the audit trail replaces it for durability."""

    def __init__(self) -> None:
        self.records: list[ActionRecord] = []

    def record(self, rec: ActionRecord) -> None:
        self.records.append(rec)


class TeeLog:
    """Sends every record to several action logs (the audit trail, a JSON-lines file, ...); closes them all."""

    def __init__(self, *logs: ActionLog) -> None:
        self.logs = [log for log in logs if log is not None]

    def record(self, rec: ActionRecord) -> None:
        for log in self.logs:
            log.record(rec)

    def close(self) -> None:
        for log in self.logs:
            close = getattr(log, "close", None)
            if close is not None:
                close()


class ChokePoint:
    """The single path from decisions to a world: gate, then log, then act.

    Records are logged after execution with their outcome; a denied or
    proposed action is logged and never reaches the adapter.
    """

    def __init__(self, adapter: Adapter, gate: Gate | None = None, log: ActionLog | None = None) -> None:
        self.adapter = adapter
        self.gate: Gate = gate or AllowAll()
        self.log: ActionLog = log or MemoryActionLog()
        self._seq = itertools.count(1)
        self.listeners: list[Callable[[ActionRecord], None]] = []

    def submit(self, now: float, engine: str, action: Action, obs: Observation | None = None) -> ActionRecord:
        verdict = self.gate.review(now, engine, action, obs)
        if verdict.decision == "allow":
            rec = self._execute(now, engine, action, verdict)
        else:
            outcome: Outcome = "denied" if verdict.decision == "deny" else "proposed"
            rec = ActionRecord(next(self._seq), now, engine, action, verdict, outcome)
        self.log.record(rec)
        for fn in self.listeners:
            fn(rec)
        return rec

    def execute_approved(self, now: float, engine: str, action: Action, verdict: Verdict) -> ActionRecord:
        """Run an action whose approval arrived later; logged like any other."""
        rec = self._execute(now, engine, action, verdict)
        self.log.record(rec)
        for fn in self.listeners:
            fn(rec)
        return rec

    def note(self, now: float, engine: str, action: Action, verdict: Verdict, outcome: Outcome) -> ActionRecord:
        """Log a decision taken outside ``submit`` (a human denied or a proposal expired); nothing executes."""
        rec = ActionRecord(next(self._seq), now, engine, action, verdict, outcome)
        self.log.record(rec)
        for fn in self.listeners:
            fn(rec)
        return rec

    def _execute(self, now: float, engine: str, action: Action, verdict: Verdict) -> ActionRecord:
        seq = next(self._seq)
        try:
            result = self.adapter.execute(action)
        except AdapterError as e:
            result = ActionResult(False, str(e), attempts=getattr(e, "attempts", 1))
            return ActionRecord(seq, now, engine, action, verdict, "failed", result, type(e).__name__)
        self.gate.executed(now, engine, action, result)
        return ActionRecord(seq, now, engine, action, verdict, "executed" if result.ok else "failed", result)


class Clock(Protocol):
    """What the runtime needs of a clock: the time, periodic calls, and running."""

    def now(self) -> float: ...

    def every(self, period: float, fn: Callable[[float], None], offset: float = 0.0) -> None: ...


class Runtime:
    """Drives engines: each on its cadence, each action through the choke point."""

    def __init__(self, adapter: Adapter, engines: Sequence[Engine], choke: ChokePoint | None = None) -> None:
        self.adapter = adapter
        self.engines = list(engines)
        self.choke = choke or ChokePoint(adapter)
        self.steps = 0
        names = [e.name for e in self.engines]
        if len(set(names)) != len(names):
            raise ValueError(f"engine names must be unique, got {names}")

    def attach(self, clock: Clock) -> None:
        """Register one periodic step per engine on ``clock``."""
        for engine in self.engines:
            clock.every(engine.cadence, lambda now, e=engine: self.step(e, now), offset=engine.cadence)

    def step(self, engine: Engine, now: float) -> list[ActionRecord]:
        """Run one step of one engine and pass its actions through the choke point."""
        self.steps += 1
        obs = Observation(self.adapter, now)  # its cache is sealed too: the gate can share what the engine read
        try:
            records = [self.choke.submit(now, engine.name, a, obs) for a in engine.step(now, obs) or ()]
        finally:
            obs.close()  # the engine keeps no reading handle past its step
        feedback = getattr(engine, "on_result", None)
        if feedback is not None:
            for rec in records:
                feedback(rec)
        return records


class WallClock:
    """Runs periodic calls on real time (live mode). ``stop()`` ends ``run``."""

    def __init__(self, time_fn: Callable[[], float] = time.time) -> None:
        self._time = time_fn
        self._heap: list[tuple[float, int, float, Callable[[float], None]]] = []
        self._ids = itertools.count()
        self._stop = threading.Event()

    def now(self) -> float:
        return self._time()

    def every(self, period: float, fn: Callable[[float], None], offset: float = 0.0) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        heapq.heappush(self._heap, (self.now() + offset, next(self._ids), period, fn))

    def stop(self) -> None:
        self._stop.set()

    def run(self, until: float | None = None) -> None:
        """Call each registered function when due, until ``until`` (absolute) or ``stop()``."""
        while self._heap and not self._stop.is_set():
            due, i, period, fn = self._heap[0]
            if until is not None and due > until:
                break
            wait = due - self.now()
            if wait > 0 and self._stop.wait(wait):
                break
            heapq.heapreplace(self._heap, (max(due + period, self.now()), i, period, fn))
            fn(self.now())
