"""The fault catalog: each fault has an onset, a signature in the metrics, the
actions that fix it and those that only relieve it.

A fault stays until its resolution predicate holds in the world state: a fault
that no right action addresses persists, and a wrong action does not fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from twin import errors
from twin.config import FaultSpec
from twin.groundtruth import FaultRecord, HumanAction

if TYPE_CHECKING:
    from twin.world import World

ACTIVE, ERROR, DELETED = 1, 3, 4


class Fault:
    """Base of every fault. Subclasses set the class-level catalog entries."""

    type: ClassVar[str]
    signature: ClassVar[str]
    fixes: ClassVar[tuple[str, ...]]
    relieves: ClassVar[tuple[str, ...]] = ()
    self_clearing: ClassVar[bool] = False

    def __init__(self, world: World, spec: FaultSpec, fid: str) -> None:
        self.w = world
        self.spec = spec
        self.rec = FaultRecord(fid, self.type, world.now(), self.root_cause(), [], [])
        self.fixer: str | None = None
        self.expired = False
        self.baseline: dict[int, int] = {}

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

    def _pick_server(self, s: int) -> int | None:
        ids = self.w.servers_of(s, (ACTIVE,))
        return int(self.w.rng_faults.choice(ids)) if len(ids) else None

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
        if kind in self.fixes:
            self.fixer = actor
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
        i = self._pick_server(s)
        if i is None:
            return False
        self._snapshot([s])
        self.server = i
        self.rec.servers = [self._sid(i)]
        self.w.crash(i)
        return True

    def resolved(self) -> bool:
        w, i = self.w, self.server
        if w.status[i] == ACTIVE and w.serving()[i]:
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

    def _host(self) -> int:
        w = self.w
        if self.spec.hypervisor:
            return w.hv_index[self.spec.hypervisor]
        counts = np.bincount(w.hv[: w.n][w.status[: w.n] == ACTIVE], minlength=w.n_hv)
        counts = np.where(w.hv_up, counts, -1)
        return int(np.argmax(counts))

    def start(self) -> bool:
        w = self.w
        h = self._host()
        if not w.hv_up[h]:
            return False
        on = w.servers_on(np.array([h]))
        self._snapshot_of(on)  # the capacity to restore: counted before the host dies
        w.fail_hosts(np.array([h]))
        self.host = h
        self.rec.hypervisors = [w.hv_names[h]]
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
        self.release = self.w.releases.ship(self.spec.service, self.release_effect(), self.spec.severity, fault=self)
        self.bad_version = self.release.seq
        return True

    def release_effect(self) -> str:
        return self.effect

    def resolved(self) -> bool:
        return not self.w.releases.affected(self.release)

    def on_action(self, kind: str, server: int, service: int, actor: str) -> None:
        super().on_action(kind, server, service, actor)
        if self.fixer == "pipeline":  # the pipeline's next release replaced it: nobody fixed it
            self.fixer = "self"

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
        h = HypervisorFailure._host(self)  # the busiest up host, or the one named
        on = np.flatnonzero((w.hv[: w.n] == h) & (w.status[: w.n] == ACTIVE))
        if not len(on):
            return False
        self._snapshot_of(on)
        self.host, self.on = h, on
        self.rec.hypervisors = [w.hv_names[h]]
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
        i = self._pick_server(s)
        if i is None:
            return False
        self._snapshot([s])
        self.server = i
        self.rec.servers = [self._sid(i)]
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
        ids = np.flatnonzero((w.svc[: w.n] == s) & (w.pricing[: w.n] == 1) & (w.status[: w.n] == ACTIVE))
        if not len(ids):
            return False
        self._snapshot([s])
        k = max(1, int(round(0.2 * self.spec.severity * len(ids))))
        hit = w.rng_faults.choice(ids, size=min(k, len(ids)), replace=False)
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
    """Schedules the scenario's faults, routes completed actions to them, and records ground truth."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.active: list[Fault] = []
        self.count = 0
        world.listeners.append(self.on_action)
        for spec in world.cfg.faults:
            world.later(spec.at, lambda spec=spec: self.inject(spec))
        rf = world.cfg.random_faults
        if rf and rf.rate_per_day > 0:
            rng = world.rng_faults
            n = rng.poisson(rf.rate_per_day * world.cfg.duration / 86400.0)
            times = np.sort(rng.uniform(0, world.cfg.duration, n))
            names = rf.services or world.svc_names
            for t in times:
                ftype = str(rng.choice(rf.types))
                svc = str(rng.choice(names))
                spec = FaultSpec(type=ftype, at=float(t), service=svc)
                world.later(float(t), lambda spec=spec: self.inject(spec))
        self._spot_rate = world.cfg.prices.spot.preemption_rate_per_hour

    def inject(self, spec: FaultSpec) -> Fault | None:
        self.count += 1
        fault = CATALOG[spec.type](self.w, spec, f"F{self.count:03d}-{spec.type}")
        if not fault.start():
            return None
        self.active.append(fault)
        self.w.truth.faults.append(fault.rec)
        return fault

    def on_action(self, kind: str, server: int, service: int, actor: str) -> None:
        for f in self.active:
            f.on_action(kind, server, service, actor)

    def tick(self, t: float) -> None:
        if self._spot_rate > 0:
            self._preempt(t)
        for f in list(self.active):
            if f.resolved():
                self._close(f, t)

    def _close(self, f: Fault, t: float) -> None:
        f.rec.end = t
        if f.fixer:
            f.rec.resolved_by = f.fixer
        elif f.expired:
            f.rec.resolved_by = "self"
        else:
            acts = [self.w.last_actor.get(self.w.svc_index[s]) for s in f.rec.services]
            f.rec.resolved_by = "human" if "human" in acts else ("automation" if "automation" in acts else "self")
        f.clear()
        self.active.remove(f)

    def _preempt(self, t: float) -> None:
        w = self.w
        spot = np.flatnonzero((w.pricing[: w.n] == 1) & (w.status[: w.n] == ACTIVE))
        if not len(spot):
            return
        p = self._spot_rate * w.dt / 3600.0
        hit = spot[w.rng_spot.random(len(spot)) < p]
        for s in sorted({int(w.svc[i]) for i in hit}):
            self.inject(FaultSpec(type="spot_preemption", at=t, service=w.svc_names[s], severity=0.01))

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
