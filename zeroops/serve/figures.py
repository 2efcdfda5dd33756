"""The zero-ops figures of a running loop, from its audit trail and its observation; never hard-coded.

:class:`Tally` counts audit record bodies (the whole trail at start, then each new record through the choke
point listener and :meth:`AppState.audit_event`).  :func:`operations_metrics` adds what only the world can say
(incidents for MTTD/MTTR, alerts for suppression, served/requested for availability).

Definitions (docs/serve.md):

* ``automation_rate`` — world-changing actions executed by engines without a person, over those plus the ones
  people approved or did by hand;
* ``human_intervention_rate`` — people's acts through the API (votes, overrides, manual scaling, limit
  changes, self-service requests decided by hand; not a team's submitting a request), over those plus the
  automated actions;
* ``mttd_s`` — mean of (incident declared − first firing alert on its top root-cause component, within the hour
  before): a proxy, since a running system does not know when a fault began (the twin's scoring uses that truth);
* ``mttr_s`` — mean of (resolved − declared) over resolved incidents;
* ``availability`` — requests served / requests arriving, summed over services, now;
* ``change_success_rate`` — releases not rolled back: 1 − rollbacks / releases observed (``obs.deploys``: by engines,
  people or a pipeline);
* ``false_alert_rate`` — pages tied to no declared incident, over pages sent;
* ``suppression_rate`` — 1 − pages sent / alerts fired (distinct fingerprint firings).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.base import RECORD_ONLY_KINDS

MTTD_WINDOW_S = 3600.0
NOT_INTERVENTIONS = frozenset({"submit_request"})  # a team asking for something is no operator intervening


def jsonable(v: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (JSON has neither)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [jsonable(x) for x in v]
    if hasattr(v, "tolist"):
        return jsonable(v.tolist())
    if hasattr(v, "__dataclass_fields__"):
        return {k: jsonable(getattr(v, k)) for k in v.__dataclass_fields__}
    return str(v)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


class Tally:
    """Running counts over audit record bodies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_outcome: Counter[tuple[str, str]] = Counter()  # (outcome, verdict decision)
        self.by_engine: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.automated = 0
        self.human_approved = 0
        self.human_acts = 0
        self.manual = 0
        self.deploys = 0
        self.rollbacks = 0
        self.pages = 0
        self.pages_no_incident = 0
        self.notifies = 0
        self.records = 0
        self.last_seq = 0

    def add_all(self, bodies: Iterable[dict[str, Any]]) -> None:
        for b in bodies:
            self.add(b)

    def add(self, b: Mapping[str, Any]) -> None:
        engine, kind, outcome = str(b.get("engine", "")), str(b.get("kind", "")), str(b.get("outcome", ""))
        decision = str(b.get("decision", ""))
        person = engine.startswith("api:")
        with self._lock:
            self.records += 1
            self.last_seq = max(self.last_seq, int(b.get("seq") or 0))
            self.by_outcome[(outcome, decision)] += 1
            self.by_engine[engine] += 1
            self.by_kind[kind] += 1
            executed = outcome == "executed"
            if person:
                if b.get("rule") == "manual-override" and executed:
                    self.manual += 1
                    self.human_acts += 1
                elif b.get("rule") in ("api", "reconcile") and kind not in NOT_INTERVENTIONS:
                    self.human_acts += 1  # a vote, an override, a limit change, a request decided by hand
            elif executed and kind not in RECORD_ONLY_KINDS:
                if decision == "approval" and b.get("approved_by"):
                    self.human_approved += 1
                elif decision == "allow":
                    self.automated += 1
            if executed and kind == "deploy":
                self.deploys += 1
            if executed and kind == "rollback_deploy":
                self.rollbacks += 1
            if executed and kind == "page":
                self.pages += 1
                if not (b.get("action") or {}).get("incident") and not (b.get("action") or {}).get("params", {}).get(
                        "incident_id"):
                    self.pages_no_incident += 1
            if executed and kind == "notify":
                self.notifies += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            decided = self.automated + self.human_approved + self.manual
            return {
                "decisions_total": self.records,
                "decisions_by_outcome": {f"{o}/{d}": n for (o, d), n in sorted(self.by_outcome.items())},
                "automated_actions": self.automated,
                "human_approved_actions": self.human_approved,
                "manual_actions": self.manual,
                "human_interventions": self.human_acts,
                "automation_rate": _ratio(self.automated, decided),
                "human_intervention_rate": _ratio(self.human_acts, self.human_acts + self.automated),
                "deploys": self.deploys,
                "rollbacks": self.rollbacks,
                "change_success_rate": (1.0 - self.rollbacks / self.deploys) if self.deploys else None,
                "pages": self.pages,
                "pages_without_incident": self.pages_no_incident,
                "notifications": self.notifies,
                "false_alert_rate": _ratio(self.pages_no_incident, self.pages),
            }


