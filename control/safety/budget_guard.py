"""The gate's budget hook for project budgets: refuse new spend a hard budget cannot afford.

:class:`ProjectBudgetGuard` implements :class:`control.safety.gate.BudgetGuard`.  For an action that raises
spend (its assessed ``cost_per_hour`` > 0: effects adds, resizes up, resumes, commits) it denies

* ``budget-hard-limit`` — when a hard budget of the action's project, or the account budget ``*``, would end
  its period over the limit if the spend rate after the action held to the period's end::

      spent + (rate now + spend let through in the last 5 minutes + the action's cost) * hours left > limit

  (the observed rate lags an admitted action by a billing tick, so recent admissions count on top of it);

  A budget is hard when the world marks it so (``Budget.hard``) or the safety setting ``EnforceHardLimit`` is
  on.  Rates only rise through admitted actions, so while nothing else adds spend the period ends within the
  limit (tests/budget: a hypothesis property over sequences of actions);
* ``budget-cap`` — when the action would run more servers of a service than the budget manager's cap
  (service settings ``budget_max_servers`` until ``budget_cap_until``): what the budget scaled down is not
  re-added by another engine before the period ends;
* ``budget-hard-limit`` with ``cost unknown`` — a spending action whose price is unknown under a hard budget.

It never blocks an action that lowers or keeps spend (pauses, removes, smaller resizes, record-only
decisions): those return ``None`` before any budget is read.
"""

from __future__ import annotations

import math
from collections import deque

from adapters.base import Action, Budget, Observation
from control.runtime import Verdict

# the budget manager's service settings (engines/budget/config.py writes them; tests check they agree)
CAP_SETTING = "budget_max_servers"
CAP_UNTIL_SETTING = "budget_cap_until"
_SPENDING = frozenset({"adds", "resizes", "resumes", "commits"})
ACCOUNT = "*"


class ProjectBudgetGuard:
    """Hard project/account budgets and budget caps at the safety gate (see the module docstring)."""

    def __init__(self, enforce_all: bool = False, billing_lag_s: float = 300.0) -> None:
        self.enforce_all = enforce_all
        self.lag = billing_lag_s
        self._step_now = -math.inf
        self._step_added: dict[str, int] = {}
        self._recent: deque[tuple[float, str | None, float]] = deque()  # (at, project, cost/h) let through

    def _recent_cost(self, now: float, project: str) -> float:
        """Spend let through in the last ``lag`` seconds (the observed rate may not show it yet: billing and
        metrics lag the action); counted on top of the observed rate, which over-counts, never under-counts."""
        return sum(c for _, p, c in self._recent if project == ACCOUNT or p == project or p is None)

    def check(self, now: float, action: Action, cost_per_hour: float | None, obs: Observation | None,
              admitted_this_step: float) -> Verdict | None:
        if obs is None or action.effect not in _SPENDING or not action.changes_world:
            return None
        if cost_per_hour is not None and cost_per_hour <= 0:
            return None  # spends nothing more: never blocked
        if now != self._step_now:
            self._step_now, self._step_added = now, {}
            while self._recent and self._recent[0][0] <= now - self.lag:
                self._recent.popleft()
        project, service = self._owner(action, obs)
        v = self._cap(now, action, service, obs)
        if v is not None:
            return v
        budgets = [b for b in obs.budgets.values()
                   if (b.hard or self.enforce_all) and b.project in (ACCOUNT, project)]
        for b in budgets:
            end = b.period_start + b.period_s
            hours = max(end - now, 0.0) / 3600.0
            if cost_per_hour is None:
                return Verdict("deny", "budget-hard-limit", {"budget": b.project, "problem": "cost unknown",
                                                             "limit": b.limit, "spent": b.spent})
            rate = self._rate(obs, b.project)
            recent = max(self._recent_cost(now, b.project), admitted_this_step)
            projected = b.spent + (rate + recent + cost_per_hour) * hours
            if projected > b.limit + 1e-9:
                return Verdict("deny", "budget-hard-limit", {
                    "budget": b.project, "project": project, "spent": b.spent, "limit": b.limit,
                    "rate_per_hour": rate, "admitted_recently": recent,
                    "cost_per_hour": cost_per_hour, "hours_left": hours, "projected_period_spend": projected})
        if service is not None and action.effect in ("adds", "resumes"):
            self._step_added[service] = self._step_added.get(service, 0) + _count(action)
        if cost_per_hour is not None:
            self._recent.append((now, project, cost_per_hour))
        return None

    def _cap(self, now: float, action: Action, service: str | None, obs: Observation) -> Verdict | None:
        if service is None or action.effect not in ("adds", "resumes"):
            return None
        svc = obs.services.get(service)
        if svc is None:
            return None
        cap, until = svc.settings.get(CAP_SETTING), svc.settings.get(CAP_UNTIL_SETTING)
        if cap is None or until is None or now >= until:
            return None
        running = svc.active + svc.building + self._step_added.get(service, 0)
        if running + _count(action) > cap:
            return Verdict("deny", "budget-cap", {"service": service, "cap": cap, "until": until,
                                                  "running": running, "requested": _count(action)})
        return None

    @staticmethod
    def _owner(action: Action, obs: Observation) -> tuple[str | None, str | None]:
        """(project, service) the action spends for."""
        if action.target_field == "server_id":
            srv = obs.server(str(getattr(action, "server_id", "")))
            return (srv.project, srv.service) if srv is not None else (None, None)
        service = getattr(action, "service", None)
        if service is not None:
            svc = obs.services.get(service)
            return (svc.project if svc is not None else None), service
        return getattr(action, "project", None), None

    @staticmethod
    def _rate(obs: Observation, project: str) -> float:
        spend = obs.spend
        if project == ACCOUNT:
            return float(spend.rate_per_hour)
        return float(spend.rate_per_project.get(project, 0.0))


def _count(action: Action) -> int:
    return int(getattr(action, "count", 1)) if action.effect == "adds" else 1


def hard_budgets(obs: Observation, enforce_all: bool = False) -> list[Budget]:
    """The budgets the guard enforces in ``obs``."""
    return [b for b in obs.budgets.values() if b.hard or enforce_all]
