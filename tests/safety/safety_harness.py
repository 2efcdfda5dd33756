"""A world, a gate, approvers and an audit trail wired together, plus an independent oracle of every guardrail.

The oracle recomputes costs, data sizes, scale steps and regions from the
world's own state just before each execution; it shares no code with the gate.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from safety_fakes import FakeWorld

from adapters.base import Action, ActionResult, Observation
from control.audit import AuditLog
from control.runtime import ActionRecord, ChokePoint
from control.safety import SafetyConfig, SafetyGate, SafetyStore
from control.safety.approvals import ApprovalExecutor, ApprovalQueue, SimulatedApprover
from control.safety.override import OverrideError, Overrides

GIB = 1024**3
SCOPES = ("single-server", "single-service", "single-hypervisor", "single-az", "single-region")  # narrowest first
T0 = datetime(2026, 11, 23, 10, 30, tzinfo=UTC).timestamp()  # a Monday, 10:30 UTC
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass
class Call:
    """One adapter.execute call as the world saw it, with facts taken just before it ran."""

    t: float
    action: Action
    cost: float  # change in hourly spend
    created: int = 0
    deleted_bytes: int = 0
    service: str | None = None
    was_active: bool = False  # a server ACTIVE at the start of the instant (and still, for a stop)
    region: str | None = None
    scope: str | None = None  # the blast radius of a chaos action's target when it ran (None: no such target)
    ok: bool = False


class OracleWorld(FakeWorld):
    """The fake world, noting facts about each call before applying it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls_log: list[Call] = []
        self.instant: float | None = None
        self.instant_active: dict[str, int] = {}
        self.instant_status: dict[str, str] = {}
        self.bases: dict[float, dict[str, int]] = {}

    def begin_instant(self, t: float) -> None:
        if t != self.instant:
            self.instant = t
            self.instant_active = {s.name: s.active for s in self.services()}
            self.instant_status = {s.id: s.status for s in self.servers_by_id.values()}
            self.bases.setdefault(t, self.instant_active)

    def scope(self, target: str) -> str | None:
        """The blast radius of ``target`` now: a server, a service, a zone or a region (None: unknown)."""
        w = self
        if target in w.servers_by_id:
            return "single-server"
        if target in w.service_flavor:
            return "single-service"
        if target in w.zones:
            return "single-az"
        if target in w.zones.values():
            return "single-region"
        return None

    def execute(self, action: Action) -> ActionResult:
        c = Call(self.t, action, 0.0)
        k = action.kind
        if k == "create_server":
            flavor = action.flavor or self.service_flavor[action.service]  # type: ignore[attr-defined]
            c.cost = action.count * self.price_of(flavor, action.pricing)  # type: ignore[attr-defined]
            c.service = action.service  # type: ignore[attr-defined]
        sid = getattr(action, "server_id", None)
        srv = self.servers_by_id.get(sid) if sid else None
        if srv is not None:
            c.service, c.region = srv.service, self.zones.get(srv.zone, srv.zone)
            c.was_active = self.instant_status.get(srv.id) == "ACTIVE"
            price = self.price_of(srv.flavor, srv.pricing)
            if k == "delete_server":
                c.cost = -price
                c.deleted_bytes = {f.name: f.disk_gb for f in self._flavors}[srv.flavor] * GIB
            elif k == "resize_server":
                c.cost = self.price_of(action.flavor, srv.pricing) - price  # type: ignore[attr-defined]
            elif k == "start_server" and srv.status == "SHUTOFF":
                c.cost = price
            elif k == "stop_server":
                c.cost = -price if srv.status == "ACTIVE" else 0.0
                c.was_active = c.was_active and srv.status == "ACTIVE"
        if action.always_approval:
            c.scope = self.scope(action.target())
        self.calls_log.append(c)
        res = super().execute(action)  # may raise
        c.ok = res.ok
        c.created = len(res.server_ids)
        return res


