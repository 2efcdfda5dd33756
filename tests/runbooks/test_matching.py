"""Which runbooks fit an incident, in what order, and why."""

from __future__ import annotations

from adapters.base import Deploy, Observation
from adapters.fake import FakeAdapter, FakeService
from engines.ops.types import Anomaly, Candidate, IncidentContext
from engines.runbooks import RunbookLibrary

LIB = RunbookLibrary.load()


def fake() -> FakeAdapter:
    f = FakeAdapter([FakeService("web", servers=3), FakeService("db", servers=2, settings={"pool_size": 50}),
                     FakeService("cache", servers=2)])
    f.advance(600)
    return f


def names(f: FakeAdapter, ctx: IncidentContext) -> list[str]:
    obs = Observation(f, f.t)
    try:
        return [rb.name for rb in LIB.match(ctx, obs)]
    finally:
        obs.close()


def incident(*cands: Candidate, at: float = 600.0, anomalies: tuple[Anomaly, ...] = (),
             components: tuple[str, ...] = ()) -> IncidentContext:
    return IncidentContext("inc-7", components or tuple(c.component for c in cands), "P2", at, cands, anomalies)


def test_a_leak_after_a_release_is_rolled_back_first_and_restarted_only_as_a_fallback() -> None:
    f = fake()
    f.execute(Deploy(service="web", version="2"))
    f.advance(300)
    trend = Anomaly("web", "memory_util", 0.8, 0.7, onset=880, at=895, source="trend", eta_s=400)
    got = names(f, incident(Candidate("web", 0.8, "memory_leak"), at=900, anomalies=(trend,)))
    assert got[:3] == ["memory-leak-rollback", "memory-trend-restart", "memory-leak-restart"]
    obs = Observation(f, f.t)
    why = LIB.match(incident(Candidate("web", 0.8, "memory_leak"), at=900), obs)[0].why
    obs.close()
    assert any("got version 2" in w for w in why)


def test_without_a_recent_release_there_is_nothing_to_roll_back() -> None:
    got = names(fake(), incident(Candidate("web", 0.8, "memory_leak")))
    assert "memory-leak-rollback" not in got and got[0] == "memory-leak-restart"
    assert "bad-deploy-rollback" not in names(fake(), incident(Candidate("web", 0.8, "bad_deploy")))


def test_a_runbook_needing_a_setting_the_service_lacks_does_not_match() -> None:
    assert names(fake(), incident(Candidate("db", 0.9, "db_pool_exhaustion")))[:2] == [
        "db-pool-raise-and-restart", "db-pool-restart"]
    assert names(fake(), incident(Candidate("cache", 0.9, "db_pool_exhaustion"))) == ["db-pool-restart"]


def test_component_kind_decides_between_variants() -> None:
    f = fake()
    assert names(f, incident(Candidate("az-east-1", 0.9, "network_partition"))) == ["network-partition-drain-zone"]
    assert names(f, incident(Candidate("web", 0.9, "network_partition"))) == []  # which zone? a human decides
    assert names(f, incident(Candidate("web", 0.9, "cpu_throttling"))) == ["cpu-throttling-scale-out"]
    host = f.servers(service="web")[0].hypervisor
    assert names(f, incident(Candidate(host, 0.9, "cpu_throttling"))) == ["cpu-throttling-migrate"]


def test_a_lower_candidate_is_tried_after_the_top_one() -> None:
    got = match_of(fake(), incident(Candidate("web", 0.6, None), Candidate("srv-1", 0.4, "server_crash")))
    assert [(rb.name, rb.focus) for rb in got] == [("server-crash-reboot", "srv-1")]


def test_nothing_matches_an_unclassified_incident_without_tell_tale_anomalies() -> None:
    assert names(fake(), incident(Candidate("web", 0.9, None))) == []
    assert names(fake(), incident(components=("web",))) == []


def match_of(f: FakeAdapter, ctx: IncidentContext) -> list:
    obs = Observation(f, f.t)
    try:
        return LIB.match(ctx, obs)
    finally:
        obs.close()
