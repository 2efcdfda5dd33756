"""The fault catalog: each fault has an onset, a signature in the metrics, the
actions that fix it and those that only relieve it.

A fault stays until its resolution predicate holds in the world state: a fault
that no right action addresses persists, and a wrong action does not fix it.

Every fault is the same for every engine set on a seed: its onset (``at`` plus a ``jitter`` draw) and its
target (a server, a host) come from the fault's own random stream (seeded by the world's seed and the fault
spec) against the *initial* world, resolved when the world is built (:class:`FaultManager`).  Nothing an
engine does moves a scheduled fault or changes what it hits, except that a chosen initial server an engine
has deleted by the onset is replaced by a fixed rule (see :meth:`Fault._initial_server`), and recorded.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from twin import errors
from twin.config import FaultSpec
from twin.groundtruth import FaultRecord, HumanAction

if TYPE_CHECKING:
    from twin.world import World

ACTIVE, ERROR, DELETED, SHELVED = 1, 3, 4, 5
_FAULT_STREAM = 0xFA17  # spawn keys of the per-fault random streams
_PREEMPT_STREAM = 0x5907  # the stream of runtime spot preemptions


@dataclass
class Target:
    """What a fault hits, resolved from its own random stream before its onset (see :class:`FaultManager`)."""

    onset: float = 0.0
    servers: list[int] = field(default_factory=list)  # server rows in the fault's order of preference
    host: int | None = None  # the hypervisor of host-level faults
    count: int | None = None  # how many of ``servers`` (spot preemption); None: the fault decides


class Fault:
    """Base of every fault. Subclasses set the class-level catalog entries."""

    type: ClassVar[str]
    signature: ClassVar[str]
    fixes: ClassVar[tuple[str, ...]]
    relieves: ClassVar[tuple[str, ...]] = ()
    self_clearing: ClassVar[bool] = False

    def __init__(self, world: World, spec: FaultSpec, fid: str, target: Target | None = None) -> None:
        self.w = world
        self.spec = spec
        self.target = target or Target(onset=world.now())
        self.rec = FaultRecord(fid, self.type, world.now(), self.root_cause(), [], [])
        self.expired = False
        self.baseline: dict[int, int] = {}
        self.last_action: dict | None = None  # the latest completed action on a component the fault covers
        self.cover: np.ndarray = np.empty(0, dtype=np.int64)  # services whose SLO mitigation watches
        self.breached = False  # some covered service breached its SLO since the onset
        self.clear_since: float | None = None  # start of the current stretch without a breach

    def root_cause(self) -> str:
        return self.type

    # --- helpers
    def _svc(self) -> int:
        return self.w.svc_index[self.spec.service] if self.spec.service else -1

    def _serving_count(self, s: int) -> int:
        w = self.w
        up = w.serving()
        return int(np.count_nonzero(up & (w.svc[: w.n] == s)))

    def _snapshot(self, services: list[int]) -> None:
        self.baseline = {s: self._serving_count(s) for s in services}
        self.rec.services = [self.w.svc_names[s] for s in services]

    def _snapshot_of(self, servers: np.ndarray) -> None:
        """Snapshot the services the given server rows belong to."""
        svc = self.w.svc[servers]
        self._snapshot(sorted({int(s) for s in svc[svc >= 0]}))

    def _capacity_restored(self) -> bool:
        return all(self._serving_count(s) >= b for s, b in self.baseline.items())

    def _initial_server(self, s: int) -> int | None:
        """The first server of the fault's resolved order that still exists (not deleted or being deleted) on a
        host (a shelved server is on none: nothing to crash or fill).

        If an engine deleted all of them by the onset, the fixed rule is: the lowest-numbered ACTIVE server of
        the service now (``rec.retargeted`` is set); None if it has none."""
        w = self.w
        for i in self.target.servers:
            if w.status[i] != DELETED and w.status[i] != SHELVED and not w.deleting[i]:
                return i
        ids = w.servers_of(s, (ACTIVE,))
        if not len(ids):
            return None
        self.rec.retargeted = True
        return int(ids[0])

    def _sid(self, i: int) -> str:
        from twin.names import server_id

        return server_id(i)

    # --- lifecycle
    def start(self) -> bool:
        """Apply the fault; False if there is nothing to hit (then it is not recorded)."""
        raise NotImplementedError

    def resolved(self) -> bool:
        raise NotImplementedError

    def clear(self) -> None:
        """Remove what lingers once the fault is resolved."""

    def expire(self) -> None:
        """End of a self-clearing fault's duration."""
        self.expired = True

    def matches(self, server: int, service: int) -> bool:
        sid = self._sid(server) if server >= 0 else None
        return (sid is not None and sid in self.rec.servers) or (
            service >= 0 and self.w.svc_names[service] in self.rec.services)

    def on_action(self, kind: str, server: int, service: int, actor: str) -> None:
        if not self.matches(server, service):
            return
        w = self.w
        target = self._sid(server) if server >= 0 else w.svc_names[service]
        self.last_action = {"at": w.now(), "actor": actor, "kind": kind, "target": target}
        if kind in self.fixes:
            self.fixed(kind, server, service)
        elif kind in self.relieves:
            self.rec.relieved.append((self.w.now(), kind))

    def fixed(self, kind: str, server: int, service: int) -> None:
        """A right action completed on an affected component."""

    def human_fix(self) -> list[tuple[str, str]]:
        """Apply the right fix as the on-call human; returns (kind, target) pairs."""
        raise NotImplementedError


