"""Planned maintenance as engines see it: servers marked in their metadata, nothing else.

The convention (docs/scenarios.md, docs/live-mode.md): whoever works on a server — the twin's planned
maintenance, an operator with ``openstack server set --property zeroops_maintenance=CHG-123 ...`` — sets

* ``zeroops_maintenance`` = the window's id (or ``planned``) before taking the server down, and clears it
  once the server is back;
* optionally ``zeroops_maintenance_until`` = when the window ends, in seconds on the engine's clock (epoch
  seconds live): a mark left behind after that no longer silences anything.

A server so marked is *under planned maintenance*: its own signals are silenced.  Its service's symptoms are
silenced too while they stay within what losing some servers explains; a breach beyond that (see
:meth:`PlannedWork.explains`) still counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from adapters.base import Observation, Server

MAINTENANCE_KEY = "zeroops_maintenance"
UNTIL_KEY = "zeroops_maintenance_until"


def under_maintenance(server: Server, now: float) -> bool:
    """Whether ``server`` carries a planned-maintenance mark that has not expired at ``now``."""
    if not server.metadata.get(MAINTENANCE_KEY, "").strip():
        return False
    until = server.metadata.get(UNTIL_KEY)
    if until is None or not until.strip():
        return True
    try:
        end = float(until)
    except ValueError:
        return True  # an unreadable end: the mark itself still says the work is planned
    return not math.isfinite(end) or now < end


class PlannedWork:
    """The servers under planned maintenance at ``now``, looked up per service on demand (one read each).

    breach: a service whose user-facing error ratio reaches this, or whose served share falls this far below
        1, is in a breach the maintained servers do not explain (a load balancer drains them cleanly).
    """

    def __init__(self, obs: Observation, now: float, breach: float = 0.05) -> None:
        self.obs, self.now, self.breach = obs, now, breach
        self._by_service: dict[str, frozenset[str]] = {}
        self._errors: Mapping[str, float] | None = None
        self._share: dict[str, float] = {}

    def servers(self, service: str) -> frozenset[str]:
        """Ids of ``service``'s servers under planned maintenance now."""
        if service not in self._by_service:
            self._by_service[service] = frozenset(
                s.id for s in self.obs.servers(service=service) if under_maintenance(s, self.now))
        return self._by_service[service]

    def server(self, server_id: str, service: str) -> bool:
        """Whether this server of ``service`` is under planned maintenance now."""
        return bool(service) and server_id in self.servers(service)

    def explains(self, service: str) -> bool:
        """Whether ``service``'s symptoms are explained by its planned maintenance: some of its servers are
        marked and the service is not in breach (errors below ``breach``, served share above ``1 - breach``)."""
        if not service or not self.servers(service):
            return False
        if self._errors is None:
            self._errors = self.obs.latest("error_ratio")
            req, srv = self.obs.latest("request_rate"), self.obs.latest("served_rate")
            self._share = {k: srv.get(k, math.nan) / r for k, r in req.items() if r > 1e-9}
        err = self._errors.get(service, math.nan)
        share = self._share.get(service, math.nan)
        return not (err >= self.breach or share <= 1.0 - self.breach)

    def silences(self, labels: Mapping[str, str], service_level: bool = True) -> bool:
        """Whether a signal with these labels is silenced: its server is under maintenance, or (when
        ``service_level``) it is a symptom of a service (for an edge: the callee) its maintenance explains."""
        svc = labels.get("service", "")
        srv = labels.get("server", "")
        if srv:
            return self.server(srv, svc)
        return service_level and self.explains(labels.get("dependency") or svc)
