"""A naive model of the same world, for the speed-up figure: one SimPy process per server, no numpy per tick.

Each server process wakes every tick and, in pure Python, works out its load
share, utilisation, served requests, latency, billing and its own scraped
metrics (with its own ring buffer and its own ``InstanceDown`` rule).  One
service process per tick then does the per-service physics of
:meth:`twin.world.World.tick` — dependency calls, latency, pools, errors,
ground-truth totals, the noisy per-service scrape, minute rollups and the
per-service alert rules — also in pure Python.

It covers a static fleet (no engines, no faults, on-demand pricing): the part
of the twin that runs every tick.  Traffic comes from the same seeded streams
as :class:`twin.world.World`, so availability and cost agree with the twin's
(a check in ``benchmarks/test_bench.py``).
"""

from __future__ import annotations

import math
import operator
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from scenarios.schema import Scenario
from twin.telemetry import parse_expr
from twin.traffic import rate_series
from twin.world import P95_OVER_MEAN, SERVER_METRICS, SERVICE_METRICS, TIMEOUT_MS

_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}


@dataclass
class NaiveService:
    """Per-service state and this tick's accumulators."""

    name: str
    cpv: float
    lat: float
    err: float
    mem: float
    disk: float
    pool: float
    slo_lat: float
    slo_err: float
    deps: list[tuple[int, float]]  # (dependency index, calls per request)
    offered: float = 0.0
    wsum: float = 0.0
    served: float = 0.0
    failed: float = 0.0
    lat_sum: float = 0.0
    busy_sum: float = 0.0
    active: float = 0.0
    mem_max: float = 0.0
    disk_max: float = 0.0
    prev_good: float = 0.0
    prev_lat: float = 0.0
    prev_err: float = 0.0
    rings: dict[str, deque[float]] = field(default_factory=dict)
    alert_pending: dict[str, float | None] = field(default_factory=dict)
    alert_firing: dict[str, bool] = field(default_factory=dict)


@dataclass
class NaiveServer:
    svc: int
    vcpus: float
    price_s: float
    weight: float = 1.0
    billed: float = 0.0
    rings: dict[str, deque[float]] = field(default_factory=dict)
    pending: float | None = None
    firing: bool = False


