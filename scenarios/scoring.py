"""Scoring a run from the world's ground truth plus the action log — built so that it cannot be gamed.

Nothing here is tuned to a scenario: every figure is counted from what
happened.  Each rule is written out in docs/results.md; in short:

* **Detection is a matched declaration.**  Only an *executed* ``DeclareIncident``
  counts (never a proposed, denied or failed record, never any other kind of
  action: a Notify, a Page, a scale-out or a restart detects nothing).  It is
  matched to a ground-truth fault when its components or root-cause
  candidates overlap the fault's components (services, servers, hypervisors,
  zones — and the services that call an affected service, where its errors
  spread) and it was declared between the onset (minus ``ONSET_TOLERANCE_S``)
  and the fault's end plus ``DETECTION_GRACE_S``.  Greedy by declaration time,
  one declaration to one fault.  The paged human starting work also detects.
* **MTTD / MTTR / time to mitigate**: onset → detection / resolution
  predicate true (``FaultRecord.end``) / SLO no longer breached
  (``mitigated_at``); mean, p50, p95 and max.
* **Automation rate** = incidents resolved by automation (without a human
  approving the resolving action) / incidents that needed resolving (not
  self-resolved); routine scaling is not an incident and never counts.
* **Savings** count only at equal or better service than static on the same
  seed (availability and SLO minutes on user-facing requests); otherwise
  ``cost_savings`` is None and ``cost_savings_comparable`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.base import RECORD_ONLY_KINDS
from control.runtime import ActionRecord
from scenarios.budget_scoring import BUDGET_METRICS, budget_metrics
from scenarios.chaos_scoring import CHAOS_METRICS, CHAOS_TEXT_METRICS, chaos_metrics
from scenarios.elasticity import METRIC_NAMES as ELASTICITY_METRICS
from scenarios.elasticity import UNSERVED as UNSERVED_METRIC
from scenarios.elasticity import run_elasticity
from scenarios.release_scoring import RELEASE_METRICS, release_metrics
from scenarios.request_scoring import REQUEST_METRICS, request_metrics
from twin.faults import CATALOG

if TYPE_CHECKING:
    from twin.groundtruth import FaultRecord
    from twin.world import World

# ----------------------------------------------------------------- the rules
ONSET_TOLERANCE_S = 0.0  # a declaration before the onset (minus this) detects nothing: it was not about this fault
DETECTION_GRACE_S = 60.0  # a declaration up to this long after the fault ended still matches it (scrape lag)
PAGE_DEADLINES_S = {"P0": 300.0, "P1": 900.0}  # a P0/P1 needs a page or an automatic fix within this
REPAGE_S = 900.0  # a further page about the same incident counts as a useful escalation only this long after
SEVERITIES = ("P0", "P1", "P2", "P3", "P4")
# ground-truth severity from user impact (share of user-facing requests that failed during the fault) and blast
# radius (share of services affected, callers included): the first row that holds
SEVERITY_TABLE: tuple[tuple[str, float, float], ...] = (
    # (severity, user impact at least, blast radius at least)
    ("P0", 0.25, 2.0),  # a quarter of user requests failing (blast alone never makes a P0)
    ("P1", 0.05, 2.0),
    ("P2", 0.01, 0.5),  # or half of all services affected
    ("P3", 0.001, 2.0),  # or (below) any SLO breach on an affected service during the fault
)
SAVINGS_TOLERANCE = 1e-9  # "equal" service: availability and SLO minutes within this of static's

METRICS = (
    "incidents", "incidents_detected", "incidents_declared", "incidents_missed", "incidents_auto_resolved",
    "incidents_auto_resolved_approved", "incidents_human_resolved", "incidents_self_resolved",
    "incidents_unresolved", "incidents_chaos",
    "mttd_s", "mttd_p50_s", "mttd_p95_s", "mttd_max_s",
    "mttr_s", "mttr_p50_s", "mttr_p95_s", "mttr_max_s", "mttr_lower_bound",
    "ttm_s", "ttm_p50_s", "ttm_p95_s", "ttm_max_s",
    "declarations", "declarations_matched", "declarations_duplicate", "declarations_false",
    "detection_precision", "detection_recall", "false_incidents_per_day",
    "severity_accuracy", "severity_within_one", "root_cause_top1", "root_cause_top3",
    "availability", "availability_scope", "availability_all_services",
    "slo_violation_minutes", "slo_violation_minutes_all_services", "slo_violation_minutes_per_day",
    "good_user_requests", "cost", "cost_per_hour", "cost_per_million_good", "cost_savings",
    "cost_savings_comparable", "cost_savings_reason", "cost_savings_raw", "cost_per_million_good_savings",
    "human_interventions", "human_approvals", "human_intervention_rate", "automation_rate",
    "alerts_raw", "pages", "pages_engine", "pages_alerts", "pages_true", "pages_precision",
    "incidents_missed_p0p1", "notifications", "notifies_dashboard", "suppression_rate", "pages_false",
    "false_alert_rate",
    "actions_taken", "actions_failed", "actions_denied", "actions_proposed", "decisions_recorded",
    "rollbacks", "rollbacks_of_good_releases", *RELEASE_METRICS,
    "oom_kills", "preemptions", "peak_servers", "server_hours",
    *ELASTICITY_METRICS, UNSERVED_METRIC,
    "batch_jobs", "batch_jobs_completed", "batch_deadline_misses", "batch_jobs_pending",
    *BUDGET_METRICS, *CHAOS_METRICS, *REQUEST_METRICS,
)
# Metrics a scenario's ``targets`` can bound (the numeric ones; flags and labels are not targets).
NON_NUMERIC_METRICS = frozenset({"availability_scope", "cost_savings_comparable", "cost_savings_reason",
                                 "mttr_lower_bound", *CHAOS_TEXT_METRICS})


@dataclass
class Incident:
    """One ground-truth fault as scored: detection, declaration, severity, root cause, resolution."""

    id: str
    type: str
    start: float
    end: float | None
    detected_at: float | None
    detected_by: str | None
    resolved_by: str | None
    services: list[str]
    servers: list[str]
    root_cause: str
    hypervisors: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    root_component: str = ""
    root_component_source: str = "truth"  # "truth" or "fallback" (twin core had not filled it)
    declared_id: str | None = None
    declared_at: float | None = None
    declared_by: str | None = None
    declared_severity: str | None = None
    true_severity: str = "P4"
    user_impact: float = 0.0  # share of user-facing requests that failed during the fault
    root_cause_rank: int | None = None  # 1-based rank of the true root among the final candidates
    mitigated_at: float | None = None
    ttm_lower_bound: bool = False
    paged_at: float | None = None  # first page tied to this fault
    missed_deadline: bool = False  # a P0/P1 with no page and no automatic fix within its deadline
    chaos: bool = False
    run_end: float = 0.0

    @property
    def ttd(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.start

    @property
    def ttr(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def ttm(self) -> float | None:
        return None if self.mitigated_at is None else max(self.mitigated_at - self.start, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "start": self.start, "end": self.end,
                "detected_at": self.detected_at, "detected_by": self.detected_by, "resolved_by": self.resolved_by,
                "ttd_s": self.ttd, "ttr_s": self.ttr, "services": self.services, "servers": self.servers,
                "root_cause": self.root_cause, "hypervisors": self.hypervisors, "zones": self.zones,
                "root_component": self.root_component, "root_component_source": self.root_component_source,
                "declared_id": self.declared_id, "declared_at": self.declared_at, "declared_by": self.declared_by,
                "declared_severity": self.declared_severity, "true_severity": self.true_severity,
                "user_impact": self.user_impact, "root_cause_rank": self.root_cause_rank,
                "mitigated_at": self.mitigated_at, "ttm_s": self.ttm, "paged_at": self.paged_at,
                "missed_deadline": self.missed_deadline, "chaos": self.chaos}


INCIDENT_COLUMNS = ("id", "type", "start", "end", "detected_at", "detected_by", "resolved_by", "ttd_s", "ttr_s",
                    "services", "servers", "root_cause", "hypervisors", "zones", "root_component",
                    "root_component_source", "declared_id", "declared_at", "declared_by", "declared_severity",
                    "true_severity", "user_impact", "root_cause_rank", "mitigated_at", "ttm_s", "paged_at",
                    "missed_deadline", "chaos")


@dataclass
class Declaration:
    """An executed DeclareIncident, with the severity and candidates it ended with (executed updates applied)."""

    id: str
    at: float
    seq: int
    engine: str
    components: frozenset[str]  # as declared, root-cause candidates included: what matching uses
    severity: str
    root_causes: list[str]  # final ranked candidates
    fault: str | None = None  # the fault it was matched to
    verdict: str = "unmatched"  # "matched", "duplicate" (a fault already matched), "false" (no fault at all)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "engine": self.engine, "components": sorted(self.components),
                "severity": self.severity, "root_causes": self.root_causes, "fault": self.fault,
                "verdict": self.verdict}


@dataclass
class Score:
    metrics: dict[str, Any]
    incidents: list[Incident] = field(default_factory=list)
    declarations: list[Declaration] = field(default_factory=list)

    @property
    def severity_confusion(self) -> dict[str, dict[str, int]]:
        """See :func:`severity_confusion`."""
        return severity_confusion(self.incidents)


CONFUSION_COLUMNS = (*SEVERITIES, "none")


def severity_confusion(incidents: Iterable[Incident]) -> dict[str, dict[str, int]]:
    """Counts of non-chaos incidents by true severity (rows) and declared severity (columns, ``none`` when no
    declaration matched): the full 5 x 6 grid, zeros included, so runs add up cell by cell."""
    m = {t: dict.fromkeys(CONFUSION_COLUMNS, 0) for t in SEVERITIES}
    for i in incidents:
        if i.chaos or i.true_severity not in m:
            continue
        col = i.declared_severity if i.declared_id is not None and i.declared_severity in SEVERITIES else "none"
        m[i.true_severity][col] += 1
    return m


# -------------------------------------------------------------------- helpers
def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def _pct(xs: Sequence[float], q: float) -> float | None:
    """Percentile with linear interpolation between order statistics (numpy's default)."""
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else None


def _stats(prefix: str, xs: Sequence[float]) -> dict[str, float | None]:
    return {f"{prefix}_s": _mean(xs), f"{prefix}_p50_s": _pct(xs, 50), f"{prefix}_p95_s": _pct(xs, 95),
            f"{prefix}_max_s": max(xs) if len(xs) else None}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


class _Topology:
    """What the scorer needs to relate components: aliases, callers, server → service, edge services."""

    def __init__(self, world: World) -> None:
        self.alias: dict[str, str] = {}
        for h, name in enumerate(getattr(world, "hv_names", [])):
            self.alias[f"hv-{h:04d}"] = name  # the adapter's hypervisor id → the name ground truth uses
        deps = {s.name: [d.service for d in s.dependencies] for s in world.cfg.services}
        self.services = list(deps)
        self.callers: dict[str, set[str]] = {s: set() for s in deps}
        for s, ds in deps.items():
            for d in ds:
                self.callers.setdefault(d, set()).add(s)
        # user-facing (edge) services: the ones no other service calls
        self.edge = [s for s in self.services if not self.callers.get(s)]
        self._w = world

    def norm(self, c: str) -> str:
        return self.alias.get(c, c)

    def service_of(self, target: str) -> str | None:
        w = self._w
        if target.startswith("srv-") and target[4:].isdigit():
            i = int(target[4:])
            if 0 <= i < w.n and int(w.svc[i]) >= 0:
                return str(w.svc_names[int(w.svc[i])])
        return None

    def upstream(self, services: Iterable[str]) -> set[str]:
        """Every service that (transitively) calls one of ``services``: where their errors spread."""
        out: set[str] = set()
        todo = list(services)
        while todo:
            for c in self.callers.get(todo.pop(), ()):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out


def _root_component(f: FaultRecord) -> tuple[str, str]:
    """The fault's root component, or (until twin core fills it) the component its type is rooted in."""
    if f.root_component:
        return f.root_component, "truth"
    if f.type in ("server_crash", "disk_pressure") and f.servers:
        return f.servers[0], "fallback"
    if f.type in ("hypervisor_failure", "cpu_throttling") and f.hypervisors:
        return f.hypervisors[0], "fallback"
    if f.type in ("az_outage", "network_partition") and f.zones:
        return f.zones[0], "fallback"
    return (f.services[0] if f.services else ""), "fallback"


def _true_severity(impact: float, blast: float, breached: bool) -> str:
    for sev, imp, bl in SEVERITY_TABLE:
        if impact >= imp or blast >= bl:
            return sev
    return "P3" if breached else "P4"


# ---------------------------------------------------------------- the scorer
def score_run(world: World, records: list[ActionRecord]) -> Score:
    truth = world.truth
    run_end = float(world.now())
    topo = _Topology(world)
    faults = list(truth.faults)

    # the fault's components as ground truth names them, and what a declaration may name to match it
    direct: dict[str, set[str]] = {}
    matchable: dict[str, set[str]] = {}
    for f in faults:
        comps = set(f.services) | set(f.servers) | set(f.hypervisors) | set(f.zones)
        direct[f.id] = comps
        matchable[f.id] = comps | topo.upstream(f.services)

    def window_end(f: FaultRecord) -> float:
        return f.end if f.end is not None else run_end

    # ---- declarations: executed DeclareIncident only; executed updates give the final severity and candidates
    decls: list[Declaration] = []
    by_id: dict[str, Declaration] = {}
    for r in sorted(records, key=lambda r: r.seq):
        if r.outcome != "executed":
            continue
        a: Any = r.action
        if r.kind == "declare_incident" and a.incident_id not in by_id:
            cands = [topo.norm(str(rc.get("component", ""))) for rc in a.root_causes]
            comps = frozenset({topo.norm(c) for c in a.components} | {c for c in cands if c})
            d = Declaration(a.incident_id, r.at, r.seq, r.engine, comps, a.severity, cands)
            decls.append(d)
            by_id[d.id] = d
        elif r.kind == "update_incident" and a.incident_id in by_id:
            d = by_id[a.incident_id]
            if a.severity is not None:
                d.severity = a.severity
            if a.root_causes is not None:
                d.root_causes = [topo.norm(str(rc.get("component", ""))) for rc in a.root_causes]

    # ---- matching: greedy in declaration order; a declaration takes the earliest-onset unmatched fault it fits,
    # preferring one it names directly over one it only sees through spread errors
    scored = faults  # chaos faults are detected like any other; they never count as organic (see _metrics)
    matched: dict[str, Declaration] = {}
    for d in decls:
        fits = [f for f in scored
                if f.start - ONSET_TOLERANCE_S <= d.at <= window_end(f) + DETECTION_GRACE_S
                and d.components & matchable[f.id]]
        free = [f for f in fits if f.id not in matched]
        if free:
            best = min(free, key=lambda f: (not (d.components & direct[f.id]), f.start, f.id))
            d.fault, d.verdict = best.id, "matched"
            matched[best.id] = d
        elif fits:
            d.fault, d.verdict = fits[0].id, "duplicate"
        else:
            d.verdict = "false"

    # ---- user impact per fault, from the per-minute telemetry of the user-facing services
    impact_of = _impact_fn(world, topo)
    breaches = list(truth.breaches) + _open_breaches(truth, run_end)

    # ---- pages: what an engine paged (Page executed) and what the alert rules paged (recorded by the world)
    pages = _pages(world, records, by_id, topo)

    # ---- approvals: executed engine actions that a human approved first
    approved = {r.seq for r in records if r.outcome == "executed" and r.verdict.decision == "approval"}

    incidents: list[Incident] = []
    useful_pages: set[int] = set()
    about_a_fault: set[int] = set()  # pages sent while some fault was active, about its components
    for f in faults:
        root, root_src = _root_component(f)
        d = matched.get(f.id)
        detected_at, detected_by = (d.at, d.engine) if d else (None, None)
        if f.human_started is not None and (detected_at is None or f.human_started < detected_at):
            detected_at, detected_by = f.human_started, "human"
        end = window_end(f)
        svc_hit = set(f.services) | topo.upstream(f.services)
        breached_here = [(s, a, b) for s, a, b in breaches if s in svc_hit and a <= end and b >= f.start]
        impact = impact_of(f.start, end)
        blast = len(svc_hit) / max(len(topo.services), 1)
        sev = _true_severity(impact, blast, bool(breached_here))
        inc = Incident(f.id, f.type, f.start, f.end, detected_at, detected_by, _resolver(f, records, approved),
                       list(f.services), list(f.servers), f.root_cause, list(f.hypervisors), list(f.zones),
                       root, root_src, chaos=f.chaos, true_severity=sev, user_impact=impact, run_end=run_end)
        if d is not None:
            inc.declared_id, inc.declared_at, inc.declared_by, inc.declared_severity = d.id, d.at, d.engine, d.severity
            inc.root_cause_rank = next((k + 1 for k, c in enumerate(d.root_causes) if c == topo.norm(root)), None)
        # time to mitigate: the twin's mitigated_at; until twin core fills it, the end of the last SLO breach of an
        # affected service that overlapped the fault (None: nothing was breached)
        if f.mitigated_at is not None:
            inc.mitigated_at = f.mitigated_at
        elif breached_here:
            inc.mitigated_at = max(b for _, _, b in breached_here)
            inc.ttm_lower_bound = inc.mitigated_at >= run_end
        tied = sorted((t, k) for k, (t, comps) in enumerate(pages)
                      if f.start <= t <= end + DETECTION_GRACE_S and comps & matchable[f.id])
        inc.paged_at = tied[0][0] if tied else None
        about_a_fault.update(k for _, k in tied)
        last = -math.inf
        for t, k in tied:  # the first page about a fault, and escalations REPAGE_S apart, are useful; repeats are noise
            if t >= last + REPAGE_S:
                useful_pages.add(k)
                last = t
        deadline = PAGE_DEADLINES_S.get(sev)
        if deadline is not None:
            paged_in_time = inc.paged_at is not None and inc.paged_at <= f.start + deadline
            fixed_in_time = inc.resolved_by == "automation" and f.end is not None and f.end <= f.start + deadline
            inc.missed_deadline = not (paged_in_time or fixed_in_time)
        incidents.append(inc)

    metrics = _metrics(world, records, incidents, decls, pages, len(useful_pages), approved, topo, matchable, run_end)
    metrics.update(_alerting_metrics(records, metrics, len(pages) - len(about_a_fault)))
    return Score(metrics, incidents, decls)


def _alerting_metrics(records: list[ActionRecord], m: Mapping[str, Any], false_pages: int) -> dict[str, Any]:
    """What reached humans against what the rules raised (docs/results.md, "Alerting").

    ``notifications`` are pages — executed ``Page`` actions plus raw alerts that paged the on-call human; a
    ``Notify`` pages nobody (a dashboard entry) and is counted apart.  ``suppression_rate`` is
    1 − notifications / raw firing alerts (negative when more pages went out than alerts came in);
    ``false_alert_rate`` is the share of pages tied to no fault (sent while no fault was active, or about none of
    the active faults' components or callers).
    """
    raw, sent = m["alerts_raw"], m["pages"]
    return {
        "notifications": sent,
        "notifies_dashboard": sum(1 for r in records if r.outcome == "executed" and r.kind == "notify"),
        "suppression_rate": 1.0 - sent / raw if raw else None,
        "pages_false": false_pages,
        "false_alert_rate": _ratio(false_pages, sent),
    }


def _resolver(f: FaultRecord, records: list[ActionRecord], approved: set[int]) -> str | None:
    """Who resolved the fault: the resolving action's actor (twin core), else ``resolved_by``.

    An automatic fix whose action waited for a human approval is ``automation-approved``: a person decided.
    """
    ra = f.resolving_action
    who = (ra.get("actor") if ra else None) or f.resolved_by
    if who not in (None, "human", "self"):
        who = "automation"  # an engine (whatever name the twin records for it)
    if who != "automation" or f.end is None:
        return who
    if ra and ra.get("kind") and ra.get("target"):
        cands = [r for r in records if r.outcome == "executed" and r.kind == ra["kind"] and r.target == ra["target"]
                 and r.at <= f.end]
    else:  # until twin core fills resolving_action: the last executed fix of this fault's type on its components
        comps = set(f.services) | set(f.servers) | set(f.hypervisors) | set(f.zones)
        fixes = set(CATALOG[f.type].fixes) if f.type in CATALOG else set()
        cands = [r for r in records if r.outcome == "executed" and r.kind in fixes and r.target in comps
                 and f.start <= r.at <= f.end]
    last = max(cands, key=lambda r: (r.at, r.seq)) if cands else None
    if last is not None and "chaos_rollback" in (last.action.evidence or {}):
        return "self"  # the experiment ended its own fault: no one remediated it
    if last is not None and last.seq in approved:
        return "automation-approved"
    return who


def _open_breaches(truth: Any, run_end: float) -> list[tuple[str, float, float]]:
    """Breaches still open (world not finished): treated as lasting to the end of the run."""
    out = []
    open_ = getattr(truth, "breach_open", None)
    if open_ is not None:
        for i in np.flatnonzero(~np.isnan(open_)):
            out.append((truth.services[i], float(open_[i]), run_end))
    return out


def _impact_fn(world: World, topo: _Topology) -> Any:
    """Share of user-facing requests that failed in [a, b], from the per-minute telemetry rollup."""
    try:
        df = world.metrics.to_pandas(60)
        rr = df["request_rate"][topo.edge].to_numpy(dtype=float)
        er = df["error_ratio"][topo.edge].to_numpy(dtype=float)
        t = df.index.to_numpy(dtype=float)
    except (KeyError, AttributeError, ValueError):
        return lambda a, b: 0.0
    offered = np.nansum(rr, axis=1)
    failed = np.nansum(rr * np.clip(er, 0.0, 1.0), axis=1)

    def impact(a: float, b: float) -> float:
        m = (t + 60.0 > a) & (t <= b)  # minutes that overlap [a, b]
        off = float(offered[m].sum())
        return float(failed[m].sum()) / off if off > 0 else 0.0

    return impact


def _pages(world: World, records: list[ActionRecord], by_id: Mapping[str, Declaration],
           topo: _Topology) -> list[tuple[float, set[str]]]:
    """Every page sent, with the components it was about: engine Pages (their components and their incident's)
    and the raw alerts that paged the on-call human (the alert's service and server labels)."""
    out: list[tuple[float, set[str]]] = []
    for r in records:
        if r.outcome == "executed" and r.kind == "page":
            a: Any = r.action
            comps = {topo.norm(c) for c in a.components}
            if a.incident_id in by_id:
                comps |= set(by_id[a.incident_id].components)
            out.append((r.at, comps))
    labels = {a.fingerprint: a.labels for a in getattr(world.alerting, "alerts", ())}
    for t, reason in world.truth.pages:
        if str(reason).startswith("page:"):
            continue  # an engine's Page, counted above from the action log
        lab = labels.get(reason, {})
        out.append((float(t), {v for k, v in lab.items() if k in ("service", "server", "hypervisor", "zone") and v}))
    return out


def _metrics(world: World, records: list[ActionRecord], incidents: list[Incident], decls: list[Declaration],
             pages: list[tuple[float, set[str]]], true_pages: int, approved: set[int], topo: _Topology,
             matchable: Mapping[str, set[str]], run_end: float) -> dict[str, Any]:
    truth = world.truth
    duration = max(run_end, 1e-9)
    days = duration / 86400.0
    real = [i for i in incidents if not i.chaos]

    ttd = [i.ttd for i in incidents if i.ttd is not None]
    # an unresolved incident counts until the end of the run: MTTR is then a lower bound, never flattered
    ttr = [i.ttr if i.ttr is not None else run_end - i.start for i in incidents]
    ttm = [i.ttm for i in incidents if i.ttm is not None]

    matched = [d for d in decls if d.verdict == "matched"]
    false = [d for d in decls if d.verdict == "false"]
    declared = [i for i in real if i.declared_id is not None]
    sev_pairs = [(SEVERITIES.index(i.declared_severity), SEVERITIES.index(i.true_severity)) for i in declared
                 if i.declared_severity in SEVERITIES]

    needed = [i for i in incidents if i.resolved_by != "self"]  # unresolved ones needed resolving too
    auto = [i for i in incidents if i.resolved_by == "automation"]

    # human-intervention rate over incident work: routine actions outside any fault do not dilute it
    def incident_work(r: ActionRecord) -> bool:
        comps = {r.target, topo.service_of(r.target) or ""}
        return any(i.start <= r.at <= (i.end if i.end is not None else run_end) and comps & matchable[i.id]
                   for i in incidents)

    world_changing = [r for r in records if r.outcome == "executed" and r.kind not in RECORD_ONLY_KINDS]
    work = [r for r in world_changing if incident_work(r)]
    humans = len(truth.human_actions)
    approvals = sum(1 for r in work if r.seq in approved)

    # availability and SLO minutes on user-facing (edge) requests; all services only if the twin has no edge figures
    edge_off = float(np.sum(getattr(truth, "edge_offered", 0.0)))
    if edge_off > 0:
        good = float(np.sum(truth.edge_good))
        availability, scope = good / edge_off, "edge"
    else:
        off = float(truth.offered.sum())
        good = float(truth.good.sum())
        availability, scope = (good / off if off > 0 else None), "all_services"
    off_all = float(truth.offered.sum())
    edge_idx = [truth.services.index(s) for s in topo.edge if s in truth.services]
    slo_edge = float(truth.breach_seconds[edge_idx].sum()) / 60.0 if edge_idx else 0.0

    engine_pages = sum(1 for r in records if r.outcome == "executed" and r.kind == "page")
    n = world.n
    life = np.minimum(world.deleted_at[:n], run_end) - np.minimum(world.created_at[:n], run_end)
    cost = float(world.spend_total)
    m: dict[str, Any] = {
        "incidents": len(real),  # organic only: chaos faults are counted in incidents_chaos
        "incidents_detected": len(ttd),
        "incidents_declared": len(declared),
        "incidents_missed": len(real) - len(declared),
        "incidents_auto_resolved": len(auto),
        "incidents_auto_resolved_approved": sum(1 for i in incidents if i.resolved_by == "automation-approved"),
        "incidents_human_resolved": sum(1 for i in incidents if i.resolved_by == "human"),
        "incidents_self_resolved": sum(1 for i in incidents if i.resolved_by == "self"),
        "incidents_unresolved": sum(1 for i in incidents if i.end is None),
        "incidents_chaos": sum(1 for i in incidents if i.chaos),
        **_stats("mttd", ttd),
        **_stats("mttr", ttr),
        "mttr_lower_bound": any(i.end is None for i in incidents),
        **_stats("ttm", ttm),
        "declarations": len(decls),
        "declarations_matched": len(matched),
        "declarations_duplicate": sum(1 for d in decls if d.verdict == "duplicate"),
        "declarations_false": len(false),
        "detection_precision": _ratio(len(matched), len(decls)),
        "detection_recall": _ratio(len(declared), len(real)),
        "false_incidents_per_day": len(false) / days if days > 0 else None,
        "severity_accuracy": _ratio(sum(1 for a, b in sev_pairs if a == b), len(sev_pairs)),
        "severity_within_one": _ratio(sum(1 for a, b in sev_pairs if abs(a - b) <= 1), len(sev_pairs)),
        "root_cause_top1": _ratio(sum(1 for i in declared if i.root_cause_rank == 1), len(declared)),
        "root_cause_top3": _ratio(sum(1 for i in declared if i.root_cause_rank is not None
                                      and i.root_cause_rank <= 3), len(declared)),
        "availability": availability,
        "availability_scope": scope,
        "availability_all_services": float(truth.good.sum()) / off_all if off_all > 0 else None,
        "slo_violation_minutes": slo_edge,
        "slo_violation_minutes_all_services": float(truth.breach_seconds.sum()) / 60.0,
        "slo_violation_minutes_per_day": slo_edge / days if days > 0 else None,
        "good_user_requests": good,
        "cost": cost,
        "cost_per_hour": cost / duration * 3600.0,
        "cost_per_million_good": cost / (good / 1e6) if good > 0 else None,
        "cost_savings": None,  # filled in by compare_to_static against the static run of the same seed
        "cost_savings_comparable": None,
        "cost_savings_reason": "no static run of the same scenario and seed",
        "cost_savings_raw": None,
        "cost_per_million_good_savings": None,
        "human_interventions": humans,
        "human_approvals": approvals,
        "human_intervention_rate": _ratio(humans + approvals, humans + len(work)),
        "automation_rate": _ratio(len(auto), len(needed)),
        "alerts_raw": sum(1 for a in world.alerting.alerts if a.state == "firing"),
        "pages": len(pages),
        "pages_engine": engine_pages,
        "pages_alerts": len(pages) - engine_pages,
        "pages_true": true_pages,
        "pages_precision": _ratio(true_pages, len(pages)),
        "incidents_missed_p0p1": sum(1 for i in incidents if i.missed_deadline),
        "actions_taken": len(world_changing),
        "actions_failed": sum(1 for r in records if r.outcome == "failed"),
        "actions_denied": sum(1 for r in records if r.outcome == "denied"),
        "actions_proposed": sum(1 for r in records if r.outcome == "proposed"),
        "decisions_recorded": sum(1 for r in records if r.outcome == "executed" and r.kind in RECORD_ONLY_KINDS),
        "rollbacks": len(_rollbacks(truth)),
        "rollbacks_of_good_releases": sum(1 for r in _rollbacks(truth) if not r[3]),
        "oom_kills": truth.oom_kills,
        "preemptions": truth.preemptions,
        "peak_servers": _peak_servers(world),
        "server_hours": float(np.maximum(life, 0).sum()) / 3600.0,
    }
    el = run_elasticity(world)  # SPEC RG elasticity, mean over the interactive services (scenarios/elasticity.py)
    m.update({k: el[k] for k in ELASTICITY_METRICS})
    m[UNSERVED_METRIC] = el[UNSERVED_METRIC]
    m.update(_batch_metrics(world, run_end))
    m.update(budget_metrics(world, records, run_end))  # budgets, spend forecasts, cost anomalies
    m.update(release_metrics(world))  # releases reaching 100 %, change success, detection (release_scoring.py)
    m.update(request_metrics(world, records))  # self-service approval rate and decision latency (request_scoring.py)
    m.update(chaos_metrics(world, records, incidents))  # resilience score of chaos experiments (chaos_scoring.py)
    return m


def _batch_metrics(world: World, run_end: float) -> dict[str, Any]:
    """Jobs of the batch services (twin/batch.py), summed over them; None where the world has none."""
    batch = getattr(world.truth, "batch", None)
    if batch is None:
        return {"batch_jobs": None, "batch_jobs_completed": None, "batch_deadline_misses": None,
                "batch_jobs_pending": None}
    per = batch.counts(run_end).values()
    return {"batch_jobs": sum(c["arrived"] for c in per), "batch_jobs_completed": sum(c["completed"] for c in per),
            "batch_deadline_misses": sum(c["missed"] for c in per),
            "batch_jobs_pending": sum(c["pending"] for c in per)}


def _rollbacks(truth: Any) -> list[tuple[float, str, str, bool, str]]:
    """Rollbacks by engines or humans (not the pipeline's own), with whether the release rolled back was bad."""
    return [r for r in getattr(truth, "rollbacks", ()) if r[4] != "pipeline"]


def _peak_servers(world: World) -> int:
    """Most servers alive at once, from creation and deletion times."""
    n = world.n
    events = np.concatenate([world.created_at[:n], world.deleted_at[:n]])
    deltas = np.concatenate([np.ones(n), -np.ones(n)])
    order = np.lexsort((deltas, events))  # deletions before creations at the same instant
    alive = np.cumsum(deltas[order])
    return int(alive.max()) if len(alive) else 0


# ------------------------------------------------------------------- savings
def compare_to_static(results: Sequence[Any]) -> None:
    """Fill the savings figures of each run against the ``static`` run of the same scenario and seed.

    Savings count only at equal or better service: when a run's availability
    (user-facing) is lower, or its SLO minutes higher, than static's,
    ``cost_savings`` is None, ``cost_savings_comparable`` False and
    ``cost_savings_reason`` says why; ``cost_savings_raw`` keeps the bare
    ``1 − cost / cost(static)`` for inspection.
    """
    static = {(r.scenario.name, r.seed): r for r in results if r.engines == "static"}
    for r in results:
        m = r.score.metrics
        base = static.get((r.scenario.name, r.seed))
        if base is None:
            continue
        b = base.score.metrics
        raw = 1.0 - m["cost"] / b["cost"] if b.get("cost") else None
        cpm, cpm_b = m.get("cost_per_million_good"), b.get("cost_per_million_good")
        reasons = []
        av, av_b = m.get("availability"), b.get("availability")
        if av is not None and av_b is not None and av < av_b - SAVINGS_TOLERANCE:
            reasons.append(f"availability {av:.5%} below static's {av_b:.5%}")
        slo, slo_b = m.get("slo_violation_minutes") or 0.0, b.get("slo_violation_minutes") or 0.0
        if slo > slo_b + SAVINGS_TOLERANCE:
            reasons.append(f"SLO minutes {slo:.2f} above static's {slo_b:.2f}")
        if raw is None:
            reasons.append("static cost is zero")
        comparable = not reasons
        m["cost_savings_raw"] = raw
        m["cost_savings_comparable"] = comparable
        m["cost_savings_reason"] = "; ".join(reasons)
        m["cost_savings"] = raw if comparable else None
        m["cost_per_million_good_savings"] = (1.0 - cpm / cpm_b if comparable and cpm is not None and cpm_b
                                              else None)
