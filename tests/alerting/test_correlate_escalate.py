"""Correlation of a cascade into one group; severity; escalation timing; the MaxAlertsPerHour cap."""

from __future__ import annotations

import pytest

from adapters.fake import FakeService
from engines.alerting.config import SmartAlertingConfig
from tests.alerting.harness import Harness


def test_a_cascade_is_one_group_and_one_page() -> None:
    h = Harness()
    h.errors("api", 0.10)  # a P1: it pages after 5 minutes, when the whole cascade is in its group
    h.fire("DiskFilling", "db", "info")  # the cause; each symptom is more severe than what is below it,
    h.step(20)                           # so inhibition keeps all three and correlation must join them
    h.fire("SlowResponses", "cache", "warning")
    h.step(20)
    h.fire("HighErrorRate", "api", "critical")
    h.step(20)
    h.run(400)
    assert len(h.engine.correlator.groups) == 1
    (g,) = h.engine.correlator.groups
    assert g.services == {"api", "cache", "db"}
    (_, page), = h.pages()
    assert set(page.components) == {"api", "cache", "db"} and len(page.evidence["fingerprints"]) == 3


def test_unrelated_services_and_distant_times_are_separate_groups() -> None:
    h = Harness(CorrelationWindow=300)
    h.fire("HighCPU", "api")
    h.fire("HighCPU", "batch")  # no dependency between api and batch
    h.step()
    assert len(h.engine.correlator.groups) == 2
    h2 = Harness(CorrelationWindow=300)
    h2.fire("HighCPU", "api")
    h2.step()
    h2.run(400)
    h2.fire("SlowResponses", "db")  # related to api, but 400 s after the group's last alert
    h2.step()
    assert len(h2.engine.correlator.groups) == 2


@pytest.mark.parametrize(("api_errors", "severity", "expected"), [
    (0.40, "critical", "P0"), (0.10, "critical", "P1"), (0.0, "critical", "P2"), (0.0, "warning", "P3"),
    (0.0, "info", "P4")])
def test_severity_from_alerts_and_user_impact(api_errors: float, severity: str, expected: str) -> None:
    h = Harness()
    h.errors("api", api_errors)
    h.fire("Something", "cache", severity)
    h.step()
    assert h.engine.correlator.groups[0].priority == expected


def test_p0_pages_at_once_on_every_channel() -> None:
    chans = {"P0": ["pagerduty", "slack:#incidents-p0", "email:oncall@example.com"], "P1": ["slack:#incidents-p1"]}
    h = Harness(EscalationChannels=chans)
    h.errors("api", 0.5)
    h.fire("HighErrorRate", "api", "critical")
    h.step()
    assert sorted(a.who for _, a in h.pages()) == sorted(chans["P0"])
    h.run(600)
    assert len(h.pages()) == 3  # paged once per priority, not again every step


def test_p1_pages_within_five_minutes_only_if_still_unmitigated() -> None:
    h = Harness()
    h.errors("api", 0.10)
    h.fire("HighErrorRate", "api", "critical")
    h.run(230)
    assert h.pages() == [] and h.notifies()  # the dashboard knows at once
    h.run(20)
    (t, page), = h.pages()
    assert page.severity == "P1" and 240 <= t <= 250  # P1 since the first step (5 s), paged P1Delay (240 s) later
    blip = Harness()
    blip.errors("api", 0.10)
    blip.fire("HighErrorRate", "api", "critical")
    blip.run(120)
    blip.resolve("HighErrorRate", "api", "critical")  # over before the deadline: a transient, pages nobody
    blip.run(600)
    assert blip.pages() == []


@pytest.mark.parametrize("severity", ["warning", "info"])
def test_p2_to_p4_go_to_the_dashboard_only(severity: str) -> None:
    h = Harness()
    h.fire("HighCPU", "api", severity)
    h.run(3600)
    assert h.pages() == [] and len(h.notifies()) == 2  # P3/P4 at once, then one level up after 15 minutes
    assert all(n.severity in ("warning", "info") for _, n in h.notifies())


def test_alert_only_p0_sends_p1_to_the_dashboard() -> None:
    h = Harness(AlertOnlyP0=True)
    h.errors("api", 0.10)
    h.fire("HighErrorRate", "api", "critical")
    h.run(900)
    assert h.pages() == [] and h.notifies()
    assert SmartAlertingConfig(MinAlertSeverity="P0").human_levels() == ("P0",)
    assert SmartAlertingConfig().human_levels() == ("P0", "P1")


def test_the_cap_holds_under_a_storm() -> None:
    services = [FakeService(f"svc-{k}") for k in range(40)]  # 40 unrelated services: no correlation can merge them
    h = Harness(services, MaxAlertsPerHour=5)
    for k in range(40):  # a storm: a P0-looking failure on another service every 15 s
        h.errors(f"svc-{k}", 0.5)
        h.fire("HighErrorRate", f"svc-{k}", "critical")
        h.step(15)
    h.run(3 * 3600, every=60)
    pages = [t for t, _ in h.pages()]
    for t in pages:  # in every rolling hour, at most the cap
        assert sum(1 for u in pages if t - 3600 < u <= t) <= 5
    assert len(pages) == 20  # the budget of each of the four hours begun: withheld pages are owed, not dropped
    assert h.engine.notifier.capped == 35  # each withheld group reached the dashboard once, saying why


def test_a_short_p1_blip_inside_a_long_group_pages_nobody() -> None:
    h = Harness()
    h.fire("SlowResponses", "api")  # a long-running warning: the group is old
    h.run(1800)
    h.errors("api", 0.10)  # then users fail for three minutes (P1) ...
    h.run(180)
    h.errors("api", 0.0)  # ... and it is over: the P1 clock restarts, nobody is paged
    h.run(600)
    assert h.pages() == []
    h.errors("api", 0.10)
    h.run(260)  # a P1 that lasts the P1 delay (4 min) does page
    assert [a.severity for _, a in h.pages()] == ["P1"]
