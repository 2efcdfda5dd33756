"""Planned maintenance: servers stopped for a while and started again by the maintainer, not by a fault.

Each ``maintenance`` entry of a world stops the first ``servers`` ACTIVE servers
of its service at ``at`` and starts them again ``duration`` later, through the
same control API an engine uses (actor ``maintenance``).  Their ``server_up``
drops to 0, so InstanceDown-style rules fire — the alerts a maintenance window
(a silence) is for.  No fault record is written: there is nothing to detect,
and paging about it is a false alert.  A server an engine already started,
deleted or moved on is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin import errors
from twin.names import ACTIVE, SHUTOFF, server_id

if TYPE_CHECKING:
    from twin.config import Maintenance
    from twin.world import World

ACTOR = "maintenance"


def schedule(w: World) -> None:
    """Put every planned maintenance of the world's config on its clock."""
    for m in w.cfg.maintenance:
        w.later(m.at, lambda m=m: _begin(w, m))


def _begin(w: World, m: Maintenance) -> None:
    s = w._service(m.service)
    ids = [int(i) for i in w.servers_of(s, (ACTIVE,))][: m.servers]
    stopped = []
    for i in ids:
        try:
            w.stop_server(server_id(i), actor=ACTOR)
            stopped.append(i)
        except errors.TwinError:
            continue  # busy or gone: planned work skips it
    w.maintenance_log.append((w.now(), m.service, tuple(server_id(i) for i in stopped), "stop"))
    w.later(m.duration, lambda: _end(w, m, stopped))


def _end(w: World, m: Maintenance, stopped: list[int]) -> None:
    started = []
    for i in stopped:
        if w.status[i] != SHUTOFF:
            continue
        try:
            w.start_server(server_id(i), actor=ACTOR)
            started.append(i)
        except errors.TwinError:
            continue
    w.maintenance_log.append((w.now(), m.service, tuple(server_id(i) for i in started), "start"))
