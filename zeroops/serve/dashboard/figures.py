"""What the dashboard shows: each figure, the API field it is read from, and its target from the design doc.

The page never computes a figure: it reads ``source`` (an API endpoint) and takes the value at ``path``
(dot-separated keys).  Targets are the design document's (``/work/shared/reference/zero-ops-design.md``,
"Zero-Ops Metrics" and "Performance Benchmarks"): they are what to measure against, shown as targets,
never as results.  The page receives this table as ``/dashboard/figures.json``; docs/dashboard.md lists it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Unit = Literal["percent", "seconds", "money", "count", "text"]
Op = Literal["<", "<=", ">", ">=", "==", "range"]


@dataclass(frozen=True, slots=True)
class Target:
    """A design-doc target: ``value OP target`` (``range``: ``low <= value <= high``)."""

    op: Op
    value: float | str | bool
    text: str
    high: float | None = None
    ref: str = ""

    def met(self, value: Any) -> bool | None:
        """True/False when ``value`` meets the target; None when there is no value to judge."""
        if value is None:
            return None
        if self.op == "==":
            return value == self.value and type(value) is type(self.value)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        t = float(self.value)
        return {
            "<": value < t, "<=": value <= t, ">": value > t, ">=": value >= t,
            "range": self.high is not None and t <= value <= self.high,
        }[self.op]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure: ``lookup(GET source, path)``; with ``each``, one row per item of the list at ``each``
    (labelled by the item's ``key``), the value at ``path`` inside the item."""

    id: str
    section: str
    label: str
    source: str
    path: str
    unit: Unit
    target: Target | None = None
    help: str = ""
    each: str | None = None
    key: str = ""


SECTIONS: tuple[tuple[str, str], ...] = (
    ("automation", "Automation coverage"),
    ("performance", "Performance"),
    ("cost", "Cost"),
    ("alerting", "Alerting"),
    ("improvement", "Continuous improvement"),
    ("status", "System status"),
)

_OPS = "/api/zeroops/operations/metrics"
_BUDGET = "/api/budget/status"
_ALERTS = "/api/alerting/metrics"
_STATUS = "/api/zeroops/operations/status"
_DOC10 = "design doc, Zero-Ops Metrics"
_BENCH = "design doc, Performance Benchmarks"

FIGURES: tuple[Figure, ...] = (
    Figure("automation_rate", "automation", "Automation rate", _OPS, "automation_rate", "percent",
           Target(">", 0.999, "> 99.9 %", ref=_DOC10),
           "engines' executed world-changing actions over those plus the ones people approved or did by hand"),
    Figure("human_intervention_rate", "automation", "Human intervention", _OPS, "human_intervention_rate", "percent",
           Target("<", 0.001, "< 0.1 %", ref=_DOC10),
           "people's acts through the API (votes, overrides, manual scaling, limits) over those plus automated actions"),
    Figure("decisions_total", "automation", "Total decisions", _OPS, "decisions_total", "count", None,
           "records in the audit trail"),
    Figure("approvals_pending", "automation", "Waiting for approval", _OPS, "approvals_pending", "count", None,
           "proposals in the approval queue"),
    Figure("mttd", "performance", "MTTD", _OPS, "mttd_s", "seconds",
           Target("<", 10.0, "< 10 s", ref=_DOC10), "mean of incident declared minus its first firing alert"),
    Figure("mttr", "performance", "MTTR", _OPS, "mttr_s", "seconds",
           Target("<", 60.0, "< 60 s", ref=_DOC10), "mean of resolved minus declared, over resolved incidents"),
    Figure("availability", "performance", "Availability", _OPS, "availability", "percent",
           Target(">", 0.99999, "> 99.999 %", ref=_DOC10), "requests served over requests arriving, now"),
    Figure("change_success_rate", "performance", "Change success", _OPS, "change_success_rate", "percent",
           Target(">", 0.99, "> 99 %", ref=_DOC10), "deploys not rolled back"),
    Figure("spend_total", "cost", "Spend so far", _BUDGET, "spend.total", "money", None, "the run's spend"),
    Figure("spend_rate", "cost", "Spend rate (per hour)", _BUDGET, "spend.rate_per_hour", "money", None,
           "spend rate now"),
    Figure("budget_used", "cost", "Budget used", _BUDGET, "used", "percent",
           Target("<=", 1.0, "≤ 100 % (alert at 80 %)", ref="design doc, Autonomous Budget Management"),
           "spent over the budget's limit, per project", each="budgets", key="project"),
    Figure("alerts_fired", "alerting", "Alerts fired", _ALERTS, "alerts_fired", "count", None,
           "distinct alert firings"),
    Figure("suppression_rate", "alerting", "Suppressed", _ALERTS, "suppression_rate", "percent",
           Target(">", 0.90, "> 90 %", ref=_BENCH), "1 − pages sent / alerts fired"),
    Figure("pages", "alerting", "Sent to humans (pages)", _ALERTS, "pages", "count", None, "pages sent"),
    Figure("false_alert_rate", "alerting", "False alert rate", _ALERTS, "false_alert_rate", "percent",
           Target("<", 0.0001, "< 0.01 %", ref=_DOC10), "pages tied to no declared incident, over pages sent"),
    Figure("deploys", "improvement", "Changes deployed", _OPS, "deploys", "count", None,
           "deploy actions executed (canary steps and rollouts)"),
    Figure("rollbacks", "improvement", "Rolled back", _OPS, "rollbacks", "count", None,
           "deploys the improvement engine rolled back on a regression"),
    Figure("loop_running", "status", "Control loop running", _STATUS, "loop.running", "text",
           Target("==", True, "running", ref=_DOC10), "the twin or live loop is stepping"),
    Figure("automation_paused", "status", "Automation paused", _STATUS, "automation.paused", "text",
           Target("==", False, "not paused", ref="design doc, Safety Controls"), "an emergency override pauses it"),
    Figure("incidents_open", "status", "Open incidents", _STATUS, "incidents_open", "count", None,
           "declared incidents not resolved"),
    Figure("servers_active", "status", "Active servers", _STATUS, "servers_active", "count", None,
           "servers serving now"),
)


# The lists and actions the page uses besides the figures ({id}: a proposal id).
ENDPOINTS: dict[str, str] = {
    "whoami": "/api/dashboard/me",
    "decisions": "/api/zeroops/operations/decisions",
    "incidents": "/api/zeroops/incidents",
    "incident": "/api/zeroops/incidents/{id}",
    "postmortem": "/api/zeroops/incidents/{id}/postmortem",
    "approvals": "/api/zeroops/approvals",
    "approve": "/api/zeroops/approvals/{id}/approve",
    "deny": "/api/zeroops/approvals/{id}/deny",
    "events": "/api/zeroops/events",
    "requests": "/api/selfservice/requests",
    "request_approve": "/api/selfservice/requests/{id}/approve",
    "request_deny": "/api/selfservice/requests/{id}/deny",
}


def lookup(doc: Any, path: str) -> Any:
    """The value at dot-separated ``path`` in ``doc`` (None when a key is missing)."""
    cur = doc
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def as_json() -> dict[str, Any]:
    """The table the page reads (``/dashboard/figures.json``)."""
    return {
        "sections": [{"id": s, "title": t} for s, t in SECTIONS],
        "figures": [asdict(f) for f in FIGURES],
        "endpoints": ENDPOINTS,
    }
