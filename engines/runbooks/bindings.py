"""What a runbook's ``{variables}`` and ``for_each`` sources mean, read from the incident and the observation.

Everything here comes from what the adapter shows (inventory, metric windows, deploys) and the incident
context the ops center built — never from a world's ground truth. A server counts as *down* when the
inventory shows it ERROR or SHUTOFF, or when its latest ``server_up`` sample is 0 while the inventory still
lists it ACTIVE (inventory lags: Nova's power-state sync runs every 10 minutes; telemetry shows a dead
server at the next scrape).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.base import AdapterError, Hypervisor, Observation, Server
from engines.ops.types import Candidate, IncidentContext

#: seconds of pre-incident history that ``baseline`` and ``before`` read
LOOKBACK_S = 900.0
#: the utilisation a scale-out aims at (HPA's usual target)
SCALE_TARGET = 0.6


def component_kind(obs: Observation, component: str) -> str | None:
    """``service``, ``server``, ``hypervisor`` or ``zone`` (None: unknown to the adapter)."""
    if component in obs.services:
        return "service"
    if _hypervisor(obs, component) is not None:
        return "hypervisor"
    if any(h.zone == component for h in obs.hypervisors):
        return "zone"
    if _server(obs, component) is not None:
        return "server"
    return None


def _server(obs: Observation, sid: str) -> Server | None:
    try:
        return obs.server(sid)
    except (AdapterError, ValueError):
        return None


def _hypervisor(obs: Observation, name: str) -> Hypervisor | None:
    return next((h for h in obs.hypervisors if name in (h.name, h.id)), None)


def window(obs: Observation, metric: str, seconds: float, **labels: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric window's (t, v) with NaN samples dropped; empty when the adapter has none."""
    try:
        w = obs.window(metric, max(seconds, 1.0), **labels)
    except (AdapterError, ValueError):
        return np.empty(0), np.empty(0)
    ok = ~np.isnan(w.v)
    return w.t[ok], w.v[ok]


def is_down(obs: Observation, s: Server) -> bool:
    """Not serving, by the inventory (ERROR, SHUTOFF) or by its latest ``server_up`` sample (0)."""
    if s.status in ("ERROR", "SHUTOFF"):
        return True
    if s.status != "ACTIVE":
        return False
    _, v = window(obs, "server_up", 30.0, server=s.id)
    return bool(len(v)) and v[-1] < 0.5


@dataclass
class Bindings:
    """The variables of one run, bound at its start; ``scope`` holds the services it watches."""

    vars: dict[str, Any]
    t_ref: float  # the incident's onset as the anomalies show it: "before" and "baseline" end here
    services: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        return self.vars.get(name)


def focus_candidate(ctx: IncidentContext, focus: str | None) -> Candidate | None:
    if focus is not None:
        for c in ctx.candidates:
            if c.component == focus:
                return c
        return Candidate(focus, 0.5)
    return ctx.top


def bind(ctx: IncidentContext, obs: Observation, focus: str | None = None) -> Bindings:
    """Bind the base variables of :data:`engines.runbooks.schema.BASE_VARS` for ``ctx`` at ``obs.now``."""
    cand = focus_candidate(ctx, focus)
    component = cand.component if cand else (ctx.components[0] if ctx.components else "")
    kind = component_kind(obs, component) if component else None
    v: dict[str, Any] = dict.fromkeys(
        ("service", "server", "hypervisor", "zone", "other_zone", "flavor", "bigger_flavor", "settings", "active",
         "min", "max", "before", "deficit", "scale_out"))
    v.update(incident=ctx.incident_id, component=component, component_kind=kind,
             fault_class=cand.fault_class if cand else None, severity=ctx.severity)
    if kind == "service":
        v["service"] = component
    elif kind == "server":
        s = _server(obs, component)
        if s is not None:
            v.update(server=s.id, service=s.service, hypervisor=s.hypervisor, zone=s.zone)
    elif kind == "hypervisor":
        h = _hypervisor(obs, component)
        if h is not None:
            v.update(hypervisor=h.name, zone=h.zone)
    elif kind == "zone":
        v["zone"] = component
    if v["service"] is None and kind in (None, "service"):
        v["service"] = next((c for c in ctx.components if c in obs.services), None)
    onsets = [a.onset for a in ctx.anomalies if math.isfinite(a.onset)]
    t_ref = min([*onsets, ctx.declared_at])
    b = Bindings(v, t_ref)
    if v["zone"] is not None:
        v["other_zone"] = _other_zone(obs, v["zone"])
    svc = v["service"]
    if svc is not None and svc in obs.services:
        st = obs.services[svc]
        v.update(flavor=st.flavor, bigger_flavor=_bigger(obs, st.flavor), settings=dict(st.settings),
                 active=st.active, min=st.min_servers, max=st.max_servers)
        before = pre_incident(obs, b, "active_servers", svc, "max")
        v["before"] = int(before) if math.isfinite(before) else None
        v["deficit"] = deficit(obs, b, svc)
        cpu = obs.latest("cpu_util").get(svc, math.nan)
        want = math.ceil(st.active * cpu / SCALE_TARGET) if math.isfinite(cpu) else st.active + 1
        v["scale_out"] = max(1, min(st.max_servers, want) - st.active - st.building)
        b.services = [svc]
    else:
        # the services on the host or in the zone, and those the incident names; if none (a host already
        # evacuated), every service: the whole system must be healthy again
        named = {c for c in ctx.components if c in obs.services} | {a.component for a in ctx.anomalies
                                                                    if a.component in obs.services}
        scope = {s for s in _scope_services(obs, v) if s} | named
        b.services = sorted(scope or obs.services)
    return b