class NaiveWorld:
    """The unvectorised equivalent of :class:`twin.world.World`'s per-tick physics (see module doc)."""

    def __init__(self, cfg: Scenario) -> None:
        self.cfg = cfg
        self.env = simpy.Environment()
        self.dt = cfg.tick
        seq = np.random.SeedSequence(cfg.seed)
        streams = seq.spawn(6)
        rng_traffic = np.random.default_rng(streams[0])
        self.noise = random.Random(cfg.seed)
        n_ticks = int(np.ceil(cfg.duration / self.dt)) + 1
        times = np.arange(n_ticks) * self.dt
        index = {s.name: i for i, s in enumerate(cfg.services)}
        self.traffic: list[list[float]] = [[0.0] * len(cfg.services) for _ in range(n_ticks)]
        for i, s in enumerate(cfg.services):
            if s.traffic is not None:
                for k, v in enumerate(rate_series(s.traffic, times, rng_traffic).tolist()):
                    self.traffic[k][i] = v
        flavors = {f.name: f for f in cfg.flavors}
        window = max(2, int(round(cfg.telemetry.window / cfg.telemetry.scrape_interval)) + 1)
        self.rules = [(r, *parse_expr(r.expr, set(SERVICE_METRICS) | set(SERVER_METRICS))) for r in cfg.alert_rules]
        self.services: list[NaiveService] = []
        for s in cfg.services:
            ns = NaiveService(s.name, s.capacity_per_vcpu, s.base_latency_ms, s.base_error_ratio, s.memory_base,
                              s.disk_base, s.settings.get("pool_size", 0.0), s.slo.latency_p95_ms, s.slo.error_ratio,
                              [(index[d.service], d.calls_per_request) for d in s.dependencies])
            ns.prev_lat = s.base_latency_ms
            ns.rings = {m: deque(maxlen=window) for m in SERVICE_METRICS}
            self.services.append(ns)
        self.servers: list[NaiveServer] = []
        for i, s in enumerate(cfg.services):
            price = cfg.prices.on_demand[s.flavor] / 3600.0
            for _ in range(s.servers):
                srv = NaiveServer(i, float(flavors[s.flavor].vcpus), price)
                srv.rings = {m: deque(maxlen=window) for m in SERVER_METRICS}
                self.servers.append(srv)
        self.offered_total = 0.0
        self.good_total = 0.0
        self.breach_s = [0.0] * len(self.services)
        self.spend_total = 0.0
        self.alerts: list[tuple[float, str, str, str]] = []
        self.rollup: dict[str, float] = {}
        self.rollup_n = 0
        self.rollups: list[tuple[float, dict[str, float]]] = []
        self.ticks = 0
        self._prepare(1)
        for srv in self.servers:
            self.env.process(self._server(srv))
        self.env.process(self._services())

    def _prepare(self, k: int) -> None:
        """Offered load and weight sums for tick ``k`` (from the previous tick's results)."""
        row = self.traffic[min(k, len(self.traffic) - 1)]
        for i, s in enumerate(self.services):
            s.offered = row[i]
            s.wsum = s.served = s.failed = s.lat_sum = s.busy_sum = s.active = s.mem_max = s.disk_max = 0.0
        for s in self.services:
            for d, ratio in s.deps:
                self.services[d].offered += s.prev_good * ratio
        for srv in self.servers:
            self.services[srv.svc].wsum += srv.weight

    def _server(self, srv: NaiveServer):  # type: ignore[no-untyped-def]
        dt = self.dt
        while True:
            yield self.env.timeout(dt)
            s = self.services[srv.svc]
            share = srv.weight / s.wsum if s.wsum > 0 else 0.0
            assigned = s.offered * share
            cap = srv.vcpus * s.cpv
            util = assigned / cap if cap > 0 else 0.0
            served = min(assigned, cap)
            bad = s.disk >= 1.0
            s.served += served
            s.failed += served if bad else 0.0
            s.lat_sum += served * s.lat / (1.0 - min(util, 0.95))
            s.active += 1.0
            s.busy_sum += min(util, 1.0)
            s.mem_max = max(s.mem_max, s.mem)
            s.disk_max = max(s.disk_max, min(s.disk, 1.0))
            cost = srv.price_s * dt
            srv.billed += cost
            self.spend_total += cost
            t = self.env.now
            for m, v in (("server_cpu_util", min(util, 1.0)), ("server_memory_util", s.mem),
                         ("server_disk_util", min(s.disk, 1.0)), ("server_up", 1.0)):
                srv.rings[m].append(v)
            for rule, metric, op, thr in self.rules:
                if metric != "server_up":
                    continue
                if _OPS[op](1.0, thr):
                    if srv.pending is None:
                        srv.pending = t
                    if not srv.firing and t - srv.pending >= rule.for_:
                        srv.firing = True
                        self.alerts.append((t, rule.name, "firing", str(id(srv))))
                else:
                    srv.pending = None
                    if srv.firing:
                        srv.firing = False
                        self.alerts.append((t, rule.name, "resolved", str(id(srv))))

    def _services(self):  # type: ignore[no-untyped-def]
        dt = self.dt
        noise = self.cfg.telemetry.noise
        end = self.cfg.duration
        while self.env.now < end - 1e-9:
            yield self.env.timeout(dt)
            t = self.env.now
            self.ticks += 1
            for s in self.services:
                own = s.lat_sum / s.served if s.served > 0 else s.lat
                mean_lat = own + sum(ratio * self.services[d].prev_lat for d, ratio in s.deps)
                pool_util = s.served * mean_lat / 1000.0 / s.pool if s.pool > 0 else 0.0
                pool_fail = 1.0 - 1.0 / max(pool_util, 1.0) if s.pool > 0 and pool_util > 1.0 else 0.0
                if s.pool > 0:
                    mean_lat *= 1.0 + 4.0 * max(pool_util - 0.8, 0.0)
                dep_err = min(1.0, sum(min(ratio, 1.0) * self.services[d].prev_err for d, ratio in s.deps))
                ok = (1.0 - min(1.0, s.err)) * (1.0 - dep_err) * (1.0 - pool_fail)
                good = max(s.served - s.failed, 0.0) * ok
                err = (s.offered - good) / s.offered if s.offered > 0 else 0.0
                p95 = mean_lat * P95_OVER_MEAN if s.served > 0 or s.offered <= 0 else TIMEOUT_MS
                p95 = min(p95, TIMEOUT_MS)
                s.prev_good = max(s.served - s.failed, 0.0)
                s.prev_lat = min(mean_lat, TIMEOUT_MS)
                s.prev_err = err
                self.offered_total += s.offered * dt
                self.good_total += good * dt
                if s.offered > 0 and (p95 > s.slo_lat or err > s.slo_err):
                    self.breach_s[self.services.index(s)] += dt
                z = [1.0 + noise * self.noise.gauss(0.0, 1.0) for _ in range(4)]
                cpu = s.busy_sum / s.active if s.active > 0 else 0.0
                vals = {"request_rate": s.offered * z[0], "served_rate": good * z[0],
                        "error_ratio": min(max(err * z[1] + noise * 1e-3 * abs(z[1] - 1.0), 0.0), 1.0),
                        "latency_p95_ms": p95 * z[2], "cpu_util": min(max(cpu * z[3], 0.0), 1.0),
                        "memory_util": s.mem_max, "disk_util": s.disk_max, "pool_util": pool_util,
                        "active_servers": s.active}
                for m, v in vals.items():
                    s.rings[m].append(v)
                    key = f"{m}|{s.name}"
                    self.rollup[key] = self.rollup.get(key, 0.0) + v
                self._alerts(t, s, vals)
            self.rollup_n += 1
            if int(t) // 60 != int(t - dt) // 60:
                self.rollups.append((t, {k: v / self.rollup_n for k, v in self.rollup.items()}))
                self.rollup, self.rollup_n = {}, 0
            self._prepare(int(round(t / dt)) + 1)

    def _alerts(self, t: float, s: NaiveService, vals: dict[str, float]) -> None:
        for rule, metric, op, thr in self.rules:
            if metric not in vals:
                continue
            v = vals[metric]
            if not math.isnan(v) and _OPS[op](v, thr):
                if s.alert_pending.get(rule.name) is None:
                    s.alert_pending[rule.name] = t
                if not s.alert_firing.get(rule.name) and t - s.alert_pending[rule.name] >= rule.for_ - 1e-9:  # type: ignore[operator]
                    s.alert_firing[rule.name] = True
                    self.alerts.append((t, rule.name, "firing", s.name))
            else:
                s.alert_pending[rule.name] = None
                if s.alert_firing.get(rule.name):
                    s.alert_firing[rule.name] = False
                    self.alerts.append((t, rule.name, "resolved", s.name))

    def run(self) -> None:
        self.env.run(until=self.cfg.duration + 1e-6)

    def availability(self) -> float:
        return self.good_total / self.offered_total if self.offered_total else float("nan")
