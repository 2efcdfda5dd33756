"""The gate's budget hook: no sequence of actions gets spend past a hard budget; spend cuts are never blocked."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import (
    Action,
    CreateServer,
    DeleteServer,
    Notify,
    Observation,
    PurchaseReservation,
    ResizeServer,
    SetServiceSetting,
    ShelveServer,
    StartServer,
    StopServer,
)
from adapters.fake import FakeAdapter, FakeService
from control.safety import SafetyConfig
from control.safety.budget_guard import CAP_SETTING, CAP_UNTIL_SETTING, ProjectBudgetGuard
from control.safety.gate import SafetyGate, SpendRateLimit

DAY = 86400.0
FLAVORS = ("small", "medium", "large")
# generous limits: the budget rules are what is under test, not the others
LOOSE = SafetyConfig(max_automated_cost=None, require_approval_above=None, max_vms_auto_provisioned=None,
                     max_data_deleted=None, rate_limit_actions=None, max_scale_up_percent=None,
                     max_scale_down_percent=None)


def _world(hard: bool = True, limit: float = 200.0) -> FakeAdapter:
    w = FakeAdapter([FakeService("web", "small", 2, project="p"), FakeService("db", "medium", 1, project="q")])
    w.add_budget("p", limit=limit, period_s=5 * DAY, hard=hard)
    return w


def _action(w: FakeAdapter, kind: str, pick: int, flavor: int, count: int) -> Action:
    ids = sorted(w.servers_by_id)
    sid = ids[pick % len(ids)] if ids else "none"
    return {
        "create": lambda: CreateServer(service=("web", "db")[pick % 2], flavor=FLAVORS[flavor], count=count),
        "start": lambda: StartServer(server_id=sid),
        "resize": lambda: ResizeServer(server_id=sid, flavor=FLAVORS[flavor]),
        "stop": lambda: StopServer(server_id=sid),
        "shelve": lambda: ShelveServer(server_id=sid),
        "delete": lambda: DeleteServer(server_id=sid),
        "reserve": lambda: PurchaseReservation(project="p", flavor=FLAVORS[flavor], count=count, term_s=DAY),
    }[kind]()


STEP = st.tuples(st.sampled_from(["create", "start", "resize", "stop", "shelve", "delete", "reserve"]),
                 st.integers(0, 50), st.integers(0, 2), st.integers(1, 6), st.floats(0, 12 * 3600))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=40), enforce_all=st.booleans())
def test_no_sequence_of_actions_gets_spend_past_a_hard_limit(steps: list, enforce_all: bool) -> None:
    """Whatever engines propose, in any order and at any pace, a hard budget's period ends within its limit."""
    w = _world(hard=not enforce_all)
    gate = SafetyGate(LOOSE.model_copy(update={"enforce_hard_limit": enforce_all}))
    for kind, pick, flavor, count, wait in steps:
        w.advance(wait)
        if w.t >= 5 * DAY:
            break
        obs = Observation(w, w.t)
        a = _action(w, kind, pick, flavor, count)
        v = gate.review(w.t, "test", a, obs)
        obs.close()
        if v.decision == "allow":
            with contextlib.suppress(Exception):  # a refused world action is fine: the property is about spend
                w.execute(a)
    w.advance(max(5 * DAY - 1 - w.t, 0))
    p = next(b for b in w.budgets() if b.project == "p")
    assert p.spent <= p.limit + 1e-6, f"{p.spent:.2f} spent of a hard {p.limit}"


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["stop", "shelve", "delete", "resize_down", "notify", "setting"]),
       pick=st.integers(0, 10))
def test_spend_reducing_and_record_only_actions_are_never_blocked_by_a_budget(kind: str, pick: int) -> None:
    w = _world(limit=1.0)  # already far over its hard limit after a day
    w.servers_by_id  # noqa: B018
    w.add_budget("*", limit=1.0, period_s=5 * DAY, hard=True)
    w.advance(DAY)
    gate = SafetyGate(LOOSE.model_copy(update={"enforce_hard_limit": True}))
    ids = sorted(w.servers_by_id)
    sid = ids[pick % len(ids)]
    a: Action = {"stop": StopServer(server_id=sid), "shelve": ShelveServer(server_id=sid),
                 "delete": DeleteServer(server_id=sid), "resize_down": ResizeServer(server_id=sid, flavor="small"),
                 "notify": Notify(component="p", message="over budget"),
                 "setting": SetServiceSetting(service="web", key=CAP_SETTING, value=1.0)}[kind]
    obs = Observation(w, w.t)
    v = gate.review(w.t, "test", a, obs)
    assert not v.rule.startswith("budget"), v
    # and the guard alone, asked directly, has nothing against it
    assert ProjectBudgetGuard(enforce_all=True).check(w.t, a, gate.assess(a, obs).cost_per_hour, obs, 0.0) is None
    obs.close()


def test_spending_under_a_hard_budget_is_refused_with_the_figures() -> None:
    w = _world(limit=60.0)  # 2 x 0.05 + ... per hour over 5 days: room for little more
    w.advance(3600)
    gate = SafetyGate(LOOSE)
    obs = Observation(w, w.t)
    v = gate.review(w.t, "scaler", CreateServer(service="web", flavor="large", count=2), obs)
    assert v.decision == "deny" and v.rule == "budget-hard-limit"
    assert v.detail["budget"] == "p" and v.detail["projected_period_spend"] > v.detail["limit"]
    # the other project has no hard budget: its spend is the budget's business only when * is hard
    assert gate.review(w.t, "scaler", CreateServer(service="db", count=1), obs).rule != "budget-hard-limit"
    obs.close()


def test_a_soft_budget_is_enforced_only_with_enforce_hard_limit() -> None:
    w = _world(hard=False, limit=1.0)
    w.advance(3600)
    obs = Observation(w, w.t)
    a = CreateServer(service="web", count=1)
    assert SafetyGate(LOOSE).review(w.t, "s", a, obs).decision == "allow"
    assert SafetyGate(LOOSE.model_copy(update={"enforce_hard_limit": True})).review(w.t, "s", a, obs).rule == \
        "budget-hard-limit"
    obs.close()


def test_budget_cap_keeps_other_engines_from_re_adding_what_the_budget_took() -> None:
    w = FakeAdapter([FakeService("batch", "small", 3, project="lab",
                                 settings={CAP_SETTING: 3.0, CAP_UNTIL_SETTING: 2 * DAY})])
    gate = SafetyGate(LOOSE)
    obs = Observation(w, w.t)
    v = gate.review(w.t, "scaler", CreateServer(service="batch", count=1), obs)
    assert v.rule == "budget-cap" and v.detail["cap"] == 3.0
    obs.close()
    w.advance(2 * DAY)  # the cap ends with the period it was placed for
    obs = Observation(w, w.t)
    assert gate.review(w.t, "scaler", CreateServer(service="batch", count=1), obs).decision == "allow"
    obs.close()


def test_spend_rate_limit_still_works_beside_the_project_guard() -> None:
    w = _world(hard=False)
    obs = Observation(w, w.t)
    rate = w.spend().rate_per_hour
    v = SafetyGate(LOOSE.model_copy(update={"budget_hard_limit_per_hour": rate + 0.01})).review(
        w.t, "s", CreateServer(service="web", flavor="large"), obs)
    assert v.rule == "budget-hard-limit" and "limit_per_hour" in v.detail
    assert SpendRateLimit(rate + 10).check(w.t, CreateServer(service="web"), 0.05, obs, 0.0) is None
    obs.close()