# ------------------------------------------------------------------- catalog
class ServerCrash(Fault):
    type = "server_crash"
    signature = "server_up drops to 0 for one server; the service's capacity falls"
    fixes = ("reboot_server", "start_server", "migrate_server", "create_server")

    def start(self) -> bool:
        s = self._svc()
        i = self._initial_server(s)
        if i is None:
            return False
        self._snapshot([s])
        self.server = i
        self.rec.servers = [self._sid(i)]
        self.rec.root_component = self._sid(i)
        self.w.crash(i)
        return True

    def resolved(self) -> bool:
        w, i = self.w, self.server
        if w.status[i] == ACTIVE and w.is_serving(i):
            return True
        return bool((w.status[i] == DELETED or w.deleting[i]) and self._capacity_restored())

    def human_fix(self) -> list[tuple[str, str]]:
        sid = self._sid(self.server)
        if self.w.status[self.server] == DELETED or self.w.deleting[self.server]:
            self.w.create_servers(self.spec.service, actor="human")
            return [("create_server", self.spec.service)]
        self.w.reboot_server(sid, hard=True, actor="human")
        return [("reboot_server", sid)]


class HypervisorFailure(Fault):
    type = "hypervisor_failure"
    signature = "every server on one hypervisor stops answering (server_up 0); services lose capacity"
    fixes = ("migrate_server", "create_server")

    def start(self) -> bool:
        w = self.w
        h = self.target.host
        if h is None or not w.hv_up[h]:
            return False
        on = w.servers_on(np.array([h]))
        self._snapshot_of(on)  # the capacity to restore: counted before the host dies
        w.fail_hosts(np.array([h]))
        self.host = h
        self.rec.hypervisors = [w.hv_names[h]]
        self.rec.root_component = w.hv_names[h]
        self.rec.servers = [self._sid(int(i)) for i in on]
        w.later(4 * 3600.0, self._repair)
        return True

    def _repair(self) -> None:
        self.w.repair_hosts(np.array([self.host]))  # the hardware is fixed; its old servers stay in ERROR

    def resolved(self) -> bool:
        return self._capacity_restored()

    def human_fix(self) -> list[tuple[str, str]]:
        done = []
        for sid in self.rec.servers:
            i = int(sid[4:])
            if self.w.status[i] == ERROR and not self.w.deleting[i] and self.w.busy_until[i] <= self.w.now():
                self.w.migrate_server(sid, actor="human")
                done.append(("migrate_server", sid))
        return done


