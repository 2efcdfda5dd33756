"""Severity classification (engines/ops/severity.py) on clear-cut cases in small in-memory worlds."""

from __future__ import annotations

import pytest

from adapters.base import Observation, Price
from adapters.fake import FLAVORS, FakeAdapter, FakeService
from engines.ops.severity import ImpactSeverity, SeverityConfig
from engines.ops.types import Anomaly, Candidate

NOW = 1000.0


def world(api_err: float = 0.0, *, api_settings: dict | None = None, prices: list[Price] | None = None,
          hypervisors: list | None = None) -> FakeAdapter:
    """web (edge, 900 req/s) and api (edge, 100 req/s) both call db."""
    fake = FakeAdapter([FakeService("web", servers=4, dependencies=("db",)),
                        FakeService("api", servers=2, dependencies=("db",), settings=api_settings or {}),
                        FakeService("db", "medium", servers=3, settings={"tier": 1})],
                       prices=prices, hypervisors=hypervisors)
    for name, rate, err in (("web", 900.0, 0.0), ("api", 100.0, api_err), ("db", 500.0, 0.0)):
        fake.feed("request_rate", {"service": name}, fn=lambda t, r=rate: r)
        fake.feed("served_rate", {"service": name}, fn=lambda t, r=rate, e=err: r * (1 - e))
        fake.feed("error_ratio", {"service": name}, fn=lambda t, e=err: e)
    fake.t = NOW
    return fake


def obs(fake: FakeAdapter) -> Observation:
    return Observation(fake, fake.t)


def err_anomaly(comp: str = "api", value: float = 0.1) -> Anomaly:
    return Anomaly(comp, "error_ratio", 0.9, value, NOW - 10, NOW, labels={"service": comp})


def classify(fake: FakeAdapter, anomalies=(), candidates=(), automation=False, clf=None, **kw):
    return (clf or ImpactSeverity()).classify(NOW, obs(fake), list(anomalies), list(candidates), automation, **kw)


@pytest.mark.parametrize(("api_err", "expected"), [
    (1.0, "P0"),     # api down: 10 % of all user requests failing, and api itself fails totally
    (0.6, "P1"),     # 6 % of user requests failing
    (0.15, "P2"),    # 1.5 %
    (0.02, "P3"),    # 0.2 %
])
def test_user_impact_sets_the_level(api_err: float, expected: str) -> None:
    c = classify(world(api_err), [err_anomaly(value=api_err)], [Candidate("api", 0.9)])
    assert c.severity == expected, c
    assert any("user impact" in r for r in c.reasons)
    assert 0.0 < c.confidence <= 1.0


def test_quiet_world_is_p4_and_a_symptom_alone_p3() -> None:
    assert classify(world()).severity == "P4"
    lat = Anomaly("web", "latency_p95_ms", 0.9, 80.0, NOW - 10, NOW, labels={"service": "web"})
    c = classify(world(), [lat], [Candidate("web", 0.8)])  # one of three services, no failing request
    assert c.severity == "P3"
    assert any("symptoms" in r for r in c.reasons)


def test_blast_radius_alone_makes_p2() -> None:
    """db is called by every other service: all three are affected though no user request fails yet."""
    lat = Anomaly("db", "latency_p95_ms", 0.9, 80.0, NOW - 10, NOW, labels={"service": "db"})
    c = classify(world(), [lat], [Candidate("db", 0.8)])
    assert c.severity == "P2"
    assert any("blast radius 100%" in r for r in c.reasons)


def test_failed_remediation_is_at_least_p1_and_total_failure_p0() -> None:
    c = classify(world(0.02), [err_anomaly(value=0.02)], [Candidate("api", 0.9)], remediation_failed=True)
    assert c.severity == "P1"
    assert "remediation failed" in c.reasons
    assert classify(world(0.95), [err_anomaly(value=0.95)]).severity == "P0"


def test_cost_spike_over_ten_thousand_an_hour_is_p1() -> None:
    pricey = [Price(f.name, "on_demand", 2_000.0) for f in FLAVORS]  # 9 servers x 2,000/h
    c = classify(world(prices=pricey))
    assert c.severity == "P1"
    assert any("cost spike" in r for r in c.reasons)


