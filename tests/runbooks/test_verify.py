"""Verification judges fresh samples against pre-incident baselines; ``escalate.page: false`` ends rolled_back."""

from __future__ import annotations

import pytest

from adapters.base import CreateServer
from adapters.fake import FakeService
from engines.runbooks import RunbookError, RunbookLibrary
from engines.runbooks.loading import parse_runbook
from tests.runbooks.harness import World, ctx


def latency_world(after: float) -> World:
    """Latency 100 ms before the onset at t=300, 500 ms during, ``after`` once a restart happened."""

    def values(w: World) -> dict:
        restarted = any(a.kind == "restart_service" for _, a, _ in w.fake.executed)
        lat = after if restarted else (500.0 if w.fake.t >= 300 else 100.0)
        return {("latency_p95_ms", (("service", "api"),)): lat, ("error_ratio", (("service", "api"),)): 0.0}

    w = World([FakeService("api", servers=2)], values)
    w.advance(320)
    return w


def run_latency(after: float) -> tuple[World, object]:
    w = latency_world(after)
    lib = RunbookLibrary.load()
    c = ctx("api", "latency_degradation", at=w.fake.t, metric="latency_p95_ms")  # anomaly onset 5 s earlier
    d = w.start(lib, "latency-degradation-restart", c)
    w.drive(d, 600)
    return w, d


def test_back_within_one_and_a_half_times_the_pre_incident_median_verifies() -> None:
    w, d = run_latency(after=140.0)
    assert d.run.status == "succeeded", d.run.log  # type: ignore[attr-defined]


def test_still_above_it_fails_verification_and_pages() -> None:
    w, d = run_latency(after=160.0)
    run = d.run  # type: ignore[attr-defined]
    assert run.status == "escalated"
    assert "latency_p95_ms" in run.failure and "160" in run.failure and "150" in run.failure
    assert [a.kind for a in d.issued] == ["restart_service", "page"]  # type: ignore[attr-defined]


def test_escalate_page_false_ends_rolled_back_without_a_page() -> None:
    rb = parse_runbook({
        "name": "quiet", "fault_classes": ["latency_degradation"],
        "steps": [{"action": "restart_service", "params": {"service": "{service}"}}],
        "verify": {"conditions": ["latency_p95_ms <= 1.5*baseline for 30s"], "within": "1m"},
        "rollback": [{"action": "notify", "params": {"component": "{service}", "message": "undo {incident}"}}],
        "escalate": {"page": False}}, "q.yaml")
    w = latency_world(after=400.0)
    d = w.start(RunbookLibrary([rb]), rb, ctx("api", "latency_degradation", at=w.fake.t))
    w.drive(d, 600)
    assert d.run.status == "rolled_back"
    assert [e.split(":")[0] for _, e in d.run.log if e.startswith(("verifying", "rolling_back", "rolled_back"))] == [
        "verifying", "rolling_back", "rolled_back"]  # a notify needs no record: the rollback ends in one step
    assert [a.kind for a in d.issued] == ["restart_service", "notify"]
    assert d.issued[-1].message == "undo inc-1"  # type: ignore[attr-defined]


def test_verification_never_counts_samples_from_before_the_steps() -> None:
    """Healthy-looking history before the run must not verify it: only samples after the steps count."""
    rb = parse_runbook({
        "name": "strict", "fault_classes": ["latency_degradation"],
        "steps": [{"action": "notify", "params": {"component": "{service}"}}],
        "verify": {"conditions": ["error_ratio < 0.01 for 60s"], "within": "2m"}}, "s.yaml")
    w = latency_world(after=100.0)  # error_ratio has been 0 all along
    d = w.start(RunbookLibrary([rb]), rb, ctx("api", "latency_degradation", at=w.fake.t))
    t0 = w.fake.t
    w.drive(d, 300)
    assert d.run.status == "succeeded"
    assert d.run.log[-1][0] - t0 >= 60  # 60 s of fresh samples, not the hours of history before


def test_a_condition_longer_than_its_window_is_refused() -> None:
    with pytest.raises(RunbookError, match=r"s.yaml: verify: condition 'error_ratio < 0.01 for 60s' must hold 60 s"):
        parse_runbook({"name": "x", "fault_classes": ["overload"],
                       "steps": [{"action": "notify", "params": {"component": "a"}}],
                       "verify": {"conditions": ["error_ratio < 0.01 for 60s"], "within": "30s"}}, "s.yaml")


def test_an_already_evacuated_host_is_judged_on_every_service() -> None:
    """Nothing left on the dead host (an earlier runbook moved it): the run touches nothing, and verifies
    only once every service is healthy — not vacuously."""
    hosts = [("hv-a", "az-a", "r1", 64, 262144, 4000), ("hv-b", "az-b", "r1", 64, 262144, 4000)]
    healthy_after = 400.0

    def values(w: World) -> dict:
        bad = w.fake.t < healthy_after
        return {("active_servers", (("service", "web"),)): 2.0,
                ("error_ratio", (("service", "web"),)): 0.2 if bad else 0.0}

    w = World([FakeService("web", servers=0)], values, hypervisors=hosts)
    w.fake.execute(CreateServer(service="web", count=2, zone="az-b"))
    w.advance(300)
    d = w.start(RunbookLibrary.load(), "hypervisor-failure-evacuate", ctx("hv-a", "hypervisor_failure", at=w.fake.t))
    assert d.run.b.services == ["web"]
    w.drive(d, 400)
    assert d.run.status == "succeeded", d.run.log
    assert d.issued == [] and d.run.log[-1][0] >= healthy_after + 15  # the 20 s window: 4 samples, 5 s apart
