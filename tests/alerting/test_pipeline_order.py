"""The pipeline's order: a remediated or held alert is never sent; a suppressed alert never joins a group."""

from __future__ import annotations

from adapters.base import DeclareIncident, UpdateIncident
from tests.alerting.harness import Harness


def declare(h: Harness, iid: str, comps: tuple[str, ...], severity: str = "P1") -> None:
    h.fake.execute(DeclareIncident(incident_id=iid, components=comps, severity=severity))  # type: ignore[arg-type]


def test_an_alert_automation_is_fixing_is_held_then_dropped_when_mitigated() -> None:
    h = Harness()
    h.errors("api", 0.10)  # a P1 on its own
    declare(h, "inc-1", ("api",))
    h.fire("HighErrorRate", "api", "critical")
    h.run(200)
    h.fake.execute(UpdateIncident(incident_id="inc-1", status="mitigated"))
    h.run(600)
    assert h.pages() == [] and h.notifies() == []  # held, then remediated: nothing was ever sent
    (tr,) = h.engine.tracks.firing()
    assert tr.fate == "remediated"
    assert h.engine.correlator.groups == []  # a remediated alert never reaches correlation


def test_a_held_alert_goes_on_when_automation_overruns_its_grace() -> None:
    h = Harness(AutoRemediateGrace=120)
    h.errors("api", 0.10)
    declare(h, "inc-1", ("api",))
    h.fire("HighErrorRate", "api", "critical")
    h.run(100)
    assert h.pages() == []
    h.run(500)  # grace over at 120 s: grouped, P1 from then on, paged after the P1 delay (240 s)
    (t, page), = h.pages()
    assert page.severity == "P1" and page.incident_id == "inc-1" and 360 <= t <= 370


def test_with_auto_remediation_off_the_same_alert_pages() -> None:
    h = Harness(AutoRemediateBeforeAlert=False)
    h.errors("api", 0.10)
    declare(h, "inc-1", ("api",))
    h.fire("HighErrorRate", "api", "critical")
    h.run(320)
    assert len(h.pages()) == 1


def test_a_p0_incident_holds_nothing() -> None:
    h = Harness()
    h.errors("api", 0.10)
    declare(h, "inc-1", ("api",), severity="P0")
    h.fire("HighErrorRate", "api", "critical")
    h.step()
    (_, page), = h.pages()
    assert page.severity == "P0"  # the declared severity, paged at once


def test_a_suppressed_alert_is_never_correlated_into_a_page() -> None:
    h = Harness(MaintenanceWindows=[{"start": 0, "end": 3600, "matchers": {"service": "db"}}])
    h.errors("api", 0.5)
    h.fire("PoolSaturated", "db", "critical")  # planned maintenance on the db: silenced
    h.step()
    h.fire("HighErrorRate", "api", "critical")  # its symptom upstream: inhibited by the (silenced) cause, as in
    h.step()                                    # Alertmanager, where silenced alerts still inhibit
    assert h.pages() == [] and h.engine.correlator.groups == []
    h.errors("batch", 0.5)
    h.fire("HighErrorRate", "batch", "critical")  # an unrelated real failure still pages, alone
    h.step()
    (_, page), = h.pages()
    assert page.components == ("batch",) and len(page.evidence["fingerprints"]) == 1
    assert {t.service: t.fate for t in h.engine.tracks.by_fp.values()} == {
        "db": "silenced", "api": "inhibited", "batch": "grouped"}


def test_every_action_carries_reason_confidence_and_the_fingerprints() -> None:
    h = Harness()
    h.errors("api", 0.06)
    h.fire("HighErrorRate", "api", "critical")
    h.run(330)
    assert h.actions
    for _, a in h.actions:
        assert a.kind in ("page", "notify")
        assert a.reason and 0 < a.confidence <= 1 and a.evidence["fingerprints"]


def test_an_incident_another_engine_already_paged_for_is_not_paged_twice() -> None:
    from adapters.base import Page

    h = Harness()
    h.errors("api", 0.5)
    declare(h, "inc-1", ("api",), severity="P0")
    h.fake.execute(Page(who="oncall", incident_id="inc-1", severity="P0", components=("api",)))  # the ops center
    h.fire("HighErrorRate", "api", "critical")
    h.run(60)
    assert h.pages() == [] and "already paged" in h.notifies()[-1][1].reason


def test_its_own_page_does_not_stop_an_escalation() -> None:
    h = Harness()
    h.errors("api", 0.10)
    declare(h, "inc-1", ("api",), severity="P1")
    h.fire("HighErrorRate", "api", "critical")
    h.run(600)  # held for the grace (300 s), then P1 for 240 s: paged about inc-1
    h.errors("api", 0.5)  # it gets worse: P0
    h.run(10)
    assert [a.severity for _, a in h.pages()] == ["P1", "P0"]
