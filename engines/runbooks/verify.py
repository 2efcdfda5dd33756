"""Verification: does a runbook's condition hold, judged only on samples taken after its steps finished?

A metric condition with ``for DUR`` holds when at least ``DUR`` seconds have passed since verification began
and every (non-NaN) sample of the last ``DUR`` seconds satisfies it; without ``for``, when the latest sample
taken since verification began does. Service metrics are checked on every service in the run's scope,
server metrics on every server the run acted on (created servers included). A server-count condition
(``servers ACTIVE >= min``) reads the inventory and must have held for ``DUR`` seconds of the run's steps.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

from adapters.base import SERVICE_METRICS, Observation
from engines.runbooks.bindings import Bindings, pre_incident, window
from engines.runbooks.schema import Condition

OPS_FN: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_MIN_WINDOW = 15.0  # seconds read for a condition without ``for`` (a few scrapes)


class Checker:
    """Evaluates a run's conditions; remembers since when each inventory condition has held."""

    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings
        self.since: dict[str, float] = {}

    def threshold(self, c: Condition, obs: Observation, service: str | None) -> float:
        if c.rhs == "number":
            return c.value
        if service is None:
            return math.nan
        if c.rhs == "min":
            st = obs.services.get(service)
            return c.value * st.min_servers if st is not None else math.nan
        metric = c.metric or "active_servers"
        ref = pre_incident(obs, self.b, metric, service, "median" if c.rhs == "baseline" else "max")
        return c.value * ref

    def check(self, c: Condition, now: float, start: float, obs: Observation,
              servers: Sequence[str]) -> tuple[bool, str]:
        """(held, a short explanation) for one condition at ``now``; verification began at ``start``."""
        op = OPS_FN[c.op]
        if c.metric is None:
            return self._count(c, now, obs, op)
        if c.for_s > 0 and now - start < c.for_s:
            return False, f"{c.text}: needs {c.for_s:g} s since verification began ({now - start:.0f} s so far)"
        span = c.for_s if c.for_s > 0 else max(_MIN_WINDOW, now - start)
        if c.metric in SERVICE_METRICS:
            targets = [("service", s) for s in self.b.services]
        else:
            targets = [("server", s) for s in servers]
        if not targets and c.metric in SERVICE_METRICS:
            return False, f"{c.text}: nothing to check (no service in the run's scope)"
        if not targets:  # the run touched no server (nothing was down): the service conditions judge alone
            return True, f"{c.text}: no server touched"
        for label, name in targets:
            limit = self.threshold(c, obs, name if label == "service" else self.b.vars.get("service"))
            if not math.isfinite(limit):
                return False, f"{c.text}: no pre-incident {c.rhs} for {name}"
            t, v = window(obs, c.metric, span, **{label: name})
            v = v[t >= start]
            if not len(v):
                return False, f"{c.text}: no {c.metric} sample for {name} since verification began"
            vals = v if c.for_s > 0 else v[-1:]
            bad = [x for x in vals if not op(float(x), limit)]
            if bad:
                return False, f"{c.text}: {name} {c.metric} = {float(bad[-1]):.4g} vs {limit:.4g}"
        return True, f"{c.text}: holds"

    def _count(self, c: Condition, now: float, obs: Observation, op: Callable[[float, float], bool]) -> tuple[bool, str]:
        if not self.b.services:
            return False, f"{c.text}: no service in the run's scope"
        for svc in self.b.services:
            n = len(obs.servers(service=svc, status=c.status))
            limit = self.threshold(c, obs, svc)
            if not math.isfinite(limit) or not op(float(n), limit):
                self.since.pop(c.text, None)
                return False, f"{c.text}: {svc} has {n} {c.status} vs {limit:g}"
        first = self.since.setdefault(c.text, now)
        if now - first < c.for_s:
            return False, f"{c.text}: held for {now - first:.0f} of {c.for_s:g} s"
        return True, f"{c.text}: holds"
