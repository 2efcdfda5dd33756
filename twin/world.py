"""The simulated cloud: topology, servers, services, physics, billing and control API.

Per-tick physics is vectorised with numpy over the whole fleet; SimPy carries
the discrete events (boots, deletions, migrations, faults).  Every random draw
comes from a named stream of one seed, so a run is deterministic for a seed,
and traffic and faults are identical across the engine sets compared.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from twin import errors
from twin.config import Distribution, WorldConfig
from twin.groundtruth import GroundTruth
from twin.telemetry import AlertEvaluator, MetricStore
from twin.traffic import rate_series

BUILD, ACTIVE, SHUTOFF, ERROR, DELETED = range(5)
STATUS = ("BUILD", "ACTIVE", "SHUTOFF", "ERROR", "DELETED")
PRICING = ("on_demand", "spot", "reserved")
SERVICE_METRICS = ["request_rate", "served_rate", "error_ratio", "latency_p95_ms", "cpu_util", "memory_util",
                   "disk_util", "pool_util", "network_mbps", "active_servers"]
SERVER_METRICS = ["server_cpu_util", "server_memory_util", "server_disk_util", "server_network_mbps", "server_up"]
TIMEOUT_MS = 10_000.0
P95_OVER_MEAN = float(np.log(20.0))  # p95 of an exponential response time
ROWS_AS_SLICE = 0.75  # a tick indexes live rows with a slice over all rows while at least this share is live
VERIFY_CACHE = os.environ.get("ZEROOPS_VERIFY_CACHE", "") not in ("", "0")  # recompute cached vectors and compare


@dataclass(slots=True)
class _Rows:
    """Rows of the server arrays a tick looks at, with their per-row constants (see ``World._tick_rows``)."""

    key: tuple[int, int]  # (server rows, deleted rows) when built
    idx: slice | np.ndarray
    rows: np.ndarray  # the row numbers idx selects
    svc_c: np.ndarray
    svc_ok: np.ndarray
    all_svc_ok: bool
    svc_proj: np.ndarray
    pricing: np.ndarray
    created: np.ndarray
    deleted: np.ndarray
    any_spot: bool
    any_reserved: bool
    any_spot_all: bool
    created_sorted: bool  # created is nondecreasing (rows are created in time order)
    finite_del: np.ndarray  # positions of rows with a deletion time (deleted within the step the rows were built)
    scratch: np.ndarray | None = None  # per-server scrape rows (see World._scrape)


@dataclass(slots=True)
class _Groups:
    """Rows of a ``_Structure`` grouped into identical servers: same service, serving state, scrape state,
    partition, LB share and capacity (see ``World._groups``).  Per-group arrays, one entry per group."""

    svc: np.ndarray
    cnt: np.ndarray  # rows in the group (float)
    share: np.ndarray
    cap: np.ndarray
    lat0: np.ndarray
    up: np.ndarray
    tracked: np.ndarray
    part: np.ndarray | None
    disk: np.ndarray
    mem: np.ndarray
    mbps: np.ndarray
    full: np.ndarray  # per row of the world (0..n): its group, or len(svc) (scraped as NaN) outside the rows
    static_rows: np.ndarray | None = None  # server_memory_util, server_disk_util, server_up rows (set at a scrape)

    def arrays(self) -> tuple[np.ndarray | None, ...]:
        return (self.svc, self.cnt, self.share, self.cap, self.lat0, self.up, self.tracked, self.part, self.disk,
                self.mem, self.mbps, self.full)


@dataclass(slots=True)
class _Structure:
    """Per-row vectors that change only when a server, host or fault changes (see ``World._structure``)."""

    rows: _Rows  # the row set they were computed over
    gen: int  # World._gen when computed
    valid_until: float  # the earliest down_until after the computation time: a server comes back up then
    st: np.ndarray
    hv: np.ndarray
    up: np.ndarray
    share: np.ndarray  # load-balancer share of its service's offered load
    cap: np.ndarray  # requests per second it can serve (throttling included)
    part: np.ndarray | None  # in a partitioned zone (None: no zone is partitioned)
    tracked: np.ndarray  # neither deleted nor building (scraped as a number, else NaN)
    fl: np.ndarray  # flavor
    od_rate: np.ndarray  # on-demand price per second of its flavor
    groups: _Groups | None  # None: rows not grouped (some service's servers differ in share or capacity)
    od_rate_proj: np.ndarray | None = None  # od_rate summed per project (set by _bill)

    def diff(self, other: _Structure) -> list[str]:
        """Names of the vectors that differ from ``other``'s."""
        def eq(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))

        bad = [k for k in ("st", "hv", "up", "share", "cap", "part", "tracked", "fl", "od_rate")
               if not eq(getattr(self, k), getattr(other, k))]
        g, h = self.groups, other.groups
        if (g is None) != (h is None) or (g is not None and h is not None and not all(
                eq(a, b) for a, b in zip(g.arrays(), h.arrays(), strict=True))):
            bad.append("groups")
        return bad


def server_id(i: int) -> str:
    return f"srv-{i:06d}"


def server_index(sid: str) -> int:
    if not sid.startswith("srv-") or not sid[4:].isdigit():
        raise errors.NotFound(f"no server {sid!r}")
    return int(sid[4:])


