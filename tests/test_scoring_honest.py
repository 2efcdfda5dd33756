"""The score cannot be gamed: engines built to game one figure score badly on exactly that figure.

Also the detection rules on hand-made decision records (what counts as a
detection and what does not), the savings rule, and that MTTD does not depend
on where the onset falls relative to an engine's cadence.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.base import DeclareIncident, Notify, Page, UpdateIncident
from control.runtime import ActionRecord, Verdict
from scenarios.results import table
from scenarios.runner import compare_to_static
from scenarios.scoring import SEVERITY_TABLE, _true_severity, score_run
from tests.builders import make_scenario
from tests.gaming import run_engines

SETS = ("static", "reactive", "spammer", "do-nothing", "always-rollback", "scale-everything")

# a release that breaks the api (fixed by a rollback) and a slow database (fixed by a restart, not by a rollback)
MIX = dict(name="gaming-mix", duration=3000, operator={"response_delay": "10m"},
           faults=[{"type": "bad_deploy", "at": 600, "service": "api"},
                   {"type": "latency_degradation", "at": 1500, "service": "db"}])


@pytest.fixture(scope="module")
def mix() -> dict[str, Any]:
    scn = make_scenario(**MIX)
    runs = [run_engines(scn, e) for e in SETS]
    compare_to_static(runs)
    return {r.engines: r for r in runs}


def m(runs: dict[str, Any], name: str) -> dict[str, Any]:
    return runs[name].score.metrics


def by_type(run: Any, ftype: str) -> Any:
    (inc,) = [i for i in run.score.incidents if i.type == ftype]
    return inc


def test_side_by_side_table_renders(mix: dict[str, Any]) -> None:
    text = table(list(mix.values()))
    print("\n" + text)  # the figures side by side (pytest -s)
    for e in SETS:
        assert e in text


def test_the_spammer_gets_no_precision_and_no_automation(mix: dict[str, Any]) -> None:
    s, static = m(mix, "spammer"), m(mix, "static")
    assert s["declarations"] > 500
    assert s["detection_precision"] < 0.01  # 2 faults matched out of ~1,200 declarations
    assert s["false_incidents_per_day"] > 10_000
    assert s["pages_precision"] < 0.01
    assert s["automation_rate"] <= static["automation_rate"] == 0.0  # it fixed nothing: the human did
    assert all(i.resolved_by == "human" for i in mix["spammer"].score.incidents)
    assert s["severity_accuracy"] < 1.0  # everything is a P0 to it
    assert s["incidents_human_resolved"] == 2 and s["human_intervention_rate"] == 1.0


def test_doing_nothing_gets_no_automation_and_no_better_mttr(mix: dict[str, Any]) -> None:
    d, static = m(mix, "do-nothing"), m(mix, "static")
    assert d["automation_rate"] in (None, 0.0)
    assert d["mttr_s"] >= static["mttr_s"] - 1e-9
    assert d["declarations"] == 0 and d["detection_recall"] == 0.0
    # detected only by the human paged by raw alerts (the slow db never pages anyone and stays undetected)
    assert {i.detected_by for i in mix["do-nothing"].score.incidents} <= {"human", None}


def test_always_rollback_gets_credit_for_the_release_fault_only(mix: dict[str, Any]) -> None:
    run = mix["always-rollback"]
    assert by_type(run, "bad_deploy").resolved_by == "automation"  # a rollback is the right fix for a bad release
    assert by_type(run, "latency_degradation").resolved_by != "automation"  # and no fix for a slow database
    assert m(mix, "always-rollback")["automation_rate"] == pytest.approx(0.5)
    assert m(mix, "always-rollback")["detection_recall"] == 0.0  # acting is not detecting
    assert all(i.detected_by in (None, "human") for i in run.score.incidents)


def test_scale_everything_buys_no_savings_and_no_detection(mix: dict[str, Any]) -> None:
    s = m(mix, "scale-everything")
    assert s["cost_savings_raw"] < -1.0  # it costs several times static's spend
    assert s["cost_savings"] is None or s["cost_savings"] < 0
    assert s["cost_per_million_good"] > m(mix, "static")["cost_per_million_good"]
    assert s["detection_recall"] == 0.0 and s["declarations"] == 0
    assert all(i.detected_by in (None, "human") for i in mix["scale-everything"].score.incidents)


def test_routine_scaling_is_not_automation_and_no_incident_means_no_rate() -> None:
    r = run_engines(make_scenario(duration=1800), "reactive")
    assert r.score.metrics["incidents"] == 0
    assert r.score.metrics["automation_rate"] is None and r.score.metrics["human_intervention_rate"] is None


# ------------------------------------------------------------ detection rules
def _rec(seq: int, at: float, action: Any, outcome: str = "executed", decision: str = "allow",
         engine: str = "probe") -> ActionRecord:
    return ActionRecord(seq, at, engine, action, Verdict(decision), outcome)  # type: ignore[arg-type]


def _declare(iid: str, *components: str, **kw: Any) -> DeclareIncident:
    return DeclareIncident(incident_id=iid, components=components, **kw)


@pytest.fixture(scope="module")
def static_world(mix: dict[str, Any]) -> Any:
    """The static run of the mix: bad_deploy on api at 600 s, latency_degradation on db at 1,500 s."""
    return mix["static"].world


def test_only_an_executed_matching_declaration_detects(static_world: Any) -> None:
    recs = [
        _rec(1, 610, _declare("a", "api"), outcome="proposed"),
        _rec(2, 611, _declare("b", "api"), outcome="denied", decision="deny"),
        _rec(3, 612, _declare("c", "api"), outcome="failed"),
        _rec(4, 613, Notify(component="api", message="api is down")),
        _rec(5, 614, Page(components=("api",))),
        _rec(6, 100, _declare("early", "api")),  # before the onset: about nothing
    ]
    s = score_run(static_world, recs)
    bad = [i for i in s.incidents if i.type == "bad_deploy"][0]
    assert bad.declared_id is None and bad.detected_by == "human"
    assert s.metrics["declarations"] == 1 and s.metrics["declarations_false"] == 1
    assert s.metrics["detection_precision"] == 0.0 and s.metrics["detection_recall"] == 0.0


def test_matching_is_one_to_one_by_time_and_component(static_world: Any) -> None:
    recs = [
        _rec(1, 630, _declare("x", "api", severity="P1", root_causes=({"component": "api", "score": 0.9},))),
        _rec(2, 640, _declare("dup", "api")),  # the same fault again: a duplicate, not a second detection
        _rec(3, 700, _declare("wrong", "elsewhere")),  # nothing real
        # the slow db shows first in api's latency: a declaration on the caller matches, its root cause is ranked
        _rec(4, 1520, _declare("y", "api", root_causes=({"component": "api"}, {"component": "db"}))),
        _rec(5, 1530, UpdateIncident(incident_id="y", severity="P4")),
    ]
    s = score_run(static_world, recs)
    bad = [i for i in s.incidents if i.type == "bad_deploy"][0]
    slow = [i for i in s.incidents if i.type == "latency_degradation"][0]
    assert (bad.declared_id, bad.ttd, bad.detected_by) == ("x", 30.0, "probe")
    assert bad.root_cause_rank == 1
    assert slow.declared_id == "y" and slow.root_cause_rank == 2 and slow.declared_severity == "P4"
    verdicts = {d.id: d.verdict for d in s.declarations}
    assert verdicts == {"x": "matched", "dup": "duplicate", "wrong": "false", "y": "matched"}
    assert s.metrics["detection_precision"] == pytest.approx(2 / 4)
    assert s.metrics["detection_recall"] == 1.0
    assert s.metrics["root_cause_top1"] == 0.5 and s.metrics["root_cause_top3"] == 1.0
    assert s.metrics["mttd_p50_s"] == pytest.approx((30 + 20) / 2)


def test_a_fix_a_human_approved_is_not_automation(mix: dict[str, Any]) -> None:
    run = mix["always-rollback"]
    fix = [r for r in run.records if r.outcome == "executed" and r.kind == "rollback_deploy" and r.target == "api"]
    approved = {id(r) for r in fix}
    recs = [dataclasses.replace(r, verdict=Verdict("approval", "week1", {"approved_by": ["alice"]}))
            if id(r) in approved else r for r in run.records]
    s = score_run(run.world, recs)
    assert by_type(SimpleNamespace(score=s), "bad_deploy").resolved_by == "automation-approved"
    assert s.metrics["automation_rate"] == 0.0 and s.metrics["incidents_auto_resolved_approved"] == 1
    assert s.metrics["human_approvals"] >= 1


# ------------------------------------------------------------ other rules
def test_true_severity_table() -> None:
    assert [row[0] for row in SEVERITY_TABLE] == ["P0", "P1", "P2", "P3"]
    assert _true_severity(0.5, 0.1, True) == "P0"
    assert _true_severity(0.06, 0.1, True) == "P1"
    assert _true_severity(0.02, 0.1, True) == "P2"
    assert _true_severity(0.0, 0.6, False) == "P2"  # half the services hit
    assert _true_severity(0.002, 0.1, False) == "P3"
    assert _true_severity(0.0, 0.1, True) == "P3"
    assert _true_severity(0.0, 0.1, False) == "P4"


def _fake(engines: str, **metrics: Any) -> Any:
    base = {"cost": 10.0, "availability": 0.999, "slo_violation_minutes": 1.0, "cost_per_million_good": 2.0}
    return SimpleNamespace(scenario=SimpleNamespace(name="s"), seed=1, engines=engines,
                           score=SimpleNamespace(metrics=base | metrics))


def test_savings_count_only_at_equal_or_better_service() -> None:
    static, cheap_worse, cheap_ok, slo_worse = (
        _fake("static"), _fake("a", cost=5.0, availability=0.998), _fake("b", cost=5.0, cost_per_million_good=1.0),
        _fake("c", cost=5.0, slo_violation_minutes=1.5))
    compare_to_static([static, cheap_worse, cheap_ok, slo_worse])
    a, b, c = (x.score.metrics for x in (cheap_worse, cheap_ok, slo_worse))
    assert a["cost_savings"] is None and a["cost_savings_comparable"] is False and a["cost_savings_raw"] == 0.5
    assert "availability" in a["cost_savings_reason"]
    assert b["cost_savings"] == 0.5 and b["cost_savings_comparable"] is True
    assert b["cost_per_million_good_savings"] == 0.5
    assert c["cost_savings"] is None and "SLO" in c["cost_savings_reason"]


def test_not_comparable_savings_print_as_nc(mix: dict[str, Any]) -> None:
    r = mix["reactive"]
    saved = dict(r.score.metrics)
    try:
        r.score.metrics.update(cost_savings=None, cost_savings_comparable=False)
        assert " n/c " in table([r])
    finally:
        r.score.metrics.clear()
        r.score.metrics.update(saved)


def test_availability_counts_user_facing_requests_when_the_twin_reports_them(mix: dict[str, Any]) -> None:
    w = mix["static"].world
    truth = w.truth
    saved = (truth.edge_offered.copy(), truth.edge_good.copy())
    try:
        truth.edge_offered[:] = 0.0
        assert score_run(w, []).metrics["availability_scope"] == "all_services"  # flagged fallback
        truth.edge_offered[0], truth.edge_good[0] = 1000.0, 900.0
        s = score_run(w, []).metrics
        assert s["availability_scope"] == "edge" and s["availability"] == pytest.approx(0.9)
    finally:
        truth.edge_offered[:], truth.edge_good[:] = saved


# ------------------------------------------------------------ MTTD and cadence
@pytest.mark.parametrize("cadence", [15.0])
def test_mttd_does_not_depend_on_the_onset_phase(cadence: float) -> None:
    """A detector on a 15 s cadence over a 5 s scrape: MTTD over onsets at 3,601 … 3,611 s spreads by at most one
    cadence plus one scrape interval, and is never negative or zero by alignment."""
    from control.runtime import AllowAll
    from scenarios.runner import run_scenario
    from tests.gaming import SimpleDetector, installed

    ttds = []
    for onset in (3601, 3603, 3607, 3611):
        scn = make_scenario(duration=onset + 600, operator={"enabled": False},
                            faults=[{"type": "bad_deploy", "at": onset, "service": "api"}])
        with installed("detector", lambda: [SimpleDetector(cadence=cadence)]):
            r = run_scenario(scn, "detector", gate=AllowAll())
        (inc,) = r.score.incidents
        assert inc.detected_by == "simple-detector"
        ttds.append(inc.ttd)
    scrape = 5.0
    print(f"\nMTTD by onset 3601/3603/3607/3611 s: {ttds}")
    assert all(0 < t <= cadence + scrape for t in ttds)
    assert max(ttds) - min(ttds) <= cadence + scrape


def test_under_the_week1_profile_nothing_is_automation() -> None:
    """Every action waits for a human approval (``profile: week1``): a fix the human approved is not automation."""
    scn = make_scenario(**(MIX | {"safety": {"profile": "week1"}}))
    r = run_engines(scn, "always-rollback", gate=None)  # the scenario's own safety gate and simulated approvers
    s = r.score.metrics
    assert by_type(r, "bad_deploy").resolved_by == "automation-approved"
    assert s["automation_rate"] == 0.0 and s["incidents_auto_resolved"] == 0
    assert s["human_approvals"] >= 1 and s["human_intervention_rate"] == 1.0


def test_ground_truth_fields_from_the_twin_take_precedence(mix: dict[str, Any]) -> None:
    """root_component, mitigated_at and resolving_action, once the twin fills them, are what the scorer uses."""
    w = mix["always-rollback"].world
    f = [f for f in w.truth.faults if f.type == "bad_deploy"][0]
    saved = (f.root_component, f.mitigated_at, f.resolving_action)
    try:
        f.root_component, f.mitigated_at = "db", f.start + 42.0
        f.resolving_action = {"at": f.end, "actor": "human", "kind": "rollback_deploy", "target": "api"}
        recs = [_rec(1, f.start + 10, _declare("x", "api", root_causes=({"component": "api"}, {"component": "db"})))]
        s = score_run(w, recs)
        inc = by_type(SimpleNamespace(score=s), "bad_deploy")
        assert (inc.root_component, inc.root_component_source, inc.root_cause_rank) == ("db", "truth", 2)
        assert inc.ttm == 42.0 and inc.resolved_by == "human"
    finally:
        f.root_component, f.mitigated_at, f.resolving_action = saved


# ------------------------------------------------------------------ alerting: noise against missed incidents
ALERTING_SETS = ("static", "page-every-alert", "page-nothing", "notify-everything", "smart")


@pytest.fixture(scope="module")
def alert_mix() -> dict[str, Any]:
    from engines.registry import REGISTRY, register_set

    register_set("smart", ["reactive_scaler", "crash_restarter", "smart_alerting"], handles_alerting=True,
                 replace=True)
    try:
        scn = make_scenario(**MIX)
        return {e: run_engines(scn, e) for e in ALERTING_SETS}
    finally:
        REGISTRY.unregister_set("smart")


def test_paging_every_alert_suppresses_nothing(alert_mix: dict[str, Any]) -> None:
    p = m(alert_mix, "page-every-alert")
    assert p["alerts_raw"] > 5 and p["notifications"] == p["pages_engine"] == p["alerts_raw"]
    assert p["suppression_rate"] == pytest.approx(0.0, abs=0.02)
    assert p["pages_precision"] < 0.5  # repeats are noise


def test_paging_nothing_misses_the_p0p1_incidents(alert_mix: dict[str, Any]) -> None:
    n, static = m(alert_mix, "page-nothing"), m(alert_mix, "static")
    assert n["notifications"] == 0 and n["suppression_rate"] == 1.0  # "perfect" suppression ...
    assert static["incidents_missed_p0p1"] == 0 < n["incidents_missed_p0p1"]  # ... by missing what mattered
    assert n["false_alert_rate"] is None  # no pages: no rate to flatter


def test_notifying_the_dashboard_pages_nobody(alert_mix: dict[str, Any]) -> None:
    d = m(alert_mix, "notify-everything")
    assert d["notifies_dashboard"] == d["alerts_raw"] > 5 and d["notifications"] == 0
    assert d["incidents_missed_p0p1"] == m(alert_mix, "page-nothing")["incidents_missed_p0p1"] > 0


def test_raw_alert_paging_is_the_baseline_of_no_suppression(alert_mix: dict[str, Any]) -> None:
    s = m(alert_mix, "static")
    assert s["notifications"] == s["pages_alerts"] > 0 and s["suppression_rate"] < 0.1


def test_smart_alerting_suppresses_and_misses_no_p0p1(alert_mix: dict[str, Any]) -> None:
    s, static = m(alert_mix, "smart"), m(alert_mix, "static")
    print({k: s[k] for k in ("alerts_raw", "notifications", "suppression_rate", "pages_false",
                             "incidents_missed_p0p1")})
    assert s["notifications"] < static["notifications"] and s["suppression_rate"] > 0.5
    assert s["incidents_missed_p0p1"] == 0


def test_always_rollback_shows_the_good_releases_it_undid() -> None:
    """Rolling back everything fixes bad releases; the price shows as good releases rolled back for nothing."""
    scn = make_scenario(name="benign-releases", duration=3 * 3600, operator={"enabled": False},
                        releases={"rate_per_day": 48, "benign": 1.0})
    undo, static = run_engines(scn, "always-rollback"), run_engines(scn, "static")
    assert undo.score.metrics["rollbacks"] >= 1
    assert undo.score.metrics["rollbacks_of_good_releases"] == undo.score.metrics["rollbacks"]
    assert static.score.metrics["rollbacks"] == 0
    assert not undo.score.incidents  # no release was bad: nothing to fix
