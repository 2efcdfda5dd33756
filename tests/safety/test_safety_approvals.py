"""Approval queue, simulated approvers driven by a clock, emergency override with MFA, multi-approved limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
from safety_fakes import FakeWorld
from safety_harness import SECRET

from adapters.base import CreateServer, DeleteServer, Notify, Observation, RebootServer
from control.audit import AuditLog
from control.runtime import Runtime
from control.safety import (
    ApprovalError,
    OverrideError,
    Overrides,
    SafetyConfig,
    SafetyGate,
    SafetyKit,
    SafetyStore,
)
from control.safety.approvals import ApprovalQueue


class TickClock:
    """A minimal Clock: ``every`` registrations run by ``run_until``; nothing sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.jobs: list[list] = []

    def now(self) -> float:
        return self.t

    def every(self, period: float, fn: Callable[[float], None], offset: float = 0.0) -> None:
        self.jobs.append([self.t + offset, period, fn])

    def run_until(self, end: float) -> None:
        while True:
            job = min(self.jobs, key=lambda j: j[0])
            if job[0] > end:
                break
            self.t = job[0]
            job[0] += job[1]
            job[2](self.t)
        self.t = end


class OneShotEngine:
    name = "scaler"
    cadence = 30.0

    def __init__(self) -> None:
        self.fired = False

    def step(self, now: float, obs: Observation) -> list:
        if self.fired:
            return []
        self.fired = True
        return [CreateServer(service="web", count=1, reason="cpu"), DeleteServer(server_id="srv-1", reason="idle")]


def test_observation_mode_end_to_end_with_simulated_approvers(tmp_path: Path) -> None:
    world = FakeWorld()
    kit = SafetyKit.build(world, SafetyConfig(human_approval=True), audit_path=tmp_path / "audit.db",
                          simulated_approvers=2, approver_delay=120.0, approver_cadence=60.0, executor_cadence=10.0)
    clock = TickClock()
    runtime = Runtime(world, [OneShotEngine()], kit.choke)
    runtime.attach(clock)
    kit.attach(clock)
    clock.run_until(100.0)
    props = kit.queue.list()
    assert [p.status for p in props] == ["pending", "pending"] and [p.needed for p in props] == [1, 2]
    assert len(world.servers_by_id) == 4
    clock.run_until(400.0)
    props = kit.queue.list()
    assert [p.status for p in props] == ["executed", "executed"]
    assert len(props[1].approvers) == 2  # delete is high-risk: both simulated approvers
    kit.close()
    from control.audit import AuditReader

    entries = AuditReader(tmp_path / "audit.db").list()
    executed = [e.body for e in entries if e.body["outcome"] == "executed"]
    assert {b["kind"] for b in executed} == {"create_server", "delete_server"}
    delete = next(b for b in executed if b["kind"] == "delete_server")
    assert sorted(delete["approved_by"]) == ["sim-approver-1", "sim-approver-2"]
    assert delete["verdict"]["detail"]["proposed_audit_id"] == props[1].audit_id


def test_votes_rules() -> None:
    store = SafetyStore()
    q = ApprovalQueue(store)
    from control.runtime import Verdict

    pid = q.enqueue(0.0, "e", Notify(component="x"), Verdict("approval", "human-approval", {}, approvers=2))
    assert q.vote(pid, "alice", "approve", 1.0).status == "pending"
    with pytest.raises(ApprovalError, match="already voted"):
        q.vote(pid, "alice", "approve", 2.0)
    assert q.vote(pid, "bob", "approve", 3.0).status == "approved"
    with pytest.raises(ApprovalError, match="not pending"):
        q.vote(pid, "carol", "deny", 4.0)
    with pytest.raises(ApprovalError, match="no proposal #99"):
        q.vote(99, "carol", "deny", 4.0)
    pid2 = q.enqueue(0.0, "e", Notify(component="y"), Verdict("approval", "r", {}, approvers=3))
    assert q.vote(pid2, "carol", "deny", 1.0).status == "denied"


def test_the_same_proposal_waits_once() -> None:
    q = ApprovalQueue(SafetyStore())
    from control.runtime import Verdict

    v = Verdict("approval", "human-approval", {}, approvers=1)
    a = q.enqueue(0.0, "e", Notify(component="x", reason="first"), v)
    assert q.enqueue(30.0, "e", Notify(component="x", reason="again"), v) == a
    assert q.enqueue(30.0, "other-engine", Notify(component="x"), v) != a
    q.vote(a, "alice", "deny", 40.0)
    assert q.enqueue(60.0, "e", Notify(component="x"), v) != a  # decided: a new proposal


def test_a_fresh_request_id_is_not_a_new_proposal() -> None:
    """An engine re-proposing the same capacity each step under a new idempotency key waits once (live, the
    predictive scaler filled the queue with 17 copies of "one more server" while nobody had voted yet)."""
    from control.runtime import Verdict

    q = ApprovalQueue(SafetyStore())
    v = Verdict("approval", "require-approval-above", {}, approvers=1)
    a = q.enqueue(0.0, "scaler", CreateServer(service="web", request_id="r-1"), v)
    assert q.enqueue(2.0, "scaler", CreateServer(service="web", request_id="r-2"), v) == a
    assert q.get(a).action.request_id == "r-1"  # the action waiting is the first one, key and all
    assert q.enqueue(4.0, "scaler", CreateServer(service="web", count=2, request_id="r-3"), v) != a  # more wanted


