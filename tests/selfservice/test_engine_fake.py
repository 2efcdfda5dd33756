"""The self-service engine on the fake world, through the safety gate: each kind decided with its rule, carried
out as gated actions, closed once the world shows it."""

from __future__ import annotations

from adapters.base import CreateProject, CreateServer, DeleteProject, DeleteServer, FulfillRequest, Notify
from engines.selfservice import SelfService, SelfServiceConfig
from tests.selfservice.kit import fake_world, plane, run, status


def _track(eng: SelfService, rid: str) -> dict:
    return next(d for d in eng.decisions() if d["request"] == rid)


def test_small_vm_provision_is_approved_within_policy_and_carried_out_through_the_gate() -> None:
    w = fake_world()
    p, eng = plane(w)
    rid = w.submit_request("shop", "vm_provision", {"cpus": 2, "memory_gb": 4, "storage_gb": 40, "count": 2,
                                                    "image": "ubuntu-24.04"})
    recs = run(w, eng, p, 30)
    d = _track(eng, rid)
    assert d["verdict"] == "approve" and d["rule"] == "within-policy" and d["plan"]["flavor"] == "medium"
    assert d["cost_per_month"] > 0 and d["latency_s"] <= 10
    creates = [r for r in recs if isinstance(r.action, CreateServer)]
    assert len(creates) == 1 and creates[0].outcome == "executed"  # through the gate, audited
    assert creates[0].action.evidence["request"] == rid and creates[0].action.evidence["rule"] == "within-policy"
    assert status(w, rid) == "approved"
    assert sum(s.metadata.get("zeroops_request_id") == rid for s in w.servers()) == 2
    closing = [r for r in recs if isinstance(r.action, FulfillRequest)]
    assert closing and closing[0].action.carried_out


def test_over_the_auto_limit_goes_to_a_person_and_stays_open() -> None:
    w = fake_world()
    p, eng = plane(w)
    rid = w.submit_request("shop", "vm_provision", {"flavor": "small", "count": 8})  # auto max_vms 5, hard 50
    recs = run(w, eng, p, 30)
    d = _track(eng, rid)
    assert (d["verdict"], d["rule"]) == ("approval", "auto-limit:max_vms")
    assert status(w, rid) == "open"
    assert [type(r.action) for r in recs] == [Notify] and recs[0].action.evidence["rule"] == "auto-limit:max_vms"
    assert not any(s.metadata.get("zeroops_request_id") == rid for s in w.servers())


def test_breaking_a_hard_limit_is_refused_with_its_rule() -> None:
    w = fake_world()
    p, eng = plane(w)
    rid = w.submit_request("shop", "vm_provision", {"flavor": "small", "count": 60})
    run(w, eng, p, 10)
    assert (_track(eng, rid)["verdict"], _track(eng, rid)["rule"]) == ("refuse", "hard-limit:max_vms")
    assert status(w, rid) == "denied"


def test_project_quota_and_invalid_requests() -> None:
    w = fake_world()
    p, eng = plane(w)
    over = w.submit_request("lab", "vm_provision", {"flavor": "medium", "count": 9})  # lab: 2 of 10 instances used
    junk = w.submit_request("shop", "vm_provision", {"flavor": "no-such", "count": 1})
    weird = w.submit_request("shop", "teleport", {})
    run(w, eng, p, 10)
    assert _track(eng, over)["rule"] == "project-quota" and status(w, over) == "open"
    assert _track(eng, junk)["rule"] == "invalid-request" and "no-such" in _track(eng, junk)["detail"]["error"]
    assert _track(eng, weird)["rule"] == "invalid-request" and status(w, weird) == "denied"


def test_budget_headroom_and_a_hard_budget() -> None:
    w = fake_world()
    w.add_budget("shop", limit=100.0)  # 4 small servers: 0.2/h, 144 a month already: over
    p, eng = plane(w)
    rid = w.submit_request("shop", "vm_provision", {"flavor": "small", "count": 1})
    run(w, eng, p, 10)
    assert _track(eng, rid)["rule"] == "budget-headroom" and status(w, rid) == "open"
    w2 = fake_world()
    w2.add_budget("shop", limit=100.0, hard=True)
    p2, eng2 = plane(w2)
    rid2 = w2.submit_request("shop", "vm_provision", {"flavor": "small", "count": 1})
    run(w2, eng2, p2, 10)
    assert _track(eng2, rid2)["rule"] == "budget-hard" and status(w2, rid2) == "denied"


def test_quota_increase_within_policy_updates_the_quota() -> None:
    w = fake_world()
    p, eng = plane(w)
    rid = w.submit_request("lab", "quota_increase", {"instances": 5, "cores": 20, "ram_mb": 40_960})
    run(w, eng, p, 20)
    q = {q.project: q for q in w.quotas()}["lab"]
    assert (q.instances, q.cores, q.ram_mb) == (15, 60, 122_880) and status(w, rid) == "approved"
    big = w.submit_request("lab", "quota_increase", {"instances": 500})
    run(w, eng, p, 10)
    assert _track(eng, big)["rule"] == "hard-limit:quota_instances" and status(w, big) == "denied"


def test_onboarding_then_offboarding_end_to_end() -> None:
    w = fake_world()
    w._quota.pop("lab")  # lab is a team about to be onboarded: its service exists, the project not yet  # noqa: SLF001
    for s in list(w.servers(service="batch")):
        w.servers_by_id.pop(s.id)
    p, eng = plane(w)
    rid = w.submit_request("lab", "project_onboard", {"budget": 300, "first_server": {"service": "batch"}})
    recs = run(w, eng, p, 60)
    assert status(w, rid) == "approved", _track(eng, rid)
    assert [type(r.action) for r in recs if r.outcome == "executed"][:2] == [CreateProject, CreateServer]
    assert {q.project for q in w.quotas()} >= {"lab"} and w.alert_routes["lab"] == "team-lab"
    assert [b.limit for b in w.budgets() if b.project == "lab"] == [300.0]
    assert len(w.servers(service="batch")) == 1
    w.advance(3600)
    before = w.spend().per_project["lab"]
    off = w.submit_request("lab", "project_offboard", {})
    recs = run(w, eng, p, 120)
    assert status(w, off) == "approved", _track(eng, off)
    assert "lab" not in {q.project for q in w.quotas()} and not [s for s in w.servers() if s.project == "lab"]
    kinds = [type(r.action) for r in recs if r.outcome == "executed"]
    assert DeleteServer in kinds and kinds[-2:] == [DeleteProject, FulfillRequest]
    spent = w.spend().per_project["lab"]
    w.advance(3600)
    assert spent > before > 0 and w.spend().per_project["lab"] == spent  # spend stopped, and kept on record


def test_config_errors_name_the_field_and_allowed_values() -> None:
    import pytest

    from engines.registry import RegistryError, resolve

    with pytest.raises(RegistryError, match="budget_headroom"):
        resolve({"name": "x", "engines": [{"engine": "self_service", "budget_headroom": 3}]})
    cfg = SelfServiceConfig.model_validate({"auto": {"max_vms": 2}})
    assert cfg.auto.max_vms == 2 and cfg.auto.max_vcpus == 16
