"""The approval queue: proposals wait for people (or simulated approvers), then run through the choke point.

Flow: the gate answers ``approval`` → the choke point logs a ``proposed``
record → :meth:`ApprovalQueue.on_record` (a choke-point listener) enqueues it
→ approvers vote (CLI: ``zeroops approvals approve ID``; twin:
:class:`SimulatedApprover`) → :class:`ApprovalExecutor` re-checks the gate's
deny rules and calls ``ChokePoint.execute_approved`` with the approvers' names
in the verdict.  One ``deny`` vote denies.  Proposals not executed within the
config's ``ApprovalTTL`` expire.  Human denials and expiries are logged too.

:class:`SimulatedApprover` and :class:`ApprovalExecutor` have ``name``,
``cadence`` and ``step(now)``, so a runtime ``Clock.every(cadence, x.step)``
drives them; they never sleep or read the clock.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from adapters.base import Action, Observation
from control.runtime import ActionRecord, ChokePoint, Verdict
from control.safety.serialize import action_from_dict, action_to_dict, dumps, verdict_from_dict, verdict_to_dict
from control.safety.store import SafetyStore

Status = Literal["pending", "approved", "denied", "executed", "failed", "expired"]
VoteDecision = Literal["approve", "deny"]


class ApprovalError(Exception):
    """A vote that cannot be taken (unknown id, decided already, same approver twice)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    created_at: float
    engine: str
    action: Action
    verdict: Verdict
    needed: int
    status: Status
    approvers: tuple[str, ...]
    deniers: tuple[str, ...]
    audit_id: int | None
    exec_audit_id: int | None
    note: str | None

    @property
    def kind(self) -> str:
        return self.action.kind