def incident_times(incidents: Iterable[Any], alerts: Iterable[Any]) -> tuple[list[float], list[float]]:
    """(detection delays, repair times) of declared incidents."""
    firing: dict[str, list[float]] = {}
    for a in alerts:
        if a.state != "firing":
            continue
        for v in (a.labels.get("service"), a.labels.get("server"), a.labels.get("component")):
            if v:
                firing.setdefault(str(v), []).append(float(a.starts_at))
    ttd, ttr = [], []
    for i in incidents:
        top = [str(c.get("component")) for c in i.root_causes[:1] if isinstance(c, Mapping) and c.get("component")]
        starts = [s for c in (top or [str(x) for x in i.components[:1]]) for s in firing.get(c, ())
                  if i.declared_at - MTTD_WINDOW_S <= s <= i.declared_at]
        if starts:
            ttd.append(i.declared_at - min(starts))
        if i.resolved_at is not None:
            ttr.append(i.resolved_at - i.declared_at)
    return ttd, ttr


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def world_figures(adapter: Any) -> dict[str, Any]:
    """What only the observation says: incidents, alerts, availability, servers, spend."""
    incidents = list(adapter.incidents())
    alerts = list(adapter.alerts(0.0))
    ttd, ttr = incident_times(incidents, alerts)
    req = sum(v for v in adapter.latest("request_rate").values() if math.isfinite(v))
    served = sum(v for v in adapter.latest("served_rate").values() if math.isfinite(v))
    fired = len({(a.fingerprint, a.starts_at) for a in alerts if a.state == "firing"})
    services = list(adapter.services())
    spend = adapter.spend()
    try:
        deploys = len(adapter.deploys(0.0))  # every release seen, by engines, people or a pipeline
    except (NotImplementedError, AttributeError):
        deploys = None
    return {
        "deploys_observed": deploys,
        "incidents_total": len(incidents),
        "incidents_open": sum(1 for i in incidents if i.status != "resolved"),
        "mttd_s": _mean(ttd), "mttr_s": _mean(ttr),
        "availability": min(1.0, served / req) if req > 0 else None,
        "alerts_fired": fired,
        "servers_active": sum(s.active for s in services),
        "servers_building": sum(s.building for s in services),
        "services": len(services),
        "spend_total": spend.total, "spend_rate_per_hour": spend.rate_per_hour,
    }


def operations_metrics(state: Any) -> dict[str, Any]:
    """The zero-ops figures now: the tally's and the world's, with suppression joining both."""
    t = state.tally.snapshot()
    with state.lock:
        w = world_figures(state.adapter)
    sent = t["pages"]
    w["suppression_rate"] = (1.0 - sent / w["alerts_fired"]) if w["alerts_fired"] else None
    deploys = w.get("deploys_observed") or t["deploys"]
    t["change_success_rate"] = max(0.0, 1.0 - t["rollbacks"] / deploys) if deploys else None
    return jsonable({**t, **w, "now": state.now()})


PROM_METRICS: dict[str, tuple[str, str]] = {  # key -> (metric name, help)
    "automation_rate": ("zeroops_automation_rate", "Automated world-changing actions over all executed ones"),
    "human_intervention_rate": ("zeroops_human_intervention_rate", "People's acts over people's plus automated"),
    "mttd_s": ("zeroops_mttd_seconds", "Mean time to detect declared incidents"),
    "mttr_s": ("zeroops_mttr_seconds", "Mean time to resolve declared incidents"),
    "availability": ("zeroops_availability_ratio", "Requests served over requests arriving, now"),
    "change_success_rate": ("zeroops_change_success_rate", "Deploys not rolled back"),
    "false_alert_rate": ("zeroops_false_alert_rate", "Pages tied to no declared incident"),
    "suppression_rate": ("zeroops_alert_suppression_rate", "Alerts fired that paged nobody"),
    "incidents_open": ("zeroops_incidents_open", "Declared incidents not resolved"),
    "servers_active": ("zeroops_servers_active", "Active servers"),
    "spend_rate_per_hour": ("zeroops_spend_rate_per_hour", "Spend rate now, per hour"),
    "pending_approvals": ("zeroops_approvals_pending", "Proposals waiting for people"),
    "automation_paused": ("zeroops_automation_paused", "1 while an override or a disable pauses automation"),
}
PROM_COUNTERS: dict[str, tuple[str, str]] = {
    "human_interventions": ("zeroops_human_interventions", "People's acts through the API"),
    "pages": ("zeroops_pages", "Pages sent"),
    "incidents_total": ("zeroops_incidents", "Incidents declared"),
}


class ZeroOpsCollector:
    """A prometheus_client collector: the figures are computed at each scrape."""

    def __init__(self, state: Any, extra: Any = None) -> None:
        self.state = state
        self.extra = extra  # callable -> dict with pending_approvals / automation_paused

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = operations_metrics(self.state)
        if self.extra is not None:
            m.update(self.extra())
        for key, (name, help_) in PROM_METRICS.items():
            v = m.get(key)
            g = GaugeMetricFamily(name, help_)
            g.add_metric([], float("nan") if v is None else float(v))
            yield g
        for key, (name, help_) in PROM_COUNTERS.items():
            c = CounterMetricFamily(name, help_)
            c.add_metric([], float(m.get(key) or 0))
            yield c
        d = CounterMetricFamily("zeroops_decisions", "Decisions in the audit trail", labels=["outcome", "verdict"])
        for k, n in self.state.tally.snapshot()["decisions_by_outcome"].items():
            o, _, v = k.partition("/")
            d.add_metric([o, v], float(n))
        yield d