class World:
    """One simulated cloud. Build from a :class:`WorldConfig`, then ``run()``."""

    def __init__(self, cfg: WorldConfig, base_dir: Path | None = None, env: simpy.Environment | None = None) -> None:
        self.cfg = cfg
        self.env = env or simpy.Environment()
        seq = np.random.SeedSequence(cfg.seed)
        (self.rng_traffic, self.rng_noise, self.rng_lat, self.rng_faults, self.rng_api, self.rng_spot) = (
            np.random.default_rng(s) for s in seq.spawn(6)
        )
        self.dt = cfg.tick
        self.ticks = 0
        self.listeners: list[Callable[[str, int, int, str], None]] = []  # (kind, server, service, actor)
        self._gen = 0  # bumped by invalidate(): structural per-server state changed
        self._struct: _Structure | None = None  # see _structure
        self.verify_cache = VERIFY_CACHE
        self._build_topology()
        self._build_services(base_dir)
        self._build_servers()
        self.truth = GroundTruth(self.svc_names)
        scrape = cfg.telemetry.scrape_interval
        self.scrape_every = max(1, int(round(scrape / self.dt)))
        self.metrics = MetricStore(cfg.telemetry.window, self.dt * self.scrape_every, self.svc_names, SERVICE_METRICS,
                                   SERVER_METRICS, self.cap)
        self.alerting = AlertEvaluator(cfg.alert_rules, set(SERVICE_METRICS), set(SERVER_METRICS),
                                       cfg.telemetry.repeat_interval)
        self.spend_total = 0.0
        self.spend_project = np.zeros(len(self.proj_names))
        self.spend_rate = 0.0  # per hour, last tick
        self.spend_series: list[tuple[float, float]] = []  # (t, cumulative) per minute
        self.last = {m: np.zeros(self.n_svc) for m in SERVICE_METRICS}
        self.last_actor: dict[int, str] = {}  # service -> actor of the last completed action on it
        from twin.faults import FaultManager  # late import: faults need World's names
        from twin.operator import HumanOperator

        self.faults = FaultManager(self)
        self.operator = HumanOperator(self)
        self._end: simpy.Event | None = None
        self._rows: _Rows | None = None  # see _tick_rows
        self._scratch: np.ndarray | None = None  # see _scrape
        self._rowbuf: np.ndarray | None = None  # per-server scrape rows of grouped ticks
        self.env.process(self._physics())

    # ------------------------------------------------------------ building
    def _build_topology(self) -> None:
        cfg = self.cfg
        self.zone_names: list[str] = []
        self.zone_region: list[str] = []
        rows = []
        for r in cfg.regions:
            for z in r.zones:
                zi = len(self.zone_names)
                self.zone_names.append(z.name)
                self.zone_region.append(r.name)
                for g in z.hypervisors:
                    for _ in range(g.count):
                        rows.append((zi, g.vcpus, g.ram_mb, g.disk_gb, g.gpus))
        self.n_hv = len(rows)
        arr = np.array(rows, dtype=np.int64)
        self.hv_zone = arr[:, 0]
        self.hv_vcpus, self.hv_ram, self.hv_disk, self.hv_gpus = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4]
        self.hv_used = np.zeros((self.n_hv, 4), dtype=np.int64)  # vcpus, ram, disk, gpus
        self.hv_up = np.ones(self.n_hv, dtype=bool)
        self.hv_throttle = np.ones(self.n_hv)
        counters: dict[int, int] = {}
        self.hv_names = []
        for h in range(self.n_hv):
            zi = int(self.hv_zone[h])
            j = counters.get(zi, 0)
            counters[zi] = j + 1
            self.hv_names.append(f"{self.zone_names[zi]}-hv{j:03d}")
        self.hv_index = {n: i for i, n in enumerate(self.hv_names)}
        self.zone_partitioned = np.zeros(len(self.zone_names), dtype=bool)
        self._hv_total = np.stack([self.hv_vcpus, self.hv_ram, self.hv_disk, self.hv_gpus], axis=1)  # capacities
        self._zone_hv = [self.hv_zone == z for z in range(len(self.zone_names))]

        self.flavor_names = [f.name for f in cfg.flavors]
        self.flavor_index = {n: i for i, n in enumerate(self.flavor_names)}
        self.f_res = np.array([[f.vcpus, f.ram_mb, f.disk_gb, f.gpus] for f in cfg.flavors], dtype=np.int64)
        self.f_od = np.array([cfg.prices.on_demand[f.name] for f in cfg.flavors]) / 3600.0  # per second
        spot = cfg.prices.spot
        self.f_spot_mean = self.f_od * (1.0 - spot.discount)
        self.f_spot = self.f_spot_mean.copy()
        self._spot_x = np.zeros(len(self.flavor_names))
        res = cfg.prices.reserved
        self.f_reserved_rate = self.f_od * (1.0 - res.discount)
        self.f_commit = np.array([res.commitments.get(f, 0) for f in self.flavor_names], dtype=np.int64)

        self.proj_names = [p.name for p in cfg.projects]
        self.proj_index = {n: i for i, n in enumerate(self.proj_names)}
        self.quota = np.array([[p.quota.instances, p.quota.cores, p.quota.ram_mb] for p in cfg.projects], dtype=np.int64)
        self.proj_used = np.zeros((len(self.proj_names), 3), dtype=np.int64)

    def _build_services(self, base_dir: Path | None) -> None:
        svcs = self.cfg.services
        self.n_svc = len(svcs)
        self.svc_names = [s.name for s in svcs]
        self.svc_index = {n: i for i, n in enumerate(self.svc_names)}
        self.svc_project = np.array([self.proj_index[s.project] for s in svcs], dtype=np.int64)
        self.svc_flavor = np.array([self.flavor_index[s.flavor] for s in svcs], dtype=np.int64)
        self.svc_cpv = np.array([s.capacity_per_vcpu for s in svcs], dtype=float)
        self.svc_lat = np.array([s.base_latency_ms for s in svcs], dtype=float)
        self.svc_err = np.array([s.base_error_ratio for s in svcs], dtype=float)
        self.svc_mem = np.array([s.memory_base for s in svcs], dtype=float)
        self.svc_mbps_per_rps = np.array([s.kb_per_request * 8.0 / 1000.0 for s in svcs], dtype=float)
        self.svc_disk = np.array([s.disk_base for s in svcs], dtype=float)
        self.svc_slo_lat = np.array([s.slo.latency_p95_ms for s in svcs], dtype=float)
        self.svc_slo_err = np.array([s.slo.error_ratio for s in svcs], dtype=float)
        self.svc_settings = [dict(s.settings) for s in svcs]
        self.svc_pool = np.array([s.settings.get("pool_size", 0.0) for s in svcs], dtype=float)
        self.svc_version = np.ones(self.n_svc, dtype=np.int64)
        # fault-driven state, per service
        self.svc_deploy_err = np.zeros(self.n_svc)  # error ratio added by a bad release
        self.svc_lat_mult = np.ones(self.n_svc)
        self.svc_leak_rate = np.zeros(self.n_svc)  # memory fraction per second per server
        self.svc_conn_leak = np.zeros(self.n_svc)  # leaked connections per second
        self.svc_leaked = np.zeros(self.n_svc)  # leaked connections held
        self.svc_bad_versions: list[set[int]] = [set() for _ in svcs]
        edges = [(i, self.svc_index[d.service], d.calls_per_request) for i, s in enumerate(svcs) for d in s.dependencies]
        self.e_src = np.array([e[0] for e in edges], dtype=np.int64)
        self.e_dst = np.array([e[1] for e in edges], dtype=np.int64)
        self.e_ratio = np.array([e[2] for e in edges], dtype=float)
        n_ticks = int(np.ceil(self.cfg.duration / self.dt)) + 1
        times = np.arange(n_ticks) * self.dt
        self.traffic = np.zeros((n_ticks, self.n_svc))
        for i, s in enumerate(svcs):
            if s.traffic is not None:
                self.traffic[:, i] = rate_series(s.traffic, times, self.rng_traffic, base_dir)
        self.prev_good = np.zeros(self.n_svc)
        self.prev_lat = self.svc_lat.copy()
        self.prev_err = np.zeros(self.n_svc)

    def _build_servers(self) -> None:
        """The initial servers, ACTIVE from t=0, placed one by one exactly as ``place()`` would place them."""
        total = sum(s.servers for s in self.cfg.services)
        self.cap = 0
        self.n = 0
        self._alloc(max(64, 2 * total))
        free = (self._hv_total - self.hv_used).tolist()
        # per zone, a heap of (-free RAM, host) over its up hosts: its first host that fits is place()'s argmax
        heaps = [[(-free[h][1], h) for h in np.flatnonzero(self._zone_hv[z] & self.hv_up).tolist()]
                 for z in range(len(self.zone_names))]
        for hp in heaps:
            heapq.heapify(hp)
        svc, hosts = [], []
        for i, s in enumerate(self.cfg.services):
            zones = [self.zone_names.index(z) for z in s.zones] if s.zones else list(range(len(self.zone_names)))
            need = self.f_res[self.svc_flavor[i]].tolist()
            for k in range(s.servers):
                hp = heaps[zones[k % len(zones)]]
                skipped = []
                while hp and not all(f >= r for f, r in zip(free[hp[0][1]], need, strict=True)):
                    skipped.append(heapq.heappop(hp))
                if not hp:
                    raise ValueError(f"services[{i}] ({s.name}): the topology has no room for its {s.servers} "
                                     f"initial servers; add hypervisors")
                h = heapq.heappop(hp)[1]
                fh = free[h]
                for j in range(4):
                    fh[j] -= need[j]
                heapq.heappush(hp, (-fh[1], h))
                for e in skipped:
                    heapq.heappush(hp, e)
                svc.append(i)
                hosts.append(h)
        if not svc:
            return
        rows = slice(0, len(svc))
        sv, hv = np.array(svc, dtype=np.int64), np.array(hosts, dtype=np.int64)
        fl = self.svc_flavor[sv]
        res = self.f_res[fl]
        np.add.at(self.hv_used, hv, res)
        self.status[rows] = ACTIVE
        self.svc[rows] = sv
        self.flavor[rows] = fl
        self.hv[rows] = hv
        self.pricing[rows] = [PRICING.index(self.cfg.services[i].pricing) for i in svc]
        self.created_at[rows] = 0.0
        self.deleted_at[rows] = np.inf
        self.weight[rows] = 1.0
        self.vcpus[rows] = res[:, 0]
        self.metadata.extend({} for _ in svc)
        np.add.at(self.proj_used, self.svc_project[sv], np.stack([np.ones(len(svc), dtype=np.int64), res[:, 0],
                                                                  res[:, 1]], axis=1))
        self.n = len(svc)
        self.invalidate()

    def _build_servers_one_by_one(self) -> None:
        """Reference for ``_build_servers`` (tests): each server through ``_create``, i.e. ``place()``."""
        total = sum(s.servers for s in self.cfg.services)
        self.cap = 0
        self.n = 0
        self._alloc(max(64, 2 * total))
        for i, s in enumerate(self.cfg.services):
            zones = [self.zone_names.index(z) for z in s.zones] if s.zones else list(range(len(self.zone_names)))
            for k in range(s.servers):
                try:
                    (idx,) = self._create(i, int(self.svc_flavor[i]), 1, zones[k % len(zones)], PRICING.index(s.pricing),
                                          check_quota=False)
                except errors.NoValidHost:
                    raise ValueError(f"services[{i}] ({s.name}): the topology has no room for its {s.servers} "
                                     f"initial servers; add hypervisors") from None
                self.status[idx] = ACTIVE
                self.created_at[idx] = 0.0
        self.invalidate()

    def _alloc(self, cap: int) -> None:
        def grow(name: str, fill: object, dtype: object) -> None:
            new = np.full(cap, fill, dtype=dtype)
            if self.cap:
                new[: self.cap] = getattr(self, name)
            setattr(self, name, new)

        grow("status", DELETED, np.int8)
        grow("svc", -1, np.int64)
        grow("flavor", 0, np.int64)
        grow("hv", 0, np.int64)
        grow("pricing", 0, np.int8)
        grow("created_at", np.inf, float)
        grow("deleted_at", np.inf, float)
        grow("weight", 0.0, float)
        grow("down_until", 0.0, float)  # process not serving until (reboot, OOM, restart)
        grow("busy_until", 0.0, float)  # a task (resize, migrate, delete) is running until
        grow("deleting", False, bool)
        grow("leak", 0.0, float)
        grow("disk_extra", 0.0, float)
        grow("disk_rate", 0.0, float)
        grow("billed", 0.0, float)
        grow("vcpus", 0.0, float)
        if not hasattr(self, "metadata"):
            self.metadata: list[dict[str, str]] = []
        self.cap = cap
        if hasattr(self, "metrics"):
            self.metrics.grow_servers(cap)

    # ------------------------------------------------------------- helpers
    def now(self) -> float:
        return float(self.env.now)

    def draw(self, d: Distribution) -> float:
        if d.dist == "const" or d.sigma == 0:
            return d.mean
        if d.dist == "uniform":
            return float(self.rng_lat.uniform(d.mean * (1 - d.sigma), d.mean * (1 + d.sigma)))
        mu = np.log(d.mean) - d.sigma**2 / 2
        return float(self.rng_lat.lognormal(mu, d.sigma))

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` simulated seconds (a SimPy event)."""
        ev = self.env.timeout(max(0.0, delay))
        ev.callbacks.append(lambda _ev: fn())

    def alive(self) -> np.ndarray:
        return self.status[: self.n] != DELETED

    def serving(self) -> np.ndarray:
        """Servers that answer requests now."""
        n, t = self.n, self.now()
        return ((self.status[:n] == ACTIVE) & (self.down_until[:n] <= t) & self.hv_up[self.hv[:n]]
                & (self.svc[:n] >= 0) & ~self.deleting[:n])

    def servers_of(self, svc: int, statuses: tuple[int, ...] = (BUILD, ACTIVE, SHUTOFF, ERROR)) -> np.ndarray:
        n = self.n
        mask = (self.svc[:n] == svc) & np.isin(self.status[:n], statuses) & ~self.deleting[:n]
        return np.flatnonzero(mask)

    def _notify(self, kind: str, server: int, service: int, actor: str) -> None:
        if service >= 0:
            self.last_actor[service] = actor
        for fn in self.listeners:
            fn(kind, server, service, actor)

    def invalidate(self) -> None:
        """Structural per-server state changed: server status, ``down_until``, ``deleting``, weight, vcpus or
        hypervisor; a host's ``hv_up`` or ``hv_throttle``; ``zone_partitioned``; ``svc_lat_mult``.

        Every writer of those (here and in :mod:`twin.faults`) must call this; ``verify_cache`` (or the
        environment variable ``ZEROOPS_VERIFY_CACHE=1``) recomputes the cached vectors every tick and raises
        if they are stale.
        """
        self._gen += 1

    def _check_api(self) -> None:
        rate = self.cfg.api.transient_error_rate
        if rate and self.rng_api.random() < rate:
            raise errors.TransientAPIError("503 Service Unavailable (simulated)")

    def _server(self, sid: str | int) -> int:
        i = server_index(sid) if isinstance(sid, str) else sid
        if i < 0 or i >= self.n or self.status[i] == DELETED:
            raise errors.NotFound(f"no server {server_id(i) if isinstance(sid, int) else sid!r}")
        return i

    def _idle(self, i: int) -> None:
        if self.busy_until[i] > self.now() or self.deleting[i]:
            raise errors.Conflict(f"server {server_id(i)} has a task in progress")

    # ----------------------------------------------------------- scheduler
    def place(self, flavor: int, zone: int | None = None, exclude: int | None = None) -> int:
        """Pick a hypervisor with room (spread by free RAM); raises NoValidHost."""
        need = self.f_res[flavor]
        free = self._hv_total - self.hv_used
        ok = (free >= need).all(axis=1)
        ok &= self.hv_up
        if zone is not None:
            ok &= self._zone_hv[zone]
        if exclude is not None:
            ok[exclude] = False
        score = np.where(ok, free[:, 1], -1)  # free RAM where it fits (>= 0), else -1
        h = int(score.argmax())
        if not ok[h]:
            where = f" in zone {self.zone_names[zone]}" if zone is not None else ""
            raise errors.NoValidHost(f"No valid host was found{where} for flavor {self.flavor_names[flavor]}")
        return h

    # ---------------------------------------------------------- control API
    def _create(self, svc: int, flavor: int, count: int, zone: int | None, pricing: int,
                check_quota: bool = True, metadata: dict[str, str] | None = None) -> list[int]:
        proj = int(self.svc_project[svc]) if svc >= 0 else 0
        res = self.f_res[flavor]
        if check_quota:
            want = self.proj_used[proj] + np.array([count, count * res[0], count * res[1]])
            over = [name for name, w, q in zip(("instances", "cores", "ram"), want, self.quota[proj], strict=True) if w > q]
            if over:
                raise errors.QuotaExceeded(f"Quota exceeded for {', '.join(over)} in project {self.proj_names[proj]}")
        placed: list[int] = []
        try:
            for _ in range(count):
                h = self.place(flavor, zone)
                self.hv_used[h] += res
                placed.append(h)
        except errors.NoValidHost:
            for h in placed:
                self.hv_used[h] -= res
            raise
        if self.n + count > self.cap:
            self._alloc(max(2 * self.cap, self.n + count))
        ids = list(range(self.n, self.n + count))
        self.n += count
        for i, h in zip(ids, placed, strict=True):
            self.status[i] = BUILD
            self.svc[i] = svc
            self.flavor[i] = flavor
            self.hv[i] = h
            self.pricing[i] = pricing
            self.created_at[i] = self.now()
            self.deleted_at[i] = np.inf
            self.weight[i] = 1.0
            self.vcpus[i] = res[0]
            self.metadata.append(dict(metadata or {}))
        self.proj_used[proj] += np.array([count, count * res[0], count * res[1]])
        self.invalidate()
        return ids

    def create_servers(self, service: str, count: int = 1, flavor: str | None = None, zone: str | None = None,
                       pricing: str = "on_demand", metadata: dict[str, str] | None = None,
                       actor: str = "automation") -> list[str]:
        self._check_api()
        if service not in self.svc_index:
            raise errors.NotFound(f"no service {service!r}")
        if count < 1:
            raise errors.Conflict(f"count must be >= 1, got {count}")
        s = self.svc_index[service]
        f = self.flavor_index.get(flavor or self.flavor_names[self.svc_flavor[s]])
        if f is None:
            raise errors.NotFound(f"no flavor {flavor!r}")
        z = None
        if zone is not None:
            if zone not in self.zone_names:
                raise errors.NotFound(f"no availability zone {zone!r}")
            z = self.zone_names.index(zone)
        if pricing not in PRICING:
            raise errors.Conflict(f"pricing must be one of {PRICING}")
        ids = self._create(s, f, count, z, PRICING.index(pricing), metadata=metadata)
        for i in ids:
            self.later(self.draw(self.cfg.latencies.boot), lambda i=i: self._booted(i, actor))
        return [server_id(i) for i in ids]

    def _booted(self, i: int, actor: str) -> None:
        if self.status[i] != BUILD or self.deleting[i]:
            return
        self.status[i] = ACTIVE if self.hv_up[self.hv[i]] else ERROR
        self.invalidate()
        self._notify("create_server", i, int(self.svc[i]), actor)

    def delete_server(self, sid: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        if self.deleting[i]:
            return
        self.deleting[i] = True
        self.invalidate()
        self.later(self.draw(self.cfg.latencies.delete), lambda: self._deleted(i, actor))

    def _deleted(self, i: int, actor: str) -> None:
        self._release(i)
        self._notify("delete_server", i, int(self.svc[i]), actor)

    def _release(self, i: int) -> None:
        """Mark a server DELETED now: billing stops, capacity and quota are freed."""
        if self.status[i] == DELETED:
            return
        self.status[i] = DELETED
        self.deleted_at[i] = self.now()
        self.invalidate()
        res = self.f_res[self.flavor[i]]
        self.hv_used[self.hv[i]] -= res
        proj = int(self.svc_project[self.svc[i]]) if self.svc[i] >= 0 else 0
        self.proj_used[proj] -= np.array([1, res[0], res[1]])

    def reboot_server(self, sid: str, hard: bool = False, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] == BUILD:
            raise errors.Conflict(f"Cannot 'reboot' server {server_id(i)} while it is in vm_state building")
        if not self.hv_up[self.hv[i]]:
            raise errors.Conflict(f"Cannot 'reboot' server {server_id(i)}: compute host {self.hv_names[self.hv[i]]} "
                                  "is down (evacuate it with migrate)")
        if self.status[i] == ERROR and not hard:
            raise errors.Conflict(f"Cannot soft 'reboot' server {server_id(i)} in ERROR; use a hard reboot")
        d = self.draw(self.cfg.latencies.reboot)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()
        self.later(d, lambda: self._rebooted(i, actor, "reboot_server"))

    def start_server(self, sid: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] != SHUTOFF:
            raise errors.Conflict(f"Cannot 'start' server {server_id(i)} while it is {STATUS[self.status[i]]}")
        if not self.hv_up[self.hv[i]]:
            raise errors.Conflict(f"Cannot 'start' server {server_id(i)}: its compute host is down")
        d = self.draw(self.cfg.latencies.reboot)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()
        self.later(d, lambda: self._rebooted(i, actor, "start_server"))

    def stop_server(self, sid: str, actor: str = "automation") -> None:
        i = self._server(sid)
        self.status[i] = SHUTOFF
        self.invalidate()
        self._notify("stop_server", i, int(self.svc[i]), actor)

    def _rebooted(self, i: int, actor: str, kind: str) -> None:
        if self.status[i] == DELETED or self.deleting[i]:
            return
        if self.hv_up[self.hv[i]]:
            self.status[i] = ACTIVE
            self.leak[i] = 0.0
            self.disk_extra[i] = 0.0
            self.invalidate()
        self._notify(kind, i, int(self.svc[i]), actor)

    def resize_server(self, sid: str, flavor: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if flavor not in self.flavor_index:
            raise errors.NotFound(f"no flavor {flavor!r}")
        if self.status[i] not in (ACTIVE, SHUTOFF):
            raise errors.Conflict(f"Cannot 'resize' server {server_id(i)} while it is {STATUS[self.status[i]]}")
        f = self.flavor_index[flavor]
        old = self.f_res[self.flavor[i]]
        new = self.f_res[f]
        h = int(self.hv[i])
        free = np.array([self.hv_vcpus[h], self.hv_ram[h], self.hv_disk[h], self.hv_gpus[h]]) - self.hv_used[h] + old
        target = h if np.all(free >= new) else self.place(f, exclude=h)
        self.hv_used[target] += new  # both sizes are held until the resize is confirmed
        d = self.draw(self.cfg.latencies.resize)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()

        def done() -> None:
            self.hv_used[h] -= old
            if self.status[i] == DELETED:
                self.hv_used[target] -= new
                return
            self.hv[i] = target
            self.flavor[i] = f
            self.vcpus[i] = new[0]
            self.invalidate()
            proj = int(self.svc_project[self.svc[i]])
            self.proj_used[proj] += np.array([0, new[0] - old[0], new[1] - old[1]])
            self.leak[i] = 0.0
            self.disk_extra[i] = 0.0
            self._notify("resize_server", i, int(self.svc[i]), actor)

        self.later(d, done)

    def migrate_server(self, sid: str, hypervisor: str | None = None, actor: str = "automation") -> None:
        """Cold-migrate; from a host that is down this is an evacuation."""
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] == BUILD:
            raise errors.Conflict(f"Cannot 'migrate' server {server_id(i)} while it is building")
        h = int(self.hv[i])
        f = int(self.flavor[i])
        if hypervisor is not None:
            if hypervisor not in self.hv_index:
                raise errors.NotFound(f"no hypervisor {hypervisor!r}")
            target = self.hv_index[hypervisor]
            free = np.array([self.hv_vcpus[target], self.hv_ram[target], self.hv_disk[target],
                             self.hv_gpus[target]]) - self.hv_used[target]
            if target == h or not self.hv_up[target] or np.any(free < self.f_res[f]):
                raise errors.NoValidHost(f"hypervisor {hypervisor} cannot take server {server_id(i)}")
        else:
            target = self.place(f, exclude=h)
        self.hv_used[target] += self.f_res[f]
        d = self.draw(self.cfg.latencies.migrate)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()

        def done() -> None:
            self.hv_used[h] -= self.f_res[f]
            if self.status[i] == DELETED:
                self.hv_used[target] -= self.f_res[f]
                return
            self.hv[i] = target
            if self.status[i] == ERROR and self.hv_up[target]:
                self.status[i] = ACTIVE
            self.invalidate()
            self.leak[i] = 0.0
            self._notify("migrate_server", i, int(self.svc[i]), actor)

        self.later(d, done)

    def _rolling(self, s: int, d: float, kind: str, actor: str, effect: Callable[[], None]) -> None:
        """Bounce the service's serving servers in two halves, then apply ``effect``."""
        ids = self.servers_of(s, (ACTIVE,))
        t = self.now()
        for k, i in enumerate(ids):
            start = t + (k % 2) * d
            self.later(start - t, lambda i=i: self._bounce(i, d))
        total = 2 * d if len(ids) > 1 else d

        def done() -> None:
            effect()
            self._notify(kind, -1, s, actor)

        self.later(total, done)

    def _bounce(self, i: int, d: float) -> None:
        self.down_until[i] = max(self.down_until[i], self.now() + d)
        self.invalidate()
        self.leak[i] = 0.0

    def restart_service(self, service: str, actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        self._rolling(s, self.draw(self.cfg.latencies.restart_service), "restart_service", actor,
                      lambda: self.svc_leaked.__setitem__(s, 0.0))

    def rollback_deploy(self, service: str, actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        if self.svc_version[s] <= 1:
            raise errors.Conflict(f"service {service} is at its first release; nothing to roll back")
        self._rolling(s, self.draw(self.cfg.latencies.rollback), "rollback_deploy", actor,
                      lambda: self.svc_version.__setitem__(s, max(1, self.svc_version[s] - 1)))

    def deploy(self, service: str) -> int:
        """A new release (the world's developers ship it); returns the new version."""
        s = self._service(service)
        self.svc_version[s] += 1
        return int(self.svc_version[s])

    def set_service_setting(self, service: str, key: str, value: float, actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        if not np.isfinite(value) or value < 0:
            raise errors.Conflict(f"setting {key} must be a finite number >= 0")
        self.svc_settings[s][key] = float(value)
        if key == "pool_size":
            self.svc_pool[s] = float(value)
        self._notify("set_service_setting", -1, s, actor)

    def set_lb_weights(self, service: str, weights: dict[str, float], actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        idx = []
        for sid, w in weights.items():
            i = self._server(sid)
            if self.svc[i] != s:
                raise errors.Conflict(f"server {sid} is not behind service {service}")
            if not np.isfinite(w) or w < 0:
                raise errors.Conflict(f"weight for {sid} must be a finite number >= 0")
            idx.append((i, w))
        for i, w in idx:
            self.weight[i] = w
        self.invalidate()
        self._notify("set_lb_weights", -1, s, actor)

    def set_metadata(self, sid: str, metadata: dict[str, str]) -> None:
        self._check_api()
        i = self._server(sid)
        self.metadata[i].update(metadata)

    def update_quota(self, project: str, instances: int | None, cores: int | None, ram_mb: int | None) -> None:
        self._check_api()
        if project not in self.proj_index:
            raise errors.NotFound(f"no project {project!r}")
        p = self.proj_index[project]
        for k, v in enumerate((instances, cores, ram_mb)):
            if v is not None:
                if v < 0:
                    raise errors.Conflict("quota values must be >= 0")
                self.quota[p, k] = v

    def _service(self, name: str) -> int:
        if name not in self.svc_index:
            raise errors.NotFound(f"no service {name!r}")
        return self.svc_index[name]

    # ------------------------------------------------------------- physics
    def _physics(self):  # type: ignore[no-untyped-def]
        end = self.cfg.duration
        while self.now() < end - 1e-9:
            step = min(self.dt, end - self.now())
            yield self.env.timeout(step)
            self.tick(step)

    def _tick_rows(self, t: float, dt: float) -> _Rows:
        """The rows a tick must look at: servers not deleted, or deleted within this step (still billed).

        Rows deleted earlier contribute exact zeros to every sum, so skipping them changes no result.
        Cached until a server is created or deleted; while most rows are live it is a plain slice.
        Relies on: a row's service, pricing and creation time never change after ``_create``, and a
        deletion sets status DELETED together with ``deleted_at`` (as ``_release`` does).
        """
        n = self.n
        deleted = int(np.count_nonzero(self.status[:n] == DELETED))
        rc = self._rows
        if rc is not None and rc.key == (n, deleted):
            return rc
        keep = np.flatnonzero(self.deleted_at[:n] > t - dt)
        idx: slice | np.ndarray = slice(0, n) if len(keep) > ROWS_AS_SLICE * n else keep
        svc = self.svc[idx]
        pricing = self.pricing[idx]
        rc = _Rows(key=(n, deleted), idx=idx, rows=np.arange(n) if isinstance(idx, slice) else keep,
                   svc_c=np.maximum(svc, 0), svc_ok=svc >= 0, all_svc_ok=bool((svc >= 0).all()),
                   svc_proj=np.where(svc >= 0, self.svc_project[np.maximum(svc, 0)], 0),
                   pricing=pricing, created=self.created_at[idx], deleted=self.deleted_at[idx],
                   any_spot=bool((pricing == 1).any()), any_reserved=bool((pricing == 2).any()),
                   any_spot_all=bool((self.pricing[:n] == 1).any()),
                   created_sorted=bool((np.diff(self.created_at[idx]) >= 0).all()),
                   finite_del=np.flatnonzero(np.isfinite(self.deleted_at[idx])))
        self._rows = rc
        return rc

    def _structure(self, t: float, rc: _Rows) -> _Structure:
        """The tick's structural per-row vectors over ``rc``, cached until ``invalidate()`` or a server's
        ``down_until`` passes (computed exactly as they would be afresh, so caching changes no result)."""
        sc = self._struct
        if sc is None or sc.rows is not rc or sc.gen != self._gen or t >= sc.valid_until:
            sc = self._struct = self._compute_structure(t, rc)
        elif self.verify_cache and (bad := sc.diff(self._compute_structure(t, rc))):
            raise AssertionError(f"stale structural cache at t={t} ({', '.join(bad)}): "
                                 "a writer did not call World.invalidate()")
        return sc

    def _compute_structure(self, t: float, rc: _Rows) -> _Structure:
        idx, svc_c = rc.idx, rc.svc_c
        m = len(svc_c)
        nsvc = self.n_svc
        st = self.status[idx]
        hv = self.hv[idx]
        down = self.down_until[idx]
        # == serving() over the rows
        up = (st == ACTIVE) & (down <= t) & self.hv_up[hv] & ~self.deleting[idx]
        if not rc.all_svc_ok:
            up &= rc.svc_ok
        later = down[down > t]
        w = self.weight[idx] * up
        wsum = np.bincount(svc_c, w, nsvc)
        denom = wsum[svc_c]
        share = np.divide(w, denom, out=np.zeros(m), where=denom > 0)
        cap = self.vcpus[idx] * self.svc_cpv[svc_c]
        if (self.hv_throttle != 1.0).any():
            cap = cap * self.hv_throttle[hv]
        part = self.zone_partitioned[self.hv_zone[hv]] if self.zone_partitioned.any() else None
        tracked = (st != DELETED) & (st != BUILD)
        fl = self.flavor[idx]
        return _Structure(rows=rc, gen=self._gen, valid_until=float(later.min()) if len(later) else np.inf,
                          st=st, hv=hv, up=up, share=share, cap=cap, part=part, tracked=tracked, fl=fl,
                          od_rate=self.f_od[fl],
                          groups=self._groups(rc, up, tracked, part, share, cap))

    def _groups(self, rc: _Rows, up: np.ndarray, tracked: np.ndarray, part: np.ndarray | None, share: np.ndarray,
                cap: np.ndarray) -> _Groups | None:
        """Group ``rc``'s rows by (service, up, tracked, partitioned); None unless every group's rows have the
        same LB share and capacity (then each row's physics is its group's, computed once per group)."""
        key = rc.svc_c * 8 + up * 4 + tracked * 2
        if part is not None:
            key += part
        size = self.n_svc * 8
        cnt = np.bincount(key, minlength=size)
        rep_share = np.zeros(size)
        rep_share[key] = share
        if not np.array_equal(rep_share[key], share):
            return None
        rep_cap = np.zeros(size)
        rep_cap[key] = cap
        if not np.array_equal(rep_cap[key], cap):
            return None
        present = np.flatnonzero(cnt)
        remap = np.zeros(size, dtype=np.int64)
        remap[present] = np.arange(len(present))
        full = np.full(self.n, len(present), dtype=np.int64)
        full[rc.rows] = remap[key]
        svc = present // 8
        return _Groups(svc=svc, cnt=cnt[present].astype(float), share=rep_share[present], cap=rep_cap[present],
                       lat0=(self.svc_lat * self.svc_lat_mult)[svc], up=(present & 4) > 0, tracked=(present & 2) > 0,
                       part=(present & 1) > 0 if part is not None else None, disk=self.svc_disk[svc],
                       mem=self.svc_mem[svc], mbps=self.svc_mbps_per_rps[svc], full=full)

    def tick(self, dt: float) -> None:
        """Advance the fleet by one physics step of ``dt`` seconds ending now."""
        t = self.now()
        k = min(int(round(t / self.dt)), len(self.traffic) - 1)
        self.ticks += 1
        n = self.n
        nsvc = self.n_svc
        ext = self.traffic[k]
        offered = ext + np.bincount(self.e_dst, self.prev_good[self.e_src] * self.e_ratio, nsvc) if len(self.e_src) \
            else ext.copy()
        rc = self._tick_rows(t, dt)
        idx, svc_c = rc.idx, rc.svc_c
        m = len(svc_c)
        sc = self._structure(t, rc)
        up = sc.up
        g = sc.groups
        if g is not None and (self.svc_leak_rate.any() or self.leak[:n].any() or self.disk_extra[:n].any()):
            g = None  # some server's memory or disk differs from its service's base: per row
        if g is not None:
            # every row is its group's: the same per-row values, computed once per group; the per-service sums
            # add cnt × value instead of cnt values one by one (equal to rounding)
            cnt = g.cnt
            assigned = offered[g.svc] * g.share
            util = np.divide(assigned, g.cap, out=np.zeros(len(cnt)), where=g.cap > 0)
            served = np.minimum(assigned, g.cap)
            bad = g.disk >= 1.0
            if g.part is not None:
                bad = g.part | bad
            bad &= g.up
            served_svc = np.bincount(g.svc, served * cnt, nsvc)
            failed_svc = np.bincount(g.svc, served * bad * cnt, nsvc) if bad.any() else np.zeros(nsvc)
            lat_srv = g.lat0 / (1.0 - np.minimum(util, 0.95))
            lat_sum = np.bincount(g.svc, served * lat_srv * cnt, nsvc)
        else:
            cnt = None
            assigned = offered[svc_c] * sc.share
            util = np.divide(assigned, sc.cap, out=np.zeros(m), where=sc.cap > 0)
            served = np.minimum(assigned, sc.cap)
            disk_extra = self.disk_extra[idx]
            disk = self.svc_disk[svc_c] + disk_extra
            bad = disk >= 1.0
            if sc.part is not None:
                bad = sc.part | bad
            bad &= up
            served_svc = np.bincount(svc_c, served, nsvc)
            failed_svc = np.bincount(svc_c, served * bad, nsvc) if bad.any() else np.zeros(nsvc)
            # latency: M/M/1-like growth with utilisation, plus what dependencies add
            lat_srv = (self.svc_lat * self.svc_lat_mult)[svc_c] / (1.0 - np.minimum(util, 0.95))
            lat_sum = np.bincount(svc_c, served * lat_srv, nsvc)
        own_lat = np.divide(lat_sum, served_svc, out=self.svc_lat * self.svc_lat_mult, where=served_svc > 0)
        dep_lat = np.bincount(self.e_src, self.e_ratio * self.prev_lat[self.e_dst], nsvc) if len(self.e_src) \
            else np.zeros(nsvc)
        mean_lat = own_lat + dep_lat
        # connection pools (Little's law), with leaked connections held
        self.svc_leaked += self.svc_conn_leak * dt
        in_use = served_svc * mean_lat / 1000.0 + self.svc_leaked
        has_pool = self.svc_pool > 0
        pool_util = np.divide(in_use, self.svc_pool, out=np.zeros(nsvc), where=has_pool)
        pool_fail = np.where(has_pool & (pool_util > 1.0), 1.0 - 1.0 / np.maximum(pool_util, 1.0), 0.0)
        mean_lat = mean_lat * (1.0 + 4.0 * np.clip(pool_util - 0.8, 0.0, None) * has_pool)
        # errors: own release, dependencies, pools, failing servers, drops
        dep_err = np.minimum(1.0, np.bincount(self.e_src, np.minimum(self.e_ratio, 1.0) * self.prev_err[self.e_dst],
                                              nsvc)) if len(self.e_src) else np.zeros(nsvc)
        own_err = np.minimum(1.0, self.svc_err + self.svc_deploy_err)
        ok = (1.0 - own_err) * (1.0 - dep_err) * (1.0 - pool_fail)
        good = np.maximum(served_svc - failed_svc, 0.0) * ok
        err = np.divide(offered - good, offered, out=np.zeros(nsvc), where=offered > 0)
        p95 = np.where(served_svc > 0, mean_lat * P95_OVER_MEAN, np.where(offered > 0, TIMEOUT_MS, mean_lat * P95_OVER_MEAN))
        p95 = np.minimum(p95, TIMEOUT_MS)
        self.prev_good = np.maximum(served_svc - failed_svc, 0.0)
        self.prev_lat = np.minimum(mean_lat, TIMEOUT_MS)
        self.prev_err = err
        # memory leaks and OOM kills, disk growth
        if self.svc_leak_rate.any():
            self.leak[idx] += self.svc_leak_rate[svc_c] * dt * up
            mem = self.svc_mem[svc_c] + self.leak[idx]
            oom = rc.rows[np.flatnonzero(up & (mem >= 1.0))]
            if len(oom):
                self.truth.oom_kills += len(oom)
                for i in oom:
                    self.down_until[i] = t + self.draw(self.cfg.latencies.process_restart)
                    self.leak[i] = 0.0
                self.invalidate()
        if self.disk_rate[:n].any():
            self.disk_extra[:n] = np.minimum(self.disk_extra[:n] + self.disk_rate[:n] * dt, 1.0)
        # ground truth: every offered request is served by a server or dropped (overload or no server)
        if g is not None:
            routed = np.bincount(g.svc, assigned * cnt, nsvc)
            over = np.bincount(g.svc, (assigned - served) * cnt, nsvc)
        else:
            routed = np.bincount(svc_c, assigned, nsvc)
            over = np.bincount(svc_c, assigned - served, nsvc)
        self.truth.served += served_svc * dt
        self.truth.dropped += (over + (offered - routed)) * dt
        self.truth.offered += offered * dt
        self.truth.good += good * dt
        breach = (offered > 0) & ((p95 > self.svc_slo_lat) | (err > self.svc_slo_err))
        self.truth.slo_step(t, dt, breach)
        self._bill(t, dt, rc, sc)
        if self.ticks % self.scrape_every == 0 and g is not None:
            active = np.bincount(g.svc, g.up * cnt, nsvc)
            cpu_sum = np.bincount(g.svc, np.minimum(util, 1.0) * g.up * cnt, nsvc)
            cpu = np.divide(cpu_sum, active, out=np.zeros(nsvc), where=active > 0)
            has_up = active > 0  # no server leaks memory or fills its disk: each at its service's base
            mem_max = np.where(has_up, np.maximum(self.svc_mem, 0.0), 0.0)
            disk_max = np.where(has_up, np.maximum(np.minimum(self.svc_disk, 1.0), 0.0), 0.0)
            if self._rowbuf is None or self._rowbuf.shape[1] < n:
                self._rowbuf = np.empty((len(SERVER_METRICS), self.cap))
            buf = iter(self._rowbuf[:, :n])
            nan = np.full(1, np.nan)

            def expand(per_group: np.ndarray) -> np.ndarray:  # full-width row: each row its group's, NaN outside
                return np.take(np.concatenate((per_group, nan)), g.full, out=next(buf))

            tr = g.tracked
            if g.static_rows is None:  # rows that change only with the structure: expanded once per structure
                g.static_rows = np.stack([np.concatenate((v, nan))[g.full] for v in (
                    np.where(tr, g.mem, np.nan), np.where(tr, np.minimum(g.disk, 1.0), np.nan),
                    np.where(tr, g.up.astype(float), np.nan))])
            srv_vals = {
                "server_cpu_util": expand(np.where(g.up, np.minimum(util, 1.0), np.where(tr, 0.0, np.nan))),
                "server_memory_util": g.static_rows[0],
                "server_disk_util": g.static_rows[1],
                "server_network_mbps": expand(np.where(tr, served * g.mbps, np.nan)),
                "server_up": g.static_rows[2],
            }
            self._scrape(t, offered, good, err, p95, cpu, mem_max, disk_max, pool_util, active,
                         served_svc * self.svc_mbps_per_rps, srv_vals)
        elif self.ticks % self.scrape_every == 0:
            active = np.bincount(svc_c, up.astype(float), nsvc)
            cpu_sum = np.bincount(svc_c, np.minimum(util, 1.0) * up, nsvc)
            cpu = np.divide(cpu_sum, active, out=np.zeros(nsvc), where=active > 0)
            leak = self.leak[idx]
            mem_srv = self.svc_mem[svc_c] + leak
            has_up = active > 0
            if leak.any():
                mem_max = np.zeros(nsvc)
                np.maximum.at(mem_max, svc_c[up], mem_srv[up])
            else:  # every up server of a service is at its base: the same maximum without the scatter
                mem_max = np.where(has_up, np.maximum(self.svc_mem, 0.0), 0.0)
            if disk_extra.any():
                disk_max = np.zeros(nsvc)
                np.maximum.at(disk_max, svc_c[up], np.minimum(disk[up], 1.0))
            else:
                disk_max = np.where(has_up, np.maximum(np.minimum(self.svc_disk, 1.0), 0.0), 0.0)
            srv_vals = self._server_rows(rc, util, mem_srv, disk, up, sc.tracked, served * self.svc_mbps_per_rps[svc_c])
            self._scrape(t, offered, good, err, p95, cpu, mem_max, disk_max, pool_util, active,
                         served_svc * self.svc_mbps_per_rps, srv_vals)
        self.faults.tick(t)

    def _bill(self, t: float, dt: float, rc: _Rows, sc: _Structure) -> None:
        lo = t - dt
        partial: np.ndarray | None = None
        if rc.created_sorted:
            # every row overlaps the whole step but those created within it (a suffix, rows being created in time
            # order) and those with a deletion time: the same per-row overlaps, computed only where they differ
            m = len(rc.created)
            k = int(np.searchsorted(rc.created, lo, side="right"))
            partial = rc.finite_del if k == m else np.concatenate((rc.finite_del[rc.finite_del < k], np.arange(k, m)))
            whole = float(np.maximum(np.float64(t) - np.float64(lo), 0.0))
            part_overlap = np.maximum(np.minimum(rc.deleted[partial], t) - np.maximum(rc.created[partial], lo), 0.0)
            if rc.any_reserved:
                overlap = np.full(m, whole)
                overlap[partial] = part_overlap
                partial = None
        else:
            start = np.maximum(rc.created, lo)
            end = np.minimum(rc.deleted, t)
            overlap = np.maximum(end - start, 0.0)
        if self.cfg.prices.spot.volatility > 0 and rc.any_spot_all:
            theta, vol = dt / 3600.0, self.cfg.prices.spot.volatility
            self._spot_x += -theta * self._spot_x + vol * np.sqrt(theta) * self.rng_spot.standard_normal(len(self._spot_x))
            self.f_spot = self.f_spot_mean * np.exp(self._spot_x)
        fl = sc.fl
        pr = rc.pricing
        rate = np.where(pr == 1, self.f_spot[fl], sc.od_rate) if rc.any_spot else \
            sc.od_rate.copy() if rc.any_reserved else sc.od_rate
        if rc.any_reserved:
            # reserved servers are covered by commitments up to their count; the rest pay on-demand
            alive_res = (pr == 2) & (overlap > 0)
            covered_left = self.f_commit.copy()
            for i in np.flatnonzero(alive_res):
                if covered_left[fl[i]] > 0:
                    covered_left[fl[i]] -= 1
                    rate[i] = 0.0
        if partial is not None:  # every row overlaps the whole step but those at ``partial``
            cost = rate * whole
            if len(partial):
                cost[partial] = rate[partial] * part_overlap
            if not rc.any_spot:
                # on-demand rates: per project, the step times the sum of the rates, corrected for the partial
                # rows (equal to rounding)
                if sc.od_rate_proj is None:
                    sc.od_rate_proj = np.bincount(rc.svc_proj, sc.od_rate, len(self.proj_names))
                per_proj = sc.od_rate_proj * whole
                if len(partial):
                    per_proj += np.bincount(rc.svc_proj[partial], cost[partial] - rate[partial] * whole,
                                            len(self.proj_names))
            else:
                per_proj = np.bincount(rc.svc_proj, cost, len(self.proj_names))
        else:
            cost = rate * overlap
            per_proj = np.bincount(rc.svc_proj, cost, len(self.proj_names))
        self.billed[rc.idx] += cost
        commit = float((self.f_commit * self.f_reserved_rate).sum()) * dt
        self.spend_project += per_proj
        self.spend_project[0] += commit
        total = float(per_proj.sum()) + commit
        self.spend_total += total
        self.spend_rate = total / dt * 3600.0 if dt > 0 else 0.0
        if int(t) // 60 != int(t - dt) // 60 or not self.spend_series:
            self.spend_series.append((t, self.spend_total))

    def _scrape(self, t: float, offered: np.ndarray, good: np.ndarray, err: np.ndarray, p95: np.ndarray,
                cpu: np.ndarray, mem: np.ndarray, disk: np.ndarray, pool: np.ndarray, active: np.ndarray,
                net: np.ndarray, srv_vals: dict[str, np.ndarray]) -> None:
        """Scrape one snapshot: per-service values (with noise) and full-width per-server rows."""
        noise = self.cfg.telemetry.noise
        z = 1.0 + noise * self.rng_noise.standard_normal((4, self.n_svc))
        svc_vals = {
            "request_rate": offered * z[0],
            "served_rate": good * z[0],
            "error_ratio": np.clip(err * z[1] + noise * 1e-3 * np.abs(z[1] - 1.0), 0.0, 1.0),
            "latency_p95_ms": p95 * z[2],
            "cpu_util": np.clip(cpu * z[3], 0.0, 1.0),
            "memory_util": mem,
            "disk_util": disk,
            "pool_util": pool,
            "network_mbps": net * z[0],
            "active_servers": active,
        }
        self.last = svc_vals
        self.metrics.scrape(t, svc_vals, srv_vals)
        before = len(self.alerting.alerts)
        self.alerting.evaluate(t, svc_vals, srv_vals, self._svc_labels(), self._server_labels)
        if len(self.alerting.alerts) > before:
            self.operator.on_alerts(self.alerting.alerts[before:])

    def _server_rows(self, rc: _Rows, util: np.ndarray, mem_srv: np.ndarray, disk_srv: np.ndarray, up: np.ndarray,
                     tracked: np.ndarray, net_srv: np.ndarray) -> dict[str, np.ndarray]:
        """Full-width per-server scrape rows from inputs over ``rc``'s rows (the rest read as NaN: deleted)."""
        n = self.n
        if rc.scratch is None and not isinstance(rc.idx, slice):
            # full-width rows, NaN outside rc's rows (deleted servers); one buffer reused across scrapes and row sets
            if self._scratch is None or self._scratch.shape[1] < n:
                self._scratch = np.full((len(SERVER_METRICS), self.cap), np.nan)
            else:
                self._scratch[:, :n] = np.nan
            rc.scratch = self._scratch[:, :n]

        def full(k: int, rows: np.ndarray) -> np.ndarray:
            if rc.scratch is None:
                return rows
            rc.scratch[k, rc.idx] = rows
            return rc.scratch[k]

        return {
            "server_cpu_util": full(0, np.where(up, np.minimum(util, 1.0), np.where(tracked, 0.0, np.nan))),
            "server_memory_util": full(1, np.where(tracked, mem_srv, np.nan)),
            "server_disk_util": full(2, np.where(tracked, np.minimum(disk_srv, 1.0), np.nan)),
            "server_network_mbps": full(3, np.where(tracked, net_srv, np.nan)),
            "server_up": full(4, np.where(tracked, up.astype(float), np.nan)),
        }

    def _svc_labels(self) -> list[dict[str, str]]:
        if not hasattr(self, "_svc_label_cache"):
            self._svc_label_cache = [{"service": s, "project": self.proj_names[self.svc_project[i]]}
                                     for i, s in enumerate(self.svc_names)]
        return self._svc_label_cache

    def _server_labels(self, i: int) -> dict[str, str]:
        s = int(self.svc[i])
        return {"server": server_id(i), "service": self.svc_names[s] if s >= 0 else "",
                "hypervisor": self.hv_names[self.hv[i]], "zone": self.zone_names[self.hv_zone[self.hv[i]]]}

    # ------------------------------------------------------------------ run
    def run(self, until: float | None = None) -> None:
        """Run to ``until`` (exclusive), or to the end of the scenario, events at that instant included."""
        if until is not None:
            self.env.run(until=until)
            return
        if self._end is None:
            self._end = self.env.event()
            self._end._ok, self._end._value = True, None
            # priority 2: after every ordinary event of the last instant (ticks, engine steps)
            self.env.schedule(self._end, priority=2, delay=self.cfg.duration - self.now())
        self.env.run(until=self._end)

    def finish(self) -> None:
        """Close open intervals and rollups at the end of a run."""
        self.truth.close(self.now())
        self.faults.finish(self.now())
        self.metrics.close()
        if not self.spend_series or self.spend_series[-1][0] != self.now():
            self.spend_series.append((self.now(), self.spend_total))