class AzOutage(Fault):
    type = "az_outage"
    signature = "every hypervisor of one zone down; services spread over it lose a share of capacity"
    fixes = ("create_server", "migrate_server")
    self_clearing = True

    def start(self) -> bool:
        w = self.w
        z = w.zone_names.index(self.spec.zone) if self.spec.zone else 0
        hosts = np.flatnonzero((w.hv_zone == z) & w.hv_up)
        if not len(hosts):
            return False
        on = w.servers_on(hosts)
        self._snapshot_of(on)  # the capacity to restore: counted before the zone goes dark
        w.fail_hosts(hosts)
        self.hosts, self.on = hosts, on
        self.rec.zones = [w.zone_names[z]]
        self.rec.root_component = w.zone_names[z]
        self.rec.servers = [self._sid(int(i)) for i in on]
        w.later(self.spec.duration or 3600.0, self.expire)
        return True

    def expire(self) -> None:
        super().expire()
        self.w.repair_hosts(self.hosts)
        self.w.recover(self.on)

    def resolved(self) -> bool:
        return self._capacity_restored()

    def human_fix(self) -> list[tuple[str, str]]:
        done = []
        for s, b in self.baseline.items():
            missing = b - self._serving_count(s)
            name = self.w.svc_names[s]
            if missing > 0:
                self.w.create_servers(name, count=missing, actor="human")
                done.append(("create_server", name))
        return done


class _ReleaseFault(Fault):
    """Faults that ship with a release (twin/releases.py): the servers running the bad version carry its
    effect; rolling back (or rolling a good version over it) is the fix."""

    fixes = ("rollback_deploy", "deploy")
    effect: ClassVar[str]

    def start(self) -> bool:
        s = self._svc()
        self._snapshot([s])
        self.rec.root_component = self.spec.service or ""
        self.release = self.w.releases.ship(self.spec.service, self.release_effect(), self.spec.severity, fault=self)
        self.bad_version = self.release.seq
        return True

    def release_effect(self) -> str:
        return self.effect

    def resolved(self) -> bool:
        return not self.w.releases.affected(self.release)

    def human_fix(self) -> list[tuple[str, str]]:
        r, s, name = self.w.releases, self._svc(), self.spec.service
        if r.current[s] == self.release.idx:
            self.w.rollback_deploy(name, actor="human")
            return [("rollback_deploy", name)]
        r.deploy(name, r.current_version(s), 1.0, actor="human")  # a newer version is current: roll it out
        return [("deploy", name)]


class MemoryLeak(_ReleaseFault):
    type = "memory_leak"
    signature = "memory_util climbs on the servers running a release, then OOM kills (servers flap)"
    relieves = ("restart_service", "reboot_server", "create_server")
    effect = "memory_leak"


class BadDeploy(_ReleaseFault):
    type = "bad_deploy"
    signature = ("right after a release, on the servers running it: error_ratio jumps (or, by the release's "
                 "effect, latency, CPU or memory per request rises)")
    effect = "error_ratio"

    def release_effect(self) -> str:
        return self.spec.effect or self.effect


class DbPoolExhaustion(Fault):
    type = "db_pool_exhaustion"
    signature = "pool_util of a database climbs to 1, then its errors and latency rise and spread upstream"
    fixes = ("restart_service",)
    relieves = ("set_service_setting",)

    def start(self) -> bool:
        s = self._svc()
        pool = self.w.ensure_pool(s)
        self._snapshot([s])
        self.rec.root_component = self.spec.service or ""
        self.w.set_conn_leak(s, pool * self.spec.severity / 300.0)
        return True

    def fixed(self, kind: str, server: int, service: int) -> None:
        self.w.set_conn_leak(self._svc(), 0.0)

    def resolved(self) -> bool:
        s = self._svc()
        return bool(self.w.svc_conn_leak[s] == 0 and self.w.svc_leaked[s] == 0)

    def human_fix(self) -> list[tuple[str, str]]:
        self.w.restart_service(self.spec.service, actor="human")
        return [("restart_service", self.spec.service)]


