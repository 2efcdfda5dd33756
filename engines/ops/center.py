"""The ops center: the engine that turns anomalies into declared, classified, fixed and resolved incidents.

Each step (every ``cadence`` seconds, from the observation at ``now`` only):

1. the anomaly feed (:mod:`engines.ops.anomalies`) scores this observation;
2. anomalies are grouped into incidents by topology and time (:mod:`engines.ops.grouping`);
3. a group that is corroborated (a hard signal, two signals, or one sustained) is declared:
   ``DeclareIncident`` with its components, the severity of the classifier and the ranked root-cause
   candidates of the RCA (``Candidate.as_mapping()``);
4. when confident, the best matching runbook starts; the center steps it every tick and reports
   ``UpdateIncident`` (investigating → mitigating → mitigated);
5. once the runbook verified and the incident's signals are normal for ``calm_s``, ``ResolveIncident``;
6. it pages a human (``Page``) for P0, for low confidence or no runbook, for a failed runbook, when the
   gate asks for an approval or denies an action, and when an incident outlives its deadline.

Every action carries its confidence, the alternatives considered, the evidence and
``evidence["expected_impact"]``.  It coordinates with other engines (the reactive scaler) only through what
the observation shows: a server capacity fix is not repeated for a service that is already building servers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Action,
    DeclareIncident,
    MigrateServer,
    Observation,
    Page,
    RebootServer,
    ResolveIncident,
    RestartService,
    RollbackDeploy,
    StartServer,
    StopServer,
    UpdateIncident,
)
from control.runtime import ActionRecord
from engines.ops.anomalies import AnomalyFeed
from engines.ops.grouping import Grouper, Incident, corroborated, summary
from engines.ops.rca import GraphRCA
from engines.ops.types import Anomaly, Classification, IncidentContext

# actions that take servers down on purpose for a while: their server_up 0 is expected, not a new anomaly
_BOUNCES = (RebootServer, StartServer, MigrateServer, RestartService, RollbackDeploy)


class OpsCenterConfig(BaseModel):
    """Settings of ``ops_center`` (the system's names first; engines.registry validates them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EnableFullAutomation: bool = Field(True, description="run runbooks without a human; false: declare, classify "
                                                         "and page only")
    HumanApproval: bool = Field(False, description="P0/P1 incidents wait for a human: the center pages and does "
                                                   "not start a runbook for them")
    TargetMTTD: float = Field(10.0, gt=0, description="seconds; a lone anomaly is declared once it has lasted "
                                                      "half of this (corroboration), two signals at once at once")
    TargetMTTR: float = Field(60.0, gt=0, description="seconds; an incident still unresolved after 10x this is "
                                                      "escalated to a human")
    TargetAutomationRate: float = Field(0.999, ge=0, le=1, description="reported beside the measured rate")
    MaxFalseAlertRate: float = Field(0.0001, ge=0, le=1, description="reported beside the measured rate")
    act_confidence: float = Field(0.5, ge=0, le=1, description="start a runbook only when the root-cause "
                                                               "confidence is at least this")
    page_confidence: float = Field(0.3, ge=0, le=1, description="page a human when the top candidate's score is "
                                                                "below this")
    runbook_dirs: tuple[str, ...] = Field((), description="extra runbook folders (YAML) besides the built-in "
                                                          "library")
    correlation_window_s: float = Field(300.0, gt=0, description="anomalies whose onsets are this close, on "
                                                                 "related services, are one incident")
    rank_settle_s: float = Field(90.0, ge=0, description="root causes are re-ranked while a runbook runs only this "
                                                     "long after declaration (a host's death shows in the "
                                                     "inventory within Nova's service_down_time, 60 s)")
    bounce_s: float = Field(120.0, gt=0, description="after a reboot, restart, migration or rollback of ours, its "
                                                     "servers' downtime is expected for this long")
    calm_s: float = Field(30.0, ge=0, description="signals normal this long before an incident is resolved")
    cadence: float = Field(5.0, gt=0, description="seconds between steps (the scrape interval)")
    who: str = Field("oncall", description="the rota pages go to")


