"""``provisioner``: idle deprovisioning, rightsizing, retry elsewhere, spot fallback, reservations, capacity planning.

Decided only from what the seam shows (servers, flavors, prices, reservations, hypervisors, per-server
windows and per-service history); every action carries its evidence and, for the cost levers, the lever and
its saving per hour (``evidence["lever"]``, ``evidence["saving_per_hour"]``), from which
:func:`engines.provisioning.attribution.savings_by_lever` attributes the savings.  See docs/provisioning.md.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from adapters.base import (
    Action,
    CreateServer,
    DeleteServer,
    Flavor,
    Hypervisor,
    Notify,
    NoValidHost,
    Observation,
    PurchaseReservation,
    QuotaExceeded,
    ResizeServer,
    Server,
    ServiceState,
    SetMetadata,
    ShelveServer,
    StartServer,
    StopServer,
)
from control.runtime import ActionRecord
from engines.maintenance import MAINTENANCE_KEY, UNTIL_KEY
from engines.provisioning.config import ProvisionerConfig
from engines.provisioning.plan import DAY, RunOut, cheapest_fit, percentile, reservation_plan, run_out

SERVING = ("ACTIVE", "BUILD")
PAUSED = ("SHUTOFF", "SHELVED_OFFLOADED")


class Provisioner:
    """Self-provisioning and cost optimisation over every managed service (one instance per run)."""

    name = "provisioner"

    def __init__(self, config: ProvisionerConfig | None = None) -> None:
        self.cfg = cfg = config or ProvisionerConfig()
        self.cadence = cfg.cadence
        self._ids = itertools.count(1)
        self.queue: list[Action] = []  # retries and notes decided in on_result, emitted at the next step
        # idle
        self.idle_since: dict[str, float] = {}
        self.removed: dict[str, str] = {}  # server -> service: paused or deleted by us (not counted as serving)
        self.woken_at: dict[str, float] = {}
        self.idled: set[str] = set()  # services the idle lever took servers from
        self.emptied: set[str] = set()  # services it took the last server of (woken when traffic returns)
        # rightsizing: service -> plan; service -> (server, started, flavor)
        self.plans: dict[str, dict[str, Any]] = {}
        self.resizing: dict[str, tuple[str, float, str]] = {}
        self.no_plan_until: dict[str, float] = {}
        # retries: root request -> attempts and what was tried
        self.attempts: dict[str, int] = {}
        self.tried: dict[str, set[tuple[str | None, str | None]]] = {}
        self.gave_up: dict[str, str] = {}
        self._hyps: Sequence[Hypervisor] = ()
        self._flavors: dict[str, Flavor] = {}
        self._prices: dict[tuple[str, str], float] = {}
        # spot
        self.spot_seen: dict[str, set[str]] = {}  # service -> spot servers seen at the last step
        self.spot_marked: set[str] = set()  # services seen all-spot once
        self.preempted: dict[str, deque[float]] = {}
        self.fallbacks: dict[str, list[str]] = {}
        self._fallback_reqs: dict[str, str] = {}  # request id -> service
        self.deleted_by_us: set[str] = set()
        self.fallback_at: dict[str, float] = {}  # service -> when its last on-demand fallback was created
        self.inflight: dict[str, set[str]] = {}  # service -> root requests of creates still being retried
        self.backoff: dict[str, float] = {}  # service -> no new create before this (its last one gave up)
        self.queue_time = 0.0
        self.hold: dict[str, float] = {}  # server -> no idle action before this (the gate denied the last one)
        self._svc_flavor: dict[str, str] = {}
        # reservations
        self.bought: dict[str, float] = {}  # service -> when it last bought (or tried)
        self.converted_at: dict[str, float] = {}  # service -> its last swap for a reserved-priced server
        self.changed_at: dict[str, float] = {}  # service -> when its last resize completed
        # capacity
        self.samples: dict[str, deque[tuple[float, float, float]]] = {}
        self.forecasts: dict[str, RunOut] = {}
        self.flagged: dict[str, int] = {}  # zone -> the run-out day last noted
        self.flag_at: dict[str, float] = {}
        self._last_sample = -math.inf
        self._last_slow = -math.inf

    # ---------------------------------------------------------------- helpers
    def _managed(self, obs: Observation) -> dict[str, ServiceState]:
        svcs = obs.services
        only = self.cfg.services
        return {n: s for n, s in svcs.items() if only is None or n in only}

    def _price(self, flavor: str, pricing: str = "on_demand") -> float:
        return self._prices.get((flavor, pricing), self._prices.get((flavor, "on_demand"), math.nan))

    def _rid(self, what: str) -> str:
        return f"prov-{what}-{next(self._ids)}"

    def _serving(self, obs: Observation, service: str) -> list[Server]:
        return [s for s in obs.servers(service=service) if s.status in SERVING and s.id not in self.removed]

    # ------------------------------------------------------------------- step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        cfg = self.cfg
        actions: list[Action] = list(self.queue)
        self.queue.clear()
        self._flavors = dict(obs.flavors)
        self._prices = {(p.flavor, p.pricing): p.per_hour for p in obs.prices}
        self._hyps = obs.hypervisors
        svcs = self._managed(obs)
        self._svc_flavor = {n: s.flavor for n, s in obs.services.items()}
        by_service: dict[str, list[Server]] = {}
        for s in obs.servers():
            if s.service in svcs:
                by_service.setdefault(s.service, []).append(s)
        alive = {s.id for ss in by_service.values() for s in ss}
        self.removed = {k: v for k, v in self.removed.items() if k in alive}
        self._spot(now, obs, svcs, by_service, actions)
        if cfg.wake:
            self._wake(now, obs, svcs, by_service, actions)
        if cfg.idle:
            self._idle(now, obs, svcs, actions)
        if cfg.reserve and cfg.reserve_convert:
            self._convert(now, obs, svcs, by_service, actions)
        if cfg.capacity and now - self._last_sample >= cfg.capacity_sample_s:
            self._last_sample = now
            self._sample_capacity(now, obs)
        if now - self._last_slow >= cfg.every_s:
            self._last_slow = now
            if cfg.rightsize:
                self._rightsize(now, obs, svcs, by_service, actions)
            if cfg.reserve:
                self._reserve(now, obs, svcs, by_service, actions)
            if cfg.capacity:
                self._capacity(now, actions)
        return actions

    # ------------------------------------------------------------------- idle
    def _idle(self, now: float, obs: Observation, svcs: dict[str, ServiceState], actions: list[Action]) -> None:
        cfg = self.cfg
        util = obs.latest("cpu_util")
        for name, svc in svcs.items():
            active = [s for s in obs.servers(service=name, status="ACTIVE") if s.id not in self.removed]
            u = util.get(name, math.nan)
            if u == u and u > 0.5:  # a busy service: no server of it is idle (the LB shares load equally)
                for s in active:
                    self.idle_since.pop(s.id, None)
                continue
            due: list[tuple[float, Server, float]] = []
            for s in active:
                w = obs.window("server_cpu_util", cfg.cadence + 10.0, server=s.id)
                v = w.v[np.isfinite(w.v)]
                if not len(v) or float(v.max()) > cfg.idle_cpu:
                    self.idle_since.pop(s.id, None)
                    continue
                since = self.idle_since.get(s.id)
                if since is None:  # first seen idle: when did it become idle? (the raw window reaches back)
                    lw = obs.window("server_cpu_util", cfg.idle_s + 60.0, server=s.id)
                    busy = lw.t[lw.v > cfg.idle_cpu]
                    since = float(busy[-1]) if len(busy) else max(float(lw.t[0]), s.created_at)
                    self.idle_since[s.id] = since
                if now - since >= cfg.idle_s:
                    due.append((since, s, float(v.max())))
            if not due:
                continue
            left = len(self._serving(obs, name))
            floor = max(svc.min_servers, 1 if cfg.idle_keep_last else 0)
            for since, s, peak in sorted(due, key=lambda x: (x[0], x[1].id)):
                if left - 1 < floor:
                    break
                if now < self.hold.get(s.id, -math.inf):
                    continue
                left -= 1
                self.removed[s.id] = name
                self.idled.add(name)
                if left == 0:
                    self.emptied.add(name)
                self.idle_since.pop(s.id, None)
                saving = self._price(s.flavor, s.pricing)
                ev = {"lever": "idle", "saving_per_hour": saving, "idle_since": since, "idle_for_s": now - since,
                      "server_cpu_util_max": peak, "threshold": cfg.idle_cpu, "min_servers": svc.min_servers,
                      "serving_after": left, "stateful": svc.stateful}
                why = f"idle {now - since:.0f} s (cpu <= {cfg.idle_cpu:g}) > {cfg.idle_s:.0f} s"
                if svc.stateful:
                    cls = ShelveServer if cfg.idle_pause == "shelve" else StopServer
                    actions.append(SetMetadata(server_id=s.id, metadata={MAINTENANCE_KEY: "idle"},
                                               reason=f"{s.id} paused while idle (planned, not a fault)"))
                    actions.append(cls(server_id=s.id, reason=f"{why}: {cfg.idle_pause} (stateful: its disk kept)",
                                       evidence=ev))
                else:
                    self.deleted_by_us.add(s.id)
                    actions.append(DeleteServer(server_id=s.id, reason=f"{why}: delete (stateless)", evidence=ev))

    def _wake(self, now: float, obs: Observation, svcs: dict[str, ServiceState], by_service: dict[str, list[Server]],
              actions: list[Action]) -> None:
        """A service we emptied (or a spot service) that has traffic again and no serving server gets one back."""
        rate = obs.latest("request_rate")
        ours = self.emptied | {s for s in svcs if self._is_spot(s, by_service)}
        for name in ours:
            svc = svcs.get(name)
            if svc is None or not rate.get(name, 0.0) > 0 or now - self.woken_at.get(name, -math.inf) < 120:
                continue
            if self._serving(obs, name):
                continue
            want = max(1, svc.min_servers)
            paused = [s for s in by_service.get(name, ()) if s.status in PAUSED]
            self.woken_at[name] = now
            ev = {"request_rate": rate.get(name), "serving": 0, "min_servers": svc.min_servers}
            for s in paused[:want]:
                self.removed.pop(s.id, None)
                if s.metadata.get(MAINTENANCE_KEY) == "idle":
                    actions.append(SetMetadata(server_id=s.id, metadata={MAINTENANCE_KEY: ""},
                                               reason=f"{s.id} back in service"))
                actions.append(StartServer(server_id=s.id, reason=f"{name} has traffic and no serving server: "
                                           "start a paused one", evidence=ev))
            if want > len(paused) and self._may_create(name, now):
                rid = self._rid("wake")
                self.inflight.setdefault(name, set()).add(rid)
                actions.append(CreateServer(service=name, count=want - len(paused), request_id=rid,
                                            reason=f"{name} has traffic and no serving server", evidence=ev))

    # ------------------------------------------------------------------- spot
    def _is_spot(self, name: str, by_service: dict[str, list[Server]]) -> bool:
        if name in self.cfg.spot_services or name in self.spot_marked:
            return True
        ss = [s for s in by_service.get(name, ()) if s.status != "DELETED"]
        if ss and all(s.pricing == "spot" for s in ss):
            self.spot_marked.add(name)  # stays a spot service when fallbacks or an autoscaler add on-demand ones
            return True
        return False

    def _spot(self, now: float, obs: Observation, svcs: dict[str, ServiceState], by_service: dict[str, list[Server]],
              actions: list[Action]) -> None:
        util = obs.latest("cpu_util")
        for name, svc in svcs.items():
            servers = by_service.get(name, [])
            spot_now = {s.id for s in servers if s.pricing == "spot"}
            if not self._is_spot(name, by_service) and not self.spot_seen.get(name):
                continue
            gone = self.spot_seen.get(name, set()) - spot_now - self.deleted_by_us
            self.spot_seen[name] = spot_now
            q = self.preempted.setdefault(name, deque())
            q.extend([now] * len(gone))
            while q and q[0] < now - 1800:
                q.popleft()
            serving = [s for s in servers if s.status in SERVING and s.id not in self.removed]
            short = svc.min_servers - len(serving)
            zones = self._zones_by_room(svc.flavor)
            if short > 0 and self._may_create(name, now):  # below the minimum: on demand now, spread over zones
                for k in range(short):
                    rid = self._rid("fallback")
                    self._fallback_reqs[rid] = name
                    self.inflight.setdefault(name, set()).add(rid)
                    actions.append(CreateServer(
                        service=name, zone=zones[k % len(zones)] if zones else None, pricing="on_demand",
                        request_id=rid, reason=f"{name}: {len(serving)} serving < min {svc.min_servers} after "
                        f"{len(gone)} spot server(s) vanished: on-demand fallback",
                        evidence={"lever": "spot-fallback", "serving": len(serving), "min_servers": svc.min_servers,
                                  "preempted_recently": len(q)}))
                serving_n = svc.min_servers
            else:
                serving_n = len(serving)
            # spot capacity back, diversified, while the service is short of capacity after recent preemptions
            u = util.get(name, math.nan)
            active = sum(1 for s in serving if s.status == "ACTIVE")
            if q and u == u and active and u > 0.7:
                need = min(math.ceil(active * u / 0.6) - serving_n, len(q))
                pairs = self._spot_pairs(name, svc, servers)
                for k in range(max(need, 0)):
                    z, f = pairs[k % len(pairs)]
                    actions.append(CreateServer(
                        service=name, zone=z, flavor=f, pricing="spot", request_id=self._rid("spot"),
                        reason=f"{name}: cpu {u:.2f} after {len(q)} preemption(s) in 30 min: spot capacity back, "
                        f"spread over zones and flavors", evidence={"lever": "spot", "cpu_util": u, "zone": z,
                                                                    "flavor": f, "preempted_recently": len(q)}))
                q.clear()  # one replacement per wave; later preemptions count anew
            # fallbacks removed once spot holds again
            fb = [sid for sid in self.fallbacks.get(name, []) if sid in {s.id for s in servers}]
            self.fallbacks[name] = fb
            if fb and now - self.fallback_at.get(name, -math.inf) >= self.cfg.spot_fallback_hold_s \
                    and u == u and u < 0.5 and len(serving) - 1 >= svc.min_servers:
                sid = fb.pop(0)
                self.deleted_by_us.add(sid)
                self.removed[sid] = name
                actions.append(DeleteServer(server_id=sid, reason=f"{name}: on-demand fallback no longer needed "
                                            f"(cpu {u:.2f}, {len(serving) - 1} serving >= min {svc.min_servers})",
                                            evidence={"lever": "spot-fallback", "cpu_util": u}))

    def _spot_pairs(self, name: str, svc: ServiceState, servers: list[Server]) -> list[tuple[str | None, str]]:
        """(zone, flavor) pairs for spot servers, least-used first: spread over zones and flavors."""
        base = self._flavors.get(svc.flavor)
        if self.cfg.spot_flavors:
            flavors = [f for f in self.cfg.spot_flavors if f in self._flavors]
        else:
            flavors = [f.name for f in self._flavors.values() if base is not None and f.vcpus == base.vcpus
                       and f.gpus == base.gpus]
        flavors = flavors or [svc.flavor]
        zones: list[str | None] = list(self._zones_by_room(svc.flavor)) or [None]
        used: dict[tuple[str | None, str], int] = {}
        for s in servers:
            if s.pricing == "spot":
                used[(s.zone, s.flavor)] = used.get((s.zone, s.flavor), 0) + 1
        pairs = [(z, f) for z in zones for f in flavors]
        return sorted(pairs, key=lambda p: (used.get(p, 0), zones.index(p[0]), flavors.index(p[1])))

    def _zones_by_room(self, flavor: str) -> list[str]:
        """Zones with an up hypervisor that fits ``flavor``, most free vCPUs first."""
        f = self._flavors.get(flavor)
        room: dict[str, float] = {}
        for h in self._hyps:
            if h.state != "up":
                continue
            fits = f is None or (h.vcpus - h.vcpus_used >= f.vcpus and h.memory_mb - h.memory_mb_used >= f.ram_mb)
            room.setdefault(h.zone, 0.0)
            if fits:
                room[h.zone] += h.vcpus - h.vcpus_used
        return [z for z, r in sorted(room.items(), key=lambda x: (-x[1], x[0])) if r > 0]

    # ---------------------------------------------------------------- retries
    def _may_create(self, service: str, now: float) -> bool:
        """No second create while one is being retried, and none for a while after one gave up."""
        return not self.inflight.get(service) and now >= self.backoff.get(service, -math.inf)

    def on_result(self, rec: ActionRecord) -> None:
        a = rec.action
        if isinstance(a, CreateServer) and rec.outcome != "executed" and rec.error is None:
            self._done(a)  # denied or proposed: not ours to retry
        if isinstance(a, CreateServer) and rec.outcome == "executed" and rec.result is not None:
            rid = a.request_id or ""
            self._done(a)
            if rid in self._fallback_reqs:
                svc = self._fallback_reqs.pop(rid)
                self.fallbacks.setdefault(svc, []).extend(rec.result.server_ids)
                self.fallback_at[svc] = rec.at
        if isinstance(a, DeleteServer | ShelveServer | StopServer) and rec.outcome != "executed":
            self.deleted_by_us.discard(a.server_id)
            self.removed.pop(a.server_id, None)
            if rec.outcome == "denied":  # the gate said no: not again for an idle period (never spam it)
                self.hold[a.server_id] = rec.at + self.cfg.idle_s
        if isinstance(a, ResizeServer) and rec.outcome != "executed":
            svc = next((k for k, v in self.resizing.items() if v[0] == a.server_id), None)
            if svc:
                del self.resizing[svc]
                self.plans.pop(svc, None)
                self.no_plan_until[svc] = rec.at + 6 * 3600.0
        if isinstance(a, PurchaseReservation) and rec.outcome in ("failed", "denied"):
            pass  # self.bought keeps the time: no new try before reserve_history_s / 7 (see _reserve)
        if isinstance(a, CreateServer) and rec.error in (NoValidHost.__name__, QuotaExceeded.__name__):
            self.queue_time = rec.at
            self._retry(a, rec)
        elif isinstance(a, CreateServer) and rec.error is not None:
            self._done(a)

    def _done(self, a: CreateServer) -> None:
        root = (a.request_id or "").split("~")[0]
        self.inflight.get(a.service, set()).discard(root)

    def _retry(self, a: CreateServer, rec: ActionRecord) -> None:
        """Another zone, then another flavor, at most ``retry_max`` times per original request; then stop."""
        rid = a.request_id or f"anon-{rec.seq}"
        root = rid.split("~")[0]
        n = self.attempts.get(root, 0)
        tried = self.tried.setdefault(root, set())
        tried.add((a.zone, a.flavor or self._svc_flavor.get(a.service)))
        detail = rec.result.detail if rec.result else ""
        if n >= self.cfg.retry_max:
            self._give_up(a, root, f"{rec.error} after {n + 1} attempt(s) ({detail}); tried "
                                   f"{sorted((z or '*', f or '*') for z, f in tried)}")
            return
        alt = self._alternative(a, rec.error or "", tried)
        if alt is None:
            self._give_up(a, root, f"{rec.error} ({detail}); no other zone or flavor can take it")
            return
        zone, flavor = alt
        self.attempts[root] = n + 1
        tried.add((zone, flavor))
        self.queue.append(CreateServer(
            service=a.service, count=a.count, flavor=flavor, zone=zone, pricing=a.pricing,
            request_id=f"{root}~{n + 1}", reason=f"retry {n + 1}/{self.cfg.retry_max} of {root} after {rec.error}: "
            f"zone {zone or 'any'}, flavor {flavor or 'the service default'}",
            evidence={**dict(a.evidence), "retry_of": rid, "failed_with": rec.error, "attempt": n + 1}))
        if rid in self._fallback_reqs:
            self._fallback_reqs[f"{root}~{n + 1}"] = self._fallback_reqs.pop(rid)

    def _alternative(self, a: CreateServer, error: str, tried: set[tuple[str | None, str | None]]
                     ) -> tuple[str | None, str | None] | None:
        flavor = a.flavor or self._svc_flavor.get(a.service)
        cur = self._flavors.get(flavor or "")
        if error == NoValidHost.__name__:
            for z in self._zones_by_room(flavor or ""):
                if (z, flavor) not in tried and z != a.zone:
                    return z, flavor
        # another flavor: the nearest in vCPUs, the larger first, then the cheaper
        base = cur.vcpus if cur else 0
        options = sorted((f for f in self._flavors.values() if f.name != flavor and (cur is None or f.gpus == cur.gpus)),
                         key=lambda f: (abs(f.vcpus - base), -f.vcpus, self._price(f.name), f.name))
        for f in options:
            zones = self._zones_by_room(f.name) if error == NoValidHost.__name__ else [None]
            for z in zones or ():
                if (z, f.name) not in tried:
                    return z, f.name
        return None

    def _give_up(self, a: CreateServer, root: str, why: str) -> None:
        self._done(a)
        self.backoff[a.service] = self.queue_time + 1800.0
        if root in self.gave_up:
            return
        self.gave_up[root] = why
        self.queue.append(Notify(component=a.service, severity="warning",
                                 message=f"provisioning {a.count} server(s) for {a.service} stopped: {why}; "
                                         "a quota or capacity request is needed",
                                 reason="retries exhausted: never loop", evidence={"request": root, "why": why}))

    # ------------------------------------------------------------ rightsizing
    def _rightsize(self, now: float, obs: Observation, svcs: dict[str, ServiceState],
                   by_service: dict[str, list[Server]], actions: list[Action]) -> None:
        cfg = self.cfg
        for name, svc in svcs.items():
            if self._is_spot(name, by_service):
                continue
            servers = [s for s in by_service.get(name, []) if s.status == "ACTIVE" and s.id not in self.removed
                       and s.pricing != "reserved"]  # a reserved server resized would leave its commitment unused
            if not servers:
                continue
            job = self.resizing.get(name)
            if job is not None and not self._resize_done(now, obs, name, job):
                continue
            plan = self.plans.get(name)
            if plan is None:
                if now < self.no_plan_until.get(name, -math.inf):
                    continue
                plan = self._plan(now, obs, name, servers)
                if plan is None:
                    continue
            todo = sorted((s for s in servers if s.flavor == plan["from"]), key=lambda s: (s.created_at, s.id))
            if now - plan["planned_at"] > cfg.rightsize_history_s:
                self.plans.pop(name, None)  # stale: plan again on fresh history
                continue
            if not todo:  # kept: servers the autoscaler adds on the old flavor are resized too
                continue
            if not self._may_disrupt(obs.latest("cpu_util").get(name, math.nan), len(self._serving(obs, name)), svc):
                continue  # a resize takes the server out for a while: only when the others carry its share
            s = todo[0]
            saving = self._price(plan["from"], s.pricing) - self._price(plan["to"], s.pricing)
            self.resizing[name] = (s.id, now, plan["to"])
            how = "with the same vCPUs (autoscaled)" if plan["autoscaled"] else \
                f"at <= {cfg.rightsize_target_cpu:g} cpu"
            # planned work, said before it starts: the server is down while it resizes, which is not a crash
            actions.append(SetMetadata(server_id=s.id, metadata={MAINTENANCE_KEY: "rightsize",
                                                                  UNTIL_KEY: repr(now + cfg.planned_mark_s)},
                                       reason=f"rightsizing {s.id}: down while it resizes (planned)"))
            actions.append(ResizeServer(
                server_id=s.id, flavor=plan["to"],
                reason=f"p95 cpu {plan['p95_cpu']:.2f}, memory {plan['p95_mem']:.2f} of {plan['from']} over "
                f"{plan['hours']:.1f} h: {plan['to']} holds it {how}; saves {saving:.4f}/h",
                evidence={"lever": "rightsize", "saving_per_hour": saving, **plan, "remaining": len(todo) - 1}))

    def _plan(self, now: float, obs: Observation, name: str, servers: list[Server],
              dry: bool = False) -> dict[str, Any] | None:
        cfg = self.cfg
        flavors = {s.flavor for s in servers}
        if len(flavors) != 1:
            return None  # a mixed fleet: the service's percentiles are not one flavor's
        cur = flavors.pop()
        span = min(cfg.rightsize_history_s, now - self.changed_at.get(name, -math.inf))  # since its last resize
        hist = {m: obs.history(m, span, 300.0, service=name) for m in ("cpu_util", "memory_util", "disk_util")}
        t = hist["cpu_util"].t
        if len(t) * 300.0 < cfg.rightsize_min_history_s:
            return None
        p95 = {m: percentile(w.v, 95) for m, w in hist.items()}
        count = obs.history("active_servers", span, 300.0, service=name).v
        count = count[np.isfinite(count)]
        autoscaled = bool(len(count)) and float(count.max() - count.min()) >= 0.5
        pricing = servers[0].pricing
        prices = {f: p for (f, pr), p in self._prices.items() if pr == pricing}
        choice = cheapest_fit(self._flavors, prices, cur, p95["cpu_util"], p95["memory_util"],
                              cfg.rightsize_target_cpu, cfg.rightsize_target_mem, p95["disk_util"],
                              same_vcpus=autoscaled)
        if not dry:
            self.no_plan_until[name] = now + 3600.0
        old = prices.get(cur, math.inf)
        if choice is None or choice.flavor == cur or not choice.price_per_hour <= old * (1 - cfg.rightsize_min_saving):
            return None  # nothing cheaper, or too little to be worth a resize per server
        plan = {"from": cur, "to": choice.flavor, "p95_cpu": p95["cpu_util"], "p95_mem": p95["memory_util"],
                "p95_disk": p95["disk_util"], "need_vcpus": choice.need_vcpus, "need_ram_mb": choice.need_ram_mb,
                "hours": len(t) * 300.0 / 3600.0, "planned_at": now, "autoscaled": autoscaled}
        if not dry:
            self.plans[name] = plan
        return plan

    def _resize_done(self, now: float, obs: Observation, name: str, job: tuple[str, float, str]) -> bool:
        """True when the last resize of ``name`` is through and has settled (the next one may start)."""
        sid, at, flavor = job
        s = obs.server(sid)
        if s is None:
            del self.resizing[name]
            return True
        if s.flavor != flavor or s.status != "ACTIVE":
            if now - at > 1800:  # stuck: stop this service's plan
                del self.resizing[name]
                self.plans.pop(name, None)
                self.no_plan_until[name] = now + 6 * 3600.0
            return False
        if now - at < self.cfg.rightsize_settle_s:
            return False
        del self.resizing[name]
        self.changed_at[name] = now
        w = obs.window("server_cpu_util", 300.0, server=sid)
        if len(w.v) and float(np.nanmean(w.v)) > self.cfg.rightsize_max_util:
            self.plans.pop(name, None)  # the smaller flavor runs too hot: no more of this service
            self.no_plan_until[name] = now + DAY
            self.queue.append(Notify(component=name, severity="warning",
                                     message=f"rightsizing {name} stopped: {sid} on {flavor} runs at "
                                             f"{float(np.nanmean(w.v)):.2f} cpu", reason="resize plan aborted"))
            return False
        return True

    # ----------------------------------------------------------- reservations
    def _reserve(self, now: float, obs: Observation, svcs: dict[str, ServiceState],
                 by_service: dict[str, list[Server]], actions: list[Action]) -> None:
        cfg = self.cfg
        running = [r for r in obs.reservations if r.start <= now < r.end]
        for name, svc in svcs.items():
            if svc.stateful or self._is_spot(name, by_service) or name in self.plans or name in self.resizing \
                    or now - self.changed_at.get(name, -math.inf) < cfg.reserve_min_history_s:
                continue  # stateful servers cannot be re-priced without deleting data; spot and rightsizing first
            if now - self.bought.get(name, -math.inf) < max(cfg.reserve_history_s / 7.0, 3600.0):
                continue
            flavor = svc.flavor
            servers = [s for s in by_service.get(name, []) if s.status != "DELETED"]
            if any(s.flavor != flavor for s in servers):
                continue
            od, res = self._price(flavor, "on_demand"), self._prices.get((flavor, "reserved"))
            if res is None or not od > 0:
                continue
            h = obs.history("active_servers", cfg.reserve_history_s, 300.0, service=name)
            if len(h.t) * 300.0 < cfg.reserve_min_history_s:
                continue
            cpu = obs.history("cpu_util", cfg.reserve_history_s, 300.0, service=name)
            if not percentile(cpu.v, 50) > cfg.idle_cpu:
                continue  # an idle service is deprovisioned, not committed to
            if cfg.rightsize and self._plan(now, obs, name, servers, dry=True) is not None:
                continue  # rightsizing first: a commitment fixes the flavor for its term
            held = sum(r.count for r in running if r.flavor == flavor)
            others = sum(1 for n, ss in by_service.items() if n != name for s in ss
                         if s.flavor == flavor and s.pricing == "reserved" and s.status != "DELETED")
            already = max(held - others, 0)
            plan = reservation_plan(h.v, od, res, cfg.reserve_term_s, cfg.reserve_margin, already)
            self.bought[name] = now
            if plan.count <= 0 or plan.saving_per_hour <= 0:
                continue
            slots = [round(u, 3) for u in plan.slot_utilisation]
            actions.append(PurchaseReservation(
                project=svc.project, flavor=flavor, count=plan.count, term_s=cfg.reserve_term_s,
                reason=f"{name}: steady baseline of {already + plan.count} {flavor} server(s) over "
                f"{len(h.t) * 300 / 3600:.0f} h; break-even {plan.breakeven:.0%} of the term "
                f"({plan.breakeven_hours:.0f} h of {cfg.reserve_term_s / 3600:.0f} h); saves "
                f"{plan.saving_per_hour:.4f}/h",
                evidence={"lever": "reserved", "saving_per_hour": plan.saving_per_hour, "service": name,
                          "breakeven_utilisation": plan.breakeven, "breakeven_hours": plan.breakeven_hours,
                          "term_hours": cfg.reserve_term_s / 3600, "slot_utilisation": slots,
                          "on_demand_per_hour": od, "reserved_per_hour": res, "already_covered": already,
                          "history_hours": len(h.t) * 300 / 3600}))

    def _convert(self, now: float, obs: Observation, svcs: dict[str, ServiceState],
                 by_service: dict[str, list[Server]], actions: list[Action]) -> None:
        """Put the commitments to use: a stateless service's on-demand server swapped for a reserved-priced one
        (the old one deleted as the new one is created, so no autoscaler sees a spare server to remove), one
        at a time and only while the others can carry its share (``disrupt_max_util``)."""
        if not self.bought:
            return
        running = [r for r in obs.reservations if r.start <= now < r.end]
        util = obs.latest("cpu_util")
        for name in list(self.bought):
            svc = svcs.get(name)
            if svc is None or svc.stateful or now - self.converted_at.get(name, -math.inf) < 120:
                continue
            servers = by_service.get(name, [])
            if any(s.status == "BUILD" for s in servers):
                continue
            flavor = svc.flavor
            held = sum(r.count for r in running if r.flavor == flavor)
            reserved = sum(1 for ss in by_service.values() for s in ss
                           if s.flavor == flavor and s.pricing == "reserved" and s.status != "DELETED")
            if reserved >= held:
                continue
            od = sorted((s for s in servers if s.status == "ACTIVE" and s.pricing == "on_demand"
                         and s.flavor == flavor and s.id not in self.removed), key=lambda s: (s.created_at, s.id))
            serving = self._serving(obs, name)
            if not od or not self._may_disrupt(util.get(name, math.nan), len(serving), svc):
                continue
            old = od[0]
            self.converted_at[name] = now
            self.deleted_by_us.add(old.id)
            self.removed[old.id] = name
            ev = {"lever": "reserved-convert", "replaces": old.id, "committed": held, "reserved_servers": reserved,
                  "cpu_util": util.get(name)}
            actions.append(CreateServer(service=name, flavor=flavor, zone=old.zone, pricing="reserved",
                                        request_id=self._rid("reserved"), reason=f"{name}: {held - reserved} "
                                        f"committed {flavor} slot(s) unused: swap on-demand {old.id} for a "
                                        "reserved-priced server", evidence=ev))
            actions.append(DeleteServer(server_id=old.id, reason=f"{name}: swapped for a reserved-priced server "
                                        "(covered by a commitment)", evidence=ev))

    def _may_disrupt(self, u: float, serving: int, svc: ServiceState) -> bool:
        """One server of ``serving`` may stop serving for a while (a resize, a swap whose replacement boots): the
        rest carry its load below the limit.  Its count never falls (the server or its replacement stays)."""
        if u != u or serving < 2:
            return False
        return u * serving / (serving - 1) <= self.cfg.disrupt_max_util

    # --------------------------------------------------------------- capacity
    def _sample_capacity(self, now: float, obs: Observation) -> None:
        zones: dict[str, list[float]] = {}
        for h in obs.hypervisors:
            z = zones.setdefault(h.zone, [0.0, 0.0])
            z[0] += h.vcpus_used
            if h.state == "up":
                z[1] += h.vcpus
        keep = self.cfg.capacity_fit_s
        for zone, (used, cap) in zones.items():
            q = self.samples.setdefault(zone, deque())
            q.append((now, used, cap))
            while q and q[0][0] < now - keep:
                q.popleft()

    def _capacity(self, now: float, actions: list[Action]) -> None:
        cfg = self.cfg
        for zone, q in self.samples.items():
            if len(q) < 2 or q[-1][0] - q[0][0] < cfg.capacity_min_history_s:
                continue
            arr = np.array(q)
            ro = run_out(arr[:, 0], arr[:, 1], float(arr[-1, 2]), now, cfg.capacity_horizon_s)
            if ro is None:
                continue
            self.forecasts[zone] = ro
            if ro.full_at is None:
                self.flagged.pop(zone, None)
                continue
            day = int(ro.full_at // DAY) + 1  # day 1 = the first 24 h of the clock (as zeroops capacity prints)
            last = self.flagged.get(zone)
            # a new note when first flagged, when the day moves earlier, or (not more often than every 6 h) later
            if last is not None and (day == last or (day > last and now - self.flag_at.get(zone, -math.inf) < 6 * 3600)):
                continue
            self.flagged[zone] = day
            self.flag_at[zone] = now
            left = ro.days_left(now) or 0.0
            actions.append(Notify(
                component=zone, severity="warning" if left > 1 else "critical",
                message=f"zone {zone} runs out of vCPUs in {left:.1f} day(s) (day {day}): {ro.used:.0f} of "
                        f"{ro.capacity:.0f} used, trend {ro.slope_per_day:+.1f}/day, peaks +{ro.peak_excess:.0f}",
                reason="capacity planning: a zone runs out within the horizon",
                evidence={"lever": "capacity", "zone": zone, "full_at": ro.full_at, "day": day, "days_left": left,
                          "capacity": ro.capacity, "used": ro.used, "slope_per_day": ro.slope_per_day,
                          "peak_excess": ro.peak_excess, "forecast": ro.forecast,
                          "horizon_days": cfg.capacity_horizon_s / DAY}))
