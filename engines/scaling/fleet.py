"""A service's servers as the scaler sees them: serving, drained, recovering, protected, warm.

"One fault, one reaction": capacity someone else is handling is neither counted as serving nor touched.

* *drained* — ACTIVE but out of rotation: a load-balancer weight of 0 in its metadata (``zeroops_lb_weight``, as
  the OpenStack adapter writes it), a planned-maintenance mark (engines/maintenance.py), or, where the world does
  not show weights, no traffic at all while its service has some (checked per server on demand);
* *recovering* — SHUTOFF or ERROR and not ours to keep stopped: the crash restarter and the runbooks own it, so
  it is counted as capacity coming back (for ``RECOVERY_S``) rather than replaced;
* *protected* — never deleted: created by someone else (a ``zeroops_request_id`` not ours, e.g. an incident
  runbook's ``<incident>-<service>-np``), drained, or under maintenance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.base import IncidentInfo, Server
from engines.maintenance import under_maintenance

META_REQUEST = "zeroops_request_id"
META_WEIGHT = "zeroops_lb_weight"
META_WARM = "zeroops_warm_pool"  # set by this scaler on the servers it keeps stopped at zero
OWN_PREFIX = "pscale-"  # request ids of the servers this scaler creates
RECOVERY_S = 600.0  # a SHUTOFF/ERROR server is counted as coming back for this long


@dataclass
class ServiceFleet:
    """One service's servers, classified."""

    name: str
    active: list[Server] = field(default_factory=list)
    building: list[Server] = field(default_factory=list)
    down: list[Server] = field(default_factory=list)  # SHUTOFF / ERROR, not in our warm pool
    warm: list[Server] = field(default_factory=list)  # stopped or shelved by us (our warm pool)
    drained: list[Server] = field(default_factory=list)  # ACTIVE, out of rotation
    rewoken: list[Server] = field(default_factory=list)  # ACTIVE but still marked as our warm pool

    @property
    def serving(self) -> list[Server]:
        ids = {s.id for s in self.drained}
        return [s for s in self.active if s.id not in ids]


def weight_zero(s: Server) -> bool:
    w = s.metadata.get(META_WEIGHT)
    if w is None:
        return False
    try:
        return float(w) <= 0.0
    except ValueError:
        return False


def is_own(s: Server) -> bool:
    return s.metadata.get(META_REQUEST, "").startswith(OWN_PREFIX)


def someone_elses(s: Server, incidents: Mapping[str, IncidentInfo] | None = None) -> bool:
    """Created with a request id that is not ours: a runbook's or a person's (their capacity, their decision).
    A runbook's server (request id ``<incident id>-...``) is the service's again once that incident is mitigated
    or resolved: the response is over, and its capacity must not stay forever (found on batch-deadlines)."""
    rid = s.metadata.get(META_REQUEST, "")
    if not rid or rid.startswith(OWN_PREFIX):
        return False
    for inc in (incidents or {}).values():
        if rid.startswith(inc.id + "-") and inc.status in ("mitigated", "resolved"):
            return False
    return True


def group(servers: Iterable[Server], names: Iterable[str], now: float, warm_ids: set[str],
          first_down: dict[str, float]) -> dict[str, ServiceFleet]:
    """Servers per service (one pass over every server); ``first_down`` (server id -> first seen down) is updated."""
    out = {n: ServiceFleet(n) for n in names}
    seen_down: set[str] = set()
    for s in servers:
        f = out.get(s.service or "")
        if f is None:
            continue
        st = s.status
        if st == "ACTIVE":
            f.active.append(s)
            if s.metadata.get(META_WARM):
                f.rewoken.append(s)  # a warm-pool server someone else started: serving, its marks stale
            elif weight_zero(s) or under_maintenance(s, now):
                f.drained.append(s)
        elif st == "BUILD":
            f.building.append(s)
        elif st in ("SHUTOFF", "ERROR", "SHELVED_OFFLOADED"):
            if s.id in warm_ids or s.metadata.get(META_WARM):
                f.warm.append(s)
            elif st != "SHELVED_OFFLOADED":
                seen_down.add(s.id)
                t0 = first_down.setdefault(s.id, now)
                if now - t0 < RECOVERY_S:
                    f.down.append(s)
    for sid in [k for k in first_down if k not in seen_down]:
        del first_down[sid]
    return out


def incident_scope(incidents: Mapping[str, IncidentInfo]) -> set[str]:
    """Every component an open incident names (services, servers, zones, hypervisors)."""
    return {c for inc in incidents.values() for c in inc.components}


def owning_incident(f: ServiceFleet, incidents: Mapping[str, IncidentInfo]) -> IncidentInfo | None:
    """The open, not yet mitigated incident that names the service, one of its servers, or their zone or host
    (the one the gate's IncidentOwnership gives the service's capacity to), if any."""
    for inc in incidents.values():
        if inc.status in ("resolved", "mitigated"):
            continue
        if under_incident(f, set(inc.components)):
            return inc
    return None


def under_incident(f: ServiceFleet, scope: set[str]) -> bool:
    """Whether an open incident names the service, one of its servers, or their zone or hypervisor."""
    if not scope:
        return False
    if f.name in scope:
        return True
    return any(s.id in scope or s.zone in scope or (s.hypervisor or "") in scope
               for s in (*f.active, *f.building, *f.down))


def idle_servers(windows: Sequence[tuple[Server, float]], service_rate: float, now: float,
                 min_age_s: float = 120.0) -> list[Server]:
    """ACTIVE servers that carry no traffic (``server_network_mbps`` 0) while their service has some: drained at the
    load balancer in a world whose server metadata does not show weights."""
    if not service_rate > 0:
        return []
    return [s for s, mbps in windows if now - s.created_at >= min_age_s and not math.isnan(mbps) and mbps <= 0.0]
