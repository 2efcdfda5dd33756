"""The self-service engine in the twin, through the composed control plane (gate, approvals, audit): onboarding
and offboarding end to end, the scenario's figures, and the gaming engines that must score badly."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sim import SimAdapter
from control.compose import SimulatedApprovals, compose
from engines.registry import resolve
from scenarios.loader import load_scenario
from scenarios.runner import run_scenario
from scenarios.schema import Scenario
from tests.builders import scenario_dict
from tests.gaming import installed
from tests.selfservice.gaming import ApproveEverything, RefuseEverything
from twin.clock import SimClock
from twin.world import World

TWO_TEAMS: dict[str, Any] = {
    "projects": [{"name": "p", "quota": {"instances": 40, "cores": 160, "ram_mb": 327680}},
                 {"name": "lab", "quota": {"instances": 10, "cores": 40, "ram_mb": 81920}}],
    "requests": {"human_delay": None},
}


def _world(settings: dict[str, Any] | None = None, approver_cadence: float = 30.0,
           **extra: Any) -> tuple[World, SimAdapter, Any, list[Any]]:
    d = scenario_dict(**(TWO_TEAMS | extra))
    d["services"].append({"name": "notebooks", "project": "lab", "flavor": "small", "servers": 2, "min_servers": 0,
                          "max_servers": 10, "capacity_per_vcpu": 50, "stateful": False})
    scn = Scenario.model_validate(d)
    w = World(scn)
    a = SimAdapter(w)
    plane = compose(a, {"name": "ss", "engines": [{"engine": "self_service", **(settings or {})}]}, clock=SimClock(w.env),
                    approvals=SimulatedApprovals(2, 60.0, approver_cadence, executor_cadence=max(10.0, approver_cadence)))
    records: list[Any] = []
    plane.choke.listeners.append(records.append)
    return w, a, plane, records


def _req(w: World, rid: str) -> Any:
    return w.inbox.by_id[rid]


def test_onboarding_in_minutes_then_offboarding_cleans_everything_up() -> None:
    w, a, plane, records = _world(duration=3600)
    w.run(until=60)
    rid = a.submit_request("team-new", "project_onboard", {"budget": 800, "alert_route": "team-new-oncall"})
    w.run(until=400)
    r = _req(w, rid)
    assert r.status == "approved" and r.answered_by == "automation"
    assert r.answered_at - r.submitted_at < 300  # onboarding in < 5 minutes
    q = {q.project: q for q in a.quotas()}["team-new"]
    assert (q.instances, q.cores, q.ram_mb) == (10, 20, 40960)  # the policy's onboarding defaults
    assert [b.limit for b in a.budgets() if b.project == "team-new"] == [800.0]
    assert w.alert_routes["team-new"] == "team-new-oncall"
    # offboard lab: its servers deleted (each through the gate), its quota closed, the project gone
    spent_before = a.spend().per_project["lab"]
    off = a.submit_request("lab", "project_offboard", {})
    w.run(until=2400)
    assert _req(w, off).status == "approved", plane.engines[0].decisions()[-1]
    assert "lab" not in {q.project for q in a.quotas()}
    assert not [s for s in a.servers() if s.project == "lab"]
    spent = a.spend().per_project["lab"]
    assert spent >= spent_before > 0
    w.run(until=3000)
    assert a.spend().per_project["lab"] == pytest.approx(spent)  # spend stopped; the record stays
    kinds = [r.kind for r in records if r.outcome == "executed" and (r.action.evidence or {}).get("request") == off]
    assert kinds.count("delete_server") == 2 and kinds[-2:] == ["delete_project", "fulfill_request"]
    plane.close()


def test_usage_based_quota_adjustment_raises_busy_and_lowers_idle_projects() -> None:
    # lab runs 2 small of a 4-instance quota at first: 50 %; p runs 6 of 7 (86 %) and holds it
    extra = {"projects": [{"name": "p", "quota": {"instances": 7, "cores": 80, "ram_mb": 163840}},
                          {"name": "lab", "quota": {"instances": 20, "cores": 80, "ram_mb": 163840}}],
             "duration": 40 * 86400, "tick": 600, "telemetry": {"scrape_interval": 600}}
    w, a, plane, records = _world({"cadence": 60}, approver_cadence=3600.0, **extra)
    w.run(until=40 * 86400)
    ups = [r for r in records if r.kind == "update_quota" and r.outcome == "executed"]
    by = {r.action.project: r for r in ups}
    assert by["p"].action.instances > 7 and by["p"].at >= 3 * 86400  # consistently > 80 % for 3 days
    assert by["lab"].action.instances < 20 and by["lab"].at >= 30 * 86400  # < 20 % for 30 days
    assert by["lab"].action.instances >= 2  # never below the bounds nor its usage
    plane.close()


def _short_week() -> Scenario:
    """The self-service scenario squeezed into 8 hours: the same mix, the three hard cases within it."""
    scn = load_scenario("scenarios/extended/self-service.yaml")
    d = scn.model_dump(mode="json", exclude={"engines"})
    d["engines"] = ["static"]
    d["duration"] = 8 * 3600
    d["requests"]["random"]["rate_per_day"] = 120
    for k, item in enumerate(d["requests"]["items"]):
        item["at"] = 1800 + 3600 * k
    return Scenario.model_validate(d)


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    scn = _short_week()
    out = {"self-service": run_scenario(scn, resolve({"name": "self-service", "engines": [{"engine": "self_service"}]}))}
    for name, factory in (("approve-all", lambda: [ApproveEverything()]), ("refuse-all", lambda: [RefuseEverything()])):
        with installed(name, factory):
            out[name] = run_scenario(scn, name)
    return out


def test_the_engine_decides_within_10_s_and_breaks_no_hard_limit(runs: dict[str, Any]) -> None:
    m = runs["self-service"].score.metrics
    assert m["requests"] >= 30
    assert m["request_decision_max_s"] <= 10.0 and m["requests_decided_within_10s"] == m["requests"]
    assert m["requests_over_hard_limit"] == 0 and m["quotas_over_hard_limit"] == 0
    assert 0 < m["request_auto_approval_rate"] < 1  # some need a person, some are refused


def test_approving_everything_breaks_a_hard_limit_and_scores_badly(runs: dict[str, Any]) -> None:
    m = runs["approve-all"].score.metrics
    assert m["requests_over_hard_limit"] >= 1 or m["quotas_over_hard_limit"] >= 1
    assert m["request_auto_approval_rate"] > runs["self-service"].score.metrics["request_auto_approval_rate"]
    scn = runs["approve-all"].scenario
    assert scn.targets["requests_over_hard_limit"].check(m["requests_over_hard_limit"]) == "missed"


def test_refusing_everything_approves_nothing(runs: dict[str, Any]) -> None:
    m = runs["refuse-all"].score.metrics
    assert m["request_auto_approval_rate"] == 0.0 and m["requests_auto_denied"] == m["requests"]
    assert m["requests_over_hard_limit"] == 0  # safe, and useless: the target on approvals is missed
    assert runs["refuse-all"].scenario.targets["request_auto_approval_rate"].check(0.0) == "missed"
