"""The safety kit on the real twin: observation mode with simulated approvers, and guardrails on a live run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from control.audit import AuditLog
from control.runtime import Runtime
from control.safety import SafetyConfig, SafetyKit, profile

pytest.importorskip("twin.world")
pytest.importorskip("adapters.sim")
ROOT = Path(__file__).resolve().parents[2]
SCN = ROOT / "scenarios" / "standard" / "product-launch.yaml"


def run_twin(config: SafetyConfig, hours: float = 6.0, approvers: int = 2) -> tuple[SafetyKit, list]:
    from adapters.sim import SimAdapter
    from engines.baselines import engine_set
    from scenarios.loader import load_scenario
    from twin.clock import SimClock
    from twin.world import World

    scn = load_scenario(SCN).model_copy(update={"duration": hours * 3600})
    world = World(scn, base_dir=SCN.parent)
    adapter = SimAdapter(world)
    kit = SafetyKit.build(adapter, config, log=AuditLog(":memory:"), simulated_approvers=approvers,
                          approver_delay=300.0)
    records: list = []
    kit.choke.listeners.append(records.append)
    runtime = Runtime(adapter, engine_set("reactive"), kit.choke)
    clock = SimClock(world.env)
    runtime.attach(clock)
    kit.attach(clock)
    world.run(until=scn.duration)
    return kit, records


@pytest.mark.skipif(not SCN.exists(), reason="standard scenario missing")
def test_week1_observation_mode_on_the_twin() -> None:
    kit, records = run_twin(profile("week1"))
    counts = Counter((r.outcome, r.verdict.decision) for r in records)
    assert counts[("executed", "approval")] > 0
    assert not [r for r in records if r.outcome == "executed" and r.verdict.decision != "approval"]
    for r in records:
        if r.outcome == "executed":
            assert len(r.verdict.detail["approved_by"]) >= r.verdict.approvers
            assert r.at >= 300.0  # nothing before an approver could have answered
    kit.log.flush()  # type: ignore[union-attr]
    assert kit.log.reader().verify().ok  # type: ignore[union-attr]


@pytest.mark.skipif(not SCN.exists(), reason="standard scenario missing")
def test_tight_guardrails_hold_on_the_twin() -> None:
    cfg = SafetyConfig(rate_limit_actions=3, max_vms_auto_provisioned=4, accounting_window_seconds=3600,
                       max_scale_up_percent=25)
    kit, records = run_twin(cfg)
    executed = [r for r in records if r.outcome in ("executed", "failed")]
    assert executed and any(r.verdict.rule == "rate-limit" for r in records)
    times = [r.at for r in executed]
    assert max(sum(1 for s in times if t - 60 < s <= t) for t in times) <= 3
    auto = [(r.at, len(r.result.server_ids)) for r in executed if r.verdict.decision == "allow" and r.result]
    assert max((sum(n for s, n in auto if t - 3600 < s <= t) for t, _ in auto), default=0) <= 4
    assert any(r.verdict.rule in ("max-vms-auto-provisioned", "max-scale-up") for r in records)
