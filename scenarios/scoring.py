"""Scoring a run from the world's ground truth plus the action log.

Nothing here is tuned to a scenario: every figure is counted from what
happened.  Definitions (also in docs/results.md):

* detection of an incident: the first engine action, while the fault is
  active, on an affected component (server, service, hypervisor or zone)
  whose kind addresses the fault (one of its fixes or reliefs, or a Notify);
  or the paged human starting work — whichever comes first.
* MTTD: mean of (detection − onset) over detected incidents.
* MTTR: mean of (resolution − onset) over all incidents; one still open at
  the end counts until the end of the run (so MTTR is then a lower bound).
* automation rate: executed engine actions / (executed engine actions + human actions).
* availability: good responses / offered requests, over all services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from control.runtime import ActionRecord
from twin.faults import CATALOG
from twin.world import World

METRICS = ("incidents", "incidents_detected", "incidents_auto_resolved", "incidents_human_resolved",
           "incidents_self_resolved", "incidents_unresolved", "mttd_s", "mttd_max_s", "mttr_s", "mttr_max_s",
           "availability", "slo_violation_minutes", "cost", "cost_per_hour", "cost_savings", "human_interventions",
           "pages", "automation_rate", "actions_taken", "actions_failed", "actions_denied", "actions_proposed",
           "alerts_raw", "oom_kills", "preemptions", "peak_servers", "server_hours")


@dataclass
class Incident:
    id: str
    type: str
    start: float
    end: float | None
    detected_at: float | None
    detected_by: str | None
    resolved_by: str | None
    services: list[str]
    servers: list[str]
    root_cause: str

    @property
    def ttd(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.start

    @property
    def ttr(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "start": self.start, "end": self.end,
                "detected_at": self.detected_at, "detected_by": self.detected_by, "resolved_by": self.resolved_by,
                "ttd_s": self.ttd, "ttr_s": self.ttr, "services": self.services, "servers": self.servers,
                "root_cause": self.root_cause}


@dataclass
class Score:
    metrics: dict[str, float | None]
    incidents: list[Incident] = field(default_factory=list)


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def score_run(world: World, records: list[ActionRecord]) -> Score:
    truth = world.truth
    by_target: dict[str, list[ActionRecord]] = {}
    for r in records:
        if r.outcome != "denied":
            by_target.setdefault(r.target, []).append(r)
    incidents = []
    for f in truth.faults:
        cls = CATALOG[f.type]
        kinds = set(cls.fixes) | set(cls.relieves) | {"notify"}
        end = f.end if f.end is not None else float("inf")
        first: ActionRecord | None = None
        for comp in sorted(f.components()):
            for r in by_target.get(comp, ()):
                if f.start <= r.at <= end and r.kind in kinds:
                    if first is None or (r.at, r.seq) < (first.at, first.seq):
                        first = r  # the earliest; at one instant, the first through the choke point
                    break
        detected_at, detected_by = (first.at, first.engine) if first else (None, None)
        if f.human_started is not None and (detected_at is None or f.human_started < detected_at):
            detected_at, detected_by = f.human_started, "human"
        incidents.append(Incident(f.id, f.type, f.start, f.end, detected_at, detected_by, f.resolved_by,
                                  f.services, f.servers, f.root_cause))
    ttd = [i.ttd for i in incidents if i.ttd is not None]
    # an unresolved incident counts until the end of the run: MTTR is then a lower bound, never flattered
    ttr = [i.ttr if i.ttr is not None else world.now() - i.start for i in incidents]
    executed = sum(1 for r in records if r.outcome == "executed" and r.kind != "notify")
    humans = len(truth.human_actions)
    offered = float(truth.offered.sum())
    duration = max(world.now(), 1e-9)
    n = world.n
    life = np.minimum(world.deleted_at[:n], world.now()) - np.minimum(world.created_at[:n], world.now())
    m: dict[str, float | None] = {
        "incidents": len(incidents),
        "incidents_detected": len(ttd),
        "incidents_auto_resolved": sum(1 for i in incidents if i.resolved_by == "automation"),
        "incidents_human_resolved": sum(1 for i in incidents if i.resolved_by == "human"),
        "incidents_self_resolved": sum(1 for i in incidents if i.resolved_by == "self"),
        "incidents_unresolved": sum(1 for i in incidents if i.end is None),
        "mttd_s": _mean(ttd),
        "mttd_max_s": max(ttd) if ttd else None,
        "mttr_s": _mean(ttr),
        "mttr_max_s": max(ttr) if ttr else None,
        "availability": float(truth.good.sum()) / offered if offered > 0 else None,
        "slo_violation_minutes": float(truth.breach_seconds.sum()) / 60.0,
        "cost": world.spend_total,
        "cost_per_hour": world.spend_total / duration * 3600.0,
        "cost_savings": None,  # filled in against the static baseline of the same seed
        "human_interventions": humans,
        "pages": len(truth.pages),
        "automation_rate": executed / (executed + humans) if executed + humans else None,
        "actions_taken": executed,
        "actions_failed": sum(1 for r in records if r.outcome == "failed"),
        "actions_denied": sum(1 for r in records if r.outcome == "denied"),
        "actions_proposed": sum(1 for r in records if r.outcome == "proposed"),
        "alerts_raw": sum(1 for a in world.alerting.alerts if a.state == "firing"),
        "oom_kills": truth.oom_kills,
        "preemptions": truth.preemptions,
        "peak_servers": _peak_servers(world),
        "server_hours": float(np.maximum(life, 0).sum()) / 3600.0,
    }
    return Score(m, incidents)


def _peak_servers(world: World) -> int:
    """Most servers alive at once, from creation and deletion times."""
    n = world.n
    events = np.concatenate([world.created_at[:n], world.deleted_at[:n]])
    deltas = np.concatenate([np.ones(n), -np.ones(n)])
    order = np.lexsort((deltas, events))  # deletions before creations at the same instant
    alive = np.cumsum(deltas[order])
    return int(alive.max()) if len(alive) else 0
