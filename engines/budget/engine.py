"""``budget_manager``: budget alerts, forecasts, cost anomalies, low-priority scale-down and reallocation.

Decided only from what the seam shows (``obs.budgets``, ``obs.spend``, services, servers and prices); the
spend history is the engine's own (a cumulative sample per project, service and the account at each step).
Every decision is an action through the choke point: ``Notify`` for alerts, forecasts, anomalies and
reallocations (record-only), ``ShelveServer`` / ``StopServer`` plus a ``budget_max_servers`` service setting
for scale-downs (the gate's :class:`~control.safety.budget_guard.ProjectBudgetGuard` keeps other engines from
re-adding what the budget took away), ``StartServer`` when a new period begins.  Nothing is ever deleted.
See docs/budgets.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.base import (
    Action,
    Budget,
    Notify,
    Observation,
    Server,
    ServiceState,
    SetMetadata,
    SetServiceSetting,
    ShelveServer,
    StartServer,
    StopServer,
)
from control.runtime import ActionRecord
from engines.budget.config import CAP_SETTING, CAP_UNTIL_SETTING, PRIORITY_SETTING, BudgetManagerConfig
from engines.budget.forecast import DAY, SpendSeries, check
from engines.maintenance import MAINTENANCE_KEY, UNTIL_KEY

ACCOUNT = "*"


def priority_of(svc: ServiceState, default: float = 1.0) -> float:
    """A service's priority: its ``priority`` setting (higher = more important), else ``default``."""
    p = svc.settings.get(PRIORITY_SETTING)
    return float(p) if p is not None and p == p else default


def _key(project: str) -> str:
    return ACCOUNT if project == ACCOUNT else f"p:{project}"


def _component(project: str) -> str:
    return "account" if project == ACCOUNT else project


@dataclass
class _Shelved:
    service: str
    budget: str
    period_start: float


