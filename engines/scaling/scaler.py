"""The predictive scaler: capacity that arrives before the traffic does, idle capacity that disappears.

Each step, for every service at once (numpy over N services, one ``update_many`` / ``forecast_many``):

1. learn — request rate per serving server vs each dimension's utilisation (engines/scaling/capacity.py), the
   boot time from BUILD -> ACTIVE, and the forecaster's running accuracy;
2. forecast — the 5-minute mean request rate at the lead time (boot time + one step: what must be booting now)
   and at the end of the prediction window, each with its interval; provision for ``mean + h·(hi - mean)`` with
   ``h = performance / (cost + performance)`` (0.6 by default: the headroom);
3. size — servers per dimension (CPU, memory, disk, network) at ``TargetUtilization`` (0.6: below the
   ``ScaleUpThreshold`` that triggers the safety net, a margin against noise); the binding dimension
   (the largest) decides; a batch service is sized at ``batch_utilization`` and may use spot capacity;
4. safety net — utilisation above ``ScaleUpThreshold`` now (a spike no forecast saw) scales up at once, HPA-style;
   a service whose forecast accuracy is below ``MinPredictionAccuracy`` is scaled reactively and the reason says so;
5. limits — at most ``MaxScaleUpPercent`` more servers per scale-up window and ``MaxScaleDownPercent`` fewer per
   scale-down window (which is also the stabilisation window: only the highest recommendation of the window is
   scaled down to), never outside the service's min/max;
6. zero — a service with ``min_servers == 0`` and no requests for ``ScaleToZeroIdleMinutes`` keeps a warm pool of
   stopped servers and deletes the rest; the first request starts the warm pool again.

"One fault, one reaction": drained and maintained servers are not counted as serving; servers someone else
created (a runbook's) are never deleted; a service an open incident names is not scaled down; SHUTOFF/ERROR
servers are counted as coming back, not replaced (engines/scaling/fleet.py).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from adapters.base import (
    Action,
    CreateServer,
    DeleteServer,
    Observation,
    Server,
    ServiceState,
    SetMetadata,
    ShelveServer,
    StartServer,
    StopServer,
)
from control.runtime import ActionRecord
from engines.budget.config import CAP_SETTING, CAP_UNTIL_SETTING
from engines.forecasting import make_forecaster
from engines.maintenance import MAINTENANCE_KEY
from engines.scaling import fleet as fl
from engines.scaling.capacity import DIMENSIONS, METRICS, CapacityModel
from engines.scaling.config import PredictiveScalerConfig

_NAN = float("nan")
# the warm pool's marks: ours, and the planned-maintenance convention (engines/maintenance.py) that tells the
# ops center and alerting that the server is down on purpose
WARM_MARKS = {fl.META_WARM: "1", MAINTENANCE_KEY: "warm-pool"}
CLEAR_MARKS = {fl.META_WARM: "", MAINTENANCE_KEY: ""}
PENDING_S = 600.0  # a deletion asked for (executed, refused or waiting for approval) is not asked again this long


class _Window:
    """A sliding window of changes: at most ``percent`` of the count before them (at least ``floor``) within any
    ``length`` seconds."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()

    def allowance(self, now: float, length: float, current: int, percent: float, floor: int, sign: int) -> int:
        """What may still change now; ``current`` is the count after the window's changes (``sign`` +1 for
        additions, -1 for removals): the base is the count before them."""
        ev = self.events
        while ev and ev[0][0] <= now - length:
            ev.popleft()
        done = sum(c for _, c in ev)
        base = current - sign * done
        return max(floor, math.floor(base * percent / 100.0 + 1e-9)) - done

    def add(self, now: float, count: int) -> None:
        self.events.append((now, count))