class OpsCenter:
    """Detection → incidents → RCA and severity → runbooks → resolution, with escalation to a human."""

    name = "ops-center"

    def __init__(self, config: OpsCenterConfig | None = None, *, rca: Any = None, classifier: Any = None,
                 library: Any = None) -> None:
        self.cfg = cfg = config or OpsCenterConfig()
        self.cadence = cfg.cadence
        self.feed = AnomalyFeed()
        self.groups = Grouper(cfg.correlation_window_s)
        self.rca = rca if rca is not None else GraphRCA()
        self.classifier = classifier if classifier is not None else _default_classifier()
        self.library = library if library is not None else _default_library(cfg.runbook_dirs)
        self.max_runs = 3  # runbooks tried per incident before it is left to the human
        self.min_hits = max(2, math.ceil(cfg.TargetMTTD / 2 / cfg.cadence) + 1)
        self.quiet: dict[str, float] = {}  # component -> until when its bounce is ours (expected)
        self.own_stops: set[str] = set()
        self._runs: dict[str, Incident] = {}  # incident id -> incident with a run (for on_result)
        self._pending_pages: list[Page] = []
        self.resolved: list[str] = []  # ids of the incidents it resolved

    # ------------------------------------------------------------------ step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        anomalies = self.feed.update(now, obs, self.quiet, self.own_stops)
        out: list[Action] = list(self._pending_pages)
        self._pending_pages.clear()
        if not self.feed.fresh:  # no new scrape: only the runs move on
            for inc in list(self.groups.open.values()):
                if inc.run is not None:
                    out += [self._explain(a, inc, obs) for a in inc.run.step(now, obs) or ()]
            return out
        self.groups.drop_stale(now, anomalies)
        self.groups.assign(now, obs, anomalies)
        for inc in sorted(self.groups.open.values(), key=lambda i: i.first_onset):
            if inc.status == "pending":
                out += self._maybe_declare(now, obs, inc)
            elif inc.status != "resolved":
                out += self._follow(now, obs, inc)
        self.quiet = {k: v for k, v in self.quiet.items() if v >= now}
        return out

    def on_result(self, rec: ActionRecord) -> None:
        """Feed a run its records; a gate that asks for approval or denies makes a page (next step)."""
        a = rec.action
        inc = self.groups.open.get(a.incident or "") or self._runs.get(a.incident or "")
        if inc is None:
            return
        if inc.run is not None:  # the run ignores records that are not of its own actions
            inc.run.on_result(rec)
        if rec.outcome == "executed" and isinstance(a, _BOUNCES):  # our own bounce: expected, not evidence
            self.quiet[a.target()] = rec.at + self.cfg.bounce_s
            inc.quiet_until = max(inc.quiet_until, rec.at + self.cfg.bounce_s)
        if rec.verdict.decision in ("approval", "deny") and a.changes_world:
            why = (f"the safety gate {'needs an approval for' if rec.verdict.decision == 'approval' else 'denied'} "
                   f"{a.kind} {a.target()} ({rec.verdict.rule})")
            self._page(inc, f"gate-{rec.verdict.decision}-{a.kind}", why, rec.at, into=self._pending_pages)

    # ------------------------------------------------------------- declare
    def _maybe_declare(self, now: float, obs: Observation, inc: Incident) -> list[Action]:
        hits = {k: self.feed.hits(*k) for k in inc.anomalies}
        ok, why = corroborated(inc, hits, self.min_hits)
        if not ok:
            return []
        anomalies = list(inc.anomalies.values())
        inc.candidates = tuple(self.rca.rank(now, obs, anomalies))
        cls = self._classify(now, obs, inc, anomalies, automation=False)
        inc.severity = cls.severity
        inc.declared_at = now
        inc.status = "investigating"
        top = inc.candidates[0] if inc.candidates else None
        conf = top.score if top else 0.3
        alts = tuple(c.component for c in inc.candidates[1:5])
        title = (f"{top.fault_class or 'anomaly'} at {top.component}" if top
                 else f"anomalies on {', '.join(sorted(inc.services)) or 'unknown'}")
        out: list[Action] = [DeclareIncident(
            incident_id=inc.id, components=inc.components, severity=cls.severity, title=title,
            root_causes=tuple(c.as_mapping() for c in inc.candidates[:5]), incident=inc.id,
            reason=f"{why}; {cls.severity}: {'; '.join(cls.reasons[:2])}", confidence=round(conf, 3),
            alternatives=alts,
            evidence={"anomalies": summary(anomalies), "corroboration": why, "classification": list(cls.reasons),
                      "severity_confidence": cls.confidence,
                      "expected_impact": "records the incident; no change to the world"})]
        if cls.severity == "P0":
            out += self._page(inc, "P0", f"P0 incident: {title}", now)
        out += self._act(now, obs, inc)
        return out

    def _classify(self, now: float, obs: Observation, inc: Incident, anomalies: Sequence[Anomaly],
                  automation: bool) -> Classification:
        failed = len(inc.runs_tried) > 0 and inc.run is None  # a runbook ran and did not fix it
        try:
            return self.classifier.classify(now, obs, anomalies, inc.candidates, automation, remediation_failed=failed)
        except TypeError:  # a classifier of the bare protocol (engines.ops.types.SeverityClassifier)
            return self.classifier.classify(now, obs, anomalies, inc.candidates, automation)

    def _context(self, inc: Incident) -> IncidentContext:
        return IncidentContext(inc.id, inc.components, inc.severity,  # type: ignore[arg-type]
                               inc.declared_at or 0.0, inc.candidates, tuple(inc.anomalies.values()))

    # ----------------------------------------------------------------- act
    def _act(self, now: float, obs: Observation, inc: Incident) -> list[Action]:
        """Start the best runbook when confident and allowed; otherwise escalate."""
        cfg = self.cfg
        top = inc.candidates[0] if inc.candidates else None
        if top is None or top.score < cfg.page_confidence:
            return self._page(inc, "low-confidence", f"no confident root cause for {inc.id} "
                              f"(top {top.component if top else 'none'}: {top.score if top else 0:.2f})", now)
        if not cfg.EnableFullAutomation:
            return self._page(inc, "automation-off", f"{inc.id}: full automation is disabled", now)
        if cfg.HumanApproval and inc.severity in ("P0", "P1"):
            return self._page(inc, "human-approval", f"{inc.id} ({inc.severity}) waits for a human "
                              f"(HumanApproval)", now)
        if top.score < cfg.act_confidence:
            return self._page(inc, "low-confidence", f"{inc.id}: root cause {top.component} only "
                              f"{top.score:.2f} confident", now)
        key = (top.component, top.fault_class, len(inc.runs_tried))
        if inc.no_match == key:
            return []  # nothing changed since no runbook matched (and the human was paged)
        matches = [rb for rb in self.library.match(self._context(inc), obs) if rb.name not in inc.runs_tried]
        if not matches:
            inc.no_match = key
            return self._page(inc, "no-runbook", f"no runbook matches {inc.id} "
                              f"({top.fault_class or 'unknown class'} at {top.component})", now)
        best = matches[0]
        inc.run = self.library.start(best, self._context(inc), now, obs)
        inc.runs_tried.append(best.name)
        inc.run_focus = best.focus
        inc.alternatives = tuple(rb.name for rb in matches[1:4])
        self._runs[inc.id] = inc
        inc.status = "mitigating"
        first = [self._explain(a, inc, obs) for a in inc.run.step(now, obs) or ()]  # no tick lost
        return [UpdateIncident(incident_id=inc.id, status="mitigating", incident=inc.id,
                               note=f"runbook {best.name} started", confidence=round(top.score, 3),
                               alternatives=inc.alternatives,
                               reason=f"runbook {best.name} on {best.focus}: {'; '.join(best.why[:2])}",
                               evidence={"runbook": best.name, "focus": best.focus, "match": list(best.why),
                                         "expected_impact": f"the runbook's steps fix {top.component}"}),
                *first]

    def _follow(self, now: float, obs: Observation, inc: Incident) -> list[Action]:
        """Step the run, keep severity and candidates current, resolve or escalate."""
        out: list[Action] = []
        anomalies = [a for a in inc.anomalies.values() if not a.labels.get("expected")]
        # while our own bounce (a reboot, restart, rollback) is under way, what it takes down is no evidence
        settling = inc.declared_at is not None and now - inc.declared_at <= self.cfg.rank_settle_s \
            and now >= inc.quiet_until
        if anomalies and (inc.status == "investigating" or (inc.status == "mitigating" and settling)):
            cands = tuple(self.rca.rank(now, obs, anomalies))
            old = inc.candidates[0] if inc.candidates else None
            # after the settling period a later, weaker explanation does not replace a stronger one
            stronger = old is None or settling or cands[0].score >= old.score if cands else False
            if cands and stronger and (old is None or cands[0].component != old.component
                                       or cands[0].fault_class != old.fault_class):
                inc.candidates = cands
                out.append(UpdateIncident(incident_id=inc.id, root_causes=tuple(c.as_mapping() for c in cands[:5]),
                                          incident=inc.id, confidence=round(cands[0].score, 3),
                                          alternatives=tuple(c.component for c in cands[1:5]),
                                          reason=f"root cause now {cands[0].fault_class} at {cands[0].component}",
                                          evidence={"anomalies": summary(anomalies),
                                                    "expected_impact": "records the new ranking; no change"}))
        if anomalies and now >= inc.quiet_until and (settling or (inc.runs_tried and inc.run is None)):
            cls = self._classify(now, obs, inc, anomalies, automation=inc.run is not None)
            if cls.severity < inc.severity:  # only upwards ("P0" < "P1"): the worst impact seen, not a flap
                was, inc.severity = inc.severity, cls.severity
                out.append(UpdateIncident(incident_id=inc.id, severity=cls.severity, incident=inc.id,
                                          confidence=round(cls.confidence, 3), reason=f"severity {was} -> "
                                          f"{cls.severity}: {'; '.join(cls.reasons[:2])}",
                                          evidence={"classification": list(cls.reasons),
                                                    "expected_impact": "records the severity; no change"}))
                if cls.severity == "P0":
                    out += self._page(inc, "P0", f"{inc.id} is now P0: {'; '.join(cls.reasons[:2])}", now)
        top = inc.candidates[0] if inc.candidates else None
        if inc.run is not None and top is not None and settling and inc.run.status in ("running", "verifying") \
                and inc.run_focus not in (top.component, None) \
                and not _within(obs, top.component, inc.run_focus) \
                and top.score >= self.cfg.act_confidence:
            inc.run = None  # the ranking moved to another component: its runbook, not the old one, goes on
            inc.status = "investigating"
        if inc.run is not None and inc.run.status in ("escalated", "rolled_back") \
                and len(inc.runs_tried) < self.max_runs and anomalies:
            inc.paged |= {"no-runbook", "low-confidence"}  # the run paged (or was told not to): no second page
            inc.run = None  # the next matching runbook (on the current ranking) gets its chance
            inc.status = "investigating"
        if inc.run is None and inc.status == "investigating" and anomalies:
            out += self._act(now, obs, inc)
        run = inc.run
        if run is not None:
            for a in run.step(now, obs) or ():
                out.append(self._explain(a, inc, obs))
            if run.status == "succeeded" and inc.status != "mitigated":
                inc.status, inc.mitigated_at = "mitigated", now
                out.append(UpdateIncident(incident_id=inc.id, status="mitigated", incident=inc.id,
                                          note=f"runbook {run.runbook} verified",
                                          reason=f"runbook {run.runbook} verified", confidence=1.0,
                                          evidence={"expected_impact": "records the mitigation; no change"}))
        if run is not None and run.status == "succeeded" and inc.mitigated_at is not None and anomalies \
                and inc.last_calm < inc.mitigated_at and now - inc.mitigated_at > 2 * self.cfg.calm_s \
                and len(inc.runs_tried) < self.max_runs:
            inc.run, inc.status = None, "investigating"  # verified, yet the symptoms stay: the next runbook
            run = None
        if not inc.present(now):
            inc.last_calm = now
        calm = now - inc.last_seen >= self.cfg.calm_s
        done = run is None or run.status in ("succeeded", "escalated", "rolled_back")
        if calm and done and not inc.present(now):
            inc.status = "resolved"
            self.groups.close(inc)
            self._runs.pop(inc.id, None)
            self.resolved.append(inc.id)
            how = f"runbook {run.runbook} {run.status}" if run is not None else "signals back to normal"
            out.append(ResolveIncident(incident_id=inc.id, incident=inc.id, reason=f"{how}; no anomaly for "
                                       f"{now - inc.last_seen:.0f} s", confidence=1.0,
                                       evidence={"expected_impact": "closes the incident; no change"}))
        elif inc.declared_at is not None and now - inc.declared_at > 10 * self.cfg.TargetMTTR:
            out += self._page(inc, "deadline", f"{inc.id} open for {now - inc.declared_at:.0f} s", now)
        return out

    def _explain(self, a: Action, inc: Incident, obs: Observation) -> Action:
        """A run's action with the incident, confidence, alternatives and expected impact filled in."""
        top = inc.candidates[0] if inc.candidates else None
        ev = dict(a.evidence)
        ev.setdefault("expected_impact", f"{a.kind} on {a.target()} fixes {top.fault_class if top else 'the fault'}"
                                         f" at {top.component if top else '?'}")
        ev.setdefault("runbook", inc.run.runbook if inc.run else "")
        if isinstance(a, StopServer):
            self.own_stops.add(a.server_id)
        conf = a.confidence if a.confidence < 1.0 else (top.score if top else 0.5)
        return dataclasses.replace(a, incident=a.incident or inc.id, evidence=ev, confidence=round(conf, 3),
                                   alternatives=a.alternatives or inc.alternatives
                                   + tuple(c.component for c in inc.candidates[1:3]),
                                   reason=a.reason or f"runbook {inc.run.runbook if inc.run else ''} for {inc.id}")

    def _page(self, inc: Incident, key: str, why: str, now: float, into: list[Page] | None = None) -> list[Action]:
        """One page per reason per incident."""
        if key in inc.paged:
            return []
        inc.paged.add(key)
        top = inc.candidates[0] if inc.candidates else None
        p = Page(who=self.cfg.who, why=why, incident_id=inc.id, severity=inc.severity,  # type: ignore[arg-type]
                 components=inc.components, incident=inc.id, reason=why,
                 confidence=round(top.score, 3) if top else 0.0,
                 alternatives=tuple(c.component for c in inc.candidates[:3]),
                 evidence={"anomalies": summary(inc.anomalies.values()),
                           "expected_impact": "a human looks at the incident"})
        if into is not None:
            into.append(p)
            return []
        return [p]


def _default_classifier() -> Any:
    from engines.ops.severity import ImpactSeverity

    return ImpactSeverity()


def _default_library(dirs: Sequence[str]) -> Any:
    from engines.runbooks import RunbookLibrary

    return RunbookLibrary.load(list(dirs))


def _within(obs: Observation, component: str, focus: str) -> bool:
    """Whether ``component`` (a server or a host) lies inside ``focus`` (its zone or its host): a runbook on a
    zone already covers a server of that zone, so a ranking that moves to one is no reason to stop it."""
    server = obs.server(component)
    if server is not None:
        return focus in (server.zone, server.hypervisor)
    return any(h.zone == focus for h in obs.hypervisors if component in (h.id, h.name))
