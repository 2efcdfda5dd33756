"""Each guardrail on explicit examples: the verdict, its rule and the figures behind it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from safety_fakes import FakeWorld

from adapters.base import CreateServer, DeleteServer, Notify, Observation, RebootServer, ResizeServer, StartServer
from control.runtime import ChokePoint, MemoryActionLog
from control.safety import SafetyConfig, SafetyGate, SafetyStore
from control.safety.gate import GIB, SpendRateLimit
from control.safety.override import Overrides

MONDAY_10H = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
NO_LIMITS = dict(max_automated_cost=None, require_approval_above=None, max_vms_auto_provisioned=None,
                 max_data_deleted=None, rate_limit_actions=None, max_scale_up_percent=None,
                 max_scale_down_percent=None, canary_regions_first=False)


def cfg(**kw: object) -> SafetyConfig:
    return SafetyConfig(**{**NO_LIMITS, **kw})


def setup(config: SafetyConfig, store: object = None, **world_kw: object) -> tuple[FakeWorld, SafetyGate, ChokePoint]:
    world = FakeWorld(**world_kw)  # type: ignore[arg-type]
    gate = SafetyGate(config, store)  # type: ignore[arg-type]
    return world, gate, ChokePoint(world, gate, MemoryActionLog())


def submit(choke: ChokePoint, world: FakeWorld, t: float, *actions: object) -> list:
    world.t = t
    obs = Observation(world, t)
    return [choke.submit(t, "eng", a, obs) for a in actions]  # type: ignore[arg-type]


def test_no_limits_allows_and_executes() -> None:
    world, _, choke = setup(cfg())
    (rec,) = submit(choke, world, 1.0, CreateServer(service="web", count=3))
    assert rec.outcome == "executed" and rec.verdict.decision == "allow"
    assert rec.verdict.detail["cost_per_hour"] == pytest.approx(0.15)
    assert len(world.servers_by_id) == 7


def test_rate_limit_counts_a_sliding_60s_window() -> None:
    world, _, choke = setup(cfg(rate_limit_actions=3))
    recs = submit(choke, world, 0.0, *[Notify(component="x") for _ in range(5)])
    assert [r.outcome for r in recs] == ["executed"] * 3 + ["denied"] * 2
    assert recs[3].verdict.rule == "rate-limit" and recs[3].verdict.detail["executed_last_60s"] == 3
    assert submit(choke, world, 59.9, Notify(component="x"))[0].outcome == "denied"
    assert submit(choke, world, 60.0, Notify(component="x"))[0].outcome == "executed"


def test_scale_up_percent_groups_one_instant() -> None:
    world, _, choke = setup(cfg(max_scale_up_percent=50, min_scale_step=1))  # web has 4 active: 2 per window
    recs = submit(choke, world, 1.0, CreateServer(service="web"), CreateServer(service="web"),
                  CreateServer(service="web"))
    assert [r.outcome for r in recs] == ["executed", "executed", "denied"]
    d = recs[2].verdict.detail
    assert recs[2].verdict.rule == "max-scale-up" and d["active"] == 4 and d["allowed_in_window"] == 2
    assert d["already_in_window"] == 2 and d["window_seconds"] == 60.0
    # the limit is per window, not per step: a second step 1 s later may not add another 50 %
    assert submit(choke, world, 2.0, CreateServer(service="web"))[0].verdict.rule == "max-scale-up"
    # once the window has passed: 6 active -> 3 allowed
    assert [r.outcome for r in submit(choke, world, 62.0, CreateServer(service="web", count=3))] == ["executed"]


def test_scale_down_percent_applies_over_the_window_not_the_step() -> None:
    """Found live: 5 -> 2 in 5 s (60 %) passed a 50 % limit because the third delete came one step later."""
    world, _, choke = setup(cfg(max_scale_down_percent=50), services={"web": ("small", 5)})
    ids = sorted(world.servers_by_id)
    assert [r.outcome for r in submit(choke, world, 0.0, *[DeleteServer(server_id=i) for i in ids[:3]])] == [
        "executed", "executed", "denied"]
    (later,) = submit(choke, world, 5.0, DeleteServer(server_id=ids[2]))
    assert later.verdict.rule == "max-scale-down" and later.verdict.detail["reference_active"] == 5
    assert submit(choke, world, 61.0, DeleteServer(server_id=ids[2]))[0].outcome == "executed"  # 3 -> 2 a minute on


def test_scale_windows_survive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from control.safety.store import SafetyStore

    path = tmp_path / "safety.db"
    world, _, choke = setup(cfg(max_scale_down_percent=50), services={"web": ("small", 4)},
                            store=SafetyStore(path))
    ids = sorted(world.servers_by_id)
    assert [r.outcome for r in submit(choke, world, 100.0, *[DeleteServer(server_id=i) for i in ids[:2]])] == [
        "executed", "executed"]
    # a new controller process on the same state file, 10 s later: the window still holds the two deletes
    world2, _, choke2 = setup(cfg(max_scale_down_percent=50), services={"web": ("small", 2)},
                              store=SafetyStore(path))
    (rec,) = submit(choke2, world2, 110.0, DeleteServer(server_id=sorted(world2.servers_by_id)[0]))
    assert rec.verdict.rule == "max-scale-down" and rec.verdict.detail["already_in_window"] == 2


def test_scale_up_from_zero_uses_min_step() -> None:
    world, _, choke = setup(cfg(max_scale_up_percent=100, min_scale_step=1), services={"web": ("small", 0)})
    recs = submit(choke, world, 1.0, CreateServer(service="web", count=2))
    assert recs[0].verdict.rule == "max-scale-up"
    assert submit(choke, world, 1.0, CreateServer(service="web"))[0].outcome == "executed"


def test_scale_down_percent_and_last_server() -> None:
    world, _, choke = setup(cfg(max_scale_down_percent=50))
    ids = sorted(world.servers_by_id)
    recs = submit(choke, world, 1.0, *[DeleteServer(server_id=i) for i in ids])
    assert [r.outcome for r in recs] == ["executed", "executed", "denied", "denied"]
    assert recs[2].verdict.rule == "max-scale-down"
    # the last server: kept unless scale to zero is allowed and the service may idle at zero (min_servers 0)
    world2, _, choke2 = setup(cfg(max_scale_down_percent=50, allow_scale_to_zero=False), services={"db": ("small", 1)})
    (only,) = world2.servers_by_id
    assert submit(choke2, world2, 1.0, DeleteServer(server_id=only))[0].verdict.rule == "max-scale-down"
    world3, _, choke3 = setup(cfg(max_scale_down_percent=50), services={"db": ("small", 1)})
    (only,) = world3.servers_by_id
    assert world3.services()[0].min_servers == 0
    assert submit(choke3, world3, 1.0, DeleteServer(server_id=only))[0].outcome == "executed"


def test_require_approval_above_and_multi_approval_for_high_risk() -> None:
    world, _, choke = setup(cfg(require_approval_above=1.0, require_multi_approval=True, multi_approvers=3))
    (rec,) = submit(choke, world, 1.0, CreateServer(service="web", flavor="large"))
    assert rec.outcome == "proposed" and rec.verdict.approvers == 1  # create_server is not high-risk by default
    assert submit(choke, world, 1.0, CreateServer(service="web", flavor="medium"))[0].outcome == "executed"
    world, _, choke = setup(cfg(require_approval_above=1.0, high_risk_kinds=("create_server",), multi_approvers=3))
    (rec,) = submit(choke, world, 1.0, CreateServer(service="web", flavor="large"))
    assert rec.outcome == "proposed" and rec.verdict.rule == "require-approval-above"
    assert rec.verdict.approvers == 3 and rec.verdict.detail["limit"] == 1.0
    assert rec.verdict.detail["cost_per_hour"] == pytest.approx(1.6)


def test_max_automated_cost_per_hour_window() -> None:
    world, _, choke = setup(cfg(max_automated_cost=1.0))  # 0.2/h per medium
    recs = submit(choke, world, 0.0, *[CreateServer(service="web", flavor="medium") for _ in range(6)])
    assert [r.outcome for r in recs] == ["executed"] * 5 + ["proposed"]
    assert recs[5].verdict.rule == "max-automated-cost" and recs[5].verdict.approvers == 1
    assert submit(choke, world, 3599.0, CreateServer(service="web", flavor="medium"))[0].outcome == "proposed"
    assert submit(choke, world, 3600.0, CreateServer(service="web", flavor="medium"))[0].outcome == "executed"


def test_max_vms_auto_provisioned() -> None:
    world, _, choke = setup(cfg(max_vms_auto_provisioned=5))
    recs = submit(choke, world, 0.0, CreateServer(service="web", count=4), CreateServer(service="web", count=2),
                  CreateServer(service="web", count=1))
    assert [r.outcome for r in recs] == ["executed", "proposed", "executed"]
    assert recs[1].verdict.rule == "max-vms-auto-provisioned" and recs[1].verdict.detail["limit"] == 5


def test_max_data_deleted_needs_multi_approval() -> None:
    world, _, choke = setup(cfg(max_data_deleted=30 * GIB, multi_approvers=2), services={"web": ("small", 4)})
    ids = sorted(world.servers_by_id)
    recs = submit(choke, world, 0.0, *[DeleteServer(server_id=i) for i in ids[:2]])
    assert [r.outcome for r in recs] == ["executed", "proposed"]
    assert recs[1].verdict.rule == "max-data-deleted" and recs[1].verdict.approvers == 2
    assert recs[1].verdict.detail["requested_bytes"] == 20 * GIB


def test_unknown_server_is_denied_as_unverifiable() -> None:
    world, _, choke = setup(cfg())
    (rec,) = submit(choke, world, 0.0, RebootServer(server_id="nope"))
    assert rec.outcome == "denied" and rec.verdict.rule == "unverifiable"


def test_unknown_price_needs_approval() -> None:
    world, _, choke = setup(cfg(require_approval_above=100.0), services={"gpu": ("xl", 1)})
    (rec,) = submit(choke, world, 0.0, CreateServer(service="gpu"))
    assert rec.outcome == "proposed" and rec.verdict.rule == "cost-unknown"


def test_business_hours_only() -> None:
    world, _, choke = setup(cfg(business_hours_only=True, business_hours=(9, 17), utc_offset_hours=0))
    assert submit(choke, world, MONDAY_10H, Notify(component="x"))[0].outcome == "executed"
    assert submit(choke, world, MONDAY_10H + 8 * 3600, Notify(component="x"))[0].verdict.rule == "business-hours"
    saturday = MONDAY_10H + 5 * 86400
    assert submit(choke, world, saturday, Notify(component="x"))[0].verdict.rule == "business-hours"
    world, _, choke = setup(cfg(business_hours_only=True, utc_offset_hours=-9))  # 10:00 UTC = 01:00 local
    assert submit(choke, world, MONDAY_10H, Notify(component="x"))[0].outcome == "denied"


def test_canary_regions_first_with_bake_time() -> None:
    world, gate, choke = setup(cfg(canary_regions_first=True, canary_regions=("canary",),
                                      canary_bake_seconds=300))
    by_zone = {s.zone: s.id for s in world.servers_by_id.values()}
    east = ResizeServer(server_id=by_zone["az-east-1"], flavor="medium")
    (rec,) = submit(choke, world, 0.0, east)
    assert rec.outcome == "denied" and rec.verdict.rule == "canary-first" and rec.verdict.detail["region"] == "east"
    assert submit(choke, world, 10.0, ResizeServer(server_id=by_zone["az-canary"], flavor="medium"))[0].outcome \
        == "executed"
    assert submit(choke, world, 309.0, east)[0].verdict.rule == "canary-first"
    assert submit(choke, world, 310.0, east)[0].outcome == "executed"
    # a different change (another flavor) is not covered by that canary
    assert submit(choke, world, 400.0, ResizeServer(server_id=by_zone["az-west-1"], flavor="large"))[0] \
        .verdict.rule == "canary-first"


def test_observation_mode_proposes_everything_that_changes_the_world() -> None:
    world, _, choke = setup(cfg(human_approval=True))
    first = sorted(world.servers_by_id)[0]
    recs = submit(choke, world, 0.0, RebootServer(server_id=first), DeleteServer(server_id=first),
                  Notify(component="x"))
    assert [r.outcome for r in recs] == ["proposed", "proposed", "executed"]  # a note changes nothing: it runs
    assert recs[0].verdict.approvers == 1 and recs[1].verdict.approvers == 2  # delete declares risk "high"
    assert [a.kind for _, a, _ in world.executed] == ["notify"]


def test_kind_not_automated() -> None:
    world, _, choke = setup(cfg(automated_kinds=("notify",)))
    recs = submit(choke, world, 0.0, Notify(component="x"), StartServer(server_id=sorted(world.servers_by_id)[0]))
    assert [r.verdict.rule for r in recs] == ["within-limits", "kind-not-automated"]


def test_disable_and_override_deny_everything() -> None:
    store = SafetyStore()
    gate = SafetyGate(cfg(), store)
    world = FakeWorld()
    choke = ChokePoint(world, gate)
    ov = Overrides(store)
    ov.disable_automation(100.0, 1800, operator="alice", reason="testing")
    assert submit(choke, world, 99.0, Notify(component="x"))[0].outcome == "executed"
    rec = submit(choke, world, 100.0, Notify(component="x"))[0]
    assert rec.verdict.rule == "automation-disabled" and rec.verdict.detail["until"] == 1900.0
    assert submit(choke, world, 1900.0, Notify(component="x"))[0].outcome == "executed"


def test_budget_hard_limit_hook() -> None:
    world, _, choke = setup(cfg(budget_hard_limit_per_hour=0.35))  # 4 small = 0.2/h
    recs = submit(choke, world, 0.0, CreateServer(service="web", count=2), CreateServer(service="web", count=2))
    assert [r.outcome for r in recs] == ["executed", "denied"]
    assert recs[1].verdict.rule == "budget-hard-limit"
    world = FakeWorld()
    gate = SafetyGate(cfg(), budget=SpendRateLimit(0.21))
    assert ChokePoint(world, gate).submit(0.0, "e", CreateServer(service="web", count=1),
                                          Observation(world, 0.0)).outcome == "denied"


def test_approved_actions_are_counted_by_the_rate_limit() -> None:
    world, gate, choke = setup(cfg(rate_limit_actions=1))
    obs = Observation(world, 0.0)
    assert gate.recheck(0.0, "e", Notify(component="x"), obs, approved_by=["a"]).decision == "allow"
    assert gate.review(1.0, "e", Notify(component="x"), obs).rule == "rate-limit"


# ------------------------------------------------- the actions' declared metadata
def test_cost_follows_each_action_s_declared_effect() -> None:
    from adapters.base import PurchaseReservation, ShelveServer, StopServer

    world, gate, choke = setup(cfg(), services={"web": ("medium", 4)})
    first, second = sorted(world.servers_by_id)[:2]
    stop, shelve = submit(choke, world, 0.0, StopServer(server_id=first), ShelveServer(server_id=second))
    assert stop.verdict.detail["cost_per_hour"] == pytest.approx(-0.2)  # pauses: a running server's price saved
    assert shelve.verdict.detail["cost_per_hour"] == pytest.approx(-0.2)
    year = PurchaseReservation(project="p", flavor="small", count=3, term_s=365 * 86400.0)
    (buy,) = submit(choke, world, 1.0, year)  # commits: no reserved price listed, on-demand 0.05 per hour
    assert buy.verdict.detail["cost_per_hour"] == pytest.approx(0.15)
    assert buy.verdict.detail["commitment"] == pytest.approx(0.15 * 365 * 24)


def test_a_commitment_is_compared_whole_with_the_cost_limits() -> None:
    from adapters.base import PurchaseReservation

    world, _, choke = setup(cfg(require_approval_above=100.0))
    (rec,) = submit(choke, world, 0.0, PurchaseReservation(project="p", flavor="small", count=1))  # 0.05 x 8760 h
    assert rec.outcome == "proposed" and rec.verdict.rule == "require-approval-above"
    assert rec.verdict.approvers == 2  # PurchaseReservation declares risk "high"


def test_pausing_active_servers_is_a_scale_down_step() -> None:
    from adapters.base import StopServer

    world, _, choke = setup(cfg(max_scale_down_percent=50.0), services={"web": ("small", 4)})
    ids = sorted(world.servers_by_id)
    recs = submit(choke, world, 0.0, *[StopServer(server_id=s) for s in ids[:3]])
    assert [r.verdict.rule for r in recs] == ["within-limits", "within-limits", "max-scale-down"]


def test_high_risk_is_declared_by_the_action_and_high_risk_kinds_overrides_it() -> None:
    world, _, choke = setup(cfg(human_approval=True))
    sid = sorted(world.servers_by_id)[0]
    delete, reboot = submit(choke, world, 0.0, DeleteServer(server_id=sid), RebootServer(server_id=sid))
    assert (delete.verdict.approvers, reboot.verdict.approvers) == (2, 1)
    world, _, choke = setup(cfg(human_approval=True, high_risk_kinds=("reboot_server",)))
    delete, reboot = submit(choke, world, 0.0, DeleteServer(server_id=sid), RebootServer(server_id=sid))
    assert (delete.verdict.approvers, reboot.verdict.approvers) == (1, 2)


def test_fault_injection_needs_people_unless_a_chaos_policy_allows_it() -> None:
    from adapters.base import InjectFault

    sid = "srv-1"
    crash = InjectFault(fault="server_crash", target_component=sid, experiment="exp-1")
    world, _, choke = setup(cfg())
    (rec,) = submit(choke, world, 0.0, crash)
    assert rec.outcome == "proposed" and rec.verdict.rule == "always-approval" and rec.verdict.approvers == 2
    policy = {"allow": True, "max_blast_radius": "single-hypervisor"}
    world, _, choke = setup(cfg(chaos=policy))
    ok, service, zone, nowhere = submit(choke, world, 0.0, crash,
                                        InjectFault(fault="bad_deploy", target_component="web"),
                                        InjectFault(fault="az_outage", target_component="az-east-1"),
                                        InjectFault(fault="az_outage", target_component="atlantis"))
    assert ok.outcome == service.outcome == "executed"  # a server and a service: within single-hypervisor
    assert zone.verdict.rule == "max-blast-radius" and zone.verdict.detail["blast_radius"] == "single-az"
    assert nowhere.verdict.rule == "max-blast-radius" and nowhere.verdict.detail["blast_radius"] is None


def test_record_only_decisions_run_in_observation_mode_but_are_rate_limited() -> None:
    from adapters.base import DeclareIncident, Page

    world, _, choke = setup(cfg(human_approval=True, rate_limit_actions=2))
    recs = submit(choke, world, 0.0, DeclareIncident(incident_id="i1", components=("web",)), Page(why="web down"),
                  Notify(component="web"), RebootServer(server_id="srv-1"))
    assert [r.outcome for r in recs] == ["executed", "executed", "denied", "denied"]
    assert recs[2].verdict.rule == "rate-limit"


def test_an_open_incident_owns_its_servers_and_its_services_capacity() -> None:
    from adapters.base import DeclareIncident, ResolveIncident, StartServer, StopServer, UpdateIncident

    world, _, choke = setup(cfg(), services={"web": ("small", 4), "api": ("small", 2)})
    web = sorted(s.id for s in world.servers(service="web"))
    api = sorted(s.id for s in world.servers(service="api"))
    submit(choke, world, 0.0, StopServer(server_id=web[0]))
    (decl,) = submit(choke, world, 1.0, DeclareIncident(incident_id="INC-1", components=("web", web[0]),
                                                          severity="P3", title="stopped server"))
    assert decl.outcome == "executed"
    start, delete, create, other = submit(
        choke, world, 2.0, StartServer(server_id=web[0], reason="a restarter"),
        DeleteServer(server_id=web[1], reason="a scaler scaling down"),
        CreateServer(service="web", reason="a scaler adding capacity"), DeleteServer(server_id=api[0]))
    assert start.verdict.rule == "incident-owned" and start.verdict.detail["incident"] == "INC-1"
    assert delete.verdict.rule == "incident-owned"
    assert create.verdict.rule == "incident-owned"  # a second reaction to the same fault: the incident's
    (joined,) = submit(choke, world, 2.0, CreateServer(service="web", incident="INC-1", reason="demand rose"))
    assert joined.outcome == "executed"  # an engine joins the response by tying its action to the incident
    assert other.outcome == "executed"  # another service is not the incident's
    # the incident's own response (tied by ``incident``) acts; after resolution everyone may again
    (own,) = submit(choke, world, 3.0, StartServer(server_id=web[0], incident="INC-1"))
    assert own.outcome == "executed"
    submit(choke, world, 4.0, ResolveIncident(incident_id="INC-1"))
    assert submit(choke, world, 5.0, DeleteServer(server_id=web[1]))[0].outcome == "executed"
    # ownership ends at mitigation, and lapses when the incident stops reporting (a stuck one must not freeze)
    submit(choke, world, 6.0, DeclareIncident(incident_id="INC-3", components=("web",), severity="P3"))
    assert submit(choke, world, 7.0, CreateServer(service="web"))[0].verdict.rule == "incident-owned"
    assert submit(choke, world, 6.0 + 901.0, CreateServer(service="web"))[0].outcome == "executed"
    submit(choke, world, 1000.0, DeclareIncident(incident_id="INC-4", components=("web",), severity="P3"))
    submit(choke, world, 1001.0, UpdateIncident(incident_id="INC-4", status="mitigated"))
    assert submit(choke, world, 1002.0, CreateServer(service="web"))[0].outcome == "executed"
    # the rule can be switched off
    world2, _, choke2 = setup(cfg(incident_ownership=False))
    sid = sorted(world2.servers_by_id)[0]
    submit(choke2, world2, 0.0, DeclareIncident(incident_id="INC-2", components=(sid,), severity="P3"))
    assert submit(choke2, world2, 1.0, DeleteServer(server_id=sid))[0].outcome == "executed"
