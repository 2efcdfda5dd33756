"""Property-based proofs of every guardrail: arbitrary configurations, proposals, approvals and clock advances.

An independent oracle (``safety_harness.Harness.check``) recomputes every
limit from the world's own record of executions.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from safety_harness import GIB, Harness
from safety_settings import PROFILE, scaled

from control.safety import SafetyConfig
from control.safety.config import ChaosPolicy


def opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a limit, sometimes none."""
    return st.one_of(s, s, s, st.none())



def configs() -> st.SearchStrategy[SafetyConfig]:
    return st.builds(
        SafetyConfig,
        human_approval=st.sampled_from([False] * 5 + [True]),
        max_automated_cost=opt(st.floats(0, 4)),
        require_approval_above=opt(st.floats(0, 2)),
        max_vms_auto_provisioned=opt(st.integers(0, 12)),
        max_data_deleted=opt(st.integers(0, 700).map(lambda g: g * GIB)),
        rate_limit_actions=opt(st.integers(0, 8)),
        max_scale_up_percent=opt(st.floats(0, 300)),
        max_scale_down_percent=opt(st.floats(0, 100)),
        min_scale_step=st.integers(0, 2),
        require_multi_approval=st.booleans(),
        multi_approvers=st.integers(2, 3),
        automated_kinds=st.sampled_from([None] * 4 + [("notify", "create_server"),
                                                      ("delete_server", "resize_server", "start_server")]),
        business_hours_only=st.sampled_from([False] * 3 + [True]),
        business_hours=st.sampled_from([(9, 17), (0, 24), (8, 9)]),
        utc_offset_hours=st.sampled_from([0.0, -5.0, 5.5]),
        canary_regions_first=st.booleans(),
        canary_regions=st.sampled_from([(), ("canary",), ("east",)]),
        canary_bake_seconds=st.sampled_from([0.0, 60.0, 600.0]),
        accounting_window_seconds=st.sampled_from([60.0, 600.0, 7200.0]),
        approval_ttl_seconds=st.sampled_from([300.0, 3600.0]),
        chaos=st.sampled_from([ChaosPolicy()] * 2 + [ChaosPolicy(allow=True, max_blast_radius="single-server"),
                                                     ChaosPolicy(allow=True, max_blast_radius="single-az")]),
    )


KINDS = ["create", "delete", "resize", "start", "reboot", "notify", "stop", "chaos"]
action_specs = st.tuples(st.sampled_from(KINDS), st.integers(0, 1001), st.integers(1, 6),
                         st.sampled_from([None, "small", "medium", "large"]))
dts = st.sampled_from([0.0, 0.5, 1.0, 20.0, 59.9, 60.0, 150.0, 400.0, 3600.0, 6 * 3600.0]) | st.floats(0, 900)
proposals = st.tuples(st.just("propose"), st.lists(action_specs, min_size=1, max_size=8))
events = st.one_of(
    proposals, proposals, proposals,
    st.tuples(st.just("advance"), dts),
    st.tuples(st.just("approvals"), st.none()),
    st.tuples(st.just("disable"), st.sampled_from([30.0, 600.0, 1800.0])),
    st.tuples(st.just("override"), st.sampled_from([60.0, 1800.0])),
    st.tuples(st.just("resume"), st.none()),
)


def run(cfg: SafetyConfig, script: list[tuple[str, Any]], fail_every: int = 0) -> Harness:
    h = Harness(cfg, fail_every=fail_every)
    for kind, arg in script:
        if kind == "propose":
            h.propose([h.materialize(s) for s in arg])
        elif kind == "advance":
            h.advance(arg)
        elif kind == "approvals":
            h.approvals()
        elif kind == "disable":
            h.disable(arg)
        elif kind == "override":
            h.override(arg)
        elif kind == "resume":
            h.resume()
    for dt in (130.0, 300.0, 3 * 3600.0):  # let approvers answer, then let the rest expire
        h.advance(dt)
        h.approvals()
    return h


REGRESSION_CFG = SafetyConfig(max_scale_down_percent=50.0, rate_limit_actions=None, max_data_deleted=None)


@scaled(800)
@given(cfg=configs(), script=st.lists(events, max_size=40), fail_every=st.sampled_from([0, 0, 3]))
@example(  # resize down then up within one instant: the gate must use the new flavor, not the stale observation
    cfg=SafetyConfig(require_approval_above=0.1, canary_regions_first=False),
    script=[("propose", [("resize", 7, 1, "small"), ("resize", 7, 1, "medium")])], fail_every=0)