class LatencyDegradation(Fault):
    type = "latency_degradation"
    signature = "latency_p95_ms of one service rises several-fold at unchanged load (stuck worker pool)"
    fixes = ("restart_service",)
    relieves = ("create_server",)

    def start(self) -> bool:
        s = self._svc()
        self._snapshot([s])
        self.rec.root_component = self.spec.service or ""
        self.mult = 1.0 + 4.0 * self.spec.severity
        self.w.scale_latency(s, self.mult)
        self.done = False
        return True

    def fixed(self, kind: str, server: int, service: int) -> None:
        self.done = True

    def resolved(self) -> bool:
        return self.done

    def clear(self) -> None:
        self.w.scale_latency(self._svc(), 1.0 / self.mult)

    def human_fix(self) -> list[tuple[str, str]]:
        self.w.restart_service(self.spec.service, actor="human")
        return [("restart_service", self.spec.service)]


class CpuThrottling(Fault):
    type = "cpu_throttling"
    signature = "servers on one hypervisor get a fraction of their CPU: their cpu_util and latency rise"
    fixes = ("migrate_server", "delete_server", "resize_server")
    relieves = ("create_server",)

    def start(self) -> bool:
        w = self.w
        h = self.target.host  # the initially busiest host, or the one named
        if h is None:
            return False
        on = np.flatnonzero((w.hv[: w.n] == h) & (w.status[: w.n] == ACTIVE))
        if not len(on):
            return False
        self._snapshot_of(on)
        self.host, self.on = h, on
        self.rec.hypervisors = [w.hv_names[h]]
        self.rec.root_component = w.hv_names[h]
        self.rec.servers = [self._sid(int(i)) for i in on]
        self.factor = max(0.05, 0.3 / self.spec.severity)
        w.set_throttle(h, self.factor)
        if self.spec.duration:
            w.later(self.spec.duration, self.expire)
        return True

    def expire(self) -> None:
        super().expire()
        self.w.set_throttle(self.host, 1.0)

    def clear(self) -> None:
        # with its servers moved away, the noisy neighbour is evicted and the host recovers
        self.w.set_throttle(self.host, 1.0)

    def resolved(self) -> bool:
        w = self.w
        if self.expired:
            return True
        still = (w.hv[self.on] == self.host) & (w.status[self.on] != DELETED) & ~w.deleting[self.on]
        return not still.any()

    def human_fix(self) -> list[tuple[str, str]]:
        done = []
        for i in self.on:
            if self.w.hv[i] == self.host and self.w.status[i] != DELETED and self.w.busy_until[i] <= self.w.now():
                self.w.migrate_server(self._sid(int(i)), actor="human")
                done.append(("migrate_server", self._sid(int(i))))
        return done


class DiskPressure(Fault):
    type = "disk_pressure"
    signature = "disk_util of one server climbs to 1 (runaway logs), then that server fails every request"
    fixes = ("reboot_server", "resize_server", "delete_server")

    def start(self) -> bool:
        s = self._svc()
        i = self._initial_server(s)
        if i is None:
            return False
        self._snapshot([s])
        self.server = i
        self.rec.servers = [self._sid(i)]
        self.rec.root_component = self._sid(i)
        self.w.set_disk_rate(i, (1.0 - self.w.svc_disk[s]) / (600.0 / self.spec.severity))
        return True

    def fixed(self, kind: str, server: int, service: int) -> None:
        if server == self.server:
            self.w.clear_disk(server)

    def matches(self, server: int, service: int) -> bool:
        return server == self.server

    def resolved(self) -> bool:
        i = self.server
        return bool(self.w.disk_rate[i] == 0 or self.w.status[i] == DELETED)

    def human_fix(self) -> list[tuple[str, str]]:
        sid = self._sid(self.server)
        self.w.reboot_server(sid, hard=True, actor="human")
        return [("reboot_server", sid)]


