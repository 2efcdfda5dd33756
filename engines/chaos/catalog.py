"""What the chaos engine can run: the daily tests and game-day experiments, mapped to the world's fault catalog.

Each kind names the catalogued fault it injects (``InjectFault.fault``), what it is aimed at (a server, a
service, a hypervisor or a zone), the blast radius that target declares, and how the experiment is rolled
back.  Where the twin has no fault for a kind, ``fault`` is None and ``note`` says so: the engine records the
experiment as skipped instead of injecting a stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TargetKind = Literal["server", "service", "hypervisor", "zone"]


@dataclass(frozen=True)
class Kind:
    """One kind of experiment."""

    name: str
    fault: str | None
    aim: TargetKind
    radius: str  # the blast radius the target declares (control.safety.config.BLAST_RADII)
    magnitude: float = 1.0
    pick: Literal["any", "stateful", "deepest", "edge"] = "any"  # which service a service-level kind aims at
    rollback: str = ""  # what ends it early (the fault's own duration ends it in any case)
    note: str = ""


DAILY: tuple[Kind, ...] = (
    Kind("server-kill", "server_crash", "server", "single-server", rollback="start or hard-reboot the server"),
    Kind("latency-injection", "latency_degradation", "service", "single-service", magnitude=0.25,
         rollback="restart the service (clears its stuck workers)"),
    Kind("disk-pressure", "disk_pressure", "server", "single-server", rollback="hard-reboot the server"),
    Kind("cpu-throttling", "cpu_throttling", "hypervisor", "single-hypervisor", magnitude=1.0,
         rollback="none through the API: the throttle lifts at the experiment's duration"),
    Kind("memory-pressure", "memory_leak", "service", "single-service", magnitude=1.0,
         rollback="roll the leaking release back",
         note="the twin has no bare memory hog: a leaking release is the memory pressure it can inject"),
)
GAME_DAY: tuple[Kind, ...] = (
    Kind("region-failure", "az_outage", "zone", "single-az",
         rollback="none through the API: the zone returns at the experiment's duration",
         note="the twin fails one availability zone at a time; a whole region has no fault in its catalog"),
    Kind("database-outage", "db_pool_exhaustion", "service", "single-service", pick="stateful",
         rollback="restart the database service (frees its connection pool)",
         note="the database's connection pool runs dry: its callers get errors and time-outs"),
    Kind("api-overload", None, "service", "single-service", pick="edge",
         note="not injectable: the twin's fault catalog has no request flood (load spikes exist only as "
              "scheduled traffic in a scenario)"),
    Kind("network-partition", "network_partition", "zone", "single-az",
         rollback="none through the API: the partition heals at the experiment's duration"),
    Kind("cascading-failure", "latency_degradation", "service", "single-service", magnitude=1.0, pick="deepest",
         rollback="restart the slow dependency",
         note="a slow deep dependency whose time-outs spread to every caller (the twin's cascade)"),
)
KINDS: dict[str, Kind] = {k.name: k for k in DAILY + GAME_DAY}