def test_denied_and_expired_proposals_are_audited() -> None:
    world = FakeWorld()
    log = AuditLog(":memory:", batch_size=1)
    kit = SafetyKit.build(world, SafetyConfig(human_approval=True, approval_ttl_seconds=100), log=log)
    obs = Observation(world, 0.0)
    kit.choke.submit(0.0, "e", RebootServer(server_id="srv-1"), obs)  # record-only kinds (Notify) need no approval
    kit.choke.submit(0.0, "e", RebootServer(server_id="srv-2"), obs)
    first, second = kit.queue.list()
    kit.queue.vote(first.id, "alice", "deny", 5.0)
    kit.executor.step(10.0)
    kit.executor.step(200.0)
    rules = [e.body["rule"] for e in log.reader().list()]
    assert rules == ["human-approval", "human-approval", "approval-denied", "approval-expired"]
    assert [p.status for p in kit.queue.list()] == ["denied", "expired"]
    kit.executor.step(300.0)  # nothing logged twice
    assert log.reader().count() == 4


def test_approved_action_waits_while_automation_is_disabled() -> None:
    world = FakeWorld()
    kit = SafetyKit.build(world, SafetyConfig(human_approval=True))
    kit.choke.submit(0.0, "e", RebootServer(server_id="srv-1"), Observation(world, 0.0))
    (p,) = kit.queue.list()
    kit.queue.vote(p.id, "alice", "approve", 1.0)
    kit.overrides.disable_automation(1.0, 60.0, "bob")
    kit.executor.step(30.0)
    assert kit.queue.get(p.id).status == "approved" and world.executed == []
    assert "automation-disabled" in (kit.queue.get(p.id).note or "")
    kit.executor.step(61.0)
    assert kit.queue.get(p.id).status == "executed" and len(world.executed) == 1


def test_emergency_override_needs_mfa_and_refuses_replay() -> None:
    store = SafetyStore()
    ov = Overrides(store)
    ov.enroll("alice", 0.0, SECRET)
    now = 1_800_000_000.0
    code = pyotp.TOTP(SECRET).at(now)
    with pytest.raises(OverrideError, match="justification must not be empty"):
        ov.emergency_override(now, "inc-1", "alice", " ", code)
    with pytest.raises(OverrideError, match="not enrolled"):
        ov.emergency_override(now, "inc-1", "mallory", "x", code)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(OverrideError, match="rejected"):
        ov.emergency_override(now, "inc-1", "alice", "x", wrong)
    p = ov.emergency_override(now, "inc-1", "alice", "runaway scaling", code)
    assert p.until == now + 1800 and p.kind == "override"
    with pytest.raises(OverrideError, match="already used"):
        ov.resume(now + 1, "alice", code)
    gate = SafetyGate(SafetyConfig(), store)
    assert gate.review(now + 5, "e", Notify(component="x"), None).rule == "emergency-override"
    assert ov.resume(now + 31, "alice", pyotp.TOTP(SECRET).at(now + 31)) == 1
    assert gate.review(now + 32, "e", Notify(component="x"), None).decision == "allow"


def test_pause_from_another_process_is_seen_within_the_poll(tmp_path: Path) -> None:
    path = tmp_path / "safety.db"
    gate = SafetyGate(SafetyConfig(rate_limit_actions=None), SafetyStore(path), poll_seconds=0.5)
    assert gate.review(100.0, "e", Notify(component="x"), None).decision == "allow"
    Overrides(SafetyStore(path)).disable_automation(100.0, 600.0, "cli")  # another connection, like the CLI
    assert gate.review(100.6, "e", Notify(component="x"), None).rule == "automation-disabled"


def test_limit_changes_need_two_other_approvers() -> None:
    store = SafetyStore()
    ov = Overrides(store)
    gate = SafetyGate(SafetyConfig(max_vms_auto_provisioned=1000), store)
    cid = ov.propose_limits(0.0, SafetyConfig(max_vms_auto_provisioned=1), "alice", "tighten after incident")
    with pytest.raises(OverrideError, match="proposer cannot approve"):
        ov.approve_limits(1.0, cid, "alice")
    assert ov.approve_limits(2.0, cid, "bob").status == "pending"
    with pytest.raises(OverrideError, match="already approved"):
        ov.approve_limits(3.0, cid, "bob")
    gate.refresh()
    assert gate.config.max_vms_auto_provisioned == 1000
    assert ov.approve_limits(4.0, cid, "carol").status == "applied"
    world = FakeWorld()
    v = gate.review(5.0, "e", CreateServer(service="web", count=2), Observation(world, 5.0))
    assert gate.config.max_vms_auto_provisioned == 1 and v.rule == "max-vms-auto-provisioned"


def test_gate_from_files_shares_the_cli_state(tmp_path: Path) -> None:
    cfg = tmp_path / "limits.yaml"
    cfg.write_text("profile: week2\n")
    state = tmp_path / "safety.db"
    gate = SafetyGate.from_files(str(cfg), str(state))
    assert gate.config.max_vms_auto_provisioned == 10
    Overrides(SafetyStore(state)).disable_automation(1000.0, 60.0, "cli")
    assert gate.review(1001.0, "e", Notify(component="x"), None).rule == "automation-disabled"


def test_enroll_rejects_an_unusable_secret() -> None:
    """Regression (found by hypothesis): a short TOTP secret crashed inside pyotp at the first override."""
    with pytest.raises(OverrideError, match="unusable TOTP secret"):
        Overrides(SafetyStore()).enroll("bob", 0.0, "JBSWY3DP")
