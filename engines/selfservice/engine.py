"""The self-service engine: decides every open request by policy, carries approved ones out as actions through
the safety gate, closes them once the world shows the result, and adjusts quotas by usage.

Per request: ``decide`` → refuse (``FulfillRequest(approve=False)``, the rule in the note), route to a person
(a ``Notify`` naming the rule: the request stays open for an approver — the API, the CLI, or the twin's person),
or approve: the plan's actions (``CreateServer`` under the request's id, ``ResizeServer``, ``UpdateQuota``,
``CreateProject``, ``DeleteServer`` ... ``DeleteProject``) each pass the gate; when the observation shows the
plan done, ``FulfillRequest(carried_out=True)`` closes it.  Every action carries ``evidence["request"]`` and
``evidence["rule"]``, so the audit trail holds the decision and the rule behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from adapters.base import (
    Action,
    CreateProject,
    CreateServer,
    DeleteProject,
    DeleteServer,
    FulfillRequest,
    Notify,
    Observation,
    Request,
    ResizeServer,
    UpdateQuota,
)
from engines.selfservice.decide import SERVER_KINDS, Decision, View, decide
from engines.selfservice.policy import Policy
from engines.selfservice.quota_adjust import QuotaAdjuster

REQUEST_META = "zeroops_request_id"


class SelfServiceConfig(Policy):
    """The policy plus how often the engine looks (``cadence``) and how long it waits on a plan."""

    # requests arrive between the twin's ticks, and the cadence is the promised time to a decision: kept as set
    steps_between_ticks: ClassVar[bool] = True
    cadence: float = Field(5.0, gt=0, le=60, description="seconds between steps (decisions within 10 s need <= 10)")
    retry_after: float = Field(60.0, gt=0, description="seconds before an unfinished plan's actions are re-sent")
    max_attempts: int = Field(3, ge=1, le=10, description="sends of a plan before it is handed to a person")
    adjust_every: float = Field(3600.0, gt=0, description="seconds between quota-adjustment passes")


@dataclass
class Track:
    """What the engine knows of one request."""

    decision: Decision
    decided_at: float
    submitted_at: float
    phase: str  # "executing", "waiting" (a person decides), "closing", "done", "stalled"
    attempts: int = 0
    sent_at: float = -1e18
    last_plan: tuple[tuple[str, str], ...] = ()
    approved_by: str | None = None  # the person who approved a request routed to approval
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.decision.as_dict() | {"decided_at": self.decided_at, "submitted_at": self.submitted_at,
                                          "latency_s": self.decided_at - self.submitted_at, "phase": self.phase,
                                          "attempts": self.attempts, "approved_by": self.approved_by}


class SelfService:
    """Engine ``self_service``: see the module docstring."""

    name = "self_service"

    def __init__(self, cfg: SelfServiceConfig | None = None) -> None:
        self.cfg = cfg or SelfServiceConfig()
        self.cadence = self.cfg.cadence
        self.tracks: dict[str, Track] = {}
        self.adjuster = QuotaAdjuster(self.cfg.quota_adjust, self.cfg.quota_increase)
        self._next_adjust = self._next_sample = 0.0
        self._active: set[str] = set()  # requests not finished yet

    # ----------------------------------------------------------------- step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        out: list[Action] = []
        open_requests = obs.requests
        live = {r.id for r in open_requests}
        busy = [r for r in open_requests if r.id not in self.tracks or self.tracks[r.id].phase == "executing"]
        if busy:  # new requests to decide or plans to follow: read the world once for all of them
            view = View.of(obs)
            for r in busy:
                out.extend(self._one(now, r, view))
        for rid in list(self._active):  # closed by someone else (a person, the API): stop tracking
            t = self.tracks[rid]
            if rid not in live and t.phase in ("executing", "waiting", "closing"):
                t.phase = "done"
            if t.phase not in ("executing", "waiting", "closing"):
                self._active.discard(rid)
        if self.cfg.quota_adjust.enabled and now >= self._next_adjust:
            self._next_adjust = now + self.cfg.adjust_every
            out.extend(self.adjuster.step(now, obs.quotas))
        elif self.cfg.quota_adjust.enabled and now >= self._next_sample:  # usage sampled every 5 minutes
            self._next_sample = now + 300.0
            self.adjuster.observe(now, obs.quotas)
        return out

    def _one(self, now: float, r: Request, view: View) -> list[Action]:
        t = self.tracks.get(r.id)
        if t is None:
            d = decide(r, self.cfg, view)
            phase = {"approve": "executing", "approval": "waiting", "refuse": "done"}[d.verdict]
            t = self.tracks[r.id] = Track(d, now, r.submitted_at, phase)
            self._active.add(r.id)
            ev = self._evidence(t)
            if d.verdict == "refuse":
                return [FulfillRequest(request_id=r.id, approve=False, note=f"refused by rule {d.rule}",
                                       reason=f"{r.kind} for {r.project}: refused ({d.rule})", evidence=ev)]
            if d.verdict == "approval":
                return [Notify(component=r.id, severity="info",
                               message=f"{r.kind} for {r.project} needs an approver: rule {d.rule}",
                               reason=f"outside the auto-approval policy ({d.rule})", evidence=ev)]
        if t.phase != "executing":
            return []
        todo = self._plan(r, t.decision, view)
        ev = self._evidence(t)
        if not todo:
            t.phase = "closing"
            return [FulfillRequest(request_id=r.id, approve=True, carried_out=True,
                                   note=f"approved by rule {t.decision.rule}", reason="carried out", evidence=ev)]
        sig = tuple((a.kind, a.target()) for a in todo)
        if sig != t.last_plan:  # the next stage of the plan (or a changed one): send it now
            t.last_plan, t.attempts = sig, 0
        elif now - t.sent_at < self.cfg.retry_after:
            return []
        if t.attempts >= self.cfg.max_attempts:
            t.phase = "stalled"
            return [Notify(component=r.id, severity="warning", evidence=ev | {"pending": [a.kind for a in todo]},
                           message=f"{r.kind} for {r.project}: not done after {t.attempts} tries; a person takes it",
                           reason="fulfilment stalled")]
        t.attempts += 1
        t.sent_at = now
        why = f"self-service {r.kind} {r.id} for {r.project}: approved ({t.decision.rule})"
        return [_with(a, why, ev) for a in todo]

    @staticmethod
    def _evidence(t: Track) -> dict[str, Any]:
        d = t.decision
        return {"request": d.request, "rule": d.rule, "verdict": d.verdict, "cost_per_month": d.cost_per_month,
                "decided_at": t.decided_at, "submitted_at": t.submitted_at, "detail": dict(d.detail),
                **({"approved_by": t.approved_by} if t.approved_by else {})}

    # ----------------------------------------------------------------- plans
    def _plan(self, r: Request, d: Decision, v: View) -> list[Action]:
        """The actions still needed for an approved request (empty: the world shows it done)."""
        p = d.plan
        mine = [s for s in v.servers if s.metadata.get(REQUEST_META) == r.id]
        if r.kind in SERVER_KINDS:
            if mine:
                return []
            return [CreateServer(service=str(p["service"]), flavor=p["flavor"], count=int(p["count"]), request_id=r.id)]
        if r.kind == "resize":
            s = next((s for s in v.servers if s.id == p["server"]), None)
            return [] if s is None or s.flavor == p["flavor"] else [ResizeServer(server_id=s.id, flavor=p["flavor"])]
        if r.kind == "quota_increase":
            q = v.quotas.get(r.project)
            if q is not None and q.instances >= p["instances"] and q.cores >= p["cores"] and q.ram_mb >= p["ram_mb"]:
                return []
            return [UpdateQuota(project=r.project, instances=p["instances"], cores=p["cores"], ram_mb=p["ram_mb"])]
        if r.kind == "project_onboard":
            if r.project not in v.quotas:
                return [CreateProject(project=r.project, instances=p["instances"], cores=p["cores"],
                                      ram_mb=p["ram_mb"], budget=p["budget"], alert_route=p["alert_route"])]
            first = p.get("first_server")
            if first and first.get("service") and not mine:
                return [CreateServer(service=str(first["service"]), flavor=first.get("flavor"), request_id=r.id)]
            return []
        # project_offboard: every server deleted and the quota closed first, then the project
        if r.project not in v.quotas:
            return []
        left = [s for s in v.servers if s.project == r.project]
        if left:
            q = v.quotas[r.project]
            closing = [] if (q.instances, q.cores, q.ram_mb) == (0, 0, 0) else [
                UpdateQuota(project=r.project, instances=0, cores=0, ram_mb=0)]
            return closing + [DeleteServer(server_id=s.id) for s in left]
        return [DeleteProject(project=r.project)]

    # ----------------------------------------------------------------- people
    def approve(self, request_id: str, by: str) -> bool:
        """A person approved a request routed to them (or a stalled one): its plan runs from the next step, each
        action through the gate like the engine's own.  False if the engine holds no such request waiting."""
        t = self.tracks.get(request_id)
        if t is None or t.phase not in ("waiting", "stalled") or t.decision.verdict == "refuse":
            return False
        if t.decision.kind in SERVER_KINDS and not t.decision.plan.get("service"):
            return False  # nowhere to put the servers: a person carries it out by hand
        t.phase, t.approved_by, t.attempts, t.last_plan, t.sent_at = "executing", by, 0, (), -1e18
        self._active.add(request_id)
        return True

    # ----------------------------------------------------------------- reading
    def decision(self, request_id: str) -> dict[str, Any] | None:
        t = self.tracks.get(request_id)
        return t.as_dict() if t is not None else None

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision so far, oldest first (the API and the CLI show them)."""
        return [t.as_dict() for t in self.tracks.values()]


def _with(a: Action, reason: str, evidence: dict[str, Any]) -> Action:
    from dataclasses import replace

    return replace(a, reason=reason, evidence=evidence)
