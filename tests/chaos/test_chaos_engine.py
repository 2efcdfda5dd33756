"""The chaos engine in a small twin: abort within one scrape and roll back, leave nothing behind, never start
during an open P0/P1, and the resilience score cannot be gamed."""

from __future__ import annotations

import pytest

from adapters.base import DeclareIncident, InjectFault, Observation
from engines.chaos import KINDS, ChaosEngineer, ChaosEngineerConfig, Kind, Spec
from tests.chaos.harness import first_violation, run

SCRAPE = 30.0


def test_a_broken_steady_state_aborts_within_one_scrape_and_rolls_back() -> None:
    slow = Spec("slow-db", Kind("cascading-failure", "latency_degradation", "service", "single-service"),
                target="db", duration=1800.0, magnitude=3.0)  # db 13x slower: its callers time out
    r = run([slow], duration=5400.0)
    (x,) = r.engine.log
    assert x.outcome == "aborted" and x.violation is not None
    seen = first_violation(r, x)
    assert seen is not None and x.aborted_at - seen <= SCRAPE  # within one scrape of the first bad sample
    assert x.rollbacks == ["restart_service db"]
    note = [rec for rec in r.records if rec.kind == "notify" and rec.action.evidence.get("chaos_abort") == "slow-db"]
    assert note and note[0].at == x.aborted_at and note[0].action.evidence["violation_sample_at"] == x.violation.at
    rb = [rec for rec in r.records if rec.engine == "chaos-engineer" and rec.kind == "restart_service"]
    assert rb and rb[0].outcome == "executed" and rb[0].at == x.aborted_at
    (f,) = [f for f in r.world.truth.faults if f.chaos]
    assert f.end is not None and f.end < x.started_at + 1800.0  # ended by the rollback, before its duration
    m = r.score.metrics
    assert m["chaos_aborted"] == 1 and m["chaos_faults_left"] == 0
    assert m["chaos_abort_delay_max_s"] == x.aborted_at - x.violation.at <= SCRAPE  # the abort's audit record


def test_a_held_steady_state_completes_and_the_world_ends_the_fault_at_its_duration() -> None:
    kill = Spec("kill", KINDS["server-kill"], duration=600.0)
    r = run([kill], duration=4200.0, others=[])  # nobody repairs: only the experiment's end does
    (x,) = r.engine.log
    assert x.outcome == "completed" and x.violation is None
    (f,) = [f for f in r.world.truth.faults if f.chaos]
    assert f.servers == [x.target] and f.end is not None and f.end <= x.started_at + 600.0 + 30.0
    assert f.resolved_by == "self"
    m = r.score.metrics
    assert m["chaos_faults_left"] == 0 and m["chaos_beyond_radius"] == 0
    assert m["resilience_auto_remediation"] == 0.0  # nothing but the experiment's end repaired it
    assert "not remediated by automation" in m["resilience_weaknesses"] and "server_crash" in m["resilience_weaknesses"]


def test_a_repairing_engine_scores_auto_remediation() -> None:
    kill = Spec("kill", KINDS["server-kill"], duration=1800.0)
    r = run([kill], duration=4800.0)  # the crash restarter is there
    (f,) = [f for f in r.world.truth.faults if f.chaos]
    assert f.resolved_by == "automation" and r.score.metrics["resilience_auto_remediation"] == 1.0


class _Obs:
    """An observation with one open P1 (everything else empty)."""

    now = 0.0

    def __init__(self, severity: str) -> None:
        from adapters.base import IncidentInfo

        self.incidents = {"i1": IncidentInfo("i1", ("api",), severity, "open", 0.0, "ops")}


def test_never_starts_during_an_open_p0_or_p1() -> None:
    e = ChaosEngineer(ChaosEngineerConfig(business_days=tuple(range(7)), start_hour=0, end_hour=24),
                      plan=[Spec("kill", KINDS["server-kill"])])
    for sev in ("P0", "P1"):
        assert e.step(36000.0, _Obs(sev)) == []  # type: ignore[arg-type]
        assert e.queue and "open P0/P1" in e.queue[0].detail


