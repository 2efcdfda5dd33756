"""Stopping and shelving servers, and starting them again.

* stop: ``SHUTOFF`` after ``latencies.stop``; the server keeps its host (placement capacity stays claimed)
  and is billed ``prices.stopped`` of its rate (default 0: compute is not billed; disks are not modelled).
* shelve: ``SHELVED_OFFLOADED`` after ``latencies.shelve``; it leaves its host (the capacity is released)
  and costs nothing.  It still counts against its project's quota (as Nova counts it).
* start: a SHUTOFF server powers on (``latencies.reboot``); a shelved one is unshelved: placed again (which
  may fail with NoValidHost), BUILD while it unshelves and ACTIVE after ``latencies.unshelve``.
* a shelved server cannot be rebooted or migrated (Conflict); deleting it frees no host capacity.

A server stops serving when the stop or shelve begins.  Completed calls notify the world's listeners
(``stop_server``, ``shelve_server``, ``start_server``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin import errors
from twin.names import ACTIVE, BUILD, DELETED, ERROR, SHELVED, SHUTOFF, STATUS, server_id

if TYPE_CHECKING:
    from twin.world import World


def stop_server(w: World, sid: str, actor: str = "automation") -> None:
    w._check_api()
    i = w._server(sid)
    w._idle(i)
    if w.status[i] not in (ACTIVE, ERROR):
        raise errors.Conflict(f"Cannot 'stop' server {server_id(i)} while it is {STATUS[w.status[i]]}")
    d = w.draw(w.cfg.latencies.stop)
    w.busy_until[i] = w.down_until[i] = w.now() + d
    w.invalidate()

    def done() -> None:
        if w.status[i] == DELETED or w.deleting[i]:
            return
        w.status[i] = SHUTOFF
        w.invalidate()
        w._notify("stop_server", i, int(w.svc[i]), actor)

    w.later(d, done)


def shelve_server(w: World, sid: str, actor: str = "automation") -> None:
    w._check_api()
    i = w._server(sid)
    w._idle(i)
    if w.status[i] not in (ACTIVE, SHUTOFF, ERROR):
        raise errors.Conflict(f"Cannot 'shelve' server {server_id(i)} while it is {STATUS[w.status[i]]}")
    d = w.draw(w.cfg.latencies.shelve)
    w.busy_until[i] = w.down_until[i] = w.now() + d
    w.invalidate()

    def done() -> None:
        if w.status[i] == DELETED or w.deleting[i]:
            return
        w.status[i] = SHELVED
        w.hv_used[w.hv[i]] -= w.f_res[w.flavor[i]]  # offloaded: its host's capacity is free
        w.leak[i] = 0.0
        w.disk_extra[i] = 0.0
        w.invalidate()
        w._notify("shelve_server", i, int(w.svc[i]), actor)

    w.later(d, done)


def unshelve_server(w: World, i: int, actor: str = "automation") -> None:
    """Start a SHELVED_OFFLOADED server: placed again (NoValidHost if no host has room), BUILD while it
    unshelves (as the live adapter shows a server whose start is under way), then ACTIVE."""
    f = int(w.flavor[i])
    h = w.place(f)
    w.hv_used[h] += w.f_res[f]
    w.hv[i] = h
    w.status[i] = BUILD  # holds its new host's capacity from now (a deletion frees it)
    d = w.draw(w.cfg.latencies.unshelve)
    w.busy_until[i] = w.down_until[i] = w.now() + d
    w.invalidate()

    def done() -> None:
        if w.status[i] == DELETED or w.deleting[i]:
            return
        w.status[i] = ACTIVE if w.hv_up[w.hv[i]] else ERROR
        w.invalidate()
        w._notify("start_server", i, int(w.svc[i]), actor)

    w.later(d, done)