class ApprovalQueue:
    """Proposals in a :class:`SafetyStore`; several processes may vote on the same file."""

    def __init__(self, store: SafetyStore) -> None:
        self.store = store

    def on_record(self, rec: ActionRecord) -> None:
        """Choke-point listener: enqueue every ``proposed`` record."""
        if rec.outcome == "proposed":
            self.enqueue(rec.at, rec.engine, rec.action, rec.verdict, rec.audit_id)

    def enqueue(self, now: float, engine: str, action: Action, verdict: Verdict, audit_id: int | None = None) -> int:
        """Queue a proposal; the same engine proposing the same action while one waits gets the waiting one's id.

        "The same action" ignores ``request_id``: an idempotency key an engine draws per attempt, not part of
        what it wants done (a scaler re-proposing "one more server" every step filled the queue with copies).
        """
        body = action_to_dict(action)
        intent = {k: v for k, v in body["params"].items() if k != "request_id"}
        sig = dumps([engine, body["kind"], intent])
        with self.store.transaction() as db:
            row = db.execute("SELECT id FROM proposals WHERE sig=? AND status IN ('pending', 'approved')",
                             (sig,)).fetchone()
            if row is not None:
                return int(row[0])
            cur = db.execute(
                "INSERT INTO proposals(created_at, engine, kind, target, action_json, verdict_json, needed, status,"
                " audit_id, sig) VALUES (?,?,?,?,?,?,?, 'pending', ?, ?)",
                (now, engine, action.kind, action.target(), dumps(body), dumps(verdict_to_dict(verdict)),
                 max(1, verdict.approvers), audit_id, sig),
            )
            return int(cur.lastrowid or 0)

    def vote(self, proposal_id: int, approver: str, decision: VoteDecision, at: float, comment: str = "") -> Proposal:
        """Record one person's vote; ``needed`` distinct approvals approve, one denial denies."""
        if decision not in ("approve", "deny"):
            raise ApprovalError(f"decision must be 'approve' or 'deny', got {decision!r}")
        if not approver.strip():
            raise ApprovalError("approver name must not be empty")
        with self.store.transaction() as db:
            row = db.execute("SELECT status, needed FROM proposals WHERE id=?", (proposal_id,)).fetchone()
            if row is None:
                raise ApprovalError(f"no proposal #{proposal_id}")
            if row[0] != "pending":
                raise ApprovalError(f"proposal #{proposal_id} is {row[0]}, not pending")
            if db.execute("SELECT 1 FROM votes WHERE proposal_id=? AND approver=?", (proposal_id, approver)).fetchone():
                raise ApprovalError(f"{approver!r} has already voted on proposal #{proposal_id}")
            db.execute("INSERT INTO votes(proposal_id, approver, decision, at, comment) VALUES (?,?,?,?,?)",
                       (proposal_id, approver, decision, at, comment))
            if decision == "deny":
                db.execute("UPDATE proposals SET status='denied', decided_at=? WHERE id=?", (at, proposal_id))
            else:
                n = db.execute("SELECT COUNT(*) FROM votes WHERE proposal_id=? AND decision='approve'",
                               (proposal_id,)).fetchone()[0]
                if n >= row[1]:
                    db.execute("UPDATE proposals SET status='approved', decided_at=? WHERE id=?", (at, proposal_id))
        return self.get(proposal_id)

    def set_status(self, proposal_id: int, status: Status, at: float, *, exec_audit_id: int | None = None,
                   note: str | None = None) -> None:
        self.store.execute(
            "UPDATE proposals SET status=?, executed_at=?, exec_audit_id=COALESCE(?, exec_audit_id),"
            " note=COALESCE(?, note) WHERE id=?",
            (status, at, exec_audit_id, note, proposal_id),
        )

    def get(self, proposal_id: int) -> Proposal:
        rows = self._select("WHERE id=?", (proposal_id,))
        if not rows:
            raise ApprovalError(f"no proposal #{proposal_id}")
        return rows[0]

    def unlogged_denials(self) -> list[Proposal]:
        """Denied proposals whose denial is not yet in the audit trail."""
        return self._select("WHERE status='denied' AND exec_audit_id IS NULL AND note IS NULL", ())

    def list(self, status: Status | None = None) -> list[Proposal]:
        return self._select("WHERE status=?", (status,)) if status else self._select("", ())

    def awaiting(self, approver: str, created_before: float) -> list[Proposal]:
        """Pending proposals made at or before ``created_before`` that ``approver`` has not voted on."""
        return self._select("WHERE status='pending' AND created_at<=? AND id NOT IN "
                            "(SELECT proposal_id FROM votes WHERE approver=?)", (created_before, approver))

    def expired(self, created_before: float) -> list[Proposal]:
        """Pending or approved proposals made before ``created_before`` (past their time to live)."""
        return self._select("WHERE status IN ('pending', 'approved') AND created_at<?", (created_before,))

    def _select(self, where: str, args: tuple[Any, ...]) -> list[Proposal]:
        rows = self.store.execute(
            "SELECT id, created_at, engine, action_json, verdict_json, needed, status, audit_id, exec_audit_id, note"
            f" FROM proposals {where} ORDER BY id", args).fetchall()
        if not rows:
            return []
        votes: dict[int, list[tuple[str, str]]] = {}
        for pid, who, decision in self.store.execute(
                f"SELECT proposal_id, approver, decision FROM votes WHERE proposal_id IN (SELECT id FROM proposals "
                f"{where}) ORDER BY at, approver", args):
            votes.setdefault(pid, []).append((who, decision))
        out = []
        for r in rows:
            v = votes.get(r[0], [])
            out.append(Proposal(
                id=r[0], created_at=r[1], engine=r[2], action=action_from_dict(json.loads(r[3])),
                verdict=verdict_from_dict(json.loads(r[4])), needed=r[5], status=r[6],
                approvers=tuple(w for w, d in v if d == "approve"), deniers=tuple(w for w, d in v if d == "deny"),
                audit_id=r[7], exec_audit_id=r[8], note=r[9]))
        return out


Policy = Callable[[Proposal], VoteDecision | None]