class PredictiveScaler:
    """Predictive-first, multi-dimensional autoscaling with a reactive safety net (docs/scaling.md)."""

    name = "predictive-scaler"

    def __init__(self, config: PredictiveScalerConfig | None = None, **settings: Any) -> None:
        self.cfg = config if config is not None else PredictiveScalerConfig(**settings)
        self.cadence = self.cfg.cadence
        self.names: list[str] = []
        self.boot_s = self.cfg.default_boot_s
        self.boots = 0
        self.resume_s: float | None = None
        self._building: dict[str, float] = {}  # server id -> created_at, while BUILD
        self._resuming: dict[str, float] = {}  # warm server id -> when we asked to start it
        self._first_down: dict[str, float] = {}
        self._warm: dict[str, set[str]] = {}  # service -> warm pool server ids
        self._zero: dict[str, tuple[float, float, int]] = {}  # service -> (since, spend at that time, servers before)
        self.warm_cost: dict[str, dict[str, float]] = {}  # service -> measured figures of its time at zero
        self._up: dict[str, _Window] = {}
        self._down: dict[str, _Window] = {}
        self._recs: dict[str, deque[tuple[float, int]]] = {}
        self._first_rec: dict[str, float] = {}
        self._services_seen: Mapping[str, ServiceState] = {}
        self._now = 0.0
        self._jobs: dict[str, deque[list[float]]] = {}  # batch service -> [arrival, jobs] groups, oldest first
        self._no_warm: set[str] = set()  # services whose warm pool another engine started again
        self._up_cap: dict[str, tuple[float, int]] = {}  # service -> (when, count) after a refused create
        self._deleting: dict[str, float] = {}  # server id -> when we asked to delete it (not asked again for a while)
        self._last_busy: dict[str, float] = {}
        self._ids = 0
        self.last: Mapping[str, dict[str, Any]] = {}  # service -> the last step's decision, explained on demand

    # ------------------------------------------------------------------ setup
    def _reset(self, names: list[str], now: float) -> None:
        self.names = names
        n = len(names)
        self.fc = make_forecaster("ensemble", horizon_s=self.cfg.horizon_s)
        self._fc_cache: tuple[np.ndarray, ...] | None = None
        self._fc_at = -math.inf
        self.cap = CapacityModel(n, self.cfg.capacity_halflife_s)
        for name in names:
            self._last_busy.setdefault(name, now)

    # ------------------------------------------------------------------ step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        services = obs.services
        self._services_seen = services
        self._now = now
        names = list(services)
        if not names:
            return []
        if names != self.names:
            self._reset(names, now)
        cfg = self.cfg
        if self._deleting:
            self._deleting = {k: t for k, t in self._deleting.items() if now - t <= PENDING_S}
        warm_ids = set().union(*self._warm.values()) if self._warm else set()
        fleets = fl.group(obs.servers(), names, now, warm_ids, self._first_down)
        self._learn_boot(now, fleets)
        lat = {m: obs.latest(m) for m in ("request_rate", *METRICS.values())}
        rate = np.array([lat["request_rate"].get(s, _NAN) for s in names])
        n_active = np.array([len(fleets[s].active) for s in names], dtype=float)
        n_drained = np.array([len(fleets[s].drained) for s in names], dtype=float)
        n_serving = n_active - n_drained
        util = self._utilisation(names, lat, n_active, n_serving)
        x = np.divide(rate, n_serving, out=np.full(len(names), np.nan), where=n_serving > 0)
        self.cap.learn(now, x, util)
        if self._fc_cache is None or now - self._fc_at >= cfg.forecast_every_s - 1e-9:
            # the forecast quantity is a 5-minute mean: a sample a minute feeds it as well as one a step, at a
            # quarter of the cost; the safety net reads utilisation and request rate every step regardless
            self.fc.update_many(now, rate)
            lead = self.boot_s + self.cadence
            self._fc_cache = (*self.fc.forecast_many(), *self.fc.forecast_many(max(lead, 1.0)), self.fc.accuracy)
            self._fc_at = now
        m_w, lo_w, hi_w, m_l, lo_l, hi_l, acc = self._fc_cache
        a, b = self.cap.coefficients()
        batch = np.array([is_batch(services[s]) for s in names])
        thr = np.where(batch, cfg.batch_utilization, cfg.scale_up_threshold)
        size_at = np.where(batch, cfg.batch_utilization, cfg.target_utilization)  # sized here; thr triggers
        h = cfg.headroom_share
        cap_h = cfg.max_headroom
        tgt_l = np.maximum(m_l + np.minimum(h * np.maximum(hi_l - m_l, 0.0), cap_h * np.abs(m_l)), 0.0)
        tgt_w = np.maximum(m_w + np.minimum(h * np.maximum(hi_w - m_w, 0.0), cap_h * np.abs(m_w)), 0.0)
        need_l = CapacityModel.servers_needed(a, b, tgt_l, size_at)
        need_w = CapacityModel.servers_needed(a, b, tgt_w, size_at)
        mid = (cfg.scale_up_threshold + cfg.scale_down_threshold) / 2.0
        need_now = CapacityModel.servers_needed(a, b, np.where(np.isfinite(rate), rate, 0.0),
                                                np.where(batch, cfg.batch_utilization, mid))
        st = self._decide_all(obs, names, rate, n_active - n_drained, util, a, b, need_l, need_w, need_now, acc,
                              (m_l, lo_l, hi_l, tgt_l), (m_w, lo_w, hi_w, tgt_w), batch, thr, mid)
        st["drained"] = n_drained
        queue = np.full(len(names), np.nan)
        if batch.any():
            st["queue"] = queue = self._batch_sizing(obs, names, services, batch, st)
        self.last = _Explained(self, st, names)
        prices = {(p.flavor, p.pricing): p.per_hour for p in obs.prices}
        spend = None
        scope = fl.incident_scope(obs.incidents)
        actions: list[Action] = []
        up, keep = st["up"], st["keep"]
        for i, name in enumerate(names):
            svc, f = services[name], fleets[name]
            r = float(rate[i])
            if batch[i] and np.isfinite(queue[i]):
                r = max(r if np.isfinite(r) else 0.0, float(queue[i]))  # a batch service's demand: its queue
            if r > 0:
                self._last_busy[name] = now
            if f.rewoken:
                actions += self._rewoken(name, f)
            if r <= 0 or not f.active or name in self._zero or f.warm:
                sized = int(up[i]) if batch[i] else _binding(need_now[:, i])[0]
                zero_actions = self._zero_step(now, obs, svc, f, r, prices, scope, sized)
                if zero_actions is not None:
                    if name in self._zero and spend is None:
                        spend = obs.spend
                    if name in self._zero and spend is not None:
                        self._measure_warm(now, name, spend, prices, svc, f)
                    actions += zero_actions
                    continue
            if not f.active:
                continue  # nothing serving and no request: the zero logic (or the restarter) owns it
            actions += self._act(now, obs, svc, f, i, int(up[i]), int(keep[i]), bool(batch[i]), prices, scope)
        return actions

    # ---------------------------------------------------------------- learning
    def _learn_boot(self, now: float, fleets: Mapping[str, fl.ServiceFleet]) -> None:
        """Boot time from BUILD -> ACTIVE (``now - created_at`` when first seen ACTIVE, less half a step)."""
        building: dict[str, float] = {}
        for f in fleets.values():
            for s in f.building:
                building[s.id] = s.created_at
            for s in f.active:
                if s.id in self._building:
                    boot = max(now - self._building[s.id] - self.cadence / 2.0, 1.0)
                    self.boots += 1
                    self.boot_s += max(0.2, 1.0 / self.boots) * (boot - self.boot_s)
                if s.id in self._resuming:
                    took = max(now - self._resuming.pop(s.id) - self.cadence / 2.0, 1.0)
                    self.resume_s = took if self.resume_s is None else 0.7 * self.resume_s + 0.3 * took
        self._building = building

    def _utilisation(self, names: list[str], lat: Mapping[str, Mapping[str, float]], n_active: np.ndarray,
                     n_serving: np.ndarray) -> np.ndarray:
        """K × N utilisation of a serving server: the service's mean CPU over its up servers rescaled to the serving
        ones (drained servers idle at 0 and would dilute it), memory and disk as shown (maxima), network as the
        service's traffic per serving server over one server's network capacity."""
        cpu = np.array([lat["cpu_util"].get(s, _NAN) for s in names])
        mem = np.array([lat["memory_util"].get(s, _NAN) for s in names])
        disk = np.array([lat["disk_util"].get(s, _NAN) for s in names])
        net = np.array([lat["network_mbps"].get(s, _NAN) for s in names])
        ok = n_serving > 0
        cpu = np.where(ok, cpu * np.divide(n_active, n_serving, out=np.ones_like(n_active), where=ok), np.nan)
        net = np.where(ok, np.divide(net, n_serving * self.cfg.network_mbps_per_server, out=np.zeros_like(net),
                                     where=ok), np.nan)
        return np.vstack([cpu, np.where(ok, mem, np.nan), np.where(ok, disk, np.nan), net])

    # ---------------------------------------------------------------- deciding
    def _decide_all(self, obs: Observation, names: list[str], rate: np.ndarray, n_serv: np.ndarray, u: np.ndarray,
                    a: np.ndarray, b: np.ndarray, need_l: np.ndarray, need_w: np.ndarray, need_now: np.ndarray,
                    acc: np.ndarray, lead: tuple[np.ndarray, ...], window: tuple[np.ndarray, ...], batch: np.ndarray,
                    thr: np.ndarray, mid: float) -> dict[str, Any]:
        """For every service at once: the serving servers it needs now (``up``) and over the window (``keep``),
        the mode, and what explains them (kept for :meth:`explain`, built only for the services that act)."""
        cfg = self.cfg
        n = len(names)
        idx = np.arange(n)
        r = np.where(np.isfinite(rate), rate, 0.0)
        a0 = np.where(np.isfinite(a), a, 0.0)
        # each dimension's load-driven utilisation in units of the threshold (a fixed part does not count: more
        # servers would not lower it); > 1: above ScaleUpThreshold
        excess = np.where(np.isfinite(u), (u - a0) / np.maximum(thr[None, :] - a0, 1e-9), -np.inf)
        hot_dim = np.argmax(excess, axis=0)
        e_max = excess[hot_dim, idx]
        have_u = np.isfinite(e_max)
        u_hot = np.where(have_u, u[hot_dim, idx], np.nan)
        fixed = a0[hot_dim, idx]
        hot = have_u & (e_max > 1.0)
        cold = have_u & (e_max < cfg.scale_down_threshold / thr)
        # the reactive answer: HPA-like, outside the band [ScaleDownThreshold, ScaleUpThreshold] back to its middle
        scaled = np.ceil(n_serv * (np.nan_to_num(u_hot) - fixed) / np.maximum(mid - fixed, 1e-9) - 1e-9)
        react = np.where(hot | cold, scaled, n_serv)
        react = np.where(r > 0, np.maximum(react, 1), react)
        trend = np.full(n, np.nan)
        for i in np.flatnonzero(hot):  # saturation clips utilisation: the request rate says how far demand is,
            # and where it is going by the time a new server has booted (the last 90 s' trend over the lead time)
            trend[i] = self._trend(obs, names[i], float(r[i]), self.boot_s + self.cadence)
        need_t = CapacityModel.servers_needed(a, b, np.where(hot, trend, 0.0), np.full(n, mid))
        react = np.where(hot, np.maximum(react, np.maximum(_binding_all(need_now)[0], _binding_all(need_t)[0])),
                         react)
        known = np.isfinite(need_l).any(axis=0)
        accurate = np.isfinite(acc) & (acc >= cfg.min_prediction_accuracy)
        pred = accurate & known
        up_need, bind_l = _binding_all(need_l)
        keep_need, bind_w = _binding_all(np.fmax(need_l, need_w))
        missed = r > lead[3]  # more demand now than what was provisioned for: the forecast missed it
        net = pred & hot & missed & (react > up_need)
        up_need = np.where(net, react, up_need)
        # never below what the demand of now needs (a forecast still catching up with a level shift), nor below
        # what was just asked for
        cur = _binding_all(CapacityModel.servers_needed(a, b, r, thr))[0]
        keep_need = np.maximum(np.maximum(keep_need, up_need), cur)
        busy = (lead[3] > 0) & (r > 0)
        up_need = np.where(busy, np.maximum(up_need, 1), up_need)
        keep_need = np.where(busy, np.maximum(keep_need, 1), keep_need)
        return {"up": np.where(pred, up_need, react).astype(int), "keep": np.where(pred, keep_need, react).astype(int),
                "mode": np.where(pred, np.where(net, 2, 1), 0), "rate": r, "n_serv": n_serv, "u": u, "acc": acc,
                "need_l": need_l, "bind_l": bind_l, "bind_w": bind_w, "hot_dim": hot_dim, "u_hot": u_hot,
                "known": known, "lead": lead, "window": window, "trend": trend, "thr": thr, "mid": mid,
                "batch": batch}

    def _batch_sizing(self, obs: Observation, names: list[str], services: Mapping[str, ServiceState],
                      batch: np.ndarray, st: dict[str, Any]) -> np.ndarray:
        """Batch services with a job queue: size for throughput and deadlines, not latency.  The queued jobs
        (``queue_length``) times their mean work (setting ``batch_work_vcpu_s``) must be done within
        ``batch_deadline_share`` of their deadline (setting ``batch_deadline_s``): ``ceil(queue × work / (share ×
        deadline × vCPUs per server))`` servers, overriding ``up`` and ``keep`` in ``st``; the queue per service
        (NaN where not a batch service with a queue) is returned."""
        cfg = self.cfg
        q = obs.latest("queue_length")
        queue = np.full(len(names), np.nan)
        flavors = obs.flavors
        for i in np.flatnonzero(batch):
            svc = services[names[i]]
            qi = q.get(names[i], _NAN)
            work, deadline = svc.settings.get("batch_work_vcpu_s"), svc.settings.get("batch_deadline_s")
            fl_ = flavors.get(svc.flavor)
            if not (qi == qi and work and deadline and fl_ is not None and fl_.vcpus > 0):
                continue  # no queue or no job sizes shown: sized like any service at batch_utilization
            queue[i] = qi
            vcpu_rate = self._jobs_rate(names[i], obs.now, qi, work, cfg.batch_deadline_share * deadline)
            need = math.ceil(vcpu_rate / fl_.vcpus - 1e-9)
            st["up"][i] = st["keep"][i] = need
            st["mode"][i] = 3
        return queue

    def _jobs_rate(self, name: str, now: float, q: float, work: float, due_s: float) -> float:
        """vCPUs needed so that every queued job ends within ``due_s`` of its arrival, first come first served.

        Arrivals are inferred from the queue: a rise of k at ``now`` is k jobs arriving now, a fall of k is the k
        oldest done.  For each arrival group, the work of it and of every job before it must be done by its due
        time: the largest of those rates is the need (a queue that has waited has less time left)."""
        jobs = self._jobs.setdefault(name, deque())
        prev = sum(c for _, c in jobs)
        if q > prev:
            jobs.append([now, q - prev])
        else:
            done = prev - q
            while jobs and done > 0:
                take = min(done, jobs[0][1])
                jobs[0][1] -= take
                done -= take
                if jobs[0][1] <= 1e-9:
                    jobs.popleft()
        rate, ahead = 0.0, 0.0
        for t, c in jobs:
            ahead += c
            rate = max(rate, ahead * work / max(t + due_s - now, self.cadence))
        return rate

    def explain(self, st: Mapping[str, Any], i: int, name: str) -> dict[str, Any]:
        """Why service ``i`` needs what it needs: mode, reason and evidence (forecast, interval, binding dimension,
        accuracy, headroom)."""
        cfg = self.cfg
        mode = ("reactive", "predictive", "predictive+safety-net", "batch")[int(st["mode"][i])]
        r, acc, thr, mid = float(st["rate"][i]), float(st["acc"][i]), float(st["thr"][i]), st["mid"]
        u = st["u"][:, i]
        hot = int(st["hot_dim"][i])
        u_hot = float(st["u_hot"][i])
        lead = tuple(float(x[i]) for x in st["lead"])
        window = tuple(float(x[i]) for x in st["window"])
        ev: dict[str, Any] = {"request_rate": round(r, 3), "serving": int(st["n_serv"][i]),
                              "drained": int(st["drained"][i]),
                              "accuracy": None if not np.isfinite(acc) else round(acc, 3),
                              "min_accuracy": cfg.min_prediction_accuracy, "boot_s": round(self.boot_s, 1),
                              "utilisation": {d: (None if not np.isfinite(u[k]) else round(float(u[k]), 3))
                                              for k, d in enumerate(DIMENSIONS)}, "mode": mode}
        if bool(st["batch"][i]):
            ev["workload"] = f"batch: sized for throughput at {thr:.0%}"
        if np.isfinite(st["trend"][i]):
            ev["trend_request_rate_at_lead"] = round(float(st["trend"][i]), 3)
        if mode == "batch":
            svc = self._services_seen.get(name)
            work = svc.settings.get("batch_work_vcpu_s", _NAN) if svc else _NAN
            deadline = svc.settings.get("batch_deadline_s", _NAN) if svc else _NAN
            q = float(st["queue"][i])
            ev.update({"queue_length": q, "work_vcpu_s_per_job": work, "deadline_s": deadline,
                       "deadline_share": cfg.batch_deadline_share, "binding_dimension": "cpu (throughput)"})
            jobs = self._jobs.get(name) or deque()
            oldest = now_age = (self._now - jobs[0][0]) if jobs else 0.0
            ev["oldest_job_age_s"] = round(oldest, 1)
            why = (f"batch: {q:.0f} job(s) queued x {work:.0f} vCPU-s (oldest {now_age:.0f} s) must each finish "
                   f"within {cfg.batch_deadline_share:.0%} of their {deadline:.0f}-s deadline: "
                   f"{int(st['up'][i])} server(s)")
        elif mode != "reactive":
            need_l = st["need_l"][:, i]
            bind_w = DIMENSIONS[int(st["bind_w"][i])]
            ev.update(_forecast_ev("lead", lead, self.boot_s + self.cadence), **_forecast_ev("window", window,
                                                                                           cfg.horizon_s))
            ev["servers_by_dimension"] = {d: _num(need_l[k]) for k, d in enumerate(DIMENSIONS)}
            ev["binding_dimension"] = DIMENSIONS[int(st["bind_l"][i])]
            ev["headroom"] = {"share_of_upper_interval": round(cfg.headroom_share, 3),
                              "cost_weight": cfg.cost_weight, "performance_weight": cfg.performance_weight}
            blocked = [d for k, d in enumerate(DIMENSIONS) if need_l[k] == math.inf]
            if blocked:
                ev["not_helped_by_scaling"] = blocked
            why = (f"predictive: request_rate {lead[0]:.1f}/s forecast in {self.boot_s + self.cadence:.0f} s "
                   f"[{lead[1]:.1f}, {lead[2]:.1f}], {window[0]:.1f}/s in {cfg.horizon_s / 60:.0f} min "
                   f"[{window[1]:.1f}, {window[2]:.1f}]; provisioning for {max(lead[3], window[3]):.1f}/s "
                   f"(headroom {cfg.headroom_share:.0%} of the upper interval, cost {cfg.cost_weight:g} / "
                   f"performance {cfg.performance_weight:g}); binding dimension {bind_w} sized at "
                   f"{(cfg.batch_utilization if mode == 'batch' else cfg.target_utilization):.0%}; "
                   f"accuracy {acc:.0%}")
            if mode == "predictive+safety-net":
                why = (f"safety net: {DIMENSIONS[hot]} at {u_hot:.0%} > {thr:.0%} now and {r:.1f} requests/s "
                       f"> the {lead[3]:.1f}/s provisioned for (a spike the forecast missed); " + why)
        else:
            if not bool(st["known"][i]):
                cause = "no utilisation per request learnt yet"
            elif not np.isfinite(acc):
                cause = "forecast accuracy not measured yet (warming up)"
            else:
                cause = f"forecast accuracy {acc:.0%} < MinPredictionAccuracy {cfg.min_prediction_accuracy:.0%}"
            ev["fallback"] = cause
            ev["binding_dimension"] = DIMENSIONS[hot]
            why = (f"reactive fallback ({cause}): {DIMENSIONS[hot]} at "
                   + (f"{u_hot:.0%}" if np.isfinite(u_hot) else "n/a")
                   + f", band {cfg.scale_down_threshold:.0%}-{thr:.0%}, target {mid:.0%}")
        return {"mode": mode, "up": int(st["up"][i]), "keep": int(st["keep"][i]), "why": why, "evidence": ev,
                "batch": bool(st["batch"][i])}

    @staticmethod
    def _trend(obs: Observation, name: str, r: float, lead_s: float) -> float:
        """The request rate ``lead_s`` ahead on the last 90 s' linear trend (rising only, at most twice ``r``;
        ``r`` without data)."""
        w = obs.window("request_rate", 90.0, service=name)
        ok = np.isfinite(w.v)
        if ok.sum() < 3 or np.ptp(w.t[ok]) <= 0:
            return r
        slope, icpt = np.polyfit(w.t[ok] - w.t[ok][-1], w.v[ok], 1)
        return float(min(max(r, icpt + max(slope, 0.0) * lead_s), 2.0 * r))  # a step is not a trend: at most 2x

    # ---------------------------------------------------------------- acting
    def _act(self, now: float, obs: Observation, svc: ServiceState, f: fl.ServiceFleet, i: int, up: int,
             keep: int, batch: bool, prices: Mapping[tuple[str, str], float], scope: set[str]) -> list[Action]:
        cfg = self.cfg
        name = svc.name
        extra = len(f.drained)  # out of rotation: kept, not counted as serving
        lo, hi = max(svc.min_servers, 1), svc.max_servers  # zero only by the idle rule (_zero_step)
        cap = _budget_cap(svc, now)
        if cap is not None and cap < hi:
            hi = max(cap, lo)  # the budget manager capped the service: scaling past it would only be refused
        want_up = min(max(up + extra, lo), hi)
        want_keep = min(max(keep + extra, lo), hi)
        have = len(f.active) + len(f.building) + len(f.down)
        pricing = "spot" if batch and cfg.batch_spot and (svc.flavor, "spot") in prices else "on_demand"
        price = prices.get((svc.flavor, pricing), prices.get((svc.flavor, "on_demand"), _NAN))

        def why() -> tuple[dict[str, Any], dict[str, Any]]:
            d = self.last[name]
            ev = dict(d["evidence"])
            ev.update({"active": len(f.active), "building": len(f.building), "recovering": len(f.down),
                       "drained": len(f.drained), "min_servers": svc.min_servers, "max_servers": hi,
                       "price_per_server_hour": _num(price), "pricing": pricing})
            return d, ev

        out: list[Action] = []
        # stabilisation: scale down only to the highest recommendation of the window
        recs = self._recs.setdefault(name, deque())  # the window's running maximum (decreasing values)
        while recs and recs[-1][1] <= want_keep:
            recs.pop()
        recs.append((now, want_keep))
        while recs[0][0] < now - cfg.scale_down_window_s:
            recs.popleft()
        full = now - self._first_rec.setdefault(name, now) >= cfg.scale_down_window_s - cfg.cadence
        join: str | None = None
        if want_up > have:
            owner = fl.owning_incident(f, obs.incidents)
            if owner is not None:
                # one fault, one owner: a forecast's extra capacity waits for the incident's response; users
                # hurting now (the service saturated) is reason to join the response, tied to it and said so
                if self.last[name]["mode"] not in ("predictive+safety-net", "reactive"):
                    return out
                join = owner.id
            win = self._up.setdefault(name, _Window())
            allowed = win.allowance(now, cfg.scale_up_window_s, have, cfg.max_scale_up_percent,
                                    cfg.min_scale_up_step, +1)
            count = self._capped(name, min(want_up - have, max(allowed, 0)), now)
            if count <= 0:
                return out
            d, ev = why()
            ev["desired"] = want_up
            if join is not None:
                ev["joins_incident"] = join
            ev["expected_cost_per_hour"] = _num(round((have + count) * price, 4))
            if count < want_up - have:
                ev["limited_by"] = f"MaxScaleUpPercent {cfg.max_scale_up_percent:g} per {cfg.scale_up_window_s:g} s"
            if count > 0:  # (always, here)
                win.add(now, count)
                for s in f.warm[:count]:  # a warm server resumes faster than a new one boots
                    self._resuming[s.id] = now
                    self._warm.get(name, set()).discard(s.id)
                    out.append(SetMetadata(server_id=s.id, metadata=CLEAR_MARKS, reason="warm pool server back in "
                                           "service", evidence=ev, incident=join))
                    out.append(StartServer(server_id=s.id, reason=f"{d['why']}: {have} -> {have + count} servers "
                                           f"(resuming warm server)", evidence=ev, incident=join))
                new = count - min(count, len(f.warm))
                if new > 0:
                    self._ids += 1
                    zone = _healthy_zone(f)
                    if zone is not None:
                        ev["zone"] = f"{zone} (not the zone(s) of its drained servers)"
                    joined = f"; joins {join}: saturated while its response runs" if join else ""
                    out.append(CreateServer(service=name, count=new, pricing=pricing, zone=zone,
                                            request_id=f"{fl.OWN_PREFIX}{name}-{self._ids}",
                                            reason=f"{d['why']}: {have} -> {have + count} servers, "
                                                   f"+{new} x {svc.flavor} at {price:.3f}/h each, fleet "
                                                   f"{(have + count) * price:.2f}/h{joined}",
                                            evidence=ev, incident=join))
            return out
        if want_keep >= len(f.active) or not full or f.building or f.down:
            return out
        stable = recs[0][1]  # the highest recommendation of the window
        if stable >= len(f.active):
            return out
        if fl.under_incident(f, scope):
            return out  # an open incident owns this service's capacity now
        victims, idle = self._deletable(obs, f, name)
        victims = [s for s in victims if now - self._deleting.get(s.id, -math.inf) > PENDING_S]
        stable += len(idle)  # out of rotation by their traffic: not ours to count as serving
        win = self._down.setdefault(name, _Window())
        allowed = win.allowance(now, cfg.scale_down_window_s, len(f.active), cfg.max_scale_down_percent,
                                1 if cfg.max_scale_down_percent > 0 else 0, -1)
        count = min(len(f.active) - stable, allowed, len(victims))
        if count <= 0:
            return out
        win.add(now, count)
        d, ev = why()
        ev["desired"] = stable
        ev["expected_cost_per_hour"] = _num(round((have - count) * price, 4))
        ev["stabilisation_s"] = cfg.scale_down_window_s
        for s in victims[:count]:
            self._deleting[s.id] = now
            out.append(DeleteServer(server_id=s.id, reason=f"{d['why']}: {len(f.active)} -> "
                                    f"{len(f.active) - count} servers (highest need of the last "
                                    f"{cfg.scale_down_window_s:.0f} s: {stable}; at most "
                                    f"{cfg.max_scale_down_percent:g} % per window), saves {price:.3f}/h",
                                    evidence=ev))
        return out

    def _deletable(self, obs: Observation, f: fl.ServiceFleet, name: str) -> tuple[list[Server], list[Server]]:
        """(servers we may delete, newest and ours first; servers out of rotation by their traffic): never someone
        else's, never one that carries no traffic while its service has some (drained where weights are hidden)."""
        rate = obs.latest("request_rate").get(name, _NAN)
        cands = [s for s in f.serving if not fl.someone_elses(s, obs.incidents)]
        idle: list[Server] = []
        if len(f.serving) > 1:
            readings = [(s, obs.window("server_network_mbps", 120.0, server=s.id).last()) for s in f.serving]
            idle = fl.idle_servers(readings, rate, obs.now)
            ids = {s.id for s in idle}
            cands = [s for s in cands if s.id not in ids]
        return sorted(cands, key=lambda s: (not fl.is_own(s), -s.created_at)), idle

    # -------------------------------------------------------------- zero
    def _zero_step(self, now: float, obs: Observation, svc: ServiceState, f: fl.ServiceFleet, r: float,
                   prices: Mapping[tuple[str, str], float], scope: set[str], sized: int) -> list[Action] | None:
        """Scale to zero or from zero; None when neither applies (the normal path decides).  ``sized``: the servers
        the demand of now needs by the capacity learnt before the idle (0 when unknown)."""
        cfg = self.cfg
        name = svc.name
        at_zero = not f.active and not f.building
        price = prices.get((svc.flavor, "on_demand"), _NAN)
        marks: list[Action] = [SetMetadata(server_id=s.id, metadata=WARM_MARKS, evidence={"service": name},
                                           reason="warm pool: stopped on purpose by the scaler (planned, not a fault)")
                               for s in f.warm if not s.metadata.get(fl.META_WARM) and s.id not in self._resuming]
        if at_zero and r > 0 and not f.down:
            need = min(max(1, svc.min_servers, sized), svc.max_servers)
            out: list[Action] = []
            measured = self.warm_cost.get(name, {})
            ev = {"request_rate": r, "servers_needed": need, "warm_pool": [s.id for s in f.warm],
                  "resume_s_measured": _num(self.resume_s),
                  "scale_from_zero_max_seconds": cfg.scale_from_zero_max_seconds, **measured}
            for s in f.warm[:need]:
                self._resuming[s.id] = now
                self._warm.get(name, set()).discard(s.id)
                out.append(SetMetadata(server_id=s.id, metadata=CLEAR_MARKS, reason="warm pool server back in "
                                       "service", evidence=ev))
                out.append(StartServer(server_id=s.id, reason=f"scale from zero: {r:.2f} requests/s after idle; "
                                       f"resuming warm server {s.id} (goal: serving within "
                                       f"{cfg.scale_from_zero_max_seconds:.0f} s)", evidence=ev))
            resumed = len(out) // 2  # each resume is a SetMetadata and a StartServer
            new = self._capped(name, need - resumed, now)
            if new > 0:
                self._ids += 1
                out.append(CreateServer(service=name, count=new,
                                        request_id=f"{fl.OWN_PREFIX}{name}-{self._ids}",
                                        reason=f"scale from zero: {r:.2f} requests/s need {need} server(s), "
                                               f"{resumed} resumed from the warm pool: booting {new} (about "
                                               f"{self.boot_s:.0f} s)", evidence=ev))
            self._zero.pop(name, None)
            return out
        if at_zero:
            return marks if name in self._zero or f.warm else None
        idle_for = now - self._last_busy.get(name, now)
        if (svc.min_servers == 0 and r == 0.0 and idle_for >= cfg.scale_to_zero_idle_minutes * 60.0
                and not f.building and not fl.under_incident(f, scope)):
            mine = sorted((s for s in f.active if not fl.someone_elses(s, obs.incidents) and s not in f.drained),
                          key=lambda s: s.created_at)
            if not mine:
                return None
            pool_size = 0 if name in self._no_warm else cfg.warm_pool_size
            need_warm = max(0, pool_size - len(f.warm))
            # the newest go first; the oldest ``need_warm`` are stopped for the warm pool (gently: the down window)
            order = mine[need_warm:][::-1] + mine[:need_warm]
            win = self._down.setdefault(name, _Window())
            allowed = win.allowance(now, cfg.scale_down_window_s, len(f.active), cfg.max_scale_down_percent,
                                    1 if cfg.max_scale_down_percent > 0 else 0, -1)
            take = order[:max(allowed, 0)]
            if not take:
                return []
            win.add(now, len(take))
            if name not in self._zero:
                self._zero[name] = (now, obs.spend.per_service.get(name, _NAN), len(f.active) + len(f.warm))
            ev = {"idle_s": round(idle_for, 1), "servers_before": self._zero[name][2],
                  "saves_per_hour": _num(round(len(take) * price, 4)), "warm_pool_mode": cfg.warm_pool_mode,
                  "warm_pool_size": cfg.warm_pool_size, "price_per_server_hour": _num(price)}
            out = []
            verb = StopServer if cfg.warm_pool_mode == "stop" else ShelveServer
            pool = self._warm.setdefault(name, set())
            for s in take:
                if s in mine[:need_warm]:
                    pool.add(s.id)
                    # marked first: whoever watches the server sees planned work, not a crash, when it goes down
                    out.append(SetMetadata(server_id=s.id, metadata=WARM_MARKS, evidence={"service": name},
                                           reason="warm pool: stopped on purpose by the scaler (planned, not a "
                                                  "fault)"))
                    out.append(verb(server_id=s.id, reason=f"scale to zero: no requests for {idle_for / 60:.0f} min "
                                    f"(>= ScaleToZeroIdleMinutes {cfg.scale_to_zero_idle_minutes:g}); kept as a "
                                    f"warm pool ({cfg.warm_pool_mode}) to serve again within "
                                    f"{cfg.scale_from_zero_max_seconds:g} s of the first request", evidence=ev))
                else:
                    out.append(DeleteServer(server_id=s.id, reason=f"scale to zero: no requests for "
                                            f"{idle_for / 60:.0f} min; saves {price:.3f}/h", evidence=ev))
            return out
        return None

    def _capped(self, name: str, count: int, now: float) -> int:
        """``count``, at most what was last refused halved (for a minute after a refusal)."""
        cap = self._up_cap.get(name)
        if cap is None or now - cap[0] > 60.0:
            return count
        return min(count, cap[1])

    def _rewoken(self, name: str, f: fl.ServiceFleet) -> list[Action]:
        """Another engine (a crash restarter) started our stopped warm server: do not fight it — clear its marks
        and keep no warm pool for this service from now on (at zero, its servers are deleted instead)."""
        out: list[Action] = []
        for s in f.rewoken:
            if s.id in self._resuming:
                continue  # ours, resuming: its marks are being cleared
            self._no_warm.add(name)
            self._warm.get(name, set()).discard(s.id)
            out.append(SetMetadata(server_id=s.id, metadata=CLEAR_MARKS, evidence={"service": name},
                                   reason="warm pool server started by another engine: back in service; no warm "
                                          "pool for this service from now on (one owner per server)"))
        return out

    def _measure_warm(self, now: float, name: str, spend: Any, prices: Mapping[tuple[str, str], float],
                      svc: ServiceState, f: fl.ServiceFleet) -> None:
        """What the service costs while at zero (its warm pool), measured from its spend, vs what it cost before."""
        since, s0, before = self._zero[name]
        s1 = spend.per_service.get(name, _NAN)
        if now - since < 120.0 or not (math.isfinite(s0) and math.isfinite(s1)):
            return
        price = prices.get((svc.flavor, "on_demand"), _NAN)
        rate = (s1 - s0) / (now - since) * 3600.0
        self.warm_cost[name] = {"warm_pool_cost_per_hour": round(rate, 5), "warm_pool_servers": len(f.warm),
                                "cost_before_per_hour": _num(round(before * price, 4)),
                                "at_zero_s": round(now - since, 1)}

    def on_result(self, rec: ActionRecord) -> None:
        a = rec.action
        if isinstance(a, StopServer | ShelveServer) and rec.outcome != "executed":
            for pool in self._warm.values():
                pool.discard(a.server_id)
        if isinstance(a, CreateServer):
            if rec.outcome == "denied":  # a limit above ours (the safety gate's): ask for half as many next time
                self._up_cap[a.service] = (rec.at, max(1, a.count // 2))
            elif rec.outcome == "executed":
                self._up_cap.pop(a.service, None)
        if isinstance(a, DeleteServer) and rec.outcome == "denied":
            self._deleting.pop(a.server_id, None)  # refused now (a limit): may be asked again later


class _Explained(Mapping[str, dict[str, Any]]):
    """The last step's decisions by service, each explained (reason and evidence) only when read."""

    def __init__(self, scaler: PredictiveScaler, st: dict[str, Any], names: list[str]) -> None:
        self.scaler, self.st, self.index = scaler, st, {n: i for i, n in enumerate(names)}
        self.cache: dict[str, dict[str, Any]] = {}

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self.cache:
            self.cache[name] = self.scaler.explain(self.st, self.index[name], name)
        return self.cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _binding_all(need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a K × N need: (servers, dimension index) of the largest finite need (0 where none is)."""
    fin = np.where(np.isfinite(need), need, -1.0)
    k = np.argmax(fin, axis=0)
    return np.maximum(fin[k, np.arange(fin.shape[1])], 0.0), k


def _healthy_zone(f: fl.ServiceFleet) -> str | None:
    """Where new servers go while some of the service's servers are drained (a partitioned zone, say): the zone
    with most of its serving servers outside the drained servers' zones; None (the scheduler's choice) otherwise."""
    bad = {s.zone for s in f.drained}
    if not bad:
        return None
    zones = [s.zone for s in f.serving if s.zone not in bad]
    return max(sorted(set(zones)), key=zones.count) if zones else None  # a tie: the first by name (not by hash)


def is_batch(svc: ServiceState) -> bool:
    """A batch workload (settings ``batch`` 1, or a deadline): it runs hot by design, sized for throughput."""
    s = svc.settings
    return float(s.get("batch", 0.0) or 0.0) >= 1.0 or "deadline" in s or "batch_deadline_s" in s


def _binding(need: np.ndarray) -> tuple[int, int]:
    """(servers, dimension index) of the largest finite need; (0, 0) when none is finite."""
    fin = np.where(np.isfinite(need), need, -1.0)
    k = int(np.argmax(fin))
    return (int(fin[k]) if fin[k] >= 0 else 0), k


def _num(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    if v == math.inf:
        return "inf"
    return round(v, 4) if math.isfinite(v) else None


def _forecast_ev(label: str, f: tuple[float, ...], horizon: float) -> dict[str, Any]:
    return {f"forecast_{label}": {"horizon_s": round(horizon, 1), "mean": _num(f[0]), "lo": _num(f[1]),
                                  "hi": _num(f[2]), "provisioned_for": _num(f[3])}}


def _budget_cap(svc: ServiceState, now: float) -> int | None:
    """The running servers a budget allows ``svc`` until its period ends, if the budget manager capped it."""
    cap = svc.settings.get(CAP_SETTING)
    until = svc.settings.get(CAP_UNTIL_SETTING)
    if cap is None or not math.isfinite(cap) or (until is not None and math.isfinite(until) and now >= until):
        return None
    return int(cap)