def _scope_services(obs: Observation, v: dict[str, Any]) -> Iterable[str | None]:
    for s in obs.servers():
        if s.status == "DELETED":
            continue
        if (v["hypervisor"] is not None and s.hypervisor == v["hypervisor"]) or (
                v["hypervisor"] is None and v["zone"] is not None and s.zone == v["zone"]):
            yield s.service


def _other_zone(obs: Observation, zone: str) -> str | None:
    free: dict[str, int] = {}
    for h in obs.hypervisors:
        if h.state == "up" and h.zone != zone:
            free[h.zone] = free.get(h.zone, 0) + h.memory_mb - h.memory_mb_used
    return max(sorted(free), key=lambda z: free[z]) if free else None


def _bigger(obs: Observation, flavor: str) -> str | None:
    f = obs.flavors.get(flavor)
    if f is None:
        return None
    up = [g for g in obs.flavors.values() if g.gpus == f.gpus and g.vcpus >= f.vcpus and g.ram_mb >= f.ram_mb
          and g.disk_gb >= f.disk_gb and (g.vcpus, g.ram_mb, g.disk_gb) != (f.vcpus, f.ram_mb, f.disk_gb)]
    return min(up, key=lambda g: (g.vcpus, g.ram_mb, g.disk_gb)).name if up else None


def pre_incident(obs: Observation, b: Bindings, metric: str, service: str, how: str) -> float:
    """The metric's median (``how='median'``) or maximum over the :data:`LOOKBACK_S` before the onset; NaN: no data."""
    t, v = window(obs, metric, obs.now - b.t_ref + LOOKBACK_S, service=service)
    v = v[(t < b.t_ref) & (t >= b.t_ref - LOOKBACK_S)]
    if not len(v):
        return math.nan
    return float(np.median(v)) if how == "median" else float(v.max())


def deficit(obs: Observation, b: Bindings, service: str) -> int:
    """Servers the service lost: its pre-incident ``active_servers`` (at least min_servers) minus active and building."""
    st = obs.services.get(service)
    if st is None:
        return 0
    before = pre_incident(obs, b, "active_servers", service, "max")
    target = max(st.min_servers, int(before) if math.isfinite(before) else 0)
    _, now_v = window(obs, "active_servers", 30.0, service=service)
    active = int(now_v[-1]) if len(now_v) else st.active
    return max(0, target - active - st.building)


def _server_item(s: Server, **extra: Any) -> dict[str, Any]:
    return {"server": s.id, "service": s.service, "hypervisor": s.hypervisor, "zone": s.zone, "status": s.status,
            **extra}


def server_items(obs: Observation, ids: list[str]) -> list[dict[str, Any]]:
    """Items for these server ids, as the inventory shows them now (deleted ones left out)."""
    out = []
    for sid in ids:
        s = _server(obs, sid)
        if s is not None and s.status != "DELETED":
            out.append(_server_item(s))
    return out


def _scoped_servers(obs: Observation, v: dict[str, Any]) -> list[Server]:
    """The servers in the run's scope: the focus server, else those on its hypervisor, in its zone or of its service."""
    if v.get("server"):
        s = _server(obs, v["server"])
        return [s] if s is not None else []
    servers = [s for s in obs.servers() if s.status != "DELETED"]
    if v.get("hypervisor"):
        return [s for s in servers if s.hypervisor == v["hypervisor"]]
    if v.get("zone"):
        return [s for s in servers if s.zone == v["zone"]]
    if v.get("service"):
        return [s for s in servers if s.service == v["service"]]
    return []


def items(source: str, obs: Observation, b: Bindings, by: str | None = None) -> list[dict[str, Any]]:
    """The items a ``for_each`` source yields now (each a mapping of item variables), in a stable order."""
    v = b.vars
    if source == "down_servers":
        return [_server_item(s) for s in sorted(_scoped_servers(obs, v), key=lambda s: s.id) if is_down(obs, s)]
    if source == "servers_on_hypervisor":
        if not v.get("hypervisor"):
            return []
        return [_server_item(s) for s in sorted(obs.servers(), key=lambda s: s.id)
                if s.hypervisor == v["hypervisor"] and s.status not in ("DELETED", "BUILD", "SHELVED_OFFLOADED")]
    if source == "worst_server":
        best: tuple[float, Server] | None = None
        for s in sorted(_scoped_servers(obs, v), key=lambda s: s.id):
            _, vals = window(obs, by or "", 60.0, server=s.id)
            if len(vals) and (best is None or vals[-1] > best[0]):
                best = (float(vals[-1]), s)
        return [_server_item(best[1], value=best[0])] if best else []
    if source == "zone_services":
        if not v.get("zone"):
            return []
        per: dict[str, list[str]] = {}
        outside: dict[str, int] = {}
        for s in obs.servers():
            if not s.service or s.status in ("DELETED", "SHELVED_OFFLOADED"):
                continue
            if s.zone == v["zone"]:
                per.setdefault(s.service, []).append(s.id)
            elif s.status == "ACTIVE" and not is_down(obs, s):
                outside[s.service] = outside.get(s.service, 0) + 1
        return [{"service": svc, "zone": v["zone"], "servers": sorted(ids), "count": len(ids),
                 "outside": outside.get(svc, 0),
                 "drain": dict.fromkeys(sorted(ids), 0.0), "restore": dict.fromkeys(sorted(ids), 1.0)}
                for svc, ids in sorted(per.items())]
    if source == "lost_capacity":
        out = []
        for svc in b.services:
            n = deficit(obs, b, svc)
            if n > 0:
                out.append({"service": svc, "count": n})
        return out
    raise ValueError(f"unknown for_each source {source!r}")