class NetworkPartition(Fault):
    type = "network_partition"
    signature = "servers in one zone cannot reach their dependencies: their requests fail; error_ratio rises"
    fixes = ("set_lb_weights", "delete_server")
    self_clearing = True

    def start(self) -> bool:
        w = self.w
        z = w.zone_names.index(self.spec.zone) if self.spec.zone else 0
        on = np.flatnonzero((w.hv_zone[w.hv[: w.n]] == z) & w.alive())
        self.zone, self.on = z, on
        self._snapshot_of(on)
        self.rec.zones = [w.zone_names[z]]
        self.rec.root_component = w.zone_names[z]
        self.rec.servers = [self._sid(int(i)) for i in on]
        w.set_partitioned(z, True)
        w.later(self.spec.duration or 1800.0, self.expire)
        return True

    def expire(self) -> None:
        super().expire()
        w = self.w
        w.set_partitioned(self.zone, False)
        # the operator who drained the zone puts its servers back once the network heals
        for name, sids in getattr(self, "drained", {}).items():
            back = {sid: 1.0 for sid in sids if w.status[int(sid[4:])] != DELETED}
            if back:
                w.set_lb_weights(name, back, actor="human")
                w.truth.human_actions.append(HumanAction(w.now(), self.rec.id, "set_lb_weights", name))

    def resolved(self) -> bool:
        w = self.w
        if self.expired:
            return True
        on = self.on
        taking = (w.weight[on] > 0) & (w.status[on] != DELETED) & ~w.deleting[on] & (w.hv_zone[w.hv[on]] == self.zone)
        return not taking.any()

    def human_fix(self) -> list[tuple[str, str]]:
        done = []
        for s in self.baseline:
            name = self.w.svc_names[s]
            ids = [i for i in self.on if self.w.svc[i] == s and self.w.status[i] != DELETED]
            if ids:
                sids = [self._sid(int(i)) for i in ids]
                self.w.set_lb_weights(name, dict.fromkeys(sids, 0.0), actor="human")
                self.drained = getattr(self, "drained", {}) | {name: sids}
                done.append(("set_lb_weights", name))
        return done


class SpotPreemption(Fault):
    type = "spot_preemption"
    signature = "spot servers of a service vanish (DELETED by the provider); capacity falls"
    fixes = ("create_server",)

    def start(self) -> bool:
        w = self.w
        s = self._svc()
        order = self.target.servers
        k = self.target.count or max(1, int(round(0.2 * self.spec.severity * len(order))))
        hit = [i for i in order if w.status[i] == ACTIVE and not w.deleting[i]][:k]
        if not hit:  # every chosen server is gone: the lowest-numbered ACTIVE spot servers of the service now
            now = np.flatnonzero((w.svc[: w.n] == s) & (w.pricing[: w.n] == 1) & (w.status[: w.n] == ACTIVE)
                                 & ~w.deleting[: w.n])
            hit = now[:k].tolist()
            self.rec.retargeted = bool(hit) and bool(order)
        if not hit:
            return False
        self._snapshot([s])
        self.rec.root_component = self.spec.service or ""
        self.rec.servers = [self._sid(int(i)) for i in hit]
        for i in hit:
            w.preempt(int(i))
        w.truth.preemptions += len(hit)
        return True

    def resolved(self) -> bool:
        return self._capacity_restored()

    def human_fix(self) -> list[tuple[str, str]]:
        missing = sum(b - self._serving_count(s) for s, b in self.baseline.items())
        if missing > 0:
            self.w.create_servers(self.spec.service, count=missing, actor="human")
            return [("create_server", self.spec.service)]
        return []


CATALOG: dict[str, type[Fault]] = {c.type: c for c in (
    ServerCrash, HypervisorFailure, AzOutage, MemoryLeak, DbPoolExhaustion, LatencyDegradation, BadDeploy,
    CpuThrottling, DiskPressure, NetworkPartition, SpotPreemption)}


