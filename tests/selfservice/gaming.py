"""Self-service engines that game the approval rate, for tests only: approve everything, refuse everything."""

from __future__ import annotations

from collections.abc import Iterable

from adapters.base import Action, FulfillRequest, Observation


class ApproveEverything:
    """Approves each open request at once, whatever it asks (the world carries it out if it can)."""

    name = "approve_everything"
    cadence = 5.0

    def __init__(self) -> None:
        self.tried: set[str] = set()

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        out = [FulfillRequest(request_id=r.id, approve=True, evidence={"request": r.id, "rule": "approve-all"})
               for r in obs.requests if r.id not in self.tried]
        self.tried.update(a.request_id for a in out)
        return out


class RefuseEverything:
    """Refuses each open request at once: nothing is ever at risk, and nobody gets anything."""

    name = "refuse_everything"
    cadence = 5.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [FulfillRequest(request_id=r.id, approve=False, note="no", evidence={"request": r.id, "rule": "no"})
                for r in obs.requests]