@dataclass
class Harness:
    config: SafetyConfig
    approver_delays: tuple[float, ...] = (120.0, 400.0)
    approve_probability: float = 0.85
    fail_every: int = 0
    world: OracleWorld = field(init=False)
    records: list[ActionRecord] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.world = OracleWorld(services={"web": ("small", 4), "db": ("medium", 3), "batch": ("large", 1)},
                                 fail_every=self.fail_every)
        for sid in ("srv-3", "srv-7"):  # some stopped servers to start or delete
            s = self.world.servers_by_id[sid]
            self.world.servers_by_id[sid] = type(s)(**{**{f: getattr(s, f) for f in s.__slots__}, "status": "SHUTOFF"})
        self.world.t = T0
        self.store = SafetyStore()
        self.gate = SafetyGate(self.config, self.store)
        self.audit = AuditLog(":memory:", batch_size=64, background=False)
        self.choke = ChokePoint(self.world, self.gate, self.audit)
        self.choke.listeners.append(self.records.append)
        self.queue = ApprovalQueue(self.store)
        self.choke.listeners.append(self.queue.on_record)
        self.approvers = [SimulatedApprover(self.queue, f"approver-{i}", delay=d, seed=i,
                                            approve_probability=self.approve_probability)
                          for i, d in enumerate(self.approver_delays)]
        self.executor = ApprovalExecutor(self.queue, self.choke, self.gate)
        self.overrides = Overrides(self.store)
        self.overrides.enroll("op", T0, SECRET)
        self.pause_marks: dict[int, int] = {}  # pause id -> calls made before it was created

    @property
    def now(self) -> float:
        return self.world.t

    def advance(self, dt: float) -> None:
        self.world.t += dt

    def propose(self, actions: list[Action], engine: str = "eng") -> list[ActionRecord]:
        self.world.begin_instant(self.now)
        obs = Observation(self.world, self.now)
        return [self.choke.submit(self.now, engine, a, obs) for a in actions]

    def approvals(self) -> None:
        self.world.begin_instant(self.now)
        for a in self.approvers:
            a.step(self.now)
        self.executor.step(self.now)

    def disable(self, duration: float) -> None:
        p = self.overrides.disable_automation(self.now, duration, "op", "test")
        self.pause_marks[p.id] = len(self.world.calls_log)

    def override(self, duration: float) -> None:
        code = pyotp.TOTP(SECRET).at(self.now)
        with contextlib.suppress(OverrideError):  # a code is used once per 30 s step
            p = self.overrides.emergency_override(self.now, "inc-1", "op", "investigating", code, duration)
            self.pause_marks[p.id] = len(self.world.calls_log)

    def resume(self) -> None:
        with contextlib.suppress(OverrideError):
            self.overrides.resume(self.now, "op", pyotp.TOTP(SECRET).at(self.now))

    def materialize(self, spec: tuple[Any, ...]) -> Action:
        """An action from an abstract spec, picking real (or missing) servers of the world."""
        from adapters.base import (
            CreateServer,
            DeleteServer,
            InjectFault,
            Notify,
            RebootServer,
            ResizeServer,
            StartServer,
            StopServer,
        )

        ids = sorted(self.world.servers_by_id, key=lambda s: int(s.split("-")[1]))
        kind, i, n, flavor = spec
        services = ["web", "db", "batch", "ghost"]
        sid = ids[i % len(ids)] if ids and i < 1000 else "srv-missing"
        if kind == "create":
            return CreateServer(service=services[i % 4 if i % 9 == 0 else i % 3], count=n, flavor=flavor,
                                zone=sorted(self.world.zones)[i % 3], reason="load", confidence=0.7,
                                evidence={"cpu": 0.9}, alternatives=("wait",))
        if kind == "delete":
            return DeleteServer(server_id=sid)
        if kind == "resize":
            return ResizeServer(server_id=sid, flavor=flavor or "medium")
        if kind == "start":
            return StartServer(server_id=sid)
        if kind == "reboot":
            return RebootServer(server_id=sid)
        if kind == "stop":
            return StopServer(server_id=sid)
        if kind == "chaos":  # a server, a service, a zone, or nothing the world knows
            target = [sid, services[i % 4], sorted(self.world.zones)[i % 3], "atlantis"][n % 4]
            return InjectFault(fault="server_crash", target_component=target, experiment=f"e{i}")
        return Notify(component="web", message="hello")

    # ------------------------------------------------------------------ oracle
    def check(self) -> None:
        """Assert every guardrail against the world's record of calls and the audit trail."""
        cfg = self.config
        calls = self.world.calls_log
        by_call = self._records_by_call()
        # every call has exactly one audit record; the chain verifies
        self.audit.flush()
        rep = self.audit.reader().verify()
        assert rep.ok, rep.problems
        audited = [e.body for e in self.audit.reader().list() if e.body["outcome"] in ("executed", "failed")]
        assert len(audited) == len(calls) == len(by_call)
        assert sorted((b["at"], b["kind"], b["target"]) for b in audited) == sorted(
            (c.t, c.action.kind, c.action.target()) for c in calls)
        auto = [c for c, r in zip(calls, by_call, strict=True) if r.verdict.decision == "allow"]
        for i, (c, r) in enumerate(zip(calls, by_call, strict=True)):
            v = r.verdict
            # nothing while paused (from the moment the pause was made), nothing outside business hours
            for mark, start, end in self._pause_intervals():
                assert i < mark or not (start <= c.t < end), f"executed at {c.t} during a pause [{start}, {end})"
            if cfg.business_hours_only:
                assert self._business(c.t), f"executed outside business hours at {c.t}"
            if cfg.observation_mode and c.action.changes_world:  # record-only decisions (notify) change nothing
                assert v.decision == "approval", "observation mode executed without approval"
            if v.decision == "approval":
                approved = v.detail.get("approved_by", [])
                assert len(set(approved)) >= v.approvers >= self._needed(c, cfg)
            elif cfg.require_approval_above is not None:
                assert c.cost <= cfg.require_approval_above + 1e-9, f"{c.action.kind} cost {c.cost} unapproved"
            if cfg.automated_kinds is not None and v.decision == "allow":
                assert c.action.kind in cfg.automated_kinds
            if c.action.always_approval and v.decision == "allow":  # fault injection: only a chaos policy
                assert cfg.chaos.allow, "fault injected without approval or chaos policy"
                scope = c.scope
                allowed = cfg.chaos.max_blast_radius
                assert scope is not None and SCOPES.index(scope) <= SCOPES.index(allowed), \
                    f"fault injected into {c.action.target()} ({scope}) beyond {allowed}"
        # rate limit over every call (the window ending at each call)
        if cfg.rate_limit_actions is not None:
            self._window([c.t for c in calls], [1.0] * len(calls), 60.0, cfg.rate_limit_actions, "rate")
        if cfg.max_vms_auto_provisioned is not None:
            self._window([c.t for c in auto], [c.created for c in auto], cfg.accounting_window_seconds,
                         cfg.max_vms_auto_provisioned, "auto-provisioned VMs")
        if cfg.max_data_deleted is not None:
            self._window([c.t for c in auto], [c.deleted_bytes for c in auto], cfg.accounting_window_seconds,
                         cfg.max_data_deleted, "data deleted")
        if cfg.max_automated_cost is not None:
            self._window([c.t for c in auto], [max(c.cost, 0.0) for c in auto], 3600.0,
                         cfg.max_automated_cost + 1e-6, "automated cost")
        self._check_scale(calls, cfg)
        self._check_canary(calls, cfg)


    def _records_by_call(self) -> list[ActionRecord]:
        recs = [r for r in self.records if r.outcome in ("executed", "failed")]
        return recs

    def _pause_intervals(self) -> list[tuple[int, float, float]]:
        return [(self.pause_marks[p.id], p.start, p.until if p.ended_at is None else min(p.until, p.ended_at))
                for p in self.store.pauses()]

    def _business(self, t: float) -> bool:
        cfg = self.config
        local = datetime.fromtimestamp(t, UTC) + timedelta(hours=cfg.utc_offset_hours)
        h = local.hour + local.minute / 60
        return local.weekday() in cfg.business_days and cfg.business_hours[0] <= h < cfg.business_hours[1]

    @staticmethod
    def _needed(c: Call, cfg: SafetyConfig) -> int:
        # HighRiskKinds when configured, else what the action class declares (the seam's metadata is the spec)
        kinds = cfg.high_risk_kinds
        high = c.action.kind in kinds if kinds is not None else type(c.action).risk == "high"
        return cfg.multi_approvers if cfg.require_multi_approval and high else 1

    @staticmethod
    def _window(ts: list[float], amounts: list[float], span: float, limit: float, what: str) -> None:
        for t in ts:
            total = sum(a for s, a in zip(ts, amounts, strict=True) if t - span < s <= t)
            assert total <= limit, f"{what}: {total} in the {span}s window ending {t} > {limit}"

    def _check_scale(self, calls: list[Call], cfg: SafetyConfig) -> None:
        up: dict[tuple[float, str], int] = {}
        down: dict[tuple[float, str], int] = {}
        for c in calls:
            if c.service is None:
                continue
            if c.action.kind == "create_server":
                up[(c.t, c.service)] = up.get((c.t, c.service), 0) + c.created
            if c.action.kind in ("delete_server", "stop_server") and c.was_active:
                down[(c.t, c.service)] = down.get((c.t, c.service), 0) + 1
        base = self._instant_bases()
        if cfg.max_scale_up_percent is not None:
            for (t, svc), n in up.items():
                b = base[t].get(svc, 0)
                allowed = max(cfg.min_scale_step, math.floor(b * cfg.max_scale_up_percent / 100 + 1e-9))
                assert n <= allowed, f"scale-up of {svc} at {t}: {n} > {allowed} (active {b})"
        if cfg.max_scale_down_percent is not None:
            for (t, svc), n in down.items():
                b = base[t].get(svc, 0)
                allowed = math.floor(b * cfg.max_scale_down_percent / 100 + 1e-9)
                mins = {x.name: x.min_servers for x in self.world.services()}
                if cfg.allow_scale_to_zero and b == 1 and mins.get(svc, 1) == 0 and cfg.max_scale_down_percent > 0:
                    allowed = 1  # scale to zero: the last server of a service allowed to idle at zero
                assert n <= allowed, f"scale-down of {svc} at {t}: {n} > {allowed} (active {b})"

    def _instant_bases(self) -> dict[float, dict[str, int]]:
        return self.world.bases

    def _check_canary(self, calls: list[Call], cfg: SafetyConfig) -> None:
        if not (cfg.canary_regions_first and cfg.canary_regions):
            return
        done: dict[tuple[Any, ...], float] = {}
        for c in calls:
            if c.action.kind != "resize_server":
                continue
            key = (c.service, c.action.flavor)  # type: ignore[attr-defined]
            if c.region in cfg.canary_regions:
                if c.ok:
                    done.setdefault(key, c.t)
                continue
            first = done.get(key)
            assert first is not None and c.t - first >= cfg.canary_bake_seconds, \
                f"resize {key} in {c.region} at {c.t} before the canary (canary at {first})"