class FaultManager:
    """Schedules the scenario's faults, routes completed actions to them, and records ground truth.

    Each scheduled fault (the scenario's, and the random ones drawn up front from ``rng_faults``) gets its own
    random stream, seeded by the world's seed and the fault spec, so adding a fault moves no other.  From it,
    at build time and against the initial world: the onset (``at`` + uniform ``[0, jitter)``), then the
    target — a server-level fault's order of preference over its service's initial servers, a host-level
    fault's host (the one named, else the host with the most initial ACTIVE servers, ties drawn).  Faults
    injected while running (chaos experiments, releases, spot preemptions) resolve their target when
    injected, against the world as it is then.
    """

    def __init__(self, world: World) -> None:
        self.w = world
        self.active: list[Fault] = []
        self.watch: list[Fault] = []  # faults whose mitigation is still open (see _mitigation)
        self.count = 0
        self._runtime = 0
        world.listeners.append(self.on_action)
        callers: list[set[int]] = [set() for _ in range(world.n_svc)]
        for a, b in zip(world.e_src.tolist(), world.e_dst.tolist(), strict=True):
            callers[b].add(a)
        self._callers = callers
        specs = list(world.cfg.faults)
        rf = world.cfg.random_faults
        if rf and rf.rate_per_day > 0:
            rng = world.rng_faults
            n = rng.poisson(rf.rate_per_day * world.cfg.duration / 86400.0)
            times = np.sort(rng.uniform(0, world.cfg.duration, n))
            names = rf.services or world.svc_names
            for t in times:
                ftype = str(rng.choice(rf.types))
                svc = str(rng.choice(names))
                specs.append(FaultSpec(type=ftype, at=float(t), service=svc))
        seen: dict[int, int] = {}
        self.plan: list[tuple[FaultSpec, Target]] = []  # every scheduled fault, resolved at build time
        for spec in specs:
            key = zlib.crc32(spec.model_dump_json().encode())
            seen[key] = seen.get(key, 0) + 1
            rng = np.random.default_rng(np.random.SeedSequence(world.cfg.seed, spawn_key=(_FAULT_STREAM, key,
                                                                                           seen[key])))
            target = self.resolve(spec, rng)
            self.plan.append((spec, target))
            world.later(target.onset, lambda spec=spec, target=target: self.inject(spec, target))
        self._spot_rate = world.cfg.prices.spot.preemption_rate_per_hour
        self.rng_preempt = np.random.default_rng(np.random.SeedSequence(world.cfg.seed, spawn_key=(_PREEMPT_STREAM,)))

    def resolve(self, spec: FaultSpec, rng: np.random.Generator) -> Target:
        """The onset and target of ``spec``, drawn from ``rng`` against the world as it is now."""
        w = self.w
        n = w.n
        onset = float(spec.at) + (float(rng.uniform(0.0, spec.jitter)) if spec.jitter > 0 else 0.0)
        target = Target(onset=onset)
        s = w.svc_index.get(spec.service, -1) if spec.service else -1
        live = (w.status[:n] != DELETED) & ~w.deleting[:n]
        if spec.type in ("server_crash", "disk_pressure") and s >= 0:
            ids = np.flatnonzero((w.svc[:n] == s) & (w.status[:n] == ACTIVE) & live)
            target.servers = rng.permutation(ids).tolist()
        elif spec.type == "spot_preemption" and s >= 0:
            ids = np.flatnonzero((w.svc[:n] == s) & (w.pricing[:n] == 1) & (w.status[:n] == ACTIVE) & live)
            target.servers = rng.permutation(ids).tolist()
        elif spec.type in ("hypervisor_failure", "cpu_throttling"):
            if spec.hypervisor:
                target.host = w.hv_index[spec.hypervisor]
            else:  # the busiest up host (most ACTIVE servers); ties drawn
                counts = np.bincount(w.hv[:n][(w.status[:n] == ACTIVE) & live], minlength=w.n_hv)
                counts = np.where(w.hv_up, counts, -1)
                best = np.flatnonzero(counts == counts.max())
                target.host = int(best[0]) if len(best) == 1 else int(rng.choice(best))
        return target

    def inject(self, spec: FaultSpec, target: Target | None = None) -> Fault | None:
        """Start ``spec`` now; without a resolved ``target`` (a runtime injection) it is resolved now."""
        self.count += 1
        if target is None:
            self._runtime += 1
            rng = np.random.default_rng(np.random.SeedSequence(self.w.cfg.seed,
                                                               spawn_key=(_FAULT_STREAM, 0, self._runtime)))
            target = self.resolve(spec, rng)
        fault = CATALOG[spec.type](self.w, spec, f"F{self.count:03d}-{spec.type}", target)
        if not fault.start():
            return None
        fault.cover = self._upstream(fault.rec.services)
        self.active.append(fault)
        self.watch.append(fault)
        self.w.truth.faults.append(fault.rec)
        return fault

    def _upstream(self, services: list[str]) -> np.ndarray:
        """The services given and every service calling them, directly or not: where their errors show."""
        out = {self.w.svc_index[s] for s in services}
        todo = list(out)
        while todo:
            for c in self._callers[todo.pop()]:
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return np.array(sorted(out), dtype=np.int64)

    def on_action(self, kind: str, server: int, service: int, actor: str) -> None:
        for f in self.active:
            f.on_action(kind, server, service, actor)

    def tick(self, t: float) -> None:
        if self._spot_rate > 0:
            self._preempt(t)
        if self.watch:
            self._mitigation(t)
        for f in list(self.active):
            if f.resolved():
                self._close(f, t)

    def _mitigation(self, t: float) -> None:
        """Track each fault's ``mitigated_at`` from this tick's SLO breaches (see FaultRecord)."""
        breach = ~np.isnan(self.w.truth.breach_open)
        since = t - self.w.dt  # the step this tick covered: a breach that closed now ended at its start
        for f in list(self.watch):
            if breach[f.cover].any():
                f.breached, f.clear_since = True, None
            elif f.breached and f.clear_since is None:
                f.clear_since = max(since, f.rec.start)
            if f.rec.end is not None and (not f.breached or f.clear_since is not None):
                self._mitigated(f)

    def _mitigated(self, f: Fault) -> None:
        f.rec.mitigated_at = f.clear_since if f.breached else None
        self.watch.remove(f)

    def _close(self, f: Fault, t: float) -> None:
        """Resolution first held at ``t``: attribute it to the latest completed action on a covered component."""
        f.rec.end = t
        a = f.last_action
        if f.expired or a is None:
            f.rec.resolved_by, f.rec.resolving_action = "self", None
        else:
            f.rec.resolving_action = dict(a)
            # the world's own release pipeline replacing a bad release fixed nothing: the fault went away
            f.rec.resolved_by = "self" if a["actor"] == "pipeline" else a["actor"]
        f.clear()
        self.active.remove(f)

    def _preempt(self, t: float) -> None:
        w = self.w
        spot = np.flatnonzero((w.pricing[: w.n] == 1) & (w.status[: w.n] == ACTIVE))
        if not len(spot):
            return
        p = self._spot_rate * w.dt / 3600.0
        hit = spot[self.rng_preempt.random(len(spot)) < p]
        for s in sorted({int(w.svc[i]) for i in hit}):
            mine = [int(i) for i in hit if w.svc[i] == s]
            self.inject(FaultSpec(type="spot_preemption", at=t, service=w.svc_names[s], severity=0.01),
                        Target(onset=t, servers=mine, count=len(mine)))

    def human_fix(self, f: Fault) -> list[tuple[str, str]]:
        try:
            done = f.human_fix()
        except errors.TwinError:
            return []
        for kind, target in done:
            self.w.truth.human_actions.append(HumanAction(self.w.now(), f.rec.id, kind, target))
        return done

    def finish(self, t: float) -> None:
        for f in list(self.active):
            if f.resolved():
                self._close(f, t)
        for f in list(self.watch):  # still breached at the end of the run: never mitigated
            if f.rec.end is not None and (not f.breached or f.clear_since is not None):
                self._mitigated(f)
            elif not f.breached:
                f.rec.mitigated_at = None
            else:
                f.rec.mitigated_at = f.clear_since
