"""Suppression: dedupe, flapping, maintenance windows, learned noise, inhibition by cause."""

from __future__ import annotations

from engines.alerting.learn import NoiseModel
from tests.alerting.harness import Harness


def test_repeats_of_one_firing_alert_are_deduplicated() -> None:
    h = Harness()
    h.errors("api", 0.10)
    for _ in range(5):
        h.fire("HighErrorRate", "api", "critical")  # the rule's repeat_interval re-sends
        h.step(60)
    h.run(120)
    assert h.engine.tracks.raw_firing == 5 and h.engine.tracks.duplicates == 4
    assert len(h.pages()) == 1


def test_a_flapping_rule_is_silenced_while_it_flaps() -> None:
    h = Harness(FlapThreshold=4, FlapWindow=900)
    h.errors("batch", 0.10)
    for _ in range(3):  # fires and resolves every minute: 6 changes in 6 minutes
        h.fire("SlowResponses", "batch")
        h.step(30)
        h.resolve("SlowResponses", "batch")
        h.step(30)
    h.fire("SlowResponses", "batch")
    h.run(600)  # then stays on: still flapping (changes in the last 15 minutes), so no page
    assert h.pages() == []
    (tr,) = h.engine.tracks.by_fp.values()
    assert tr.fate == "flapping"
    h.run(900)  # quiet for a whole window: it no longer flaps and, still firing, goes through the pipeline
    assert tr.fate == "grouped"


def test_maintenance_window_silences_only_its_labels_and_only_inside_it() -> None:
    h = Harness(MaintenanceWindows=[{"start": 0, "end": 1000, "matchers": {"service": "batch"}}])
    h.errors("batch", 0.5)
    h.errors("api", 0.5)  # the db's users see it
    h.fire("InstanceDown", "batch", "critical", server="srv-9")
    h.fire("PoolSaturated", "db", "critical")
    h.step()
    assert [a.components for _, a in h.pages()] == [("db",)]
    assert h.engine.tracks.by_fp[next(fp for fp, t in h.engine.tracks.by_fp.items() if t.service == "batch")].fate \
        == "silenced"
    h.run(1100)  # after the window the same alert, still firing, is a P0 on batch
    assert ("batch", "srv-9") in [a.components for _, a in h.pages()]


def test_symptoms_are_inhibited_by_their_cause_down_the_dependency_graph() -> None:
    h = Harness()
    h.errors("api", 0.5)
    h.fire("PoolSaturated", "db", "critical")
    h.fire("HighErrorRate", "api", "critical")
    h.fire("SlowResponses", "cache", "warning")
    h.step()
    fates = {t.service: t.fate for t in h.engine.tracks.by_fp.values()}
    assert fates == {"db": "grouped", "api": "inhibited", "cache": "inhibited"}
    (_, page), = h.pages()
    assert page.components == ("db",) and page.severity == "P0"  # the users' failure makes the cause a P0


def test_a_warning_cause_does_not_inhibit_a_critical_symptom() -> None:
    h = Harness()
    h.fire("DiskFilling", "db", "warning")
    h.fire("HighErrorRate", "api", "critical")
    h.step()
    assert {t.service: t.fate for t in h.engine.tracks.by_fp.values()} == {"db": "grouped", "api": "grouped"}


def test_the_noise_model_needs_much_evidence_before_it_silences() -> None:
    m = NoiseModel(threshold=0.01, persistent_after=300)
    for _ in range(97):
        m.learn("fp", 30, covered_by_incident=False)
    assert not m.noisy("fp")  # 1/99 is not below 1 %
    for _ in range(5):
        m.learn("fp", 30, covered_by_incident=False)
    assert m.noisy("fp")
    m.learn("fp", 400, covered_by_incident=False)  # one persistent episode counts as actionable
    m.learn("fp", 20, covered_by_incident=True)  # and so does one an incident covered
    assert not m.noisy("fp")


def test_learned_noise_is_suppressed_only_when_enabled() -> None:
    for enabled in (True, False):
        h = Harness(MLSuppressionEnabled=enabled, FlapThreshold=1000)
        h.errors("batch", 0.10)
        for _ in range(120):  # 120 one-minute blips, ten minutes apart
            h.fire("HighErrorRate", "batch", "critical")
            h.step(60)
            h.resolve("HighErrorRate", "batch", "critical")
            h.step(540)
        h.fire("HighErrorRate", "batch", "critical")
        h.run(400)
        (tr,) = h.engine.tracks.by_fp.values()
        assert (tr.fate == "noise") is enabled
        assert (len(h.pages()) == 0) is enabled
