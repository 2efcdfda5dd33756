"""The predictive scaler: capacity that arrives before the traffic does, idle capacity that disappears.

Each step, for every service at once (numpy over N services, one ``update_many`` / ``forecast_many``):

1. learn — request rate per serving server vs each dimension's utilisation (engines/scaling/capacity.py), the
   boot time from BUILD -> ACTIVE, and the forecaster's running accuracy;
2. forecast — the 5-minute mean request rate at the lead time (boot time + one step: what must be booting now)
   and at the end of the prediction window, each with its interval; provision for ``mean + h·(hi - mean)`` with
   ``h = performance / (cost + performance)`` (0.6 by default: the headroom);
3. size — servers per dimension (CPU, memory, disk, network) at ``ScaleUpThreshold``; the binding dimension
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
from collections.abc import Iterable, Mapping
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
        self._deleting: dict[str, float] = {}  # server id -> when we asked to delete it (not asked again for a while)
        self._last_busy: dict[str, float] = {}
        self._ids = 0
        self.last: dict[str, dict[str, Any]] = {}  # service -> the last step's figures (for tests and explanations)

    # ------------------------------------------------------------------ setup
    def _reset(self, names: list[str], now: float) -> None:
        self.names = names
        n = len(names)
        self.fc = make_forecaster("ensemble", horizon_s=self.cfg.horizon_s)
        self.cap = CapacityModel(n, self.cfg.capacity_halflife_s)
        for name in names:
            self._last_busy.setdefault(name, now)

    # ------------------------------------------------------------------ step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        services = obs.services
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
        self.fc.update_many(now, rate)
        lead = self.boot_s + self.cadence
        m_w, lo_w, hi_w = self.fc.forecast_many()
        m_l, lo_l, hi_l = self.fc.forecast_many(max(lead, 1.0))
        acc = self.fc.accuracy
        a, b = self.cap.coefficients()
        batch = np.array([_is_batch(services[s]) for s in names])
        thr = np.where(batch, cfg.batch_utilization, cfg.scale_up_threshold)
        h = cfg.headroom_share
        tgt_l = np.maximum(m_l + h * np.maximum(hi_l - m_l, 0.0), 0.0)
        tgt_w = np.maximum(m_w + h * np.maximum(hi_w - m_w, 0.0), 0.0)
        need_l = CapacityModel.servers_needed(a, b, tgt_l, thr)
        need_w = CapacityModel.servers_needed(a, b, tgt_w, thr)
        mid = (cfg.scale_up_threshold + cfg.scale_down_threshold) / 2.0
        need_now = CapacityModel.servers_needed(a, b, np.where(np.isfinite(rate), rate, 0.0),
                                                np.where(batch, cfg.batch_utilization, mid))
        prices = {(p.flavor, p.pricing): p.per_hour for p in obs.prices}
        spend = None
        scope = fl.incident_scope(obs.incidents)
        actions: list[Action] = []
        for i, name in enumerate(names):
            svc, f = services[name], fleets[name]
            r = float(rate[i])
            if r > 0:
                self._last_busy[name] = now
            zero_actions = self._zero_step(now, obs, svc, f, r, prices, scope, _binding(need_now[:, i])[0])
            if zero_actions is not None:
                if name in self._zero and spend is None:
                    spend = obs.spend
                if name in self._zero and spend is not None:
                    self._measure_warm(now, name, spend, prices, svc, f)
                actions += zero_actions
                continue
            if not f.active:
                continue  # nothing serving and no request: the zero logic (or the restarter) owns it
            d = self._decide(obs, i, now, svc, f, r, util[:, i], a[:, i], b[:, i], need_l[:, i], need_w[:, i],
                             need_now[:, i], acc[i], (m_l[i], lo_l[i], hi_l[i], tgt_l[i]),
                             (m_w[i], lo_w[i], hi_w[i], tgt_w[i]), bool(batch[i]), thr[i], mid)
            actions += self._act(now, obs, svc, f, d, prices, scope)
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
    def _decide(self, obs: Observation, i: int, now: float, svc: ServiceState, f: fl.ServiceFleet, r: float, u: np.ndarray,
                a: np.ndarray, b: np.ndarray, need_l: np.ndarray, need_w: np.ndarray, need_now: np.ndarray,
                acc: float, lead: tuple[float, ...], window: tuple[float, ...], batch: bool, thr: float,
                mid: float) -> dict[str, Any]:
        """The serving servers this service needs now (``up``) and over the window (``keep``), with why."""
        cfg = self.cfg
        n_serv = len(f.serving)
        a0 = np.where(np.isfinite(a), a, 0.0)
        # each dimension's load-driven utilisation in units of the threshold (a fixed part does not count: more
        # servers would not lower it); > 1: above ScaleUpThreshold
        excess = np.where(np.isfinite(u), (u - a0) / np.maximum(thr - a0, 1e-9), np.nan)
        have_u = bool(np.isfinite(excess).any())
        e_max = float(np.nanmax(excess)) if have_u else _NAN
        dim_hot = int(np.nanargmax(excess)) if have_u else 0
        u_hot = float(u[dim_hot]) if have_u else _NAN
        known = bool(np.isfinite(need_l).any())
        accurate = bool(np.isfinite(acc) and acc >= cfg.min_prediction_accuracy)
        ev: dict[str, Any] = {"request_rate": round(r, 3), "serving": n_serv, "drained": len(f.drained),
                              "accuracy": None if not np.isfinite(acc) else round(float(acc), 3),
                              "min_accuracy": cfg.min_prediction_accuracy, "boot_s": round(self.boot_s, 1),
                              "utilisation": {d: (None if not np.isfinite(u[k]) else round(float(u[k]), 3))
                                              for k, d in enumerate(DIMENSIONS)}}
        if batch:
            ev["workload"] = "batch: sized for throughput at " + f"{thr:.0%}"
        # the reactive answer: HPA-like, outside the band [ScaleDownThreshold, ScaleUpThreshold] back to its middle
        hot = have_u and e_max > 1.0
        cold = have_u and e_max < cfg.scale_down_threshold / thr
        if hot or cold:
            fixed = float(a0[dim_hot])
            react = math.ceil(n_serv * (u_hot - fixed) / max(mid - fixed, 1e-9) - 1e-9)
        else:
            react = n_serv
        if r > 0:
            react = max(react, 1)
        if hot:  # saturation clips utilisation: the request rate says how far demand really is, and where it
            # is going by the time a new server has booted (the last 90 s' trend carried over the lead time)
            r_lead = self._trend(obs, svc.name, r, self.boot_s + self.cadence)
            tgt = np.array([r_lead])
            need_t = CapacityModel.servers_needed(a[:, None], b[:, None], tgt, np.array([mid]))[:, 0]
            fin = np.concatenate([need_now[np.isfinite(need_now)], need_t[np.isfinite(need_t)]])
            react = max(react, int(fin.max()) if len(fin) else 0)
            ev["trend_request_rate_at_lead"] = round(r_lead, 3)
        if accurate and known:
            mode = "predictive"
            up_need, bind_l = _binding(need_l)
            keep_need, bind_w = _binding(np.fmax(need_l, need_w))
            ev.update(_forecast_ev("lead", lead, self.boot_s + self.cadence), **_forecast_ev("window", window,
                                                                                           cfg.horizon_s))
            ev["servers_by_dimension"] = {d: _num(need_l[k]) for k, d in enumerate(DIMENSIONS)}
            ev["binding_dimension"] = DIMENSIONS[bind_l]
            ev["headroom"] = {"share_of_upper_interval": round(cfg.headroom_share, 3),
                              "cost_weight": cfg.cost_weight, "performance_weight": cfg.performance_weight}
            blocked = [d for k, d in enumerate(DIMENSIONS) if need_l[k] == math.inf]
            if blocked:
                ev["not_helped_by_scaling"] = blocked
            why = (f"predictive: request_rate {lead[0]:.1f}/s forecast in {self.boot_s + self.cadence:.0f} s "
                   f"[{lead[1]:.1f}, {lead[2]:.1f}], {window[0]:.1f}/s in {cfg.horizon_s / 60:.0f} min "
                   f"[{window[1]:.1f}, {window[2]:.1f}]; provisioning for {max(lead[3], window[3]):.1f}/s "
                   f"(headroom {cfg.headroom_share:.0%} of the upper interval, cost {cfg.cost_weight:g} / "
                   f"performance {cfg.performance_weight:g}); binding dimension {DIMENSIONS[bind_w]} at "
                   f"{thr:.0%}; accuracy {acc:.0%}")
            missed = r > lead[3]  # more demand now than what was provisioned for: the forecast missed it
            if hot and missed and react > up_need:
                why = (f"safety net: {DIMENSIONS[dim_hot]} at {u_hot:.0%} > {thr:.0%} now and {r:.1f} requests/s "
                       f"> the {lead[3]:.1f}/s provisioned for (a spike the forecast missed); " + why)
                up_need = react
                mode = "predictive+safety-net"
            # never below what the demand of now needs (a forecast still catching up with a level shift), nor
            # below what was just asked for
            cur = CapacityModel.servers_needed(a[:, None], b[:, None], np.array([max(r, 0.0)]), np.array([thr]))
            keep_need = max(keep_need, up_need, _binding(cur[:, 0])[0])
            if lead[3] > 0 and r > 0:
                up_need, keep_need = max(up_need, 1), max(keep_need, 1)
        else:
            mode = "reactive"
            if not known:
                cause = "no utilisation per request learnt yet"
            elif not np.isfinite(acc):
                cause = "forecast accuracy not measured yet (warming up)"
            else:
                cause = f"forecast accuracy {acc:.0%} < MinPredictionAccuracy {cfg.min_prediction_accuracy:.0%}"
            up_need = keep_need = react
            ev["fallback"] = cause
            ev["binding_dimension"] = DIMENSIONS[dim_hot]
            why = (f"reactive fallback ({cause}): {DIMENSIONS[dim_hot]} at "
                   + (f"{u_hot:.0%}" if have_u else "n/a")
                   + f", band {cfg.scale_down_threshold:.0%}-{thr:.0%}, target {mid:.0%}")
        ev["mode"] = mode
        d = {"mode": mode, "up": int(up_need), "keep": int(keep_need), "why": why, "evidence": ev, "batch": batch}
        self.last[svc.name] = d
        return d

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
    def _act(self, now: float, obs: Observation, svc: ServiceState, f: fl.ServiceFleet, d: dict[str, Any],
             prices: Mapping[tuple[str, str], float], scope: set[str]) -> list[Action]:
        cfg = self.cfg
        name = svc.name
        extra = len(f.drained)  # out of rotation: kept, not counted as serving
        lo, hi = max(svc.min_servers, 1), svc.max_servers  # zero only by the idle rule (_zero_step)
        want_up = min(max(d["up"] + extra, lo), hi)
        want_keep = min(max(d["keep"] + extra, lo), hi)
        have = len(f.active) + len(f.building) + len(f.down)
        pricing = "spot" if d["batch"] and cfg.batch_spot and (svc.flavor, "spot") in prices else "on_demand"
        price = prices.get((svc.flavor, pricing), prices.get((svc.flavor, "on_demand"), _NAN))
        ev = dict(d["evidence"])
        ev.update({"active": len(f.active), "building": len(f.building), "recovering": len(f.down),
                   "min_servers": lo, "max_servers": hi, "price_per_server_hour": _num(price),
                   "pricing": pricing})
        out: list[Action] = []
        # stabilisation: scale down only to the highest recommendation of the window
        recs = self._recs.setdefault(name, deque())
        recs.append((now, want_keep))
        while recs and recs[0][0] < now - cfg.scale_down_window_s:
            recs.popleft()
        full = now - self._first_rec.setdefault(name, now) >= cfg.scale_down_window_s - cfg.cadence
        stable = max(v for _, v in recs)
        if want_up > have:
            win = self._up.setdefault(name, _Window())
            allowed = win.allowance(now, cfg.scale_up_window_s, have, cfg.max_scale_up_percent,
                                    cfg.min_scale_up_step, +1)
            count = min(want_up - have, max(allowed, 0))
            ev["desired"] = want_up
            ev["expected_cost_per_hour"] = _num(round((have + count) * price, 4))
            if count < want_up - have:
                ev["limited_by"] = f"MaxScaleUpPercent {cfg.max_scale_up_percent:g} per {cfg.scale_up_window_s:g} s"
            if count > 0:
                win.add(now, count)
                for s in f.warm[:count]:  # a warm server resumes faster than a new one boots
                    self._resuming[s.id] = now
                    self._warm.get(name, set()).discard(s.id)
                    out.append(SetMetadata(server_id=s.id, metadata=CLEAR_MARKS, reason="warm pool server back in "
                                           "service", evidence=ev))
                    out.append(StartServer(server_id=s.id, reason=f"{d['why']}: {have} -> {have + count} servers "
                                           f"(resuming warm server)", evidence=ev))
                new = count - min(count, len(f.warm))
                if new > 0:
                    self._ids += 1
                    out.append(CreateServer(service=name, count=new, pricing=pricing,
                                            request_id=f"{fl.OWN_PREFIX}{name}-{self._ids}",
                                            reason=f"{d['why']}: {have} -> {have + count} servers, "
                                                   f"+{new} x {svc.flavor} at {price:.3f}/h each, fleet "
                                                   f"{(have + count) * price:.2f}/h",
                                            evidence=ev))
            return out
        if stable >= len(f.active) or not full or f.building or f.down:
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
        cands = [s for s in f.serving if not fl.someone_elses(s)]
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
            if need > len(out):
                self._ids += 1
                out.append(CreateServer(service=name, count=need - len(out),
                                        request_id=f"{fl.OWN_PREFIX}{name}-{self._ids}",
                                        reason=f"scale from zero: {r:.2f} requests/s, no warm server left: "
                                               f"booting (about {self.boot_s:.0f} s)", evidence=ev))
            self._zero.pop(name, None)
            return out
        if at_zero:
            return marks if name in self._zero or f.warm else None
        idle_for = now - self._last_busy.get(name, now)
        if (svc.min_servers == 0 and r == 0.0 and idle_for >= cfg.scale_to_zero_idle_minutes * 60.0
                and not f.building and not fl.under_incident(f, scope)):
            mine = sorted((s for s in f.active if not fl.someone_elses(s) and s not in f.drained),
                          key=lambda s: s.created_at)
            if not mine:
                return None
            need_warm = max(0, cfg.warm_pool_size - len(f.warm))
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
                    out.append(verb(server_id=s.id, reason=f"scale to zero: no requests for {idle_for / 60:.0f} min "
                                    f"(>= ScaleToZeroIdleMinutes {cfg.scale_to_zero_idle_minutes:g}); kept as a "
                                    f"warm pool ({cfg.warm_pool_mode}) to serve again within "
                                    f"{cfg.scale_from_zero_max_seconds:g} s of the first request", evidence=ev))
                else:
                    out.append(DeleteServer(server_id=s.id, reason=f"scale to zero: no requests for "
                                            f"{idle_for / 60:.0f} min; saves {price:.3f}/h", evidence=ev))
            return out
        return None

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
        if isinstance(a, DeleteServer) and rec.outcome == "denied":
            self._deleting.pop(a.server_id, None)  # refused now (a limit): may be asked again later


def _is_batch(svc: ServiceState) -> bool:
    s = svc.settings
    return float(s.get("batch", 0.0) or 0.0) >= 1.0 or "deadline" in s


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
