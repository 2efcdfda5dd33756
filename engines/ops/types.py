"""The shared vocabulary of the operations center.

Detection produces :class:`Anomaly` records; root-cause analysis ranks
:class:`Candidate` components; the classifier gives a :class:`Classification`;
an :class:`IncidentContext` is what runbooks, alerting and post-mortems are
handed about one declared incident. Everything here is built from what the
adapter shows (``Observation``), never from a world's ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from adapters.base import Action, IncidentSeverity, Observation

# The fault classes a runbook, RCA or classifier can name (the twin's catalog, plus plain overload).
FAULT_CLASSES: tuple[str, ...] = (
    "server_crash",
    "hypervisor_failure",
    "az_outage",
    "memory_leak",
    "db_pool_exhaustion",
    "latency_degradation",
    "bad_deploy",
    "cpu_throttling",
    "disk_pressure",
    "network_partition",
    "spot_preemption",
    "overload",
)
AnomalySource = Literal["metric", "inventory", "alert", "trend"]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomalous signal: a metric series, an inventory state or a firing alert.

    ``component`` is a service name, a server id, a hypervisor or a zone;
    ``onset`` is when this episode's score first crossed the threshold, ``at``
    its latest update. A trend anomaly carries ``eta_s``, the predicted time
    until the metric reaches its limit (a leak's time to OOM).
    """

    component: str
    metric: str
    score: float
    value: float
    onset: float
    at: float
    source: AnomalySource = "metric"
    labels: Mapping[str, str] = field(default_factory=dict)
    eta_s: float | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ranked root-cause candidate with the evidence behind its score (0..1)."""

    component: str
    score: float
    fault_class: str | None = None
    evidence: tuple[str, ...] = ()

    def as_mapping(self) -> dict[str, Any]:
        """The form ``DeclareIncident.root_causes`` carries."""
        return {"component": self.component, "score": round(self.score, 4), "fault_class": self.fault_class,
                "evidence": list(self.evidence)}


@dataclass(frozen=True, slots=True)
class Classification:
    """A severity with the confidence and the reasons behind it."""

    severity: IncidentSeverity
    confidence: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentContext:
    """What the ops center knows about one declared incident."""

    incident_id: str
    components: tuple[str, ...]
    severity: IncidentSeverity
    declared_at: float
    candidates: tuple[Candidate, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


class RootCauseAnalyzer(Protocol):
    def rank(self, now: float, obs: Observation, anomalies: Sequence[Anomaly]) -> list[Candidate]:
        """Candidates best first (may be empty when nothing stands out)."""
        ...


class SeverityClassifier(Protocol):
    def classify(self, now: float, obs: Observation, anomalies: Sequence[Anomaly],
                 candidates: Sequence[Candidate], automation_active: bool) -> Classification: ...


RunStatus = Literal["running", "verifying", "succeeded", "rolling_back", "rolled_back", "escalated"]


class RunbookRun(Protocol):
    """One runbook executing for one incident; the ops center steps it every tick."""

    runbook: str
    incident_id: str
    status: RunStatus

    def step(self, now: float, obs: Observation) -> list[Action]:
        """The next actions (each tagged with ``incident=incident_id``); [] while waiting or done."""
        ...

    def on_result(self, rec: Any) -> None:
        """The choke point's record of one of this run's actions (``control.runtime.ActionRecord``)."""
        ...
