"""Planned maintenance: servers stopped for a while and started again by the maintainer, not by a fault.

Each ``maintenance`` entry of a world stops the first ``servers`` ACTIVE servers
of its service at ``at`` and starts them again ``duration`` later, through the
same control API an engine uses (actor ``maintenance``).  Their ``server_up``
drops to 0, so InstanceDown-style rules fire — the alerts a maintenance window
(a silence) is for.  No fault record is written: there is nothing to detect,
and paging about it is a false alert.  A server an engine already started,
deleted or moved on is left alone.

Planned work is visible, as an operator makes it visible live (docs/live-mode.md): ``LEAD_S`` before the
stop, the servers to be worked on are marked in their metadata — ``zeroops_maintenance=<window id>`` and
``zeroops_maintenance_until=<end of the window + SETTLE_S, on the run's clock>`` — and the marks are cleared
``SETTLE_S`` after the servers were started again (back and answering their scrape).  Engines read the marks
through the adapter (engines/maintenance.py), never this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin import errors
from twin.names import ACTIVE, SHUTOFF, server_id

if TYPE_CHECKING:
    from twin.config import Maintenance
    from twin.world import World

ACTOR = "maintenance"
MAINTENANCE_KEY = "zeroops_maintenance"  # the same names as engines/maintenance.py (a test checks)
UNTIL_KEY = "zeroops_maintenance_until"
LEAD_S = 60.0  # the mark goes on this long before the servers are stopped
SETTLE_S = 180.0  # and comes off this long after they were started (a start's latency and a scrape)


def schedule(w: World) -> None:
    """Put every planned maintenance of the world's config on its clock."""
    for k, m in enumerate(w.cfg.maintenance):
        w.later(max(0.0, m.at - LEAD_S), lambda k=k, m=m: _announce(w, k, m))


def _announce(w: World, k: int, m: Maintenance) -> None:
    """Mark the servers the work will stop (the first ACTIVE ones now), then stop them at ``m.at``."""
    s = w._service(m.service)
    ids = [int(i) for i in w.servers_of(s, (ACTIVE,))][: m.servers]
    until = m.at + m.duration + SETTLE_S
    marked = [i for i in ids if _mark(w, i, {MAINTENANCE_KEY: f"maintenance-{k}", UNTIL_KEY: f"{until:.0f}"})]
    w.later(m.at - w.now(), lambda: _begin(w, m, marked))


def _mark(w: World, i: int, metadata: dict[str, str]) -> bool:
    try:
        w.set_metadata(server_id(i), metadata)
    except errors.TwinError:
        return False  # the API is down: the work goes on unannounced, as it would live
    return True


def _unmark(w: World, ids: list[int]) -> None:
    """Remove the marks (``openstack server unset --property ...``); a mark left by an API outage expires."""
    for i in ids:
        try:
            w.set_metadata(server_id(i), {})  # the API call: refused while the API is down
        except errors.TwinError:
            continue
        for key in (MAINTENANCE_KEY, UNTIL_KEY):
            w.metadata[i].pop(key, None)


def _begin(w: World, m: Maintenance, ids: list[int]) -> None:
    stopped = []
    for i in ids:
        if w.status[i] != ACTIVE:
            continue
        try:
            w.stop_server(server_id(i), actor=ACTOR)
            stopped.append(i)
        except errors.TwinError:
            continue  # busy or gone: planned work skips it
    w.maintenance_log.append((w.now(), m.service, tuple(server_id(i) for i in stopped), "stop"))
    _unmark(w, [i for i in ids if i not in stopped])  # not worked on after all: no longer marked
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
    w.later(SETTLE_S, lambda: _unmark(w, stopped))
