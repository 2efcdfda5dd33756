"""Ground truth of a run: what really happened. Kept out of the engines' reach;
only the scorer reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FaultRecord:
    """One fault as it really happened (twin/faults.py writes it; only the scorer reads it).

    * ``start``: the onset (the scenario's ``at`` plus its ``jitter`` draw); ``end``: the first physics tick
      at which the fault's resolution predicate held (None: unresolved at the end of the run).
    * ``root_component``: the component whose repair ends the fault — the crashed or disk-full server's id,
      the dead or throttled hypervisor's name, the zone of an outage or partition, the service of a release
      fault, a leaking pool, a latency degradation or a spot preemption.
    * ``mitigated_at``: when the SLO stopped being breached — the start of the last stretch, begun after the
      onset, during which none of the *covered* services breaches its SLO (latency p95 or error ratio), as
      seen at the end of the run or once the fault is resolved and that stretch has begun.  The covered
      services are ``services`` and every service that calls one of them, directly or not (their errors and
      latency spread upstream).  None if no covered service breached after the onset, or if one still
      breaches at the end of the run.  A breach that returns before the fault is resolved restarts it.
    * ``resolving_action``: ``{"at", "actor", "kind", "target"}`` of the latest action *completed* (the
      world's action listeners) on a component the fault covers (``Fault.matches``: its servers or services;
      ``target`` a server id or a service name) at or before ``end``.  None — and ``resolved_by`` "self" — if
      the fault expired (self-clearing faults) or no action touched it.  ``resolved_by`` is that action's
      actor ("automation", "human", …), except the world's own release ``pipeline`` rolling over a bad
      release, which counts as "self".
    * ``retargeted``: the initial server the fault had drawn no longer existed at the onset (an engine had
      deleted it), so it hit the lowest-numbered ACTIVE server of the service instead.
    """

    id: str
    type: str
    start: float
    root_cause: str
    services: list[str]
    servers: list[str]
    hypervisors: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    end: float | None = None
    resolved_by: str | None = None  # "automation", "human" or "self"
    human_started: float | None = None  # when the paged operator took over
    relieved: list[tuple[float, str]] = field(default_factory=list)  # (time, action kind) that only relieved
    root_component: str = ""  # the component whose repair ends the fault (a service, server, hypervisor or zone)
    mitigated_at: float | None = None  # when the affected services' SLO stopped being breached (None: never breached)
    resolving_action: dict | None = None  # {"at", "actor", "kind", "target"}: the action after which resolved() held
    chaos: bool = False  # injected by a chaos experiment (InjectFault), not by the scenario
    retargeted: bool = False  # the drawn initial server was gone at the onset (see above)
    experiment: str = ""  # the chaos experiment's name (InjectFault.experiment)
    release: dict | None = None  # a bad release: {"service", "version", "effect", "severity"}

    def components(self) -> set[str]:
        return set(self.services) | set(self.servers) | set(self.hypervisors) | set(self.zones)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "type": self.type, "start": self.start, "end": self.end,
            "root_cause": self.root_cause, "services": self.services, "servers": self.servers,
            "hypervisors": self.hypervisors, "zones": self.zones, "resolved_by": self.resolved_by,
            "human_started": self.human_started, "root_component": self.root_component,
            "mitigated_at": self.mitigated_at, "resolving_action": self.resolving_action, "chaos": self.chaos,
            "retargeted": self.retargeted,
            "experiment": self.experiment, "release": self.release,
        }


@dataclass
class RequestRecord:
    """A self-service request from a team: when it came, when and how it was answered (time-to-fulfil)."""

    id: str
    project: str
    requester: str
    kind: str
    params: dict
    submitted_at: float
    status: str = "open"  # "open", "approved", "denied"
    answered_at: float | None = None
    answered_by: str | None = None  # "automation" or "human"
    note: str = ""
    result: str = ""  # what carrying it out did (server ids, the new quota)
    server_ids: list[str] = field(default_factory=list)  # servers it created

    def as_dict(self) -> dict:
        return {"id": self.id, "project": self.project, "requester": self.requester, "kind": self.kind,
                "params": self.params, "submitted_at": self.submitted_at, "status": self.status,
                "answered_at": self.answered_at, "answered_by": self.answered_by, "note": self.note,
                "result": self.result, "server_ids": self.server_ids}


@dataclass
class HumanAction:
    at: float
    fault: str
    kind: str
    target: str


class GroundTruth:
    """Faults, SLO-breach intervals, request totals, human work and spend."""

    def __init__(self, services: list[str]) -> None:
        self.services = services
        n = len(services)
        self.faults: list[FaultRecord] = []
        self.offered = np.zeros(n)
        # user-facing (edge) requests only: what users sent to edge services, and the good answers they got back
        # (see edge_offered / edge_good); set by the world
        self.edge_mask = np.zeros(n)  # 1.0 for an edge service
        self.edge_shared = False  # some edge service is also called by others: its users' share is tracked
        self._edge_offered = np.zeros(n)  # accumulated per tick when edge_shared, else filled by close()
        self._edge_good = np.zeros(n)
        self._closed = False
        self.good = np.zeros(n)
        self.served = np.zeros(n)
        self.dropped = np.zeros(n)
        self.breach_seconds = np.zeros(n)
        self.breach_open = np.full(n, np.nan)
        self.breaches: list[tuple[str, float, float]] = []  # (service, start, end)
        self.human_actions: list[HumanAction] = []
        self.requests: list[RequestRecord] = []  # the self-service inbox, answered or not (twin/inbox.py)
        self.pages: list[tuple[float, str]] = []  # (time, alert fingerprint) that paged the operator
        # every rollback: (time, service, version rolled back, whether that release was bad, actor)
        self.rollbacks: list[tuple[float, str, str, bool, str]] = []
        self.oom_kills = 0
        self.preemptions = 0
        # per physics tick, for the SPEC elasticity metrics (scenarios/elasticity.py): the step, offered requests
        # per second and supplied serving capacity (requests per second at full utilisation) per service
        self.curve_len = 0
        self.curve_dt = np.zeros(0, dtype=np.float32)
        self.curve_offered = np.zeros((0, n), dtype=np.float32)
        self.curve_supply = np.zeros((0, n), dtype=np.float32)
        self.batch = None  # twin.batch.BatchQueues of a world with batch services: every job's truth

    def alloc_curves(self, ticks: int) -> None:
        """Room for ``ticks`` rows of the elasticity curves (the world's tick count)."""
        n = len(self.services)
        self.curve_dt = np.zeros(ticks, dtype=np.float32)
        self.curve_offered = np.zeros((ticks, n), dtype=np.float32)
        self.curve_supply = np.zeros((ticks, n), dtype=np.float32)
        self.curve_len = 0

    def curve_step(self, dt: float, offered: np.ndarray, supply: np.ndarray) -> None:
        k = self.curve_len
        if k < len(self.curve_dt):
            self.curve_dt[k] = dt
            self.curve_offered[k] = offered
            self.curve_supply[k] = supply
            self.curve_len = k + 1

    @property
    def edge_offered(self) -> np.ndarray:
        """Per service, requests users sent it (0 for internal services); internal calls never count."""
        return self._edge_offered if self.edge_shared or self._closed else self.offered * self.edge_mask

    @property
    def edge_good(self) -> np.ndarray:
        """Per service, good answers users got (a dependency's failure that reached them counted once)."""
        return self._edge_good if self.edge_shared or self._closed else self.good * self.edge_mask

    def slo_step(self, t: float, dt: float, breach: np.ndarray) -> None:
        self.breach_seconds += breach * dt
        opening = breach & np.isnan(self.breach_open)
        self.breach_open[opening] = t - dt
        closing = ~breach & ~np.isnan(self.breach_open)
        for i in np.flatnonzero(closing):
            self.breaches.append((self.services[i], float(self.breach_open[i]), t - dt))
        self.breach_open[closing] = np.nan

    def close(self, t: float) -> None:
        if not self.edge_shared and not self._closed:  # every request to an edge service was a user's
            self._edge_offered[:] = self.offered * self.edge_mask
            self._edge_good[:] = self.good * self.edge_mask
        self._closed = True
        for i in np.flatnonzero(~np.isnan(self.breach_open)):
            self.breaches.append((self.services[i], float(self.breach_open[i]), t))
        self.breach_open[:] = np.nan