def test_the_gate_denies_injection_during_an_open_p1_and_beyond_the_radius() -> None:
    from adapters.sim import SimAdapter
    from control.safety import SafetyConfig, SafetyGate
    from tests.chaos.harness import scenario
    from twin.world import World

    w = World(scenario())
    a = SimAdapter(w)
    gate = SafetyGate(SafetyConfig(chaos={"allow": True, "max_blast_radius": "single-hypervisor"}))
    zone = gate.review(0.0, "x", InjectFault(fault="az_outage", target_component="az-1"), Observation(a, 0.0))
    assert (zone.decision, zone.rule) == ("deny", "max-blast-radius")  # a gaming engine that ignores the radius
    a.execute(DeclareIncident(incident_id="inc-1", components=("db",), severity="P1"))
    sid = a.servers(service="api")[0].id
    v = gate.review(1.0, "x", InjectFault(fault="server_crash", target_component=sid), Observation(a, 1.0))
    assert (v.decision, v.rule) == ("deny", "chaos-during-incident")


class NothingEngine:
    """Gaming: claims to run chaos but injects nothing."""

    name, cadence = "nothing", 60.0

    def step(self, now: float, obs: Observation) -> list:  # type: ignore[type-arg]
        return []


class RecklessEngine:
    """Gaming: injects a zone outage regardless of the declared radius (MaxBlastRadius single-server)."""

    name, cadence = "reckless", 600.0

    def step(self, now: float, obs: Observation) -> list:  # type: ignore[type-arg]
        return [InjectFault(fault="az_outage", target_component="az-1", duration=600.0, experiment="yolo")]


def test_gaming_engines_score_badly() -> None:
    idle = run(None, duration=3600.0, others=[NothingEngine()])
    assert idle.score.metrics["chaos_experiments"] == 0 and idle.score.metrics["resilience_score"] == 0.0
    wild = run(None, duration=3600.0, others=[RecklessEngine()],
               safety={"Chaos": {"Allow": True, "MaxBlastRadius": "single-server"}})
    m = wild.score.metrics
    assert m["chaos_experiments"] == 0 and m["chaos_denied"] >= 1 and m["resilience_score"] == 0.0
    assert not [f for f in wild.world.truth.faults if f.chaos]
    # only the easiest experiment, repeated: coverage caps the score
    easy = run([Spec(f"kill-{i}", KINDS["server-kill"], duration=600.0) for i in range(3)], duration=7200.0)
    assert easy.score.metrics["resilience_coverage"] == pytest.approx(1 / 8)
    assert easy.score.metrics["resilience_score"] <= 100 / 8 + 1e-9


class Declarer:
    """Declares an organic incident on db at ``at`` (what an ops center does when something else breaks)."""

    name, cadence = "declarer", 15.0

    def __init__(self, at: float) -> None:
        self.at, self.done = at, False

    def step(self, now: float, obs: Observation) -> list:  # type: ignore[type-arg]
        if now < self.at or self.done:
            return []
        self.done = True
        return [DeclareIncident(incident_id="real-1", components=("db",), severity="P3", title="db errors")]


def test_a_real_incident_outside_the_experiment_aborts_it() -> None:
    kill = Spec("kill-api", KINDS["server-kill"], target="srv-000000", duration=1800.0)
    r = run([kill], duration=5400.0, others=[Declarer(at=2100.0)])
    (x,) = r.engine.log
    assert x.services == ("api",) and "db" not in x.reach
    assert x.outcome == "aborted" and x.violation is None and "real incident" in x.detail
    declared = next(rec.at for rec in r.records if rec.kind == "declare_incident")
    assert 0 <= x.aborted_at - declared <= 15.0  # the next step
    assert x.rollbacks and x.rollbacks[0].endswith("srv-000000")  # the crashed server is brought back