@example(  # a change in a canary region must bake before other regions get it
    cfg=SafetyConfig(canary_regions=("canary",), canary_bake_seconds=600),
    script=[("propose", [("resize", 2, 1, "medium")]), ("advance", 60.0), ("propose", [("resize", 0, 1, "medium")]),
            ("advance", 600.0), ("propose", [("resize", 0, 1, "medium")])], fail_every=0)
@example(  # a high-risk action needs two approvers, not the first one who answers
    cfg=SafetyConfig(human_approval=True), script=[("propose", [("delete", 0, 1, None)]), ("advance", 130.0),
                                                  ("approvals", None)], fail_every=0)
@example(  # a pause committed by another component applies to the very next review
    cfg=SafetyConfig(), script=[("propose", [("notify", 0, 1, None)]), ("advance", 0.5), ("disable", 30.0),
                                ("propose", [("notify", 0, 1, None)])], fail_every=0)
@example(  # many deletes in one instant: 50 % of 3 active db servers is 1
    cfg=REGRESSION_CFG, script=[("propose", [("delete", 4, 1, None), ("delete", 5, 1, None),
                                             ("delete", 6, 1, None)])], fail_every=0)
@example(  # a resize that failed must not shrink the data a later delete of the same server removes
    cfg=SafetyConfig(require_approval_above=0.0, max_data_deleted=120 * GIB, rate_limit_actions=None,
                     max_scale_down_percent=None, accounting_window_seconds=60.0, canary_regions_first=False),
    script=[("propose", [("delete", 0, 1, None), ("delete", 1, 1, None), ("resize", 7, 1, None),
                         ("delete", 7, 1, None)])], fail_every=3)
def test_every_guardrail_holds(cfg: SafetyConfig, script: list[tuple[str, Any]], fail_every: int) -> None:
    note(f"config: {cfg.model_dump(exclude_defaults=True)}")
    h = run(cfg, script, fail_every)
    h.check()


@PROFILE
@given(script=st.lists(events, max_size=25))
def test_observation_mode_executes_only_approved(script: list[tuple[str, Any]]) -> None:
    from control.safety.profiles import profile

    h = run(profile("week1"), [("propose", [("create", 0, 1, None)]), *script])
    h.check()
    assert all(r.verdict.decision == "approval" for r in h.records
               if r.outcome == "executed" and r.action.changes_world)
    # record-only decisions run in observation mode: they change nothing, but are audited and rate-limited
    assert all(r.verdict.decision == "allow" for r in h.records if r.outcome == "executed" and not r.action.changes_world)
    assert h.queue.list()  # the first proposal at least is queued


class GateMachine(RuleBasedStateMachine):
    """Stateful: any interleaving of proposals, clock advances, pauses, votes and approval steps."""

    def __init__(self) -> None:
        super().__init__()
        self.h: Harness | None = None

    @initialize(cfg=configs())
    def setup(self, cfg: SafetyConfig) -> None:
        self.h = Harness(cfg, approver_delays=(60.0,))

    @rule(specs=st.lists(action_specs, min_size=1, max_size=6))
    def propose(self, specs: list[Any]) -> None:
        assert self.h is not None
        self.h.propose([self.h.materialize(s) for s in specs])

    @rule(dt=dts)
    def advance(self, dt: float) -> None:
        assert self.h is not None
        self.h.advance(dt)

    @rule()
    def approvals(self) -> None:
        assert self.h is not None
        self.h.approvals()

    @rule(who=st.sampled_from(["alice", "bob", "carol"]), approve=st.booleans(), pick=st.integers(0, 20))
    def human_vote(self, who: str, approve: bool, pick: int) -> None:
        from control.safety.approvals import ApprovalError

        assert self.h is not None
        pending = self.h.queue.list("pending")
        if not pending:
            return
        p = pending[pick % len(pending)]
        try:
            after = self.h.queue.vote(p.id, who, "approve" if approve else "deny", self.h.now)
        except ApprovalError:
            assert who in p.approvers + p.deniers  # the only refusal possible here: voting twice
            return
        assert after.status == ("denied" if not approve else "approved" if len(after.approvers) >= p.needed
                                else "pending")

    @rule(duration=st.sampled_from([30.0, 900.0]))
    def disable(self, duration: float) -> None:
        assert self.h is not None
        self.h.disable(duration)

    @rule(duration=st.sampled_from([60.0, 1800.0]))
    def override(self, duration: float) -> None:
        assert self.h is not None
        self.h.override(duration)

    @rule()
    def resume(self) -> None:
        assert self.h is not None
        self.h.resume()

    @precondition(lambda self: self.h is not None)
    @invariant()
    def guardrails_hold(self) -> None:
        assert self.h is not None
        self.h.check()


GateMachine.TestCase.settings = scaled(150)
TestGateMachine = GateMachine.TestCase
