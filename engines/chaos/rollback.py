"""Rolling an experiment back: the ordinary actions that end what is still observed of a fault.

Shared by the chaos engine and the Chaos Toolkit extension (``zeroops.chaostoolkit.actions.rollback_fault``).
Host and zone faults have no rollback through the API (a throttle, a dead zone, a partition): the fault's
``duration`` ends them (the twin ends every chaos fault at its duration).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from adapters.base import Action, Observation, RebootServer, RestartService, RollbackDeploy, StartServer

NO_ROLLBACK = frozenset({"cpu_throttling", "az_outage", "network_partition", "hypervisor_failure"})


def rollback_actions(obs: Observation, fault: str, target: str, *, force: bool, latency_bound: float = math.inf,
                     meta: Mapping[str, Any] | None = None) -> list[Action]:
    """Actions ending ``fault`` on ``target`` if its effect is still observed (always on ``force``: an abort).

    A crashed server is started (SHUTOFF, as live) or hard-rebooted (ERROR, or ACTIVE to the API while its
    ``server_up`` is 0: a dead guest); a full disk's server rebooted; a
    slow service or an exhausted pool restarted; a leaking release rolled back.
    """
    kw: dict[str, Any] = dict(meta or {})
    server = obs.server(target)

    def latest(metric: str, key: str) -> float:
        if metric.startswith("server_"):
            return obs.window(metric, 120.0, server=key).last(1.0 if metric == "server_up" else 0.0)
        return float(obs.latest(metric).get(key, 0.0))

    if fault == "server_crash":  # a dead guest may still look ACTIVE to the API: server_up tells
        def down(x: Any) -> bool:
            return x.status in ("SHUTOFF", "ERROR") or (x.status == "ACTIVE" and latest("server_up", x.id) < 0.5)

        cands = [server] if server is not None else list(obs.servers(service=target))
        s = next((x for x in cands if down(x)), None)
        if s is not None and s.status == "SHUTOFF":
            return [StartServer(server_id=s.id, **kw)]
        if s is not None:
            return [RebootServer(server_id=s.id, hard=True, **kw)]
    elif fault == "disk_pressure" and server is not None and server.status == "ACTIVE":
        if force or latest("server_disk_util", server.id) > 0.8:
            return [RebootServer(server_id=server.id, hard=True, **kw)]
    elif fault == "latency_degradation" and target in obs.services:
        if force or latest("latency_p95_ms", target) > latency_bound:
            return [RestartService(service=target, **kw)]
    elif fault == "db_pool_exhaustion" and target in obs.services:
        if force or latest("pool_util", target) > 0.9:
            return [RestartService(service=target, **kw)]
    elif fault in ("memory_leak", "bad_deploy") and target in obs.services and force:
        return [RollbackDeploy(service=target, **kw)]
    return []
