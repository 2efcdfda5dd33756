"""The safety gate: one verdict (allow, deny, or approval by N people) per proposed action.

Rules run in a fixed order; the first that fires decides, and the verdict
carries the rule's name and the figures behind it.

Deny rules (nobody can approve past them; re-checked when an approved action runs):
``automation-disabled`` / ``emergency-override``, ``business-hours``,
``rate-limit``, ``unverifiable`` (target unknown), ``incident-owned`` (an open
incident owns its components: only actions tied to it touch its servers or change
its services' capacity), ``max-scale-up``, ``max-scale-down``, ``canary-first``, ``budget-hard-limit``,
``budget-cap`` (hard project budgets and the budget manager's caps: :mod:`control.safety.budget_guard`);
for fault injection (the chaos policy) ``chaos-during-incident``, ``chaos-business-hours``, ``max-blast-radius``
and ``chaos-canary-first``.

Approval rules (a human may approve): ``human-approval`` (observation mode; not for
record-only decisions), ``kind-not-automated``, ``always-approval``
(the chaos policy without Allow), ``cost-unknown``, ``require-approval-above``,
``max-automated-cost``, ``max-vms-auto-provisioned``, ``max-data-deleted``.

The gate reads what each action class declares in :mod:`adapters.base` (``effect``
for the cost, ``risk`` for multi-approval, ``changes_world``, ``always_approval``),
never a list of kind names.

The gate is clock-agnostic: ``now`` is passed in, assumed non-decreasing, and
read as POSIX seconds only for business hours.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapters.base import Action, ActionResult, Observation, Server
from control.runtime import Verdict
from control.safety.budget_guard import ProjectBudgetGuard
from control.safety.config import SafetyConfig
from control.safety.serialize import dumps
from control.safety.store import Pause, SafetyStore

GIB = 1024**3
RATE_WINDOW = 60.0
COST_WINDOW = 3600.0
_SPENDING_EFFECTS = frozenset({"adds", "resizes", "resumes", "commits"})  # effects that can raise spend
_RUNNING = frozenset({"ACTIVE", "BUILD"})  # statuses a server is billed for as running
_SCOPES = ("server", "service", "hypervisor", "az", "region")  # blast radius, narrowest first


class BudgetGuard(Protocol):
    """Hook for budget enforcement: return a deny verdict to stop an action, else ``None``."""

    def check(self, now: float, action: Action, cost_per_hour: float | None, obs: Observation | None,
              admitted_this_step: float) -> Verdict | None:
        """``admitted_this_step``: cost per hour of actions already admitted at ``now`` (not yet in ``obs``)."""
        ...


class SpendRateLimit:
    """A budget hard limit on the total spend rate: deny what would push it above ``limit`` per hour."""

    def __init__(self, limit_per_hour: float) -> None:
        self.limit = limit_per_hour

    def check(self, now: float, action: Action, cost_per_hour: float | None, obs: Observation | None,
              admitted_this_step: float) -> Verdict | None:
        if obs is None or not cost_per_hour or cost_per_hour <= 0:
            return None
        rate = obs.spend.rate_per_hour + admitted_this_step
        if rate + cost_per_hour > self.limit + 1e-9:
            return Verdict("deny", "budget-hard-limit",
                           {"spend_per_hour": rate, "cost_per_hour": cost_per_hour, "limit_per_hour": self.limit})
        return None


@dataclass(slots=True)
class Assessment:
    """What an action would do, as far as the observation tells."""

    cost_per_hour: float | None = 0.0  # signed change in hourly spend; None: no price known
    commitment: float | None = 0.0  # money committed at once (effect "commits": the whole term); None: unknown
    created: int = 0
    deleted_bytes: int = 0
    service: str | None = None
    scale_up: int = 0
    scale_down: int = 0  # ACTIVE servers removed
    region: str | None = None
    change_key: str | None = None
    problems: list[str] = field(default_factory=list)


class _Window:
    """Sum of amounts admitted in the trailing ``span`` seconds: (now - span, now]; span 0 is the instant ``now``.

    ``name`` and ``key`` identify it in the safety store, so a restarted gate resumes its windows.
    """

    __slots__ = ("span", "items", "total", "name", "key", "sink")

    def __init__(self, span: float, name: str = "", key: str = "",
                 sink: Callable[[str, str, float, float], None] | None = None) -> None:
        self.span = span
        self.items: deque[tuple[float, float]] = deque()
        self.total = 0.0
        self.name, self.key, self.sink = name, key, sink

    def _cut(self, now: float) -> None:
        items, cut = self.items, now - max(self.span, 1e-9)
        while items and items[0][0] <= cut:
            self.total -= items.popleft()[1]
        if not items:
            self.total = 0.0

    def sum(self, now: float) -> float:
        self._cut(now)
        return self.total

    def peak(self, now: float) -> float | None:
        """The largest amount recorded in the window (None if empty): windows of levels, not of increments."""
        self._cut(now)
        return max(v for _, v in self.items) if self.items else None

    def low(self, now: float) -> float | None:
        self._cut(now)
        return min(v for _, v in self.items) if self.items else None

    def add(self, now: float, amount: float, persist: bool = True) -> None:
        if amount:
            self.items.append((now, amount))
            self.total += amount
            if persist and self.sink is not None:
                self.sink(self.name, self.key, now, amount)


def _obs_cache(obs: Observation, key: str, fn: Any) -> Any:
    return obs._get(("safety", key), lambda _reader: fn())  # noqa: SLF001 - the observation's own per-step cache


class SafetyGate:
    """Implements the runtime's ``Gate`` protocol from a :class:`SafetyConfig`.

    ``store`` (shared with the CLI) supplies pauses and multi-approved limit
    changes.  Changes made through the same store object apply to the very next
    review; changes committed by another process (the CLI) are noticed within
    ``poll_seconds`` of the gate's clock.

    A *step* is one instant ``now``: scale limits compare everything admitted
    at that instant with the service's active servers as first seen at that
    instant, and actions admitted earlier in the instant are taken as done
    (a resized server has its new flavor, a deleted one is gone).
    """

    def __init__(self, config: SafetyConfig | None = None, store: SafetyStore | None = None,
                 budget: BudgetGuard | None = None, poll_seconds: float = 0.5) -> None:
        self.config = config or SafetyConfig()
        self.store = store or SafetyStore(":memory:")
        self.budget = budget
        self._project_budgets = ProjectBudgetGuard()
        self.poll_seconds = poll_seconds
        self._polled_at = -math.inf
        self._config_id = -1
        self._pauses: list[Pause] = []
        self._version: tuple[int, int] | None = None
        sink = self.store.add_counter if self.store.path != ":memory:" else None  # live: windows survive restarts
        self._sink = sink
        self._rate = _Window(RATE_WINDOW, "rate", "", sink)
        self._cost = _Window(COST_WINDOW, "cost", "", sink)
        self._vms = _Window(self.config.accounting_window_seconds, "vms", "", sink)
        self._data = _Window(self.config.accounting_window_seconds, "data", "", sink)
        # per service, over ScaleWindow: servers admitted up and down, and the active count seen at each step
        self._scaled: dict[tuple[str, str], _Window] = {}
        self._loaded = sink is None
        self._step_now = -math.inf
        self._step_base: dict[str, int] = {}
        self._step_cost = 0.0
        self._step_active: dict[str, int] | None = None
        self._step_servers: dict[str, Server | None] = {}
        self._step_earlier: dict[str, list[Server]] = {}  # versions before changes admitted this instant
        self._servers_cached: dict[str, Server | None] = {}
        self._servers_obs: Observation | None = None
        self._zones: dict[str, str] = {}
        self._canary_done: dict[str, float] = {}
        self._pending_canary: dict[int, tuple[str, str]] = {}
        self._chaos_canary_done: dict[str, float] = {}  # fault type -> first successful run in a canary region
        self._chaos_in_canary: dict[int, bool] = {}  # id(action) -> its target lies in the canary regions
        self.refresh()

    @classmethod
    def from_files(cls, config_path: str | None = None, state_path: str | None = None, **kw: Any) -> SafetyGate:
        """A gate from a YAML config (default limits if None) sharing the CLI's state database (live mode).

        ``state_path`` defaults to ``$ZEROOPS_SAFETY_DB`` or ``.zeroops/safety.db``, so
        ``zeroops override`` / ``automation disable`` / ``limits approve`` reach this gate.
        """
        import os

        from control.safety.config import load_safety_config

        config = load_safety_config(config_path) if config_path else SafetyConfig()
        state = state_path or os.environ.get("ZEROOPS_SAFETY_DB", ".zeroops/safety.db")
        return cls(config, SafetyStore(state), **kw)

    # ----------------------------------------------------------------- state
    def refresh(self, now: float | None = None) -> None:
        """Re-read pauses and applied limit changes if the store changed (other processes: every poll_seconds)."""
        if now is None or not (self._polled_at <= now < self._polled_at + self.poll_seconds):
            version = self.store.version()
            if now is not None:
                self._polled_at = now
        else:
            version = (self.store.local_version(), self._version[1] if self._version else -1)
        if version == self._version:
            return
        self._version = version
        self._pauses = [p for p in self.store.pauses() if p.ended_at is None or p.ended_at > p.start]
        latest = self.store.latest_applied_config()
        if latest is not None and latest[0] != self._config_id:
            self._config_id = latest[0]
            self.set_config(SafetyConfig.model_validate(latest[1]))

    def set_config(self, config: SafetyConfig) -> None:
        """Swap the limits (counters carry over). Use :meth:`Overrides.propose_limits` for multi-approval."""
        self.config = config
        self._vms.span = self._data.span = config.accounting_window_seconds
        for w in self._scaled.values():
            w.span = config.scale_window_seconds

    def _scale_window(self, kind: str, service: str) -> _Window:
        w = self._scaled.get((kind, service))
        if w is None:
            w = self._scaled[(kind, service)] = _Window(self.config.scale_window_seconds, kind, service, self._sink)
        return w

    def _load(self, now: float) -> None:
        """Resume the windows a previous run of this gate left in the store (live mode restarts)."""
        self._loaded = True
        span = max(RATE_WINDOW, COST_WINDOW, self.config.accounting_window_seconds, self.config.scale_window_seconds)
        fixed = {"rate": self._rate, "cost": self._cost, "vms": self._vms, "data": self._data}
        for name, key, at, amount in self.store.counters(since=now - span):
            w = fixed.get(name) if not key else self._scale_window(name, key)
            if w is not None and at <= now:
                w.add(at, amount, persist=False)

    def paused(self, now: float) -> Pause | None:
        """The pause in force at ``now``, overrides first."""
        self.refresh(now)
        active = [p for p in self._pauses if p.active(now)]
        active.sort(key=lambda p: (p.kind != "override", p.start))
        return active[0] if active else None

    def in_business_hours(self, now: float) -> bool:
        cfg = self.config
        local = datetime.fromtimestamp(now, UTC) + timedelta(hours=cfg.utc_offset_hours)
        start, end = cfg.business_hours
        return local.weekday() in cfg.business_days and start <= local.hour + local.minute / 60 < end

    # ------------------------------------------------------------ assessment
    def assess(self, action: Action, obs: Observation | None) -> Assessment:
        """Cost, servers created, data deleted, scale step and region of ``action``, from its declared ``effect``.

        adds: ``count`` x price; removes: -price (and the disk of a stateful service's server);
        resizes: new - old price; resumes: +price unless already running; pauses: -price if running;
        commits: ``count`` x reserved price per hour, and the whole commitment for its term; none: 0.
        """
        a = Assessment()
        effect = action.effect
        server: Server | None = None
        sid = getattr(action, "server_id", None) if action.target_field == "server_id" else None
        if sid is not None:
            server = self._server_now(obs, sid)
            if server is None:
                a.problems.append(f"server {sid!r} not in the observation")
                a.cost_per_hour = None
                return a
            a.service = server.service
            a.region = self._region(obs, server.zone)
        if effect == "adds":
            service = getattr(action, "service", None)
            svc = self._services(obs).get(service) if service is not None else None
            a.service = service
            count = int(getattr(action, "count", 1))
            a.created = a.scale_up = count
            flavor = getattr(action, "flavor", None) or (svc.flavor if svc else None)
            if svc is None:
                a.problems.append(f"service {a.service!r} not in the observation")
            price = self._price(obs, flavor, getattr(action, "pricing", "on_demand"))
            a.cost_per_hour = None if price is None else count * price
            zone = getattr(action, "zone", None)
            a.region = self._region(obs, zone) if zone else None
        elif effect == "removes" and server is not None:
            versions = self._versions(server)
            svc = self._services(obs).get(server.service) if server.service else None
            if svc is not None and not svc.stateful:
                a.deleted_bytes = 0  # a stateless replica's disk holds no data of record
            else:
                disks = [self._flavors(obs).get(v.flavor) for v in versions]
                if any(fl is None for fl in disks):
                    a.problems.append(f"flavor {server.flavor!r} of server {server.id!r} unknown: data size unknown")
                else:
                    a.deleted_bytes = max(fl.disk_gb for fl in disks) * GIB  # type: ignore[union-attr]
            price = self._least_price(obs, versions)
            a.cost_per_hour = None if price is None else -price
            if server.service and any(v.status == "ACTIVE" for v in versions):
                a.scale_down = 1
        elif effect == "resizes" and server is not None:
            new = self._price(obs, getattr(action, "flavor", None), server.pricing)
            old = self._least_price(obs, self._versions(server))
            a.cost_per_hour = None if new is None or old is None else new - old
        elif effect == "resumes" and server is not None:
            stopped = [v for v in self._versions(server) if v.status not in _RUNNING]
            prices = [self._price(obs, v.flavor, v.pricing) for v in stopped]
            a.cost_per_hour = 0.0 if not stopped else None if None in prices else max(prices)  # type: ignore[type-var]
        elif effect == "pauses" and server is not None:
            running = [v for v in self._versions(server) if v.status in _RUNNING]
            if running:
                price = self._least_price(obs, running)
                a.cost_per_hour = None if price is None else -price
                if server.service and any(v.status == "ACTIVE" for v in running):
                    a.scale_down = 1  # capacity leaves the service like a deletion
            else:
                a.cost_per_hour = 0.0
        elif effect == "commits":
            count = int(getattr(action, "count", 1))
            price = self._price(obs, getattr(action, "flavor", None), "reserved")
            a.cost_per_hour = None if price is None else count * price
            hours = float(getattr(action, "term_s", 0.0)) / 3600.0
            a.commitment = None if price is None else count * price * hours
        if action.kind in self.config.canary_kinds:
            params = {k: v for k, v in action.params().items() if k != "server_id"}
            a.change_key = dumps([action.kind, a.service, params])
        return a

    def _versions(self, server: Server) -> list[Server]:
        """The server now, and as it was before changes admitted earlier in this instant (they may have failed)."""
        return [*self._step_earlier.get(server.id, ()), server]

    def _least_price(self, obs: Observation | None, versions: list[Server]) -> float | None:
        """The lowest price among ``versions`` (the smallest saving, the largest increase); None if one is unknown."""
        prices = [self._price(obs, v.flavor, v.pricing) for v in versions]
        return None if any(p is None for p in prices) else min(prices)  # type: ignore[type-var]

    def _server_now(self, obs: Observation | None, sid: str) -> Server | None:
        """Server ``sid`` as this step left it: admitted deletes, resizes, stops and starts applied."""
        return self._step_servers[sid] if sid in self._step_servers else self._server(obs, sid)

    def _server(self, obs: Observation | None, sid: str) -> Server | None:
        """The observed server ``sid`` (looked up by id: listing a large fleet per step is too slow)."""
        if obs is None:
            self._servers_cached = {}
            return None
        if self._servers_obs is not obs:
            self._servers_obs, self._servers_cached = obs, {}
        if sid not in self._servers_cached:
            self._servers_cached[sid] = obs.server(sid)  # type: ignore[assignment]
        return self._servers_cached[sid]

    def _services(self, obs: Observation | None) -> dict[str, Any]:
        return {} if obs is None else obs.services

    def _flavors(self, obs: Observation | None) -> dict[str, Any]:
        return {} if obs is None else obs.flavors

    def _price(self, obs: Observation | None, flavor: str | None, pricing: str) -> float | None:
        if obs is None or flavor is None:
            return None
        prices = _obs_cache(obs, "prices", lambda: {(p.flavor, p.pricing): p.per_hour for p in obs.prices})
        p = prices.get((flavor, pricing))
        return prices.get((flavor, "on_demand")) if p is None else p

    def _region(self, obs: Observation | None, zone: str) -> str:
        if obs is None:
            return zone
        if zone not in self._zones:  # zones do not move between regions: ask once per new zone
            self._zones.update({h.zone: h.region for h in obs.hypervisors})
        return self._zones.get(zone, zone)

    # --------------------------------------------------------------- verdicts
    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        """The verdict for a proposed action; an allowed action is counted as executed from here."""
        return self._decide(now, action, obs, approved=None)

    def recheck(self, now: float, engine: str, action: Action, obs: Observation | None,
                approved_by: Iterable[str] = ()) -> Verdict:
        """Deny rules again, for an approved action about to run (counted like an execution if allowed)."""
        return self._decide(now, action, obs, approved=tuple(approved_by))

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        fault = getattr(action, "fault", None)
        if action.always_approval and result.ok and fault and self._chaos_places(action, None) is not None:
            self._chaos_canary_done.setdefault(fault, now)  # ran inside the canary regions (see _chaos_deny)
        pend = self._pending_canary.pop(id(action), None)
        if pend is not None and result.ok and self._is_canary(pend[1]):
            self._canary_done.setdefault(pend[0], now)

    def _is_canary(self, region: str | None) -> bool:
        return region is not None and region in self.config.canary_regions

    def _decide(self, now: float, action: Action, obs: Observation | None,
                approved: tuple[str, ...] | None) -> Verdict:
        cfg = self.config
        if not self._loaded:
            self._load(now)
        if now != self._step_now:
            self._step_now = now
            self._step_base.clear()
            self._step_servers.clear()
            self._step_earlier.clear()
            self._step_cost = 0.0
            self._step_active = None
            self._chaos_in_canary.clear()  # reviewed and executed within one instant
        if self._step_active is None and obs is not None:
            self._step_active = {name: svc.active for name, svc in obs.services.items()}
        pause = self.paused(now)
        if pause is not None:
            rule = "emergency-override" if pause.kind == "override" else "automation-disabled"
            return Verdict("deny", rule, {"pause": pause.id, "until": pause.until, "incident": pause.incident,
                                          "operator": pause.operator})
        if cfg.business_hours_only and not self.in_business_hours(now):
            return Verdict("deny", "business-hours",
                           {"business_hours": list(cfg.business_hours), "business_days": list(cfg.business_days),
                            "utc_offset_hours": cfg.utc_offset_hours})
        if cfg.rate_limit_actions is not None:
            recent = self._rate.sum(now)
            if recent + 1 > cfg.rate_limit_actions:
                return Verdict("deny", "rate-limit", {"executed_last_60s": int(recent),
                                                      "limit_per_minute": cfg.rate_limit_actions})
        a = self.assess(action, obs)
        detail: dict[str, Any] = {"cost_per_hour": a.cost_per_hour}
        if a.problems:
            return Verdict("deny", "unverifiable", {**detail, "problems": a.problems})
        if cfg.incident_ownership and action.changes_world and obs is not None:
            v = self._incident_owned(action, a, obs)
            if v is not None:
                return v
        if action.always_approval:
            v = self._chaos_deny(now, action, obs)
            if v is not None:
                return v
        if (a.scale_up or a.scale_down) and a.service is not None:
            base = self._step_base.get(a.service)
            if base is None:
                base = (self._step_active or {}).get(a.service)
                if base is None:
                    svc = self._services(obs).get(a.service)
                    base = svc.active if svc is not None else 0
                self._step_base[a.service] = base
                self._scale_window("active", a.service).add(now, base + 1)  # +1: a level of 0 is still recorded
            levels = self._scale_window("active", a.service)
            svc = self._services(obs).get(a.service)
            # a service allowed to idle at zero (min_servers 0) may lose its last server; others never
            down_min = 1 if (cfg.allow_scale_to_zero and base == 1 and svc is not None and svc.min_servers == 0
                             and (cfg.max_scale_down_percent or 0) > 0) else 0
            for direction, count, pct, floor_min in (
                    ("up", a.scale_up, cfg.max_scale_up_percent, cfg.min_scale_step),
                    ("down", a.scale_down, cfg.max_scale_down_percent, down_min)):
                if not count or pct is None:
                    continue
                # the percentage applies to the window: of the lowest level in it going up, the highest going down
                level = levels.low(now) if direction == "up" else levels.peak(now)
                ref = base if level is None else int(level) - 1
                allowed = max(floor_min, math.floor(ref * pct / 100 + 1e-9))
                done = int(self._scale_window(direction, a.service).sum(now))
                if done + count > allowed:
                    return Verdict("deny", f"max-scale-{direction}", {
                        **detail, "service": a.service, "active": base, "reference_active": ref,
                        "requested": count, "already_in_window": done, "allowed_in_window": allowed,
                        "window_seconds": cfg.scale_window_seconds, "max_percent": pct})
        canary_pending = False
        if cfg.canary_regions_first and cfg.canary_regions and a.change_key is not None:
            if a.region is None:
                return Verdict("deny", "canary-first", {**detail, "problem": "region unknown"})
            if not self._is_canary(a.region):
                first = self._canary_done.get(a.change_key)
                if first is None or now - first < cfg.canary_bake_seconds:
                    return Verdict("deny", "canary-first", {
                        **detail, "region": a.region, "canary_regions": list(cfg.canary_regions),
                        "canary_succeeded_at": first, "bake_seconds": cfg.canary_bake_seconds})
            else:
                canary_pending = True
        budget = self.budget
        if budget is None and cfg.budget_hard_limit_per_hour is not None:
            budget = SpendRateLimit(cfg.budget_hard_limit_per_hour)
        self._project_budgets.enforce_all = cfg.enforce_hard_limit
        for guard in (budget, self._project_budgets):  # hard project budgets and budget caps: budget_guard.py
            v = guard.check(now, action, a.cost_per_hour, obs, self._step_cost) if guard is not None else None
            if v is not None and v.decision == "deny":
                return v
        if approved is None:
            v = self._approval(now, action, a, detail, obs)
            if v is not None:
                return v
        # admitted: count it
        self._rate.add(now, 1)
        self._step_cost += a.cost_per_hour or 0.0
        if a.service is not None:
            if a.scale_up:
                self._scale_window("up", a.service).add(now, a.scale_up)
            if a.scale_down:
                self._scale_window("down", a.service).add(now, a.scale_down)
        self._patch_step(action)
        if canary_pending:
            self._pending_canary[id(action)] = (a.change_key or "", a.region or "")
        if approved is not None:
            return Verdict("allow", "approved", {**detail, "approved_by": list(approved)})
        self._cost.add(now, max((a.commitment if action.effect == "commits" else a.cost_per_hour) or 0.0, 0.0))
        self._vms.add(now, a.created)
        self._data.add(now, a.deleted_bytes)
        return Verdict("allow", "within-limits", detail)

    def _incident_owned(self, action: Action, a: Assessment, obs: Observation) -> Verdict | None:
        """One fault, one owner: an open incident owns its components.  An action not tied to that incident by
        ``action.incident`` may not touch a server the incident names, nor change the capacity of a service it
        names (create, delete, start, stop, shelve, resize).  Another engine joins the response by tying its
        action to the incident (a scaler whose forecast demand rose), or defers until it is mitigated or
        resolved.  Ownership lapses when the incident has not been updated for ``IncidentOwnershipTTL``."""
        incidents = obs.incidents
        if not incidents:
            return None
        sid = getattr(action, "server_id", None) if action.target_field == "server_id" else None
        capacity = action.effect in ("adds", "removes", "pauses", "resumes", "resizes")
        ttl = self.config.incident_ownership_seconds
        for inc in incidents.values():
            if inc.status in ("resolved", "mitigated") or action.incident == inc.id:
                continue
            if self._step_now - max(inc.declared_at, inc.updated_at) > ttl:
                continue  # a stale incident (its response stopped reporting) does not freeze the service
            comps = inc.components
            if sid is not None and sid in comps:
                what = f"server {sid} is a component of incident {inc.id}"
            elif capacity and a.service is not None and a.service in comps:
                what = f"incident {inc.id} owns service {a.service}: only its response changes its capacity"
            else:
                continue
            return Verdict("deny", "incident-owned", {"incident": inc.id, "status": inc.status,
                                                      "components": list(comps), "why": what})
        return None

    def _patch_step(self, action: Action) -> None:
        """Take an admitted action as done for the rest of the instant (the observation is older)."""
        sid = getattr(action, "server_id", None) if action.target_field == "server_id" else None
        if sid is None:
            return
        server = self._step_servers[sid] if sid in self._step_servers else self._servers_cached.get(sid)
        if server is not None:  # the admitted change may still fail: later assessments weigh both versions
            self._step_earlier.setdefault(sid, []).append(server)
        effect = action.effect
        if effect == "removes":
            self._step_servers[sid] = None
        elif server is not None and effect == "resizes":
            self._step_servers[sid] = replace(server, flavor=action.flavor)  # type: ignore[attr-defined]
        elif server is not None and effect == "resumes":
            self._step_servers[sid] = replace(server, status="ACTIVE")
        elif server is not None and effect == "pauses":
            self._step_servers[sid] = replace(server, status="SHUTOFF")

    def is_high_risk(self, action: Action) -> bool:
        """``HighRiskKinds`` when configured, else the action's declared ``risk == "high"``."""
        kinds = self.config.high_risk_kinds
        return action.kind in kinds if kinds is not None else action.risk == "high"

    def _approval(self, now: float, action: Action, a: Assessment, detail: dict[str, Any],
                  obs: Observation | None) -> Verdict | None:
        cfg = self.config
        rule: str | None = None
        extra: dict[str, Any] = {}
        cost = a.cost_per_hour
        spend = a.commitment if action.effect == "commits" else cost  # what the cost limits compare
        if a.commitment:
            detail["commitment"] = a.commitment
        if cfg.observation_mode and action.changes_world:  # a record-only decision changes nothing: it may run
            rule = "human-approval"
        elif cfg.automated_kinds is not None and action.kind not in cfg.automated_kinds:
            rule, extra = "kind-not-automated", {"automated_kinds": list(cfg.automated_kinds)}
        elif action.always_approval and (chaos := self._chaos_rule(action, obs)) is not None:
            rule, extra = chaos
        elif spend is None and action.effect in _SPENDING_EFFECTS and (
                cfg.require_approval_above is not None or cfg.max_automated_cost is not None):
            rule = "cost-unknown"
        elif cfg.require_approval_above is not None and spend is not None and spend > cfg.require_approval_above:
            rule, extra = "require-approval-above", {"limit": cfg.require_approval_above}
        elif cfg.max_automated_cost is not None and spend is not None and spend > 0 and (
                self._cost.sum(now) + spend > cfg.max_automated_cost + 1e-9):
            rule, extra = "max-automated-cost", {"automated_cost_last_hour": self._cost.sum(now),
                                                 "limit_per_hour": cfg.max_automated_cost}
        elif cfg.max_vms_auto_provisioned is not None and a.created and (
                self._vms.sum(now) + a.created > cfg.max_vms_auto_provisioned):
            rule, extra = "max-vms-auto-provisioned", {"auto_provisioned_in_window": int(self._vms.sum(now)),
                                                       "requested": a.created,
                                                       "limit": cfg.max_vms_auto_provisioned,
                                                       "window_seconds": cfg.accounting_window_seconds}
        elif cfg.max_data_deleted is not None and a.deleted_bytes and (
                self._data.sum(now) + a.deleted_bytes > cfg.max_data_deleted):
            rule, extra = "max-data-deleted", {"deleted_in_window": int(self._data.sum(now)),
                                               "requested_bytes": a.deleted_bytes, "limit": cfg.max_data_deleted,
                                               "window_seconds": cfg.accounting_window_seconds}
        if rule is None:
            return None
        high_risk = self.is_high_risk(action) or rule == "max-data-deleted"
        needed = cfg.multi_approvers if cfg.require_multi_approval and high_risk else 1
        return Verdict("approval", rule, {**detail, **extra, "high_risk": high_risk}, approvers=needed)

    def _chaos_rule(self, action: Action, obs: Observation | None) -> tuple[str, dict[str, Any]] | None:
        """Why an ``always_approval`` action needs a human: no chaos policy allows it unattended."""
        if not self.config.chaos.allow:
            return "always-approval", {"chaos_allowed": False}
        return None

    def _chaos_deny(self, now: float, action: Action, obs: Observation | None) -> Verdict | None:
        """Deny rules of fault injection (nobody approves past them): an open P0/P1 (``chaos-during-incident``),
        ``chaos-business-hours``, a target beyond MaxBlastRadius or unknown (``max-blast-radius``), and a fault
        type not yet run (and baked) in a canary region (``chaos-canary-first``)."""
        chaos = self.config.chaos
        hot = [i.id for i in (obs.incidents.values() if obs is not None else ())
               if i.severity in ("P0", "P1") and i.status not in ("mitigated", "resolved")]
        if hot:
            return Verdict("deny", "chaos-during-incident", {"open_p0_p1": hot})
        if chaos.business_hours_only and not self.in_business_hours(now):
            return Verdict("deny", "chaos-business-hours",
                           {"business_hours": list(self.config.business_hours),
                            "business_days": list(self.config.business_days)})
        scope = self._blast_radius(action, obs)
        allowed = chaos.max_blast_radius.removeprefix("single-")
        if scope is None or _SCOPES.index(scope) > _SCOPES.index(allowed):
            return Verdict("deny", "max-blast-radius", {"blast_radius": None if scope is None else f"single-{scope}",
                                                        "max_blast_radius": chaos.max_blast_radius})
        fault = str(getattr(action, "fault", ""))
        if chaos.canary_regions_first and chaos.canary_regions and scope != "service":  # a service fault follows
            places = self._chaos_places(action, obs)  # the service wherever it runs: servers, hosts, zones go first
            if places is None:
                first = self._chaos_canary_done.get(fault)
                if first is None or now - first < chaos.canary_bake_seconds:
                    return Verdict("deny", "chaos-canary-first", {
                        "fault": fault, "canary_regions": list(chaos.canary_regions), "canary_ran_at": first,
                        "bake_seconds": chaos.canary_bake_seconds})
        return None

    def _chaos_places(self, action: Action, obs: Observation | None) -> tuple[str, ...] | None:
        """The canary regions or zones holding every part of a chaos target; None if some part lies outside
        them (or the rule is off).  With ``obs`` None, the answer recorded when the action was reviewed."""
        if obs is None:
            return () if self._chaos_in_canary.pop(id(action), False) else None
        canary = set(self.config.chaos.canary_regions)
        target = action.target()
        hvs = obs.hypervisors
        server = self._server_now(obs, target)
        if server is not None:
            zones = {server.zone}
        elif target in obs.services:
            zones = {s.zone for s in obs.servers(service=target) if s.status != "DELETED"}
        else:
            zones = {h.zone for h in hvs if target in (h.id, h.name, h.zone, h.region)}
        inside = bool(canary) and bool(zones) and all(z in canary or self._region(obs, z) in canary for z in zones)
        self._chaos_in_canary[id(action)] = inside
        return tuple(sorted(zones)) if inside else None

    def _blast_radius(self, action: Action, obs: Observation | None) -> str | None:
        """What the target of a chaos action is: server, service, hypervisor, az or region (None: unknown)."""
        if obs is None:
            return None
        target = action.target()
        if self._server_now(obs, target) is not None:  # a server deleted earlier in this step is gone
            return "server"
        if target in obs.services:
            return "service"
        hvs = obs.hypervisors
        if any(target in (h.id, h.name) for h in hvs):
            return "hypervisor"
        if any(target == h.zone for h in hvs):
            return "az"
        if any(target == h.region for h in hvs):
            return "region"
        return None
