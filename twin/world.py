"""The simulated cloud: construction, the state arrays, shared helpers, run and finish.

``World`` is assembled from one mixin per concern: :mod:`twin.scheduling` (placement),
:mod:`twin.control` (the control API), :mod:`twin.effects` (what faults and hardware do),
:mod:`twin.inventory` (the lagging view the adapter shows), :mod:`twin.physics` (the tick),
:mod:`twin.billing` and :mod:`twin.scrape`.  Per-tick physics is vectorised with numpy over the
whole fleet; SimPy carries the discrete events (boots, deletions, migrations, faults).  Every random
draw comes from a named stream of one seed, so a run is deterministic for a seed, and traffic and
faults are identical across the engine sets compared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import simpy

from twin.billing import Billing
from twin.config import Distribution, WorldConfig
from twin.control import Control
from twin.effects import Effects
from twin.groundtruth import GroundTruth
from twin.inventory import InventoryView
from twin.names import (  # noqa: F401  (re-exported: the world's names)
    ACTIVE,
    BUILD,
    DELETED,
    DEPENDENCY_METRICS,
    ERROR,
    P95_OVER_MEAN,
    PRICING,
    SERVER_METRICS,
    SERVICE_METRICS,
    SHELVED,
    SHUTOFF,
    STATUS,
    TIMEOUT_MS,
    server_id,
    server_index,
)
from twin.physics import VERIFY_CACHE, Physics, _Rows, _Structure
from twin.scheduling import Scheduling
from twin.scrape import Scrape
from twin.telemetry import AlertEvaluator, MetricStore
from twin.traffic import rate_series


class World(Scheduling, Control, Effects, InventoryView, Physics, Billing, Scrape):
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
        self.truth.edge_mask, self.truth.edge_shared = self.svc_edge, self._edge_called
        self.truth.alloc_curves(len(self.traffic))
        from twin.batch import BatchQueues  # job queues of batch services (None: the world has none)

        self.batch = BatchQueues(self) if any(s.workload == "batch" for s in cfg.services) else None
        self.batch_services = self.batch.services if self.batch is not None else []
        self.truth.batch = self.batch
        self._no_queue = np.zeros(self.n_svc)  # queue_length of a world without batch services
        scrape = cfg.telemetry.scrape_interval
        self.scrape_every = max(1, int(round(scrape / self.dt)))
        self.metrics = MetricStore(cfg.telemetry.window, self.dt * self.scrape_every, self.svc_names, SERVICE_METRICS,
                                   SERVER_METRICS, self.cap, edges=list(self.edge_index),
                                   dependency_metrics=DEPENDENCY_METRICS, horizon=cfg.duration)
        self.alerting = AlertEvaluator(cfg.alert_rules, set(SERVICE_METRICS), set(SERVER_METRICS),
                                       cfg.telemetry.repeat_interval)
        self.spend_total = 0.0
        self.spend_project = np.zeros(len(self.proj_names))
        self.spend_rate = 0.0  # per hour, last tick
        self.spend_rate_project = np.zeros(len(self.proj_names))  # per hour, last tick
        self.spend_series: list[tuple[float, float]] = []  # (t, cumulative) per minute
        self.last = {m: np.zeros(self.n_svc) for m in SERVICE_METRICS}
        self.operator_route = cfg.operator.route  # "raw_alerts" or "pages" (the runner sets it per engine set)
        from twin.faults import FaultManager  # late import: faults need World's names
        from twin.operator import HumanOperator

        self.faults = FaultManager(self)
        self.operator = HumanOperator(self)
        from twin.incidents import IncidentBoard  # declared incidents: what engines see, never ground truth

        self.incident_board = IncidentBoard(self.now)
        from twin.budgets import BudgetBook
        from twin.inbox import Inbox
        from twin.releases import ReleaseManager
        from twin.reservations import ReservationBook

        self.releases = ReleaseManager(self)  # versions per server, deploys, rollbacks, the pipeline
        self.reservations = ReservationBook(self)  # commitments (keeps f_commit current)
        self.budgets = BudgetBook(self)
        self.inbox = Inbox(self)  # self-service requests
        self._end: simpy.Event | None = None
        self._rows: _Rows | None = None  # see _tick_rows
        self._scratch: np.ndarray | None = None  # see _scrape
        self._rowbuf: np.ndarray | None = None  # per-server scrape rows of grouped ticks
        self.env.process(self._physics())
        self.env.process(self._power_state_sync())
        from twin.maintenance import schedule  # planned work: servers stopped and started again, no fault

        self.maintenance_log: list[tuple[float, str, tuple[str, ...], str]] = []  # (t, service, servers, stop|start)
        schedule(self)

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
        self.hv_down_at = np.full(self.n_hv, np.nan)  # when a host went down (NaN: up)
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
        self.svc_lat_mult = np.ones(self.n_svc)
        self.svc_conn_leak = np.zeros(self.n_svc)  # leaked connections per second
        self.svc_leaked = np.zeros(self.n_svc)  # leaked connections held
        edges = [(i, self.svc_index[d.service], d.calls_per_request) for i, s in enumerate(svcs) for d in s.dependencies]
        self.e_src = np.array([e[0] for e in edges], dtype=np.int64)
        self.e_dst = np.array([e[1] for e in edges], dtype=np.int64)
        self.e_ratio = np.array([e[2] for e in edges], dtype=float)
        self.edge_index = {}  # (caller, callee) -> edge (the first, if a pair is listed twice)
        for k, (a, b, _) in enumerate(edges):
            self.edge_index.setdefault((self.svc_names[a], self.svc_names[b]), k)
        self._dep_now: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see tick and _scrape
        # edge services take the users' requests: those marked edge, else those no other service calls
        called = np.zeros(self.n_svc, dtype=bool)
        called[self.e_dst] = True
        edge = np.array([(not called[i]) if s.edge is None else s.edge for i, s in enumerate(svcs)], dtype=bool)
        self.svc_edge = edge.astype(float)
        self._edge_called = bool((edge & called).any())
        n_ticks = int(np.ceil(self.cfg.duration / self.dt)) + 1
        times = np.arange(n_ticks) * self.dt
        self.traffic = np.zeros((n_ticks, self.n_svc))
        for i, s in enumerate(svcs):
            if s.traffic is not None:
                self.traffic[:, i] = rate_series(s.traffic, times, self.rng_traffic, base_dir)
        self.prev_good = np.zeros(self.n_svc)
        self.prev_lat = self.svc_lat.copy()
        self.prev_err = np.zeros(self.n_svc)

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
        grow("status_lag", False, bool)  # the inventory still shows shown_old (see twin/inventory.py)
        grow("shown_old", DELETED, np.int8)
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

    def is_serving(self, i: int) -> bool:
        """``serving()[i]`` for one server, without the fleet-wide mask."""
        return bool(self.status[i] == ACTIVE and self.down_until[i] <= self.now() and self.hv_up[self.hv[i]]
                    and self.svc[i] >= 0 and not self.deleting[i])

    def _notify(self, kind: str, server: int, service: int, actor: str) -> None:
        """An action completed: listeners hear of it; the inventory shows the server's state at once."""
        if server >= 0:
            self.status_lag[server] = False
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
