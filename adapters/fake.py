"""An in-memory world behind the seam, for engine tests and benchmarks (no simpy, no cloud).

:class:`FakeAdapter` implements the whole :class:`adapters.base.Adapter`
protocol and every verb of :data:`adapters.base.ACTION_TYPES`, with the
behaviour the contract tests (``tests/test_adapter_contract.py``) demand of
the twin and of OpenStack: statuses, capacity (``NoValidHost``), quotas
(``QuotaExceeded``), request-id idempotent creates, versions and deploys,
settings, load-balancer weights, metadata, prices, spend, budgets,
reservations, an incident board, a request inbox.  There is no physics:
metrics are what a test feeds, alerts what it pushes, an injected fault is
only recorded.  It runs on its own clock (:meth:`FakeAdapter.advance`), so a
boot, a reboot or a rolling restart can take time; with the default zero
delays everything happens at once.  Deterministic: no randomness anywhere.

A service with two servers; one more, then a canary::

    >>> from adapters.base import CreateServer, Deploy, NoValidHost
    >>> fake = FakeAdapter(services={"web": ("small", 2)}, boot_delay=30)
    >>> [s.status for s in fake.servers(service="web")]
    ['ACTIVE', 'ACTIVE']
    >>> r = fake.execute(CreateServer(service="web"))
    >>> r.server_ids, fake.server("srv-3").status
    (('srv-3',), 'BUILD')
    >>> fake.advance(30)
    >>> fake.server("srv-3").status, fake.services()[0].active
    ('ACTIVE', 3)
    >>> fake.execute(Deploy(service="web", version="2", fraction=0.3)).detail
    'deployed 2 to 1 of 3 server(s) of web'
    >>> [(d.version, d.previous, d.fraction) for d in fake.deploys(since=0)]
    [('2', '1', 0.3)]

Metrics are fed, as samples or as a function of time sampled every
``scrape_interval`` seconds; alerts are pushed::

    >>> fake.feed("cpu_util", {"service": "web"}, fn=lambda t: 0.5 + t / 1000)
    >>> fake.latest("cpu_util")
    {'web': 0.53}
    >>> w = fake.metric_window("cpu_util", {"service": "web"}, 15)
    >>> w.t.tolist(), w.v.tolist()
    ([20.0, 25.0, 30.0], [0.52, 0.525, 0.53])
    >>> a = fake.push_alert("WebHot", {"service": "web"}, severity="critical", value=0.9)
    >>> [x.name for x in fake.alerts(since=0)]
    ['WebHot']

Capacity is finite::

    >>> tiny = FakeAdapter(services={"db": ("large", 0)}, hypervisors=[("hv-1", "az-1", "r1", 8, 32768, 500)])
    >>> tiny.execute(CreateServer(service="db")).ok
    True
    >>> tiny.execute(CreateServer(service="db"))
    Traceback (most recent call last):
    ...
    adapters.base.NoValidHost: no hypervisor has room for 1 x large (8 vCPU, 32768 MB, 500 GB)
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from adapters import base
from adapters import incident_board as board
from adapters.base import (
    Action,
    ActionResult,
    Alert,
    Budget,
    Conflict,
    DeployEvent,
    Flavor,
    Hypervisor,
    IncidentInfo,
    MetricWindow,
    NotFound,
    NoValidHost,
    Price,
    Quota,
    QuotaExceeded,
    Request,
    Reservation,
    Server,
    ServiceState,
    Spend,
    TransientAPIError,
)

#: metadata keys, as the OpenStack adapter writes them
META_REQUEST = "zeroops_request_id"
META_VERSION = "zeroops_version"
META_PREV_VERSION = "zeroops_prev_version"
META_WEIGHT = "zeroops_lb_weight"

FLAVORS: tuple[Flavor, ...] = (
    Flavor("small", 1, 2048, 20),
    Flavor("medium", 2, 4096, 80),
    Flavor("large", 8, 32768, 500),
)
#: per flavor: on-demand price per hour; spot is 30 % of it, reserved 60 %
ON_DEMAND: dict[str, float] = {"small": 0.05, "medium": 0.2, "large": 1.6}
ZONES: dict[str, str] = {"az-canary": "canary", "az-east-1": "east", "az-west-1": "west"}
#: the fault names of the twin's catalog (README "Fault catalog"); InjectFault of another name is a Conflict
FAULTS: tuple[str, ...] = (
    "server_crash", "hypervisor_failure", "az_outage", "memory_leak", "db_pool_exhaustion", "latency_degradation",
    "bad_deploy", "cpu_throttling", "disk_pressure", "network_partition", "spot_preemption",
)
_DOWN = ("SHELVED_OFFLOADED", "DELETED")  # statuses that hold no host


@dataclass(frozen=True)
class FakeService:
    """One service of the fake world: ``servers`` servers of ``flavor`` at first."""

    name: str
    flavor: str = "small"
    servers: int = 2
    project: str = "p"
    dependencies: tuple[str, ...] = ()
    min_servers: int = 0
    max_servers: int = 1_000_000
    settings: Mapping[str, float] = field(default_factory=dict)
    version: str = "1"
    stateful: bool = True


@dataclass(frozen=True)
class InjectedFault:
    """A fault :class:`adapters.base.InjectFault` asked for: recorded, with no effect on the fake world."""

    fault: str
    target: str
    at: float
    duration: float | None
    magnitude: float | None
    experiment: str


@dataclass
class _Hyp:
    name: str
    zone: str
    region: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    up: bool = True


@functools.lru_cache(maxsize=4096)
def version_number(v: str | None) -> int:
    """The release number in a version string: ``'7'`` -> 7, ``'v2.3'`` -> 3 (the last digits), ``'x'`` -> 0."""
    m = re.search(r"(\d+)\D*$", v or "")
    return int(m.group(1)) if m else 0


class FakeAdapter:
    """A deterministic in-memory world; ``execute`` applies actions on the fake's own clock ``t``.

    ``services``: a mapping ``name -> (flavor, servers)`` or a sequence of :class:`FakeService`.
    ``hypervisors``: ``(name, zone, region, vcpus, ram_mb, disk_gb)`` rows (default: one big host per zone).
    ``boot_delay``, ``reboot_delay``, ``restart_delay``: seconds a create, a reboot or start, and each
    server of a rolling restart take (0: at once).  ``stopped_price``: the share of its price a SHUTOFF
    server is billed (0, as the twin's default ``prices.stopped``).  ``fail_every``: every n-th ``execute`` raises
    :class:`TransientAPIError` before acting.  ``actor`` is who acts, in deploy events and incidents.
    """

    name = "fake"

    def __init__(
        self,
        services: Mapping[str, tuple[str, int]] | Sequence[FakeService] | None = None,
        *,
        flavors: Sequence[Flavor] = FLAVORS,
        prices: Sequence[Price] | None = None,
        zones: Mapping[str, str] | None = None,
        hypervisors: Sequence[tuple[str, str, str, int, int, int]] | None = None,
        quotas: Mapping[str, tuple[int, int, int]] | None = None,
        budgets: Sequence[Budget] = (),
        boot_delay: float = 0.0,
        reboot_delay: float = 0.0,
        restart_delay: float = 0.0,
        scrape_interval: float = 5.0,
        stopped_price: float = 0.0,
        fail_every: int = 0,
        actor: str = "automation",
        t0: float = 0.0,
    ) -> None:
        self.t = float(t0)
        self._flavors = list(flavors)
        self._flavor = {f.name: f for f in self._flavors}
        self._prices = list(prices) if prices is not None else [
            Price(f.name, p, ON_DEMAND.get(f.name, 0.1) * m)  # type: ignore[arg-type]
            for f in self._flavors for p, m in (("on_demand", 1.0), ("spot", 0.3), ("reserved", 0.6))
        ]
        self._price = {(p.flavor, p.pricing): p.per_hour for p in self._prices}
        self.zones = dict(zones or ({h[1]: h[2] for h in hypervisors} if hypervisors else ZONES))
        rows = hypervisors or [(f"hv-{z}", z, r, 512, 1 << 21, 100_000) for z, r in self.zones.items()]
        self._hyps = [_Hyp(*row) for row in rows]
        self.boot_delay, self.reboot_delay, self.restart_delay = boot_delay, reboot_delay, restart_delay
        self.scrape_interval = scrape_interval
        self.stopped_price = stopped_price
        self.fail_every = fail_every
        self.actor = actor
        self.calls = 0
        self.executed: list[tuple[float, Action, ActionResult]] = []
        # state
        self._ids = itertools.count(1)
        self.servers_by_id: dict[str, Server] = {}
        self.specs: dict[str, FakeService] = {}
        self.service_flavor: dict[str, str] = {}
        self.settings: dict[str, dict[str, float]] = {}
        self.lb_weights: dict[str, float] = {}
        self._quota: dict[str, list[int]] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        self._alerts: list[Alert] = []
        self._deploys: list[DeployEvent] = []
        self._reservations: list[Reservation] = []
        self._budgets = list(budgets)
        self._incidents: dict[str, IncidentInfo] = {}
        self._requests: dict[str, Request] = {}
        self.alert_routes: dict[str, str | None] = {}  # project -> alert receiver (CreateProject)
        self.faults: list[InjectedFault] = []
        self.pages: list[base.Page] = []
        self.notifications: list[base.Notify] = []
        # billing: cumulative spend per (project, service) and a checkpoint per accrual, for budgets
        self._billed_to = self.t
        self._spent: dict[tuple[str, str], float] = {}
        self._checkpoints: list[tuple[float, dict[str, float]]] = [(self.t, {})]
        specs = ([FakeService(n, f, c) for n, (f, c) in services.items()] if isinstance(services, Mapping)
                 else list(services) if services is not None else [FakeService("web", "small", 4)])
        for spec in specs:
            if spec.flavor not in self._flavor:
                raise ValueError(f"service {spec.name}: unknown flavor {spec.flavor!r}; flavors: {sorted(self._flavor)}")
            self.specs[spec.name] = spec
            self.service_flavor[spec.name] = spec.flavor
            self.settings[spec.name] = dict(spec.settings)
            self._quota.setdefault(spec.project, [10_000, 100_000, 1 << 30])
        for p, q in (quotas or {}).items():
            self._quota[p] = list(q)
        self._quota.setdefault("p", [10_000, 100_000, 1 << 30])
        for spec in specs:
            for _ in range(spec.servers):
                self._place_new(spec.name, spec.flavor, None, "on_demand", {META_VERSION: spec.version}, status="ACTIVE")

    # ------------------------------------------------------------ the clock
    def now(self) -> float:
        self._tick()
        return self.t

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on, running what falls due (boots, reboots, restart steps) in order."""
        self.t += seconds
        self._tick()

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        if delay <= 0:
            fn()
        else:
            heapq.heappush(self._events, (self.t + delay, next(self._seq), fn))

    def _tick(self) -> None:
        """Bill up to each due event, run it, then bill up to ``t`` (``t`` may have been set directly)."""
        target = self.t
        while self._events and self._events[0][0] <= target:
            at, _, fn = heapq.heappop(self._events)
            self._bill(at)
            self.t = at
            fn()
        self.t = target
        self._bill(target)

    # --------------------------------------------------------------- billing
    def price_of(self, flavor: str, pricing: str = "on_demand") -> float:
        return self._price.get((flavor, pricing), self._price.get((flavor, "on_demand"), 0.0))

    def _rates(self, at: float) -> dict[tuple[str, str], float]:
        """Per (project, service) price per hour at ``at``; reservations bill whether used or not."""
        rates: dict[tuple[str, str], float] = {}
        covered = {}  # (project, flavor) -> reserved servers still covered by a reservation
        for r in self._reservations:
            if r.start <= at < r.end:
                covered[(r.project, r.flavor)] = covered.get((r.project, r.flavor), 0) + r.count
                rates[(r.project, "")] = rates.get((r.project, ""), 0.0) + r.count * r.per_hour
        for s in sorted(self.servers_by_id.values(), key=lambda s: _num(s.id)):
            if s.status in _DOWN:
                continue  # shelved servers cost no compute
            p = self.price_of(s.flavor, s.pricing) * (self.stopped_price if s.status == "SHUTOFF" else 1.0)
            if s.pricing == "reserved" and covered.get((s.project, s.flavor), 0) > 0:
                covered[(s.project, s.flavor)] -= 1
                p = 0.0  # paid by the reservation
            key = (s.project, s.service or "")
            rates[key] = rates.get(key, 0.0) + p
        return rates

    def _bill(self, upto: float) -> None:
        dt = upto - self._billed_to
        if dt <= 0:
            return
        for key, rate in self._rates(self._billed_to).items():
            self._spent[key] = self._spent.get(key, 0.0) + rate * dt / 3600.0
        self._billed_to = upto
        per_project: dict[str, float] = {}
        for (p, _), v in self._spent.items():
            per_project[p] = per_project.get(p, 0.0) + v
        self._checkpoints.append((upto, per_project))

    def _spent_at(self, project: str, at: float) -> float:
        """Cumulative spend of a project (``*``: all) at time ``at`` (rates are constant between checkpoints)."""
        ts = [c[0] for c in self._checkpoints]
        k = max(0, int(np.searchsorted(ts, at, side="right")) - 1)

        def val(i: int) -> float:
            d = self._checkpoints[i][1]
            return sum(d.values()) if project == "*" else d.get(project, 0.0)

        if k + 1 < len(ts) and ts[k + 1] > ts[k]:
            t0, t1 = ts[k], ts[k + 1]
            return val(k) + (val(k + 1) - val(k)) * (min(at, t1) - t0) / (t1 - t0)
        return val(k)

    # --------------------------------------------------------------- observe
    def flavors(self) -> Sequence[Flavor]:
        return list(self._flavors)

    def hypervisors(self) -> Sequence[Hypervisor]:
        self._tick()
        used = self._usage()
        out = []
        for h in self._hyps:
            u = used.get(h.name, (0, 0, 0))
            out.append(Hypervisor(h.name, h.name, h.region, h.zone, "up" if h.up else "down", h.vcpus, u[0], h.ram_mb,
                                  u[1], h.disk_gb, u[2]))
        return out

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        self._tick()
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}, got {status!r}")
        return [s for s in self.servers_by_id.values()
                if (service is None or s.service == service) and (status is None or s.status == status)]

    def server(self, server_id: str) -> Server | None:
        self._tick()
        return self.servers_by_id.get(server_id)

    def services(self) -> Sequence[ServiceState]:
        self._tick()
        counts = {name: [0, 0, 0, -1] for name in self.specs}  # active, building, failed, newest version
        column = {"ACTIVE": 0, "BUILD": 1, "ERROR": 2, "SHUTOFF": 2, "SHELVED_OFFLOADED": 2}  # as the twin counts
        for s in self.servers_by_id.values():
            c = counts.get(s.service or "")
            if c is None:
                continue
            k = column.get(s.status)
            if k is not None:
                c[k] += 1
            v = version_number(s.metadata.get(META_VERSION))
            if v > c[3]:
                c[3] = v
        out = []
        for name, spec in self.specs.items():
            active, building, failed, version = counts[name]
            out.append(ServiceState(
                name, spec.project, self.service_flavor[name], spec.dependencies, active=active, building=building,
                failed=failed, version=version if version >= 0 else version_number(spec.version),
                settings=dict(self.settings[name]), min_servers=spec.min_servers, max_servers=spec.max_servers,
                stateful=spec.stateful))
        return out

    def feed(self, metric: str, labels: Mapping[str, str], t: float | Iterable[float] | None = None,
             v: float | Iterable[float] | None = None, *, fn: Callable[[float], float] | None = None) -> None:
        """Add samples ``(t, v)`` (scalars or sequences) to a series, or make it ``fn(t)`` sampled every scrape."""
        key = (metric, tuple(sorted(labels.items())))
        if fn is not None:
            self._series[key] = fn
            return
        ts = np.atleast_1d(np.asarray(t, dtype=float))
        vs = np.atleast_1d(np.asarray(v, dtype=float))
        if ts.shape != vs.shape:
            raise ValueError(f"feed: {len(ts)} times but {len(vs)} values")
        old = self._series.get(key)
        pts = list(old) if isinstance(old, list) else []
        pts += list(zip(ts.tolist(), vs.tolist(), strict=True))
        pts.sort(key=lambda p: p[0])
        self._series[key] = pts

    def _find(self, metric: str, labels: Mapping[str, str]) -> Any:
        for (m, lab), s in self._series.items():
            d = dict(lab)
            if m == metric and all(d.get(k) == v for k, v in labels.items()):
                return s
        return None

    def _samples(self, series: Any, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with ``start < t <= end``, oldest first."""
        if callable(series):
            k0 = math.floor(start / self.scrape_interval) + 1
            k1 = math.floor(end / self.scrape_interval)
            t = np.arange(k0, k1 + 1, dtype=float) * self.scrape_interval
            return t, np.array([float(series(x)) for x in t.tolist()], dtype=float)
        pts = [(a, b) for a, b in (series or []) if start < a <= end]
        return np.array([a for a, _ in pts], dtype=float), np.array([b for _, b in pts], dtype=float)

    def _check_metric(self, metric: str, labels: Mapping[str, str]) -> None:
        known = base.SERVICE_METRICS + base.SERVER_METRICS + base.DEPENDENCY_METRICS
        if metric not in known and self._find(metric, {}) is None:
            raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(known)}")
        if metric in base.SERVICE_METRICS and labels.get("service") not in self.specs:
            raise ValueError(f"metric {metric} needs a label service=<one of {', '.join(self.specs)}>")

    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> MetricWindow:
        self._tick()
        self._check_metric(metric, labels)
        t, v = self._samples(self._find(metric, labels), self.t - seconds, self.t)
        return MetricWindow(metric, dict(labels), t, v)

    def metric_history(self, metric: str, labels: Mapping[str, str], seconds: float, step: float) -> MetricWindow:
        """Means per ``step`` seconds, each stamped with its bucket's end (a multiple of ``step``); empty buckets left out."""
        self._tick()
        self._check_metric(metric, labels)
        if step <= 0:
            raise ValueError(f"step must be > 0, got {step}")
        t, v = self._samples(self._find(metric, labels), self.t - seconds, self.t)
        if not len(t):
            return MetricWindow(metric, dict(labels), t, v)
        ends = np.ceil(t / step) * step
        keys, idx = np.unique(ends, return_inverse=True)
        means = np.bincount(idx, weights=v) / np.bincount(idx)
        return MetricWindow(metric, dict(labels), keys.astype(float), means.astype(float))

    def latest(self, metric: str) -> Mapping[str, float]:
        self._tick()
        if metric not in base.SERVICE_METRICS:
            raise ValueError(f"unknown per-service metric {metric!r}; allowed: {', '.join(base.SERVICE_METRICS)}")
        out: dict[str, float] = {}
        for name in self.specs:
            series = self._find(metric, {"service": name})
            if callable(series):
                out[name] = float(series(math.floor(self.t / self.scrape_interval) * self.scrape_interval))
            elif series:
                past = [b for a, b in series if a <= self.t]
                if past:
                    out[name] = float(past[-1])
            elif metric == "active_servers":
                out[name] = float(sum(s.status == "ACTIVE" and s.service == name for s in self.servers_by_id.values()))
        return out

    def push_alert(self, name: str, labels: Mapping[str, str], *, severity: str = "warning", value: float = 1.0,
                   state: str = "firing", starts_at: float | None = None) -> Alert:
        """A notification of an alerting rule at the fake's ``now``, as Prometheus' Alertmanager would send it."""
        self._tick()
        lab = {"alertname": name, **labels}
        fp = hashlib.sha1(repr(sorted(lab.items())).encode()).hexdigest()[:16]
        a = Alert(name, severity, lab, state, self.t if starts_at is None else starts_at, self.t, value, fp)  # type: ignore[arg-type]
        self._alerts.append(a)
        return a

    def alerts(self, since: float) -> Sequence[Alert]:
        self._tick()
        return [a for a in self._alerts if a.at > since]

    def prices(self) -> Sequence[Price]:
        return list(self._prices)

    def spend(self) -> Spend:
        self._tick()
        per_project: dict[str, float] = {}
        per_service: dict[str, float] = {}
        for (p, s), v in self._spent.items():
            per_project[p] = per_project.get(p, 0.0) + v
            if s:
                per_service[s] = per_service.get(s, 0.0) + v
        rate_project: dict[str, float] = {}
        for (p, _), r in self._rates(self.t).items():
            rate_project[p] = rate_project.get(p, 0.0) + r
        return Spend(sum(per_project.values()), sum(rate_project.values()), per_project, per_service, rate_project)

    def quotas(self) -> Sequence[Quota]:
        self._tick()
        return [Quota(p, *q, *self._project_used(p)) for p, q in self._quota.items()]

    def budgets(self) -> Sequence[Budget]:
        self._tick()
        out = []
        for b in self._budgets:
            start = b.period_start
            if b.period_s > 0 and self.t >= start:
                start += math.floor((self.t - start) / b.period_s) * b.period_s
            spent = self._spent_at(b.project, self.t) - self._spent_at(b.project, start)
            out.append(replace(b, period_start=start, spent=spent))
        return out

    def add_budget(self, project: str, limit: float, period_s: float = 30 * 86400.0, *, period_start: float = 0.0,
                   hard: bool = False) -> None:
        self._budgets.append(Budget(project, period_s, period_start, limit, 0.0, hard=hard))

    def reservations(self) -> Sequence[Reservation]:
        return list(self._reservations)

    def deploys(self, since: float) -> Sequence[DeployEvent]:
        self._tick()
        return [d for d in self._deploys if d.at >= since]

    def record_deploy(self, service: str, version: str, fraction: float = 1.0, actor: str = "pipeline") -> None:
        """A release shipped by someone else (a pipeline, a person): the servers take it as a Deploy would."""
        self._deploy(base.Deploy(service=service, version=version, fraction=fraction), actor)

    def incidents(self) -> Sequence[IncidentInfo]:
        return list(self._incidents.values())

    def submit_request(self, project: str, kind: str, params: Mapping[str, Any], requester: str = "someone") -> str:
        """Put a self-service request in the inbox; returns its id (``req-<n>``)."""
        self._tick()
        rid = f"req-{len(self._requests) + 1}"
        self._requests[rid] = Request(rid, project, requester, kind, dict(params), self.t)
        return rid

    def requests(self) -> Sequence[Request]:
        return list(self._requests.values())

    # ------------------------------------------------------------ test hooks
    def set_status(self, server_id: str, status: str) -> None:
        """Put a server in a status as the world would (a crash: ERROR; a power cut: SHUTOFF)."""
        self._tick()
        self._set(self._get(server_id), status=status)

    def set_hypervisor_up(self, name: str, up: bool) -> None:
        h = next((h for h in self._hyps if h.name == name), None)
        if h is None:
            raise NotFound(f"no hypervisor {name!r}")
        h.up = up

    # ------------------------------------------------------------ capacity
    def _usage(self, exclude: str | None = None) -> dict[str, tuple[int, int, int]]:
        """vCPU, RAM and disk in use per hypervisor (one pass over the servers)."""
        used: dict[str, tuple[int, int, int]] = {}
        for s in self.servers_by_id.values():
            if s.hypervisor is not None and s.status not in _DOWN and s.id != exclude:
                f = self._flavor[s.flavor]
                u = used.get(s.hypervisor, (0, 0, 0))
                used[s.hypervisor] = (u[0] + f.vcpus, u[1] + f.ram_mb, u[2] + f.disk_gb)
        return used

    def _fits(self, h: _Hyp, flavor: str, used: dict[str, tuple[int, int, int]]) -> bool:
        f = self._flavor[flavor]
        u = used.get(h.name, (0, 0, 0))
        return h.up and u[0] + f.vcpus <= h.vcpus and u[1] + f.ram_mb <= h.ram_mb and u[2] + f.disk_gb <= h.disk_gb

    def _pick_host(self, flavor: str, zone: str | None, exclude_host: str | None = None,
                   exclude: str | None = None) -> _Hyp:
        used = self._usage(exclude)
        cands = [h for h in self._hyps if (zone is None or h.zone == zone) and h.name != exclude_host
                 and self._fits(h, flavor, used)]
        if not cands:
            f = self._flavor[flavor]
            raise NoValidHost(f"no hypervisor has room for 1 x {flavor} ({f.vcpus} vCPU, {f.ram_mb} MB, {f.disk_gb} GB)")
        return max(cands, key=lambda h: (h.ram_mb - used.get(h.name, (0, 0, 0))[1], -self._hyps.index(h)))

    def _project_used(self, project: str, exclude: str | None = None) -> tuple[int, int, int]:
        n = c = r = 0
        for s in self.servers_by_id.values():
            if s.project == project and s.id != exclude:
                f = self._flavor[s.flavor]
                n, c, r = n + 1, c + f.vcpus, r + f.ram_mb
        return n, c, r

    def _check_quota(self, project: str, flavor: str, count: int, exclude: str | None = None) -> None:
        q = self._quota[project]
        n, c, r = self._project_used(project, exclude)
        f = self._flavor[flavor]
        for what, lim, used, need in (("instances", q[0], n, count), ("cores", q[1], c, count * f.vcpus),
                                      ("ram", q[2], r, count * f.ram_mb)):
            if lim >= 0 and used + need > lim:
                raise QuotaExceeded(f"Quota exceeded for {what}: requested {need}, in use {used}, limit {lim}")

    # --------------------------------------------------------------- servers
    def _get(self, server_id: str) -> Server:
        s = self.servers_by_id.get(server_id)
        if s is None:
            raise NotFound(f"no server {server_id!r}")
        return s

    def _set(self, s: Server, **changes: Any) -> Server:
        new = replace(s, **changes)
        self.servers_by_id[s.id] = new
        return new

    def _place_new(self, service: str, flavor: str, zone: str | None, pricing: str, metadata: Mapping[str, str],
                   status: str = "BUILD", host: _Hyp | None = None) -> Server:
        i = next(self._ids)
        spec = self.specs[service]
        if zone is None and host is None:  # round-robin over the zones, then the emptiest host there
            zones = sorted(self.zones)
            try:
                host = self._pick_host(flavor, zones[i % len(zones)])
            except NoValidHost:
                host = self._pick_host(flavor, None)
        host = host or self._pick_host(flavor, zone)
        s = Server(f"srv-{i}", f"{service}-{i}", flavor, spec.project, status, host.zone, host.name,  # type: ignore[arg-type]
                   service, pricing, self.t, dict(metadata))  # type: ignore[arg-type]
        self.servers_by_id[s.id] = s
        return s

    def _after(self, delay: float, sid: str, status: str, only_if: str) -> None:
        def done() -> None:
            s = self.servers_by_id.get(sid)
            if s is not None and s.status == only_if:
                self._set(s, status=status)

        self._later(delay, done)

    # ------------------------------------------------------------------- act
    def execute(self, action: Action) -> ActionResult:
        self._tick()
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise TransientAPIError("injected failure")
        handler = _HANDLERS.get(action.kind)
        if handler is None:
            raise Conflict(f"the fake adapter does not know {type(action).__name__}")
        res = handler(self, action)
        self.executed.append((self.t, action, res))
        return res

    def _create(self, a: base.CreateServer) -> ActionResult:
        if a.request_id:
            found = tuple(s.id for s in self.servers_by_id.values() if s.metadata.get(META_REQUEST) == a.request_id)
            if found:
                return ActionResult(True, "found by request id", found)
        if a.service not in self.specs:
            raise NotFound(f"no service {a.service!r}")
        if a.count < 1:
            raise Conflict(f"count must be >= 1, got {a.count}")
        flavor = a.flavor or self.service_flavor[a.service]
        if flavor not in self._flavor:
            raise NotFound(f"no flavor {flavor!r}")
        if a.zone is not None and a.zone not in self.zones:
            raise NotFound(f"no availability zone {a.zone!r}")
        self._check_quota(self.specs[a.service].project, flavor, a.count)
        md = {META_VERSION: self._service_version(a.service)}
        if a.request_id:
            md[META_REQUEST] = a.request_id
        made: list[Server] = []
        try:
            for _ in range(a.count):
                made.append(self._place_new(a.service, flavor, a.zone, a.pricing, md))
        except NoValidHost:
            for s in made:  # all or nothing
                del self.servers_by_id[s.id]
            raise
        for s in made:
            self._after(self.boot_delay, s.id, "ACTIVE", "BUILD")
        return ActionResult(True, f"created {len(made)}", tuple(s.id for s in made))

    def _service_version(self, service: str) -> str:
        mine = [s for s in self.servers_by_id.values() if s.service == service and META_VERSION in s.metadata]
        if not mine:
            return self.specs[service].version
        return max((s.metadata[META_VERSION] for s in mine), key=version_number)

    def _delete(self, a: base.DeleteServer) -> ActionResult:
        self._get(a.server_id)
        del self.servers_by_id[a.server_id]
        self.lb_weights.pop(a.server_id, None)
        return ActionResult(True, f"deleted {a.server_id}")

    def _power_on(self, s: Server, what: str) -> ActionResult:
        if self.reboot_delay > 0:
            self._set(s, status="BUILD")
            self._after(self.reboot_delay, s.id, "ACTIVE", "BUILD")
        else:
            self._set(s, status="ACTIVE")
        return ActionResult(True, f"{what} {s.id}")

    def _reboot(self, a: base.RebootServer) -> ActionResult:
        s = self._get(a.server_id)
        if s.status == "BUILD":
            raise Conflict(f"Cannot 'reboot' server {s.id} while it is in vm_state building")
        if s.status == "SHELVED_OFFLOADED":
            raise Conflict(f"Cannot 'reboot' server {s.id} while it is shelved; start it")
        if s.status == "ERROR" and not a.hard:
            raise Conflict(f"Cannot soft 'reboot' server {s.id} in ERROR; use a hard reboot")
        return self._power_on(s, "rebooted")

    def _start(self, a: base.StartServer) -> ActionResult:
        s = self._get(a.server_id)
        if s.status == "ACTIVE":
            return ActionResult(True, f"{s.id} is ACTIVE already")
        if s.status == "SHELVED_OFFLOADED":
            host = self._pick_host(s.flavor, None)
            s = self._set(s, hypervisor=host.name, zone=host.zone)
            return self._power_on(s, "unshelved")
        if s.status != "SHUTOFF":
            raise Conflict(f"Cannot 'start' server {s.id} while it is {s.status}")
        return self._power_on(s, "started")

    def _stop(self, a: base.StopServer) -> ActionResult:
        s = self._get(a.server_id)
        if s.status == "SHUTOFF":
            return ActionResult(True, f"{s.id} is SHUTOFF already")
        if s.status in ("BUILD", "SHELVED_OFFLOADED"):
            raise Conflict(f"Cannot 'stop' server {s.id} while it is {s.status}")
        self._set(s, status="SHUTOFF")
        return ActionResult(True, f"stopped {s.id}")

    def _shelve(self, a: base.ShelveServer) -> ActionResult:
        s = self._get(a.server_id)
        if s.status == "SHELVED_OFFLOADED":
            return ActionResult(True, f"{s.id} is shelved already")
        if s.status == "BUILD":
            raise Conflict(f"Cannot 'shelve' server {s.id} while it is in vm_state building")
        self._set(s, status="SHELVED_OFFLOADED", hypervisor=None)
        return ActionResult(True, f"shelved {s.id}")

    def _resize(self, a: base.ResizeServer) -> ActionResult:
        s = self._get(a.server_id)
        if a.flavor not in self._flavor:
            raise NotFound(f"no flavor {a.flavor!r}")
        if s.flavor == a.flavor:
            return ActionResult(True, f"{s.id} has flavor {a.flavor} already")
        if s.status not in ("ACTIVE", "SHUTOFF"):
            raise Conflict(f"Cannot 'resize' server {s.id} while it is {s.status}")
        self._check_quota(s.project, a.flavor, 1, exclude=s.id)
        host = next(h for h in self._hyps if h.name == s.hypervisor)
        if not self._fits(host, a.flavor, self._usage(exclude=s.id)):
            host = self._pick_host(a.flavor, None, exclude=s.id)
        self._set(s, flavor=a.flavor, hypervisor=host.name, zone=host.zone)
        return ActionResult(True, f"resized {s.id} to {a.flavor}")

    def _migrate(self, a: base.MigrateServer) -> ActionResult:
        s = self._get(a.server_id)
        if s.status not in ("ACTIVE", "SHUTOFF", "ERROR"):
            raise Conflict(f"Cannot 'migrate' server {s.id} while it is {s.status}")
        if a.hypervisor is not None:
            host = next((h for h in self._hyps if h.name == a.hypervisor), None)
            if host is None:
                raise NotFound(f"no hypervisor {a.hypervisor!r}")
            if host.name == s.hypervisor or not self._fits(host, s.flavor, self._usage(exclude=s.id)):
                raise NoValidHost(f"hypervisor {host.name} cannot take {s.id}")
        else:
            host = self._pick_host(s.flavor, None, exclude_host=s.hypervisor, exclude=s.id)
        status = "ACTIVE" if s.status == "ERROR" else s.status  # an evacuated server boots on its new host
        self._set(s, hypervisor=host.name, zone=host.zone, status=status)
        return ActionResult(True, f"migrated {s.id} to {host.name}")

    def _members(self, service: str) -> list[Server]:
        if service not in self.specs:
            raise NotFound(f"no service {service!r}")
        return sorted((s for s in self.servers_by_id.values() if s.service == service), key=lambda s: _num(s.id))

    def _restart_service(self, a: base.RestartService) -> ActionResult:
        """Rolling: one server at a time is down (BUILD) for ``restart_delay`` seconds."""
        members = [s for s in self._members(a.service) if s.status in ("ACTIVE", "ERROR", "SHUTOFF")]
        d = self.restart_delay
        for k, s in enumerate(members):
            def down(sid: str = s.id) -> None:
                cur = self.servers_by_id.get(sid)
                if cur is not None and cur.status in ("ACTIVE", "ERROR", "SHUTOFF"):
                    self._set(cur, status="BUILD" if d > 0 else "ACTIVE")
                    self._after(d, sid, "ACTIVE", "BUILD")

            self._later(k * d, down)
        return ActionResult(True, f"restarting {len(members)} server(s) of {a.service}, one at a time")

    def _set_setting(self, a: base.SetServiceSetting) -> ActionResult:
        self._members(a.service)
        if not math.isfinite(a.value) or a.value < 0:
            raise Conflict(f"setting {a.key} must be a finite number >= 0")
        self.settings[a.service][a.key] = float(a.value)
        return ActionResult(True, f"{a.service}: {a.key}={a.value}")

    def _deploy_action(self, a: base.Deploy) -> ActionResult:
        return self._deploy(a, self.actor)

    def _deploy(self, a: base.Deploy, actor: str) -> ActionResult:
        members = [s for s in self._members(a.service) if s.status != "DELETED"]
        if not 0 < a.fraction <= 1:
            raise Conflict(f"fraction must be in (0, 1], got {a.fraction}")
        previous = self._service_version(a.service)
        if not members:
            raise Conflict(f"{a.service} has no servers to deploy to")
        n = max(1, min(len(members), math.ceil(a.fraction * len(members) - 1e-9)))
        on = [s for s in members if s.metadata.get(META_VERSION) == a.version]
        todo = [s for s in members if s.metadata.get(META_VERSION) != a.version][: max(0, n - len(on))]
        for s in todo:
            old = s.metadata.get(META_VERSION, previous)
            self._set(s, metadata={**s.metadata, META_VERSION: a.version, META_PREV_VERSION: old})
        self._deploys.append(DeployEvent(a.service, a.version, previous, float(a.fraction), self.t, actor))
        return ActionResult(True, f"deployed {a.version} to {len(on) + len(todo)} of {len(members)} server(s) of {a.service}")

    def _rollback(self, a: base.RollbackDeploy) -> ActionResult:
        members = self._members(a.service)
        back = [s for s in members if s.metadata.get(META_PREV_VERSION)]
        if not back:
            raise Conflict(f"{a.service} is at its first release; nothing to roll back")
        current = self._service_version(a.service)
        target = min((s.metadata[META_PREV_VERSION] for s in back), key=version_number)
        for s in members:
            md = {k: v for k, v in s.metadata.items() if k != META_PREV_VERSION}
            self._set(s, metadata={**md, META_VERSION: target})
        self._deploys.append(DeployEvent(a.service, target, current, 1.0, self.t, self.actor))
        return ActionResult(True, f"{a.service}: rolled back {current} -> {target} on {len(members)} server(s)")

    def _lb_weights(self, a: base.SetLBWeights) -> ActionResult:
        members = {s.id for s in self._members(a.service)}
        for sid, w in a.weights.items():
            self._get(sid)
            if sid not in members:
                raise Conflict(f"server {sid} is not behind service {a.service}")
            if not math.isfinite(w) or w < 0:
                raise Conflict(f"weight for {sid} must be a finite number >= 0")
        for sid, w in a.weights.items():
            self.lb_weights[sid] = float(w)
            s = self.servers_by_id[sid]
            self._set(s, metadata={**s.metadata, META_WEIGHT: repr(float(w))})
        return ActionResult(True, f"{a.service}: weights set on {len(a.weights)} server(s)")

    def _set_metadata(self, a: base.SetMetadata) -> ActionResult:
        s = self._get(a.server_id)
        self._set(s, metadata={**s.metadata, **{k: str(v) for k, v in a.metadata.items()}})
        return ActionResult(True, f"metadata of {s.id} set")

    def _update_quota(self, a: base.UpdateQuota) -> ActionResult:
        if a.project not in self._quota:
            raise NotFound(f"no project {a.project!r}")
        q = self._quota[a.project]
        for i, v in enumerate((a.instances, a.cores, a.ram_mb)):
            if v is not None:
                q[i] = int(v)
        return ActionResult(True, f"quota of {a.project}: {q}")

    def _purchase(self, a: base.PurchaseReservation) -> ActionResult:
        if a.project not in self._quota:
            raise NotFound(f"no project {a.project!r}")
        if a.flavor not in self._flavor:
            raise NotFound(f"no flavor {a.flavor!r}")
        if a.count < 1 or a.term_s <= 0:
            raise Conflict("a reservation needs count >= 1 and term_s > 0")
        r = Reservation(f"res-{len(self._reservations) + 1}", a.project, a.flavor, a.count,
                        self.price_of(a.flavor, "reserved"), self.t, self.t + a.term_s)
        self._reservations.append(r)
        return ActionResult(True, f"reserved {a.count} x {a.flavor} for {a.project} until {r.end:.0f} ({r.id})")

    def _inject(self, a: base.InjectFault) -> ActionResult:
        if a.fault not in FAULTS:
            raise Conflict(f"unknown fault {a.fault!r}; catalog: {', '.join(FAULTS)}")
        known = (set(self.specs) | set(self.servers_by_id) | {h.name for h in self._hyps} | set(self.zones))
        if a.target_component not in known:
            raise NotFound(f"no component {a.target_component!r} to inject {a.fault} into")
        self.faults.append(InjectedFault(a.fault, a.target_component, self.t, a.duration, a.magnitude, a.experiment))
        return ActionResult(True, f"recorded {a.fault} on {a.target_component} (the fake has no physics)")

    def _fulfill(self, a: base.FulfillRequest) -> ActionResult:
        r = self._requests.get(a.request_id)
        if r is None:
            raise NotFound(f"no request {a.request_id!r}")
        if r.status != "open":
            raise Conflict(f"request {r.id} is {r.status} already")
        if not a.approve:
            self._requests[r.id] = replace(r, status="denied")
            return ActionResult(True, f"denied {r.id}")
        if a.carried_out:  # the answerer's own actions did it: close it, naming what they created under its id
            ids = tuple(s.id for s in self.servers_by_id.values() if s.metadata.get(META_REQUEST) == r.id)
            self._requests[r.id] = replace(r, status="approved")
            return ActionResult(True, f"approved {r.id}: carried out by the answerer's actions", ids)
        p = r.params
        res = ActionResult(True, "approved")
        if r.kind == "create_servers":
            res = self._create(base.CreateServer(service=str(p["service"]), count=int(p.get("count", 1)),
                                                 flavor=p.get("flavor"), request_id=r.id))
        elif r.kind == "quota_increase":
            res = self._update_quota(base.UpdateQuota(project=r.project, instances=p.get("instances"),
                                                      cores=p.get("cores"), ram_mb=p.get("ram_mb")))
        elif r.kind == "resize":
            res = self._resize(base.ResizeServer(server_id=str(p["server_id"]), flavor=str(p["flavor"])))
        self._requests[r.id] = replace(r, status="approved")
        return ActionResult(True, f"approved {r.id}: {res.detail}", res.server_ids)

    def _create_project(self, a: base.CreateProject) -> ActionResult:
        if a.project in self._quota:
            raise Conflict(f"project {a.project!r} exists already")
        if min(a.instances, a.cores, a.ram_mb) < 0:
            raise Conflict("quota values must be >= 0")
        self._quota[a.project] = [a.instances, a.cores, a.ram_mb]
        if a.budget:
            self.add_budget(a.project, a.budget, period_start=self.t)
        self.alert_routes[a.project] = a.alert_route
        return ActionResult(True, f"project {a.project} created")

    def _delete_project(self, a: base.DeleteProject) -> ActionResult:
        if a.project not in self._quota:
            raise NotFound(f"no project {a.project!r}")
        left = [s.id for s in self.servers_by_id.values() if s.project == a.project and s.status != "DELETED"]
        if left:
            raise Conflict(f"project {a.project} still has {len(left)} server(s)")
        del self._quota[a.project]
        self.alert_routes.pop(a.project, None)
        return ActionResult(True, f"project {a.project} deleted")

    def _declare(self, a: base.DeclareIncident) -> ActionResult:
        self._incidents[a.incident_id] = board.declare(self._incidents.get(a.incident_id), a, self.t, self.actor)
        return ActionResult(True, f"declared {a.incident_id}")

    def _update_incident(self, a: base.UpdateIncident) -> ActionResult:
        i = board.update(board.existing(self._incidents.get(a.incident_id), a.incident_id), a, self.t)
        self._incidents[i.id] = i
        return ActionResult(True, f"updated {i.id}")

    def _resolve(self, a: base.ResolveIncident) -> ActionResult:
        i = board.resolve(board.existing(self._incidents.get(a.incident_id), a.incident_id), a, self.t)
        self._incidents[i.id] = i
        return ActionResult(True, f"resolved {i.id}")

    def _page(self, a: base.Page) -> ActionResult:
        self.pages.append(a)
        i = self._incidents.get(a.incident_id or "")
        if i is not None:
            self._incidents[i.id] = board.paged(i, self.t)
        return ActionResult(True, f"paged {a.who}")

    def _notify(self, a: base.Notify) -> ActionResult:
        self.notifications.append(a)
        return ActionResult(True, "recorded")


_STATUSES = ("BUILD", "ACTIVE", "SHUTOFF", "SHELVED_OFFLOADED", "ERROR", "DELETED")


def _num(server_id: str) -> int:
    tail = server_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


#: verb -> handler: one entry per kind of ACTION_TYPES (a test checks none is missing)
_HANDLERS: dict[str, Callable[[FakeAdapter, Any], ActionResult]] = {
    "create_server": FakeAdapter._create,
    "delete_server": FakeAdapter._delete,
    "reboot_server": FakeAdapter._reboot,
    "start_server": FakeAdapter._start,
    "stop_server": FakeAdapter._stop,
    "shelve_server": FakeAdapter._shelve,
    "resize_server": FakeAdapter._resize,
    "migrate_server": FakeAdapter._migrate,
    "restart_service": FakeAdapter._restart_service,
    "set_service_setting": FakeAdapter._set_setting,
    "deploy": FakeAdapter._deploy_action,
    "rollback_deploy": FakeAdapter._rollback,
    "set_lb_weights": FakeAdapter._lb_weights,
    "set_metadata": FakeAdapter._set_metadata,
    "update_quota": FakeAdapter._update_quota,
    "purchase_reservation": FakeAdapter._purchase,
    "inject_fault": FakeAdapter._inject,
    "fulfill_request": FakeAdapter._fulfill,
    "create_project": FakeAdapter._create_project,
    "delete_project": FakeAdapter._delete_project,
    "declare_incident": FakeAdapter._declare,
    "update_incident": FakeAdapter._update_incident,
    "resolve_incident": FakeAdapter._resolve,
    "page": FakeAdapter._page,
    "notify": FakeAdapter._notify,
}

__all__ = ["FAULTS", "FLAVORS", "FakeAdapter", "FakeService", "InjectedFault", "version_number"]