class BudgetManager:
    """One engine for every budget the world shows; see the module docstring."""

    name = "budget-manager"

    def __init__(self, config: BudgetManagerConfig | None = None) -> None:
        self.cfg = config or BudgetManagerConfig()
        self.cadence = self.cfg.cadence
        self.series: dict[str, SpendSeries] = {}
        self.alerted: set[tuple[str, float, float]] = set()
        self.open_anomalies: dict[str, float] = {}
        self.shelved: dict[str, _Shelved] = {}
        self.periods: dict[str, float] = {}  # budget project -> period start last seen
        self.realloc: dict[str, float] = {}  # project -> limit moved to (+) or from (-) it this period
        self.last_report = -math.inf
        self.decisions: list[dict[str, object]] = []  # what it decided, for tests and the CLI

    # ------------------------------------------------------------------ step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        spend = obs.spend
        self._sample(now, spend.total, spend.per_project, spend.per_service)
        services = obs.services
        prices = {(p.flavor, p.pricing): p.per_hour for p in obs.prices}
        out: list[Action] = []
        budgets = list(obs.budgets.values())
        out += self._new_periods(now, budgets)
        out += self._anomalies(now, obs, services, prices)
        report = now - self.last_report >= self.cfg.report_every_s
        if report:
            self.last_report = now
            out += self._reallocate(now, budgets, services)
        for b in budgets:
            out += self._budget(now, obs, b, services, prices, report)
        return out

    def on_result(self, rec: ActionRecord) -> None:
        a = rec.action
        if not isinstance(a, ShelveServer | StopServer) or rec.outcome == "proposed":  # a proposal may still run
            return
        if rec.outcome != "executed" or not (rec.result and rec.result.ok):
            self.shelved.pop(a.server_id, None)

    # --------------------------------------------------------------- history
    def _sample(self, now: float, total: float, per_project: dict[str, float],
                per_service: dict[str, float]) -> None:
        keep = (7 + 2) * DAY
        for key, value in ((ACCOUNT, total), *((f"p:{p}", v) for p, v in per_project.items()),
                           *((f"s:{s}", v) for s, v in per_service.items())):
            s = self.series.get(key)
            if s is None:
                s = self.series[key] = SpendSeries(keep)
            s.add(now, float(value))

    # --------------------------------------------------------------- budgets
    def _period_forecast(self, now: float, b: Budget) -> tuple[float, float, float, float]:
        """(point, lo, hi, remaining seconds) of the spend of ``b``'s current period at its end."""
        end = b.period_start + b.period_s
        remaining = max(end - now, 0.0)
        s = self.series.get(_key(b.project))
        if s is None or remaining <= 0:
            return b.spent, b.spent, b.spent, remaining
        f = s.forecast(now, remaining / DAY)
        if f.point != f.point:
            return math.nan, math.nan, math.nan, remaining
        return b.spent + f.point, b.spent + f.lo, b.spent + f.hi, remaining

    def _rate_now(self, obs: Observation, project: str) -> float:
        spend = obs.spend
        if project == ACCOUNT:
            return float(spend.rate_per_hour)
        r = spend.rate_per_project.get(project)
        if r is not None:
            return float(r)
        s = self.series.get(_key(project))
        return s.rate(obs.now - 2 * self.cadence, obs.now) if s is not None else math.nan

    def _budget(self, now: float, obs: Observation, b: Budget, services: dict[str, ServiceState],
                prices: dict[tuple[str, str], float], report: bool) -> list[Action]:
        cfg = self.cfg
        out: list[Action] = []
        limit = b.limit + self.realloc.get(b.project, 0.0)
        point, lo, hi, remaining = self._period_forecast(now, b)
        rate = self._rate_now(obs, b.project)
        projection = b.spent + (rate if rate == rate else 0.0) * remaining / 3600.0
        end = b.period_start + b.period_s
        figures = {"project": b.project, "spent": round(b.spent, 4), "limit": b.limit, "effective_limit": limit,
                   "share": round(b.spent / b.limit, 4) if b.limit else None, "period_start": b.period_start,
                   "period_end": end, "forecast_period_end": {"point": point, "lo": lo, "hi": hi},
                   "projection_at_current_rate": projection, "rate_per_hour": rate}
        for th in cfg.alert_thresholds:
            key = (b.project, b.period_start, th)
            if b.spent >= th * b.limit and key not in self.alerted:
                self.alerted.add(key)
                out.append(Notify(
                    component=_component(b.project), severity="critical" if th >= 1 else "warning",
                    message=f"budget {_component(b.project)}: {b.spent:.2f} spent of {b.limit:.2f} "
                            f"({b.spent / b.limit:.0%} >= {th:.0%}); forecast at period end {point:.2f} "
                            f"[{lo:.2f}, {hi:.2f}]",
                    reason=f"budget threshold {th:.0%} crossed", evidence={"budget_alert": {**figures,
                                                                                            "threshold": th}}))
                self.decisions.append({"at": now, "decision": "alert", **figures, "threshold": th})
        if report and point == point:
            nxt = self.series.get(_key(b.project))
            ahead = nxt.forecast(now, cfg.forecast_days).as_dict() if nxt is not None else {}
            out.append(Notify(
                component=_component(b.project), severity="info",
                message=f"budget {_component(b.project)} forecast: {point:.2f} [{lo:.2f}, {hi:.2f}] at period end "
                        f"vs limit {limit:.2f}; next {cfg.forecast_days:g} days {ahead.get('point', math.nan):.2f}",
                reason="budget forecast report",
                evidence={"budget_forecast": {**figures, "made_at": now, "next_days": ahead}}))
        hard = b.hard or cfg.enforce_hard_limit
        over_soft = b.spent >= cfg.auto_scale_down_at_percent * limit and max(point, projection) > limit
        over_hard = hard and projection > limit
        if (over_soft or over_hard) and remaining > 0:
            # sized on the projection at the current rate: it sees a scale-down at once (the forecast's
            # 24-hour level would lag a day and take everything down to the floor meanwhile)
            target = limit * (1.0 - cfg.safety_margin)
            need = (projection - target) / (remaining / 3600.0)
            if need <= 0:
                return out
            out += self._scale_down(now, obs, b, need, services, prices,
                                    {**figures, "trigger": "hard-limit" if over_hard and not over_soft else
                                     "auto-scale-down", "need_per_hour": need, "target_spend": target,
                                     "over_limit": projection > limit})
        return out

    def _scale_down(self, now: float, obs: Observation, b: Budget, need: float,
                    services: dict[str, ServiceState], prices: dict[tuple[str, str], float],
                    figures: dict[str, object]) -> list[Action]:
        """Shelve (or stop) the newest servers of low-priority services in scope until ``need`` per hour is saved."""
        cfg = self.cfg
        scope = [s for s in services.values() if (b.project == ACCOUNT or s.project == b.project)
                 and priority_of(s, cfg.default_priority) <= cfg.low_priority_max]
        scope.sort(key=lambda s: (priority_of(s, cfg.default_priority), s.name))
        out: list[Action] = []
        saved = 0.0
        end = b.period_start + b.period_s
        verb = ShelveServer if cfg.scale_down_action == "shelve" else StopServer
        for svc in scope:
            if saved >= need:
                break
            running = [x for x in obs.servers(service=svc.name, status="ACTIVE") if x.id not in self.shelved]
            spare = len(running) - svc.min_servers
            if spare <= 0:
                continue
            running.sort(key=lambda x: -x.created_at)
            taken: list[Server] = []
            for srv in running[:spare]:
                if saved >= need:
                    break
                price = prices.get((srv.flavor, srv.pricing), prices.get((srv.flavor, "on_demand"), 0.0))
                if price <= 0:
                    continue
                taken.append(srv)
                saved += price
            if not taken:
                continue
            keep = len(running) - len(taken)
            why = (f"budget {_component(b.project)}: forecast {figures['forecast_period_end']} over the limit "
                   f"{figures['effective_limit']}; {svc.name} (priority {priority_of(svc, cfg.default_priority):g}) "
                   f"is low-priority work: {len(running)} -> {keep} running servers")
            ev = {"budget_action": {**figures, "service": svc.name, "servers": [x.id for x in taken],
                                    "running_before": len(running), "running_after": keep}}
            out.append(SetServiceSetting(service=svc.name, key=CAP_SETTING, value=float(keep), reason=why,
                                         evidence=ev))
            out.append(SetServiceSetting(service=svc.name, key=CAP_UNTIL_SETTING, value=float(end), reason=why,
                                         evidence=ev))
            for srv in taken:
                self.shelved[srv.id] = _Shelved(svc.name, b.project, b.period_start)
                # planned work by the convention of engines/maintenance.py: monitors do not take it for a fault
                out.append(SetMetadata(server_id=srv.id, metadata={MAINTENANCE_KEY: f"budget:{b.project}",
                                                                   UNTIL_KEY: repr(float(end))}, reason=why,
                                       evidence=ev))
                out.append(verb(server_id=srv.id, reason=why, evidence=ev,
                                alternatives=("delete_server: refused, it would delete data",)))
            self.decisions.append({"at": now, "decision": "scale_down", "service": svc.name,
                                   "servers": [x.id for x in taken], **figures})
        key = (b.project, b.period_start, -1.0)
        if not out and figures.get("over_limit") and key not in self.alerted:  # once per period: nothing left
            self.alerted.add(key)
            self.decisions.append({"at": now, "decision": "nothing_to_scale_down", **figures})
            out.append(Notify(component=_component(b.project), severity="critical",
                              message=f"budget {_component(b.project)} will end over its limit and no low-priority "
                                      f"work is left to scale down (priority <= {cfg.low_priority_max:g}, above "
                                      f"min_servers): a person must decide",
                              reason="budget scale-down impossible", evidence={"budget_unmet": figures}))
        return out

    def _new_periods(self, now: float, budgets: list[Budget]) -> list[Action]:
        """At a budget's new period: reallocations end, and servers it shelved for that budget run again."""
        out: list[Action] = []
        for b in budgets:
            prev = self.periods.get(b.project)
            self.periods[b.project] = b.period_start
            if prev is None or prev == b.period_start:
                continue
            self.realloc.clear()
            for sid, sh in list(self.shelved.items()):
                if sh.budget == b.project and sh.period_start < b.period_start:
                    del self.shelved[sid]
                    why = f"budget {_component(b.project)}: a new period began; {sh.service} was scaled down for the last one"
                    out.append(StartServer(server_id=sid, reason=why))
                    out.append(SetMetadata(server_id=sid, metadata={MAINTENANCE_KEY: "", UNTIL_KEY: ""}, reason=why))
        return out

    # ------------------------------------------------------------- anomalies
    def _anomalies(self, now: float, obs: Observation, services: dict[str, ServiceState],
                   prices: dict[tuple[str, str], float]) -> list[Action]:
        cfg = self.cfg
        fire = 1.0 + cfg.cost_anomaly_threshold * (1.0 - cfg.anomaly_slack)
        clear = 1.0 + cfg.cost_anomaly_threshold / 2.0
        out: list[Action] = []
        flagged_projects: set[str] = set()
        checks = {}
        for key, s in self.series.items():
            c = check(s, key, now, cfg.anomaly_window_s)
            checks[key] = c
            if key in self.open_anomalies and not c.ratio >= clear:  # NaN closes too
                del self.open_anomalies[key]
        for name, svc in services.items():
            c = checks.get(f"s:{name}")
            if c is None or not c.ratio >= fire:
                continue
            flagged_projects.add(svc.project)
            if f"s:{name}" in self.open_anomalies:
                continue
            self.open_anomalies[f"s:{name}"] = now
            out.append(self._anomaly_notify(now, obs, svc.project, svc, c.observed, c.expected, prices))
        for key, c in checks.items():
            if not key.startswith("p:") or not c.ratio >= fire or key in self.open_anomalies:
                continue
            project = key[2:]
            self.open_anomalies[key] = now
            if project in flagged_projects:
                continue  # its service's notification already names it
            top = max((s for s in services.values() if s.project == project),
                      key=lambda s: _excess(checks.get(f"s:{s.name}")), default=None)
            out.append(self._anomaly_notify(now, obs, project, top, c.observed, c.expected, prices))
        return out

    def _anomaly_notify(self, now: float, obs: Observation, project: str, svc: ServiceState | None,
                        observed: float, expected: float, prices: dict[tuple[str, str], float]) -> Notify:
        resource: dict[str, object] = {}
        if svc is not None:
            running = [x for x in obs.servers(service=svc.name) if x.status in ("ACTIVE", "BUILD")]
            by_flavor: dict[str, float] = {}
            for x in running:
                by_flavor[x.flavor] = by_flavor.get(x.flavor, 0.0) + prices.get((x.flavor, x.pricing), 0.0)
            flavor = max(by_flavor, key=lambda f: by_flavor[f], default=None)
            new = sorted((x for x in running if x.created_at >= now - self.cfg.anomaly_window_s - self.cadence),
                         key=lambda x: -x.created_at)
            resource = {"flavor": flavor, "servers_running": len(running),
                        "new_servers": [x.id for x in new][:20], "cost_per_hour_by_flavor": by_flavor}
        name = svc.name if svc is not None else None
        ratio = observed / expected if expected > 0 else math.nan
        ev = {"cost_anomaly": {"project": project, "service": name, "resource": resource,
                               "observed_per_hour": observed, "expected_per_hour": expected,
                               "ratio": ratio, "window_s": self.cfg.anomaly_window_s}}
        self.decisions.append({"at": now, "decision": "cost_anomaly", **ev["cost_anomaly"]})
        return Notify(component=name or _component(project), severity="warning",
                      message=f"cost anomaly: project {project}, service {name}, {resource.get('flavor')}: "
                              f"{observed:.3f}/h vs expected {expected:.3f}/h ({ratio - 1:+.0%})",
                      reason="spend rate above its expected (seasonal) rate", evidence=ev)

    # ---------------------------------------------------------- reallocation
    def _reallocate(self, now: float, budgets: list[Budget], services: dict[str, ServiceState]) -> list[Action]:
        """Under an account budget, give the forecast deficit of a project the spare headroom of lower-priority
        projects (same period). A decision on the record: budgets themselves are the world's."""
        if not self.cfg.auto_reallocation or not any(b.project == ACCOUNT for b in budgets):
            return []
        projects = [b for b in budgets if b.project != ACCOUNT]
        if len(projects) < 2:
            return []
        prio = {b.project: self._project_priority(b.project, services) for b in projects}
        margin = self.cfg.safety_margin
        spare: dict[str, float] = {}
        short: dict[str, float] = {}
        for b in projects:
            point, _, hi, _ = self._period_forecast(now, b)
            if point != point:
                continue
            limit = b.limit + self.realloc.get(b.project, 0.0)
            if hi < limit * (1 - margin):
                spare[b.project] = limit * (1 - margin) - hi
            elif point > limit:
                short[b.project] = point - limit
        out: list[Action] = []
        for to in sorted(short, key=lambda p: -prio[p]):
            for frm in sorted(spare, key=lambda p: prio[p]):
                if prio[frm] >= prio[to] or short[to] <= 0 or spare[frm] <= 0:
                    continue
                amount = min(short[to], spare[frm])
                short[to] -= amount
                spare[frm] -= amount
                self.realloc[to] = self.realloc.get(to, 0.0) + amount
                self.realloc[frm] = self.realloc.get(frm, 0.0) - amount
                ev = {"budget_reallocation": {"from": frm, "to": to, "amount": amount, "made_at": now,
                                              "priority_from": prio[frm], "priority_to": prio[to]}}
                self.decisions.append({"at": now, "decision": "reallocate", **ev["budget_reallocation"]})
                out.append(Notify(component=to, severity="info",
                                  message=f"budget reallocation: {amount:.2f} of {frm}'s unused headroom to {to} "
                                          f"(priority {prio[to]:g} > {prio[frm]:g})",
                                  reason="auto-reallocation by priority under the account budget", evidence=ev))
        return out

    def _project_priority(self, project: str, services: dict[str, ServiceState]) -> float:
        if project in self.cfg.project_priorities:
            return self.cfg.project_priorities[project]
        ps = [priority_of(s, self.cfg.default_priority) for s in services.values() if s.project == project]
        return max(ps, default=self.cfg.default_priority)


def _excess(c: object) -> float:
    if c is None:
        return -math.inf
    obs, exp = getattr(c, "observed", math.nan), getattr(c, "expected", math.nan)
    d = obs - (exp if exp == exp else 0.0)
    return d if d == d else -math.inf