def test_outage_over_two_regions_is_p0() -> None:
    hyps = [("hv-e", "az-e", "east", 64, 1 << 18, 5000), ("hv-w", "az-w", "west", 64, 1 << 18, 5000),
            ("hv-n", "az-n", "north", 64, 1 << 18, 5000)]
    fake = world(hypervisors=hyps)
    fake.set_hypervisor_up("hv-e", False)
    assert classify(fake).severity != "P0"  # one region down
    fake.set_hypervisor_up("hv-w", False)
    c = classify(fake)
    assert c.severity == "P0"
    assert any("2 regions" in r for r in c.reasons)


def test_per_service_slo_and_tier_settings() -> None:
    # 0.2 % of user requests failing burns a 99.9 % budget 2x (P3) but a 99 % budget only 0.2x (P4 + symptom: P3)
    loose = classify(world(0.02, api_settings={"slo": 0.99}), [err_anomaly(value=0.02)])
    strict = classify(world(0.02), [err_anomaly(value=0.02)])
    assert "burn 2.0x" in " ".join(strict.reasons) and "burn 0.2x" in " ".join(loose.reasons)
    assert classify(world(0.02, api_settings={"tier": 0}), [err_anomaly(value=0.02)]).severity == "P2"


def test_automation_is_reported_and_only_lowers_when_configured() -> None:
    args = ([err_anomaly(value=0.15)], [Candidate("api", 0.9)])
    on = classify(world(0.15), *args, automation=True)
    assert on.severity == "P2" and "automation is already remediating" in on.reasons
    lowered = classify(world(0.15), *args, automation=True, clf=ImpactSeverity(SeverityConfig(automation_lowers=True)))
    assert lowered.severity == "P3"


def test_deterministic_and_bad_config_is_one_clear_error() -> None:
    args = ([err_anomaly(value=0.6)], [Candidate("api", 0.9)])
    assert classify(world(0.6), *args) == classify(world(0.6), *args)
    with pytest.raises(ValueError, match="slo must be an availability"):
        SeverityConfig(slo=99.9)
    with pytest.raises(ValueError, match="burn thresholds"):
        SeverityConfig(burn_p1=500.0)


def test_severity_confusion_counts_true_against_declared() -> None:
    from types import SimpleNamespace

    from scenarios.results import confusion_frame
    from scenarios.scoring import Incident, Score, severity_confusion

    def inc(true: str, declared: str | None, chaos: bool = False) -> Incident:
        return Incident("f", "server_crash", 0.0, 10.0, None, None, None, [], [], "", true_severity=true,
                        declared_id="i" if declared else None, declared_severity=declared, chaos=chaos)

    incs = [inc("P1", "P1"), inc("P1", "P3"), inc("P0", None), inc("P4", "P4"), inc("P2", "P2", chaos=True)]
    m = severity_confusion(incs)
    assert set(m) == {"P0", "P1", "P2", "P3", "P4"} and all(len(r) == 6 for r in m.values())
    assert m["P1"]["P1"] == 1 and m["P1"]["P3"] == 1 and m["P0"]["none"] == 1 and m["P4"]["P4"] == 1
    assert sum(sum(r.values()) for r in m.values()) == 4  # the chaos incident is left out
    runs = [SimpleNamespace(engines="ops", score=Score({}, incs)), SimpleNamespace(engines="ops", score=Score({}, incs))]
    df = confusion_frame(runs)  # type: ignore[arg-type]
    row = df[(df.engines == "ops") & (df["true"] == "P1")].iloc[0]
    assert row["P1"] == 2 and row["P3"] == 2 and row["none"] == 0


def test_a_disk_about_to_fill_counts_as_the_failures_it_will_cause() -> None:
    """api takes 10 % of user traffic over 2 servers: one full disk would fail 5 % of user requests (P1)."""
    fill = Anomaly("api", "disk_util_trend", 0.9, 0.85, NOW - 10, NOW, labels={"service": "api"}, eta_s=300.0)
    c = classify(world(), [fill], [Candidate("srv-5", 0.85, "disk_pressure")])
    assert c.severity == "P1", c
    assert any("projected" in r for r in c.reasons)
    far = Anomaly("api", "disk_util_trend", 0.9, 0.85, NOW - 10, NOW, labels={"service": "api"}, eta_s=20_000.0)
    assert classify(world(), [far]).severity == "P4"  # beyond the horizon, and no user-visible symptom yet
