"""The ops center's anomaly feed: what looks wrong in one observation, as :class:`Anomaly` records with onsets.

Four kinds of signal, all read from the observation (never from a world's truth), strictly causally:

* **metric** — one streaming ``ensemble`` detector (``engines.detection``) over every per-service series
  (error ratio, p95 latency, served share = served / offered, pool, CPU, memory and disk utilisation) and every
  per-edge series (``dep_error_ratio``, ``dep_latency_ms``): one state, one ``update_many`` per scrape.  A score
  counts only on the harmful side of the series' own recent normal (errors up, served share down, ...) and
  when it is *material*: see :data:`MATERIAL`.
* **trend** — a ``trend`` detector (limit 1.0; twelve buckets of ten scrapes) over memory, disk and
  connection-pool utilisation: the predicted time to the
  limit (``eta_s``), so a leak is seen before the kill.
* **hot servers** — a server 0.2 above its peers' median CPU and saturated (>= 95 %) or at twice that
  median (read only when the service's mean left its normal upwards).
* **inventory** — a server the inventory shows ACTIVE whose ``server_up`` scrape is 0, servers in ERROR (or
  SHUTOFF after they stopped answering while ACTIVE: not a clean stop through the API) that nobody here asked
  for (looked up when a service's ``failed`` count is non-zero), hypervisors
  ``down``.
* **alert** — firing critical rules from ``obs.alerts``.

Planned maintenance (servers marked ``zeroops_maintenance`` in their metadata, :mod:`engines.maintenance`)
is silenced: a marked server's own signals are dropped, and so are its service's symptoms (and the edges
calling it) while the service is not in breach; trends to a limit and hypervisors down never are.

Every threshold here is a general default (documented in docs/ops-center.md), not a fault's signature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from adapters.base import Observation, Server
from engines.detection import make_detector
from engines.maintenance import PlannedWork, under_maintenance
from engines.ops.types import Anomaly, AnomalySource
from engines.scaling.scaler import is_batch

# per-service series: metric -> the harmful direction (+1: up is bad, -1: down is bad)
SERVICE_SERIES: dict[str, int] = {
    "error_ratio": +1,
    "latency_p95_ms": +1,
    "served_share": -1,  # served_rate / request_rate
    "pool_util": +1,
    "cpu_util": +1,
    "memory_util": +1,
    "disk_util": +1,
}
EDGE_SERIES: dict[str, int] = {"dep_error_ratio": +1, "dep_latency_ms": +1}
TREND_METRICS: tuple[str, ...] = ("memory_util", "disk_util", "pool_util")
# A detector's alarm is kept only when the value itself matters to users or capacity (general defaults):
# a ratio of failures of at least 1 % (ten times a 99.9 % SLO's budget), a latency at least 1.5x the series'
# normal, a served share below 99 %, a utilisation of at least 80 % (a saturation floor) — or, for memory and
# disk, ten points above the series' normal.
MATERIAL: dict[str, tuple[str, float]] = {
    "error_ratio": ("abs_ge", 0.01),
    "dep_error_ratio": ("abs_ge", 0.01),
    "latency_p95_ms": ("rel_ge", 1.5),
    "dep_latency_ms": ("rel_ge", 1.5),
    "served_share": ("abs_le", 0.99),
    "pool_util": ("abs_ge_or_rise", 0.8),
    "cpu_util": ("abs_ge", 0.8),
    "memory_util": ("abs_ge_or_rise", 0.8),
    "disk_util": ("abs_ge_or_rise", 0.8),
}
RISE = 0.1  # memory and disk do not follow load: ten points above their normal matter before they are full
# what a rise in offered load never explains: servers down, trends to a limit (errors, latency and saturation
# under a load rise are overload, which scaling answers first)
LOAD_NEVER_EXPLAINS = frozenset({"server_up", "server_status", "hypervisor_state", "memory_util_trend",
                                 "disk_util_trend", "pool_util_trend"})
HOT = 0.95  # a server's CPU utilisation that counts as saturated when its service's mean is below it
SYMPTOMS = frozenset({"error_ratio", "latency_p95_ms", "served_share", "dep_error_ratio", "dep_latency_ms",
                      "server_up", "server_status", "hypervisor_state", "service_failed"})


@dataclass(slots=True)
class _Episode:
    onset: float
    at: float
    score: float
    value: float
    hits: int = 1  # consecutive observations with the signal present


@dataclass
class AnomalyFeed:
    """Keeps the detectors and the open episodes; :meth:`update` returns the anomalies active at ``now``.

    threshold: detector score that counts as anomalous (0.5 is every detector's alarm level).
    z_threshold: the ensemble's spike threshold in calibrated sigmas.
    trend_window_s, trend_horizon_s: the leak/fill trend's window (default: twelve buckets of ten scrapes, at
        least 50 s each — 10 min at a 5-s scrape) and warning horizon.
    hold_s: an episode stays open this long after its last anomalous sample (so one flap is one episode).
    boot_grace_s: a server younger than this (or one acted on, see ``quiet``) is not judged by ``server_up``.
    deploy_grace_s: nor are the servers of a service this long after a deploy (a rollout bounces them).
    maintenance_breach: a service under planned maintenance whose error ratio reaches this (or whose served
        share falls this far below 1) is in a breach its maintenance does not explain: its symptoms count.
    load_rise, load_alpha: a service whose offered rate is ``load_rise`` times its slow normal (an EWMA with
        this weight per scrape) is under a load rise: its latency, CPU and pool signals are marked ``load``.
    hot_rise: a service's mean CPU this many times its normal makes its servers be read one by one for a
        saturated one (``server_cpu_util`` >= 0.95 while the mean is below).
    """

    threshold: float = 0.5
    z_threshold: float = 5.0
    trend_window_s: float | None = None
    trend_horizon_s: float = 1800.0
    hold_s: float = 30.0
    boot_grace_s: float = 120.0
    deploy_grace_s: float = 120.0
    hot_rise: float = 1.25
    peer_ratio: float = 2.0
    load_rise: float = 1.3
    load_alpha: float = 0.02
    maintenance_breach: float = 0.05
    _keys: list[tuple[str, str, tuple[tuple[str, str], ...]]] = field(default_factory=list)
    _det: object | None = None
    _trend: object | None = None
    _trend_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    _normal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _open: dict[tuple[str, str], _Episode] = field(default_factory=dict)
    _labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    _sources: dict[tuple[str, str], AnomalySource] = field(default_factory=dict)
    _alerts_seen: float = -math.inf
    _last_t: float = -math.inf
    _scrape_t: float = -math.inf
    _out: list[Anomaly] = field(default_factory=list)
    fresh: bool = False
    _probe: str = ""
    _scrape_dt: float = 5.0  # the scrape interval, from the first window read
    _unanswered: set[str] = field(default_factory=set)  # servers seen not answering while ACTIVE
    _empty_at: dict[str, float] = field(default_factory=dict)  # service -> when it last had no active server
    _load: dict[object, float] = field(default_factory=dict)  # service (or (service, "per_server")): slow normal load

    # ------------------------------------------------------------------ series
    def _series(self, obs: Observation) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
        keys = []
        services = obs.services
        for s in sorted(services):
            keys += [(s, m, (("service", s),)) for m in SERVICE_SERIES]
        for s in sorted(services):
            for d in services[s].dependencies:
                keys += [(f"{s}->{d}", m, (("dependency", d), ("service", s))) for m in EDGE_SERIES]
        return keys

    def _values(self, obs: Observation, now: float) -> np.ndarray:
        latest: dict[str, Mapping[str, float]] = {}
        out = np.full(len(self._keys), np.nan)
        for k, (comp, metric, labels) in enumerate(self._keys):
            if metric in EDGE_SERIES:
                lab = dict(labels)
                try:
                    out[k] = obs.window(metric, 10.0, **lab).last()
                except ValueError:
                    out[k] = np.nan
                continue
            if metric == "served_share":
                req = _latest(obs, latest, "request_rate").get(comp, math.nan)
                srv = _latest(obs, latest, "served_rate").get(comp, math.nan)
                out[k] = srv / req if req > 1e-9 else math.nan
            else:
                out[k] = _latest(obs, latest, metric).get(comp, math.nan)
        return out

    def _scrape_time(self, obs: Observation, now: float) -> float | None:
        """The time of the latest scrape (one service's offered rate); None when nothing shows it."""
        for name in [self._probe] if self._probe else list(obs.services)[:1]:
            try:
                span = now - self._scrape_t + 1.0 if math.isfinite(self._scrape_t) else 120.0
                t = obs.window("request_rate", min(span, 120.0), service=name).t
            except ValueError:
                continue
            self._probe = name
            if len(t) >= 2 and not math.isfinite(self._scrape_t):
                self._scrape_dt = float(np.median(np.diff(t)))
            return float(t[-1]) if len(t) else self._scrape_t
        return None

    def _material(self, metric: str, value: float, normal: float) -> bool:
        rule = MATERIAL.get(metric)
        if rule is None or not math.isfinite(value):
            return False
        kind, x = rule
        if kind == "abs_ge":
            return value >= x
        if kind == "abs_ge_or_rise":
            return value >= x or (math.isfinite(normal) and value - normal >= RISE)
        if kind == "abs_le":
            return value <= x
        return math.isfinite(normal) and normal > 0 and value >= x * normal

    # ------------------------------------------------------------------ update
    def update(self, now: float, obs: Observation, quiet: Mapping[str, float] | None = None,
               own_stops: Iterable[str] = ()) -> list[Anomaly]:
        """Score this observation and return every open episode (onset = the episode's first anomalous sample).

        ``quiet``: component -> until when a ``server_up`` 0 is expected (a reboot or restart we started): such
        anomalies carry the label ``expected=1`` (they keep an incident open, they open none);
        ``own_stops``: servers we stopped on purpose (not an anomaly when SHUTOFF).
        """
        quiet = quiet or {}
        scraped = self._scrape_time(obs, now)
        if scraped is not None and scraped <= self._scrape_t:
            self.fresh = False  # no new scrape since the last call (a slower scrape than our cadence): no news
            return self._out
        self.fresh = True
        self._scrape_t = scraped if scraped is not None else now
        keys = self._series(obs)
        if keys != self._keys:  # the topology changed (or first call): fresh detectors over the new series
            self._keys = keys
            self._det = make_detector("ensemble", z_threshold=self.z_threshold)
            # twelve buckets of ten scrapes (at least 50 s): refits stay rare at any scrape interval
            window = self.trend_window_s or 12 * max(50.0, 10.0 * self._scrape_dt)
            self._trend = make_detector("trend", limit=1.0, window_s=window, horizon_s=self.trend_horizon_s)
            self._trend_idx = np.array([k for k, (_, m, _) in enumerate(keys) if m in TREND_METRICS], dtype=int)
            self._normal = np.full(len(keys), np.nan)
        present: dict[tuple[str, str], tuple[float, float, AnomalySource, dict[str, str], float | None]] = {}

        x = self._values(obs, now)
        loaded = self._loaded(obs)
        scores = self._det.update_many(now, x)  # type: ignore[union-attr]
        normal = self._normal
        # a detector finds the change; the episode then lasts while the value stays material against the
        # normal frozen at its onset (detectors learn a persistent shift within minutes, the fault is still there)
        ongoing = np.array([(c, m) in self._open for c, m, _ in self._keys], dtype=bool)
        for k in np.flatnonzero((scores >= self.threshold) | ongoing):
            comp, metric, labels = self._keys[k]
            sign = SERVICE_SERIES.get(metric) or EDGE_SERIES.get(metric, 1)
            nv = normal[k]
            harmful = not math.isfinite(nv) or (x[k] - nv) * sign > 0
            if harmful and self._material(metric, float(x[k]), float(nv)):
                present[(comp, metric)] = (max(float(scores[k]), self.threshold), float(x[k]), "metric",
                                           dict(labels), None)
        # under a load rise the normal follows the load (a new regime), so what the load explains ends with it
        moving = np.array([(labels[0][1] if m in EDGE_SERIES else c) in loaded for c, m, labels in self._keys],
                          dtype=bool)
        calm = (((scores < self.threshold) & ~ongoing) | moving) & np.isfinite(x)
        first = calm & ~np.isfinite(normal)
        normal[first] = x[first]
        upd = calm & ~first
        normal[upd] += 0.05 * (x[upd] - normal[upd])  # the series' recent normal, learned only while calm

        if len(self._trend_idx):
            tx = x[self._trend_idx]
            ts = self._trend.update_many(now, tx)  # type: ignore[union-attr]
            ttl = self._trend.ttl  # type: ignore[union-attr]
            for name, svc in obs.services.items():
                if svc.active == 0:
                    self._empty_at[name] = now
            fresh = self.trend_window_s or 12 * max(50.0, 10.0 * self._scrape_dt)
            for j, k in enumerate(self._trend_idx):
                if ts[j] >= self.threshold and math.isfinite(ttl[j]):
                    comp, metric, labels = self._keys[k]
                    if now - self._empty_at.get(dict(labels).get("service", comp), -math.inf) < fresh:
                        continue  # a service back from zero: its series restart, a rise to its level is no trend
                    present[(comp, metric + "_trend")] = (float(ts[j]), float(tx[j]), "trend", dict(labels),
                                                          float(ttl[j]))

        self._hot_servers(now, obs, x, present)
        self._inventory(now, obs, quiet, set(own_stops), present)
        self._alerts(now, obs, present)
        self._planned(now, obs, present)
        self._explained_by_load(loaded, present)
        for name, svc in obs.services.items():  # a batch service runs hot by design: its CPU is no symptom
            if (name, "cpu_util") in present and is_batch(svc):
                del present[(name, "cpu_util")]

        # episodes: onset at the first anomalous sample, kept open for hold_s after the last one
        for key, (score, value, source, labels, eta) in present.items():
            ep = self._open.get(key)
            if ep is None:
                self._open[key] = _Episode(now, now, score, value)
            else:
                ep.hits = ep.hits + 1 if ep.at >= self._last_t else 1
                ep.at, ep.score, ep.value = now, score, value
            self._labels[key] = labels
            self._sources[key] = source
            if eta is not None:
                self._labels[key] = {**labels, "eta_s": f"{eta:.0f}"}
        for key in [k for k, ep in self._open.items() if now - ep.at > self.hold_s]:
            del self._open[key]
        self._last_t = now
        out = []
        for (comp, metric), ep in self._open.items():
            labels = dict(self._labels.get((comp, metric), {}))
            eta = labels.pop("eta_s", None)
            out.append(Anomaly(comp, metric, ep.score if ep.at == now else 0.0, ep.value, ep.onset, ep.at,
                               self._sources.get((comp, metric), "metric"), labels,
                               float(eta) if eta is not None else None))
        self._out = sorted(out, key=lambda a: (a.onset, a.component, a.metric))
        return self._out

    @property
    def last_t(self) -> float:
        """When the anomalies returned last were observed (``at`` of those present then)."""
        return self._last_t

    def hits(self, component: str, metric: str) -> int:
        """Consecutive observations the episode of ``(component, metric)`` has been present (0 if none)."""
        ep = self._open.get((component, metric))
        return ep.hits if ep is not None else 0

    def _loaded(self, obs: Observation) -> set[str]:
        """Services whose offered rate, or offered rate per active server, is ``load_rise`` times its slow normal
        (EWMAs, updated here); a rise from (next to) nothing counts too.  Per server: a scale-down (fewer servers
        for the same traffic) loads each server like a traffic rise does, and is as much the scaler's to answer."""
        loaded = set()
        services = obs.services
        for name, r in obs.latest("request_rate").items():
            if not math.isfinite(r):
                continue
            svc = services.get(name)
            per = r / svc.active if svc is not None and svc.active > 0 else math.nan
            for key, v in ((name, r), ((name, "per_server"), per)):
                if not math.isfinite(v):
                    continue
                n = self._load.get(key)
                if n is None:
                    self._load[key] = v
                    continue
                if v >= self.load_rise * max(n, 1e-6) and v > 1e-6:
                    loaded.add(name)
                self._load[key] = n + self.load_alpha * (v - n)
        return loaded

    def _planned(self, now: float, obs: Observation, present: dict) -> None:
        """Drop what planned maintenance explains (looked up only when something is present)."""
        if not present:
            return
        planned = PlannedWork(obs, now, self.maintenance_breach)
        for key, (_, _, _, labels, _) in list(present.items()):
            if planned.silences(labels, service_level=key[1] not in LOAD_NEVER_EXPLAINS):
                del present[key]

    @staticmethod
    def _explained_by_load(loaded: set[str], present: dict) -> None:
        """Mark (label ``load=1``) the signals of services under a load rise: latency, CPU, pool and even errors
        rising with the load are overload, which scaling answers first (one fault, one reaction); the center
        counts them only when they last.  Servers down and trends to a limit are never explained by load."""
        if not loaded:
            return
        for key, (score, value, source, labels, eta) in list(present.items()):
            svc = labels.get("dependency") or labels.get("service") or key[0]
            if svc in loaded and key[1] not in LOAD_NEVER_EXPLAINS:  # overload: the scaler's to answer first
                present[key] = (score, value, source, {**labels, "load": "1"}, eta)

    def _hot_servers(self, now: float, obs: Observation, x: np.ndarray, present: dict) -> None:
        """Servers 0.2 above their peers' median and saturated or at ``peer_ratio`` times that median: an
        imbalance behind one load balancer (a slow host, a noisy neighbour), not a busy service.

        Looked at only where a service's mean CPU left its normal upwards (by ``hot_rise``), so a quiet
        fleet costs no per-server reads."""
        for k, (comp, metric, _) in enumerate(self._keys):
            nv = self._normal[k]
            if metric != "cpu_util" or not (math.isfinite(nv) and x[k] > self.hot_rise * nv and x[k] < HOT):
                continue
            vals = []
            for s in obs.servers(service=comp, status="ACTIVE"):
                if now - s.created_at < self.boot_grace_s or under_maintenance(s, now):
                    continue  # a new server, or one planned work takes down: no peer to compare with
                try:
                    vals.append((s, obs.window("server_cpu_util", 10.0, server=s.id).last()))
                except ValueError:
                    continue
            finite = [v for _, v in vals if math.isfinite(v)]
            if len(finite) < 2:
                continue
            med = float(np.median(finite))
            for s, v in vals:  # saturated, or far above its peers behind the same load balancer
                if v - med >= 0.2 and (v >= HOT or v >= self.peer_ratio * med):
                    present[(s.id, "server_cpu_util")] = (1.0, float(v), "metric", _srv_labels(s), None)

    def _inventory(self, now: float, obs: Observation, quiet: Mapping[str, float], own_stops: set[str],
                   present: dict) -> None:
        services = obs.services
        up_metric = obs.latest("active_servers")
        deploying: dict[str, float] = {}
        for d in obs.deploys(now - self.deploy_grace_s):
            deploying[d.service] = max(deploying.get(d.service, -math.inf), d.at)
        for name, svc in services.items():
            if svc.failed > 0:  # its servers in ERROR or SHUTOFF (ours stopped on purpose aside; shelved is not)
                for s in obs.servers(service=name):
                    # ERROR, or SHUTOFF after it stopped answering while ACTIVE (a crash the power-state sync
                    # caught up with); a server stopped cleanly through the API (SHUTOFF at once: an operator,
                    # planned maintenance) is somebody's decision, not a fault
                    deliberate = (s.status == "SHUTOFF" and s.id not in self._unanswered) \
                        or under_maintenance(s, now)
                    if s.status in ("ERROR", "SHUTOFF") and not deliberate and s.id not in own_stops \
                            and quiet.get(s.id, -1.0) < now:
                        present[(s.id, "server_status")] = (1.0, 0.0, "inventory", _srv_labels(s), None)
            if deploying.get(name, -math.inf) >= now - self.deploy_grace_s:
                continue  # a rollout bounces its servers on purpose (visible in obs.deploys)
            up = up_metric.get(name, math.nan)
            if not (math.isfinite(up) and up < svc.active):
                continue  # every server the inventory shows ACTIVE answers its scrape: nothing to look at
            for s in obs.servers(service=name, status="ACTIVE"):
                if now - s.created_at < self.boot_grace_s or under_maintenance(s, now):
                    continue  # planned work takes it down: not a server that stopped answering
                try:
                    v = obs.window("server_up", 10.0, server=s.id).last()
                except ValueError:
                    continue
                if v == 0.0:  # a bounce we started is still reported (it tells when the server is back), marked
                    self._unanswered.add(s.id)
                    expected = quiet.get(s.id, -1.0) >= now or quiet.get(name, -1.0) >= now
                    present[(s.id, "server_up")] = (1.0, 0.0, "inventory",
                                                    {**_srv_labels(s), **({"expected": "1"} if expected else {})},
                                                    None)
        for h in obs.hypervisors:
            if h.state == "down":
                present[(h.id, "hypervisor_state")] = (1.0, 0.0, "inventory",
                                                       {"hypervisor": h.id, "zone": h.zone}, None)

    def _alerts(self, now: float, obs: Observation, present: dict) -> None:
        firing: dict[str, object] = {}
        for a in obs.alerts(now - 600.0):  # the last notifications of every rule (re-notified every few minutes)
            firing[a.fingerprint] = a
        for a in firing.values():
            if a.state != "firing" or a.severity != "critical" or now - a.at > 600.0:  # type: ignore[attr-defined]
                continue
            labels = dict(a.labels)  # type: ignore[attr-defined]
            comp = labels.get("server") or labels.get("service") or a.name  # type: ignore[attr-defined]
            present[(comp, "alert:" + a.name)] = (1.0, float(a.value), "alert", labels, None)  # type: ignore[attr-defined]


def _latest(obs: Observation, cache: dict[str, Mapping[str, float]], metric: str) -> Mapping[str, float]:
    if metric not in cache:
        cache[metric] = obs.latest(metric)
    return cache[metric]


def _srv_labels(s: Server) -> dict[str, str]:
    out = {"server": s.id, "service": s.service or "", "hypervisor": s.hypervisor or "", "zone": s.zone or ""}
    return {k: v for k, v in out.items() if v}
