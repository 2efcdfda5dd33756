"""Chaos experiments: ``InjectFault`` puts a catalogued fault (twin/faults.py) on a named component.

The fault goes through the fault manager like a scenario's faults, and its ground-truth record is marked
``chaos`` (with the experiment's name).  A chaos fault given a ``duration`` ends by then whatever happens
(:func:`end_fault`): an experiment leaves nothing behind.  Whether an engine may inject at all is the safety
gate's business (``InjectFault.always_approval``); here the world only refuses what it cannot do.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from twin import errors
from twin.config import FaultSpec
from twin.groundtruth import FaultRecord
from twin.names import DELETED

if TYPE_CHECKING:
    from twin.faults import Fault
    from twin.world import World

SERVER_FAULTS = frozenset({"server_crash", "disk_pressure"})  # aimed at the server named, if one is
# what each fault is put on: a service (server-level faults pick one of its servers), a host or a zone
TARGET_KIND = {
    "server_crash": "service", "memory_leak": "service", "db_pool_exhaustion": "service",
    "latency_degradation": "service", "bad_deploy": "service", "disk_pressure": "service",
    "spot_preemption": "service", "hypervisor_failure": "hypervisor", "cpu_throttling": "hypervisor",
    "az_outage": "zone", "network_partition": "zone",
}


def inject_fault(w: World, fault: str, target: str, duration: float | None = None, magnitude: float | None = None,
                 experiment: str = "") -> FaultRecord:
    """Inject ``fault`` on ``target`` (a service, a server id, a hypervisor or a zone name) now.

    A server id names its service; ``server_crash`` and ``disk_pressure`` then hit that very server.

    Raises Conflict for an unknown fault, a target of the wrong kind or nothing to hit, NotFound for an
    unknown target.
    """
    from twin.faults import CATALOG, Target

    w._check_api()
    if fault not in CATALOG:
        raise errors.Conflict(f"unknown fault {fault!r}; allowed: {', '.join(sorted(CATALOG))}")
    want = TARGET_KIND.get(fault, "service")
    service = hypervisor = zone = None
    row: int | None = None  # a server named as the target
    if target in w.svc_index:
        kind, service = "service", target
    elif target in w.hv_index:
        kind, hypervisor = "hypervisor", target
    elif target in w.zone_names:
        kind, zone = "zone", target
    elif target.startswith("srv-") and target[4:].isdigit() and int(target[4:]) < w.n \
            and w.status[int(target[4:])] != DELETED and w.svc[int(target[4:])] >= 0:
        row = int(target[4:])
        kind, service = "service", w.svc_names[int(w.svc[row])]  # a server: its service's fault, on that server
    else:
        raise errors.NotFound(f"no component {target!r} (a service, server id, hypervisor or zone)")
    if kind != want:
        raise errors.Conflict(f"fault {fault} is injected on a {want}, not on the {kind} {target!r}")
    if magnitude is not None and not magnitude > 0:
        raise errors.Conflict(f"magnitude must be > 0, got {magnitude}")
    if duration is not None and not duration > 0:
        raise errors.Conflict(f"duration must be > 0 s, got {duration}")
    spec = FaultSpec(type=fault, at=w.now(), service=service, hypervisor=hypervisor, zone=zone,
                     duration=duration, severity=magnitude if magnitude is not None else 1.0)
    aim = Target(onset=w.now(), servers=[row]) if row is not None and fault in SERVER_FAULTS else None
    if fault in ("bad_deploy", "memory_leak"):  # a bad release shipped by the experiment, to every server
        w.releases._pending = (1.0, "chaos", None, None)
    try:
        f = w.faults.inject(spec, aim)
    finally:
        w.releases._pending = None
    if f is None:
        raise errors.Conflict(f"fault {fault} found nothing to hit on {target}")
    f.rec.chaos = True
    f.rec.experiment = experiment
    if duration is not None and not f.self_clearing and f.type != "cpu_throttling":  # those end by themselves
        w.later(duration, lambda: end_fault(w, f))
    return f.rec


def end_fault(w: World, f: Fault) -> bool:
    """End a chaos fault at its duration if nothing fixed it yet (the experiment's own rollback, the world's
    dead man's switch): undo its effect and mark it expired, so it closes as resolved by ``self``.
    False if it had already closed."""
    import numpy as np

    from twin.names import ERROR

    if f not in w.faults.active:
        return False
    f.expire()
    t = f.type
    if t in ("server_crash", "hypervisor_failure"):
        if t == "hypervisor_failure":
            w.repair_hosts(np.array([f.host]))
        rows = np.array([int(s[4:]) for s in f.rec.servers], dtype=np.int64)
        w.recover(rows[w.status[rows] == ERROR])
    elif t == "disk_pressure":
        w.clear_disk(f.server)
    elif t == "latency_degradation":
        f.done = True
    elif t == "db_pool_exhaustion":
        w.set_conn_leak(f._svc(), 0.0)
    elif t in ("memory_leak", "bad_deploy") and f.spec.service:
        with contextlib.suppress(errors.TwinError):  # nothing to roll back any more: a later release replaced it
            w.rollback_deploy(f.spec.service, actor="chaos")
    return True
