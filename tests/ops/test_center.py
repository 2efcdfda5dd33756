"""The ops center on small worlds: detect, declare, fix, resolve; stay quiet; escalate when the gate says no."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import Action, ActionResult, Observation
from control.runtime import ALLOW, Verdict
from engines.ops.grouping import Incident, corroborated
from engines.ops.types import Anomaly
from scenarios.runner import RunResult, run_scenario
from tests.builders import SPIKY_SERVICES, make_scenario
from tests.test_import_contracts import imports_of

CRASH = {"type": "server_crash", "at": 900, "service": "api"}


def _run(faults: list[dict[str, Any]], duration: float = 1500.0, gate: Any = None) -> RunResult:
    return run_scenario(make_scenario(duration=duration, faults=faults), "ops", gate=gate)


def _ops(r: RunResult, kind: str) -> list[Any]:
    return [x for x in r.records if x.engine == "ops-center" and x.kind == kind]


class DenyKinds:
    """A gate that denies (or asks approval for) some action kinds and allows the rest."""

    def __init__(self, kinds: set[str], decision: str = "deny") -> None:
        self.kinds, self.decision = kinds, decision

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        if action.kind in self.kinds:
            return Verdict(self.decision, rule="test-rule")  # type: ignore[arg-type]
        return ALLOW

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        return None


def test_a_crashed_server_is_declared_in_time_fixed_by_a_runbook_and_resolved() -> None:
    r = _run([CRASH])
    (fault,) = r.world.truth.faults
    decl = _ops(r, "declare_incident")
    assert len(decl) == 1 and decl[0].outcome == "executed"
    assert decl[0].at - fault.start <= 10.0  # TargetMTTD
    assert decl[0].action.severity in ("P0", "P1", "P2", "P3", "P4")
    assert decl[0].action.root_causes[0]["component"] == fault.servers[0]
    assert "expected_impact" in decl[0].action.evidence
    inc = decl[0].action.incident_id
    fixes = [x for x in r.records if x.engine == "ops-center" and x.action.changes_world and x.outcome == "executed"]
    assert fixes and all(x.action.incident == inc and "expected_impact" in x.action.evidence for x in fixes)
    assert fault.resolved_by == "automation" and fault.end is not None
    resolved = _ops(r, "resolve_incident")
    assert [x.action.incident_id for x in resolved] == [inc]
    assert resolved[0].at >= fault.end
    assert r.score.metrics["detection_precision"] == 1.0


def test_a_quiet_run_declares_nothing() -> None:
    r = _run([], duration=3600.0)
    assert _ops(r, "declare_incident") == []
    assert _ops(r, "page") == []


def test_a_load_spike_is_the_scalers_not_an_incident() -> None:
    # 4x traffic for 400 s: latency, CPU and even dropped requests rise with the load (overload, no fault)
    r = run_scenario(make_scenario(duration=2400.0, services=SPIKY_SERVICES), "ops")
    assert any(x.engine == "predictive-scaler" and x.kind == "create_server" for x in r.records)
    assert _ops(r, "declare_incident") == []


@pytest.mark.parametrize("decision", ["deny", "approval"])
def test_a_gated_runbook_action_escalates_with_a_page(decision: str) -> None:
    r = _run([CRASH], gate=DenyKinds({"reboot_server", "start_server", "migrate_server", "create_server"}, decision))
    gated = [x for x in r.records if x.engine == "ops-center" and x.verdict.decision == decision]
    assert gated, "the runbook proposed a fix"
    pages = [x for x in _ops(r, "page") if x.at >= gated[0].at]
    assert pages and pages[0].action.incident_id == gated[0].action.incident
    assert any(decision in x.action.why or "denied" in x.action.why for x in pages)


def test_a_cascade_is_declared_with_its_root_as_top_candidate() -> None:
    # the db's latency rises; the api sees it through its calls (dep_latency_ms) at the same scrape
    r = _run([{"type": "latency_degradation", "at": 900, "service": "db"}], duration=1300.0)
    decl = _ops(r, "declare_incident")
    assert decl and decl[0].action.root_causes[0]["component"] == "db"
    assert set(decl[0].action.components) >= {"db"}
    assert r.score.metrics["root_cause_top1"] == 1.0


def _anomaly(comp: str, metric: str, source: str = "metric", at: float = 100.0) -> Anomaly:
    return Anomaly(comp, metric, 0.9, 1.0, at, at, source)  # type: ignore[arg-type]


def test_one_lone_sample_is_not_enough_but_two_signals_or_a_sustained_one_are() -> None:
    inc = Incident("I", {"api"}, set(), 100.0, 100.0)
    inc.anomalies[("api", "latency_p95_ms")] = _anomaly("api", "latency_p95_ms")
    assert not corroborated(inc, {("api", "latency_p95_ms"): 1})[0]
    assert corroborated(inc, {("api", "latency_p95_ms"): 2})[0]
    inc.anomalies[("api", "error_ratio")] = _anomaly("api", "error_ratio")
    assert corroborated(inc, {})[0]
    hard = Incident("H", {"api"}, set(), 100.0, 100.0)
    hard.anomalies[("srv-1", "server_up")] = _anomaly("srv-1", "server_up", "inventory")
    assert corroborated(hard, {})[0]


def test_the_ops_center_imports_no_world() -> None:
    for f, names in imports_of("engines").items():
        if "/ops/" in f or "/runbooks/" in f:
            assert not names & {"twin", "simpy", "openstack", "scenarios"}, f


def test_one_fault_one_reaction_the_scaler_defers_to_the_open_incident() -> None:
    """A crashed server: the ops center's runbook fixes it; the scaler does not add a replacement beside it."""
    r = _run([CRASH])
    (fault,) = r.world.truth.faults
    (decl,) = _ops(r, "declare_incident")
    resolved = _ops(r, "resolve_incident")
    end = resolved[0].at if resolved else r.world.now()
    others = [x for x in r.records if x.engine != "ops-center" and x.outcome == "executed" and x.action.changes_world
              and decl.at <= x.at <= end and x.action.target() in ("api", *fault.servers)]
    assert others == []  # exactly one reaction: the incident's
    assert fault.resolved_by == "automation"
