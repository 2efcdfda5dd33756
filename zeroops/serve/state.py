"""What the API holds of the running loop: :class:`AppState` (docs/serve.md, "app_state") and the event bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import Action
from control.audit import AuditLog, AuditReader, record_body
from control.runtime import ActionRecord, Verdict

MAX_QUEUED_EVENTS = 1000  # per subscriber: a stalled browser loses events, never the server's memory


class EventBus:
    """Fan-out of server-sent events from any thread to the asyncio subscribers of ``/api/zeroops/events``."""

    def __init__(self) -> None:
        self._subs: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        q: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(MAX_QUEUED_EVENTS)
        with self._lock:
            self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        with self._lock:
            self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.published += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            subs = list(self._subs)
        for q in subs:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(_offer, q, (kind, data))


def _offer(q: asyncio.Queue[tuple[str, dict[str, Any]]], item: tuple[str, dict[str, Any]]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        q.put_nowait(item)


def decision_item(seq: int | None, body: dict[str, Any]) -> dict[str, Any]:
    """One decision as the API shows it: the audit record's body with its id."""
    return {"id": seq, **body}


@dataclass
class AppState:
    """The handles of the running loop that routes use (docs/serve.md lists them)."""

    mode: str
    plane: Any  # control.compose.ControlPlane
    now: Callable[[], float]
    state_dir: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    events: EventBus = field(default_factory=EventBus)
    info: dict[str, Any] = field(default_factory=dict)  # scenario, speed, run id, started_at, ...
    loop: Any = None  # zeroops.serve.loop.TwinLoop / LiveLoop
    tally: Any = None  # zeroops.serve.figures.Tally

    @property
    def adapter(self) -> Any:
        return self.plane.adapter

    @property
    def gate(self) -> Any:
        return self.plane.choke.gate

    @property
    def choke(self) -> Any:
        return self.plane.choke

    @property
    def queue(self) -> Any:
        return self.plane.queue

    @property
    def store(self) -> Any:
        return self.plane.kit.store if self.plane.kit is not None else None

    @property
    def overrides(self) -> Any:
        return self.plane.kit.overrides if self.plane.kit is not None else None

    @property
    def audit(self) -> AuditLog:
        return self.plane.audit  # type: ignore[no-any-return]

    def reader(self, flush: bool = False) -> AuditReader:
        """A reader on the trail (one connection per thread, kept).  It sees what is committed: the writer commits
        within 50 ms of a decision (people's acts at once); ``flush`` commits what it holds first (an fsync)."""
        if flush:
            self.audit.flush()
        local = self.__dict__.setdefault("_readers", threading.local())
        r = getattr(local, "reader", None)
        if r is None:
            r = local.reader = AuditReader(self.audit.path)
        return r

    def cached(self, key: str, ttl: float, fn: Callable[[], Any]) -> Any:
        """``fn()``, computed at most once per ``ttl`` wall seconds (figures polled by many clients at once)."""
        cache = self.__dict__.setdefault("_cache", {})
        now = time.monotonic()
        hit = cache.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = fn()
        cache[key] = (now, value)
        return value

    def submit(self, engine: str, action: Action) -> ActionRecord:
        """One action through the gate and the choke point at ``now()``, under the lock."""
        with self.lock:
            return self.plane.choke.submit(self.now(), engine, action)  # type: ignore[no-any-return]

    def execute_manual(self, principal: str, action: Action, detail: dict[str, Any]) -> ActionRecord:
        """A person's action under an emergency override: through the choke point (audited), not the paused gate."""
        with self.lock:
            rec = self.plane.choke.execute_approved(self.now(), f"api:{principal}", action,
                                                    Verdict("allow", "manual-override", detail))
        self.audit.flush()
        return rec  # type: ignore[no-any-return]

    def audit_event(self, principal: str, kind: str, target: str, outcome: str, detail: dict[str, Any] | None = None,
                    reason: str = "") -> int:
        """Write and commit an audit record of a person's action through the API; returns its id."""
        seq = self._append_event(principal, kind, target, outcome, dict(detail or {}), reason)
        self.audit.flush()  # committed before the caller answers: a crash after the answer loses nothing
        return seq

    def _append_event(self, principal: str, kind: str, target: str, outcome: str, detail: dict[str, Any],
                      reason: str, rule: str = "api") -> int:
        body = {
            "at": self.now(), "engine": f"api:{principal}", "kind": kind, "target": target, "decision": "allow",
            "rule": rule, "outcome": outcome,
            "action": {"kind": kind, "params": detail, "reason": reason, "confidence": 1.0, "evidence": {},
                       "alternatives": [], "incident": detail.get("incident")},
            "verdict": {"decision": "allow", "rule": rule, "detail": {"principal": principal}, "approvers_needed": 0},
            "approved_by": [], "result": None, "error": None, "cost_per_hour": None, "proposed_cost_per_hour": None,
            "choke_seq": None, "principal": principal,
        }
        seq = self.audit.append(body)
        if self.tally is not None:
            self.tally.add(body)
        self.events.publish("decision", decision_item(seq, body))
        return seq

    def audit_unrecorded_votes(self) -> list[tuple[int, str]]:
        """Reconcile on start: a vote in the queue without its audit record (the process died between the two
        commits, or someone voted with the local CLI) gets one now, naming the approver (rule ``reconcile``).
        Simulated approvers' votes are left to the execution records that name them.  Returns (proposal, who)."""
        store = self.store
        if store is None:
            return []
        votes = store.execute("SELECT proposal_id, approver, decision, at, comment FROM votes "
                              "WHERE comment IS NULL OR comment != 'simulated' ORDER BY at").fetchall()
        if not votes:
            return []
        seen = set()
        for (body,) in self.reader().db.execute("SELECT body FROM records WHERE kind IN ('approval_approve', "
                                                "'approval_deny')"):
            b = json.loads(body)
            seen.add((b.get("action", {}).get("params", {}).get("proposal"), b.get("principal")))
        done = []
        for pid, who, decision, at, comment in votes:
            if (pid, who) in seen:
                continue
            self._append_event(who, f"approval_{decision}", f"proposal:{pid}", "executed",
                               {"proposal": pid, "vote": decision, "voted_at": at, "reconciled": True},
                               comment or "", rule="reconcile")
            done.append((int(pid), str(who)))
        if done:
            self.audit.flush()
        return done

    def on_record(self, rec: ActionRecord) -> None:
        """Choke-point listener: feed the tally and the event stream."""
        body = record_body(rec)
        if self.tally is not None:
            self.tally.add(body)
        self.events.publish("decision", decision_item(rec.audit_id, body))