def approve_all(p: Proposal) -> VoteDecision:
    return "approve"


class SimulatedApprover:
    """A person in the twin: votes on each pending proposal ``delay`` seconds after it was made.

    ``policy`` picks the vote (``None`` abstains); ``approve_probability`` < 1
    makes a seeded random approver that sometimes denies.
    """

    def __init__(self, queue: ApprovalQueue, name: str = "sim-approver", *, delay: float = 300.0,
                 cadence: float = 60.0, policy: Policy | None = None, approve_probability: float = 1.0,
                 seed: int = 0) -> None:
        self.queue = queue
        self.name = name
        self.delay = delay
        self.cadence = cadence
        self.policy = policy or approve_all
        self.approve_probability = approve_probability
        self._rng = random.Random(seed)
        self.votes = 0

    def step(self, now: float) -> int:
        """Vote on every pending proposal old enough; returns how many votes were cast."""
        n = 0
        for p in self.queue.awaiting(self.name, now - self.delay):
            decision = self.policy(p)
            if decision == "approve" and self._rng.random() >= self.approve_probability:
                decision = "deny"
            if decision is None:
                continue
            self.queue.vote(p.id, self.name, decision, now, comment="simulated")
            n += 1
        self.votes += n
        return n


class ApprovalExecutor:
    """Runs approved proposals through ``ChokePoint.execute_approved``; logs denials and expiries."""

    def __init__(self, queue: ApprovalQueue, choke: ChokePoint, gate: Any, *, cadence: float = 10.0,
                 name: str = "approval-executor") -> None:
        self.queue = queue
        self.choke = choke
        self.gate = gate
        self.cadence = cadence
        self.name = name

    def step(self, now: float) -> list[ActionRecord]:
        records: list[ActionRecord] = []
        ttl = self.gate.config.approval_ttl_seconds
        for p in self.queue.unlogged_denials():
            v = Verdict("deny", "approval-denied", {**p.verdict.detail, "denied_by": list(p.deniers),
                                                     "proposal": p.id})
            rec = self.choke.note(now, p.engine, p.action, v, "denied")
            self.queue.set_status(p.id, "denied", now, exec_audit_id=rec.audit_id, note="logged")
            records.append(rec)
        for p in self.queue.expired(now - ttl):
            v = Verdict("deny", "approval-expired", {**p.verdict.detail, "proposal": p.id,
                                                     "approved_by": list(p.approvers), "ttl_seconds": ttl})
            rec = self.choke.note(now, p.engine, p.action, v, "denied")
            self.queue.set_status(p.id, "expired", now, exec_audit_id=rec.audit_id)
            records.append(rec)
        obs: Observation | None = None  # one view while nothing executes: a recheck that waits changes no world
        try:
            for p in self.queue.list("approved"):
                if obs is None:
                    obs = Observation(self.choke.adapter, now)
                check = self.gate.recheck(now, p.engine, p.action, obs, approved_by=p.approvers)
                if check.decision != "allow":
                    self.queue.set_status(p.id, "approved", now, note=f"waiting: {check.rule}")
                    continue
                obs.close()  # like an engine's step: the view ends with the decision, and the world changes now
                obs = None
                self._run(now, p, records)
        finally:
            if obs is not None:
                obs.close()
        return records

    def _run(self, now: float, p: Proposal, records: list[ActionRecord]) -> None:
        """Execute one approved proposal that passed its recheck, and record its outcome on the queue."""
        v = Verdict("approval", p.verdict.rule, {**p.verdict.detail, "approved_by": list(p.approvers),
                                                  "proposal": p.id, "proposed_audit_id": p.audit_id},
                    approvers=p.needed)
        rec = self.choke.execute_approved(now, p.engine, p.action, v)
        self.queue.set_status(p.id, "executed" if rec.outcome == "executed" else "failed", now,
                              exec_audit_id=rec.audit_id)
        records.append(rec)
