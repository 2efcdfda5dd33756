"""The twin's new verbs and observations: releases (deploy, canary, rollback, effects), stop/shelve,
chaos injection, reservations, per-service spend, budgets and the request inbox."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters import base
from adapters.base import (
    ACTION_TYPES,
    Conflict,
    Deploy,
    FulfillRequest,
    InjectFault,
    NotFound,
    NoValidHost,
    PurchaseReservation,
    RollbackDeploy,
    ShelveServer,
    StartServer,
    StopServer,
)
from adapters.sim import SimAdapter
from twin.config import WorldConfig
from twin.world import World


def cfg(**over: object) -> WorldConfig:
    c: dict = {
        "seed": 7,
        "duration": 2 * 86400,
        "regions": [{"name": "r1", "zones": [{"name": "az-1", "hypervisors": [
            {"count": 4, "vcpus": 64, "ram_mb": 262144, "disk_gb": 4000}]}]}],
        "flavors": [{"name": "small", "vcpus": 2, "ram_mb": 4096, "disk_gb": 40},
                    {"name": "large", "vcpus": 8, "ram_mb": 16384, "disk_gb": 160},
                    {"name": "huge", "vcpus": 64, "ram_mb": 262144, "disk_gb": 4000}],
        "prices": {"on_demand": {"small": 0.10, "large": 0.4, "huge": 3.2}},
        "projects": [{"name": "shop"}, {"name": "lab"}],
        "services": [
            {"name": "web", "project": "shop", "flavor": "small", "servers": 20, "traffic": {"base": 1000},
             "base_error_ratio": 0.001},
            {"name": "batch", "project": "lab", "flavor": "small", "servers": 2},
        ],
        "telemetry": {"noise": 0.0},
        "operator": {"enabled": False},
    }
    c.update(over)
    return WorldConfig.model_validate(c)


def world(**over: object) -> tuple[World, SimAdapter]:
    w = World(cfg(**over))
    w.run(until=300)
    return w, SimAdapter(w)


def last(w: World, metric: str, service: str = "web") -> float:
    return float(w.last[metric][w.svc_index[service]])


# ------------------------------------------------------------------ dispatch
def test_every_verb_has_a_handler() -> None:
    missing = [k for k in ACTION_TYPES if not callable(getattr(SimAdapter, "_do_" + k, None))]
    assert missing == []


# ------------------------------------------------------------------ releases
RELEASES = {"rate_per_day": 12, "benign": 0.5, "bad": {"error_ratio": 1, "latency": 1, "memory_leak": 1}}
FAST = {"tick": 60, "telemetry": {"noise": 0.0, "scrape_interval": 60}}  # for day-long runs


def _release_log(w: World) -> list[tuple]:
    return [(d.at, d.service, d.version, d.previous, d.fraction, d.actor) for d in w.releases.events]


def test_pipeline_releases_are_deterministic_for_a_seed() -> None:
    runs = []
    for seed in (5, 5, 6):
        w = World(cfg(seed=seed, releases=RELEASES, **FAST))
        w.run(until=86400)
        runs.append((_release_log(w), [(f.type, f.start, f.release and f.release["effect"]) for f in w.truth.faults]))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    log, faults = runs[0]
    assert len(log) >= 4 and all(a == "pipeline" for *_, a in log)
    # bad releases are faults, benign ones are not
    assert 0 < len(faults) < len(log)
    assert {t for t, *_ in faults} <= {"bad_deploy", "memory_leak"}


def test_pipeline_schedule_does_not_depend_on_engine_deploys() -> None:
    w1 = World(cfg(releases=RELEASES, **FAST))
    w2 = World(cfg(releases=RELEASES, **FAST))
    w2.run(until=600)
    SimAdapter(w2).execute(Deploy(service="batch", version="mine", fraction=1.0))
    for w in (w1, w2):
        w.run(until=86400)

    def pipeline(w: World) -> list[tuple]:  # when, where and what (version names count the engine's deploy too)
        return [(d.at, d.service, d.fraction) for d in w.releases.events if d.actor == "pipeline"]

    assert pipeline(w1) == pipeline(w2)
    def bad(w: World) -> list[tuple]:
        return [(f.start, f.type, f.release["effect"], f.release["severity"]) for f in w.truth.faults
                if f.release["actor"] == "pipeline"]

    assert bad(w1) == bad(w2) and bad(w1)


def test_a_benign_release_leaves_the_metrics_unchanged() -> None:
    a, _ = world()
    b, sb = world()
    sb.execute(Deploy(service="web", version="v2", fraction=1.0))
    for w in (a, b):
        w.run(until=1500)
    assert b.svc_version[b.svc_index["web"]] == 2
    for m in ("error_ratio", "latency_p95_ms", "cpu_util", "memory_util"):
        assert last(b, m) == pytest.approx(last(a, m), rel=1e-9), m
    assert [t.type for t in b.truth.faults] == []
    (ev,) = sb.deploys(0)
    assert (ev.service, ev.version, ev.previous, ev.fraction, ev.actor) == ("web", "v2", "v1", 1.0, "automation")


def _bad_release(w: World, effect: str, fraction: float, severity: float = 1.0) -> object:
    return w.releases._release(w.svc_index["web"], effect, severity, fraction, "pipeline", 10.0)


def test_a_bad_canary_shows_only_on_its_share_and_rollback_removes_it() -> None:
    a, _ = world()
    b, sb = world()
    rel = _bad_release(b, "error_ratio", 0.05)  # 1 of 20 servers
    for w in (a, b):
        w.run(until=900)
    assert b.releases.running(rel) == 1
    base_err = last(a, "error_ratio")
    # 1/20 of the requests meet a release that fails 10 % of them
    assert last(b, "error_ratio") - base_err == pytest.approx(0.05 * 0.1, rel=0.02)
    (f,) = b.truth.faults
    assert f.type == "bad_deploy" and f.release["effect"] == "error_ratio" and f.end is None
    sb.execute(RollbackDeploy(service="web"))
    for w in (a, b):
        w.run(until=1800)
    assert b.releases.running(rel) == 0
    assert last(b, "error_ratio") == pytest.approx(base_err, rel=1e-9)
    assert f.end is not None and f.resolved_by == "automation"
    assert [d.actor for d in sb.deploys(0)] == ["pipeline", "automation"]


def test_a_latency_release_slows_only_its_servers() -> None:
    a, _ = world()
    b, _ = world()
    _bad_release(b, "latency", 0.25)  # 5 of 20 servers, 3x slower
    for w in (a, b):
        w.run(until=900)
    lat_a, lat_b = last(a, "latency_p95_ms"), last(b, "latency_p95_ms")
    # the mean latency is a served-weighted mean: 3/4 at 1x and 1/4 at 3x = 1.5x
    assert lat_b / lat_a == pytest.approx(1.5, rel=0.02)


def test_a_cpu_release_costs_capacity_on_its_servers() -> None:
    a, _ = world()
    b, _ = world()
    _bad_release(b, "cpu", 1.0)
    for w in (a, b):
        w.run(until=900)
    assert last(b, "cpu_util") == pytest.approx(2 * last(a, "cpu_util"), rel=0.02)


def test_a_leaking_canary_leaks_only_on_its_servers() -> None:
    b, sb = world()
    rel = _bad_release(b, "memory_leak", 0.1)  # 2 of 20
    b.run(until=700)
    canary = [i for i in range(b.n) if b.releases.ver[i] == rel.idx]
    assert len(canary) == 2
    mem = {s.id: sb.metric_window("server_memory_util", {"server": s.id}, 60).last()
           for s in sb.servers(service="web")}
    base_mem = b.cfg.services[0].memory_base
    for sid, m in mem.items():
        if int(sid[4:]) in canary:
            assert m > base_mem + 0.1
        else:
            assert m == pytest.approx(base_mem)
    (f,) = b.truth.faults
    assert f.type == "memory_leak"


def test_new_servers_start_on_the_stable_version() -> None:
    w, a = world()
    a.execute(Deploy(service="web", version="v2", fraction=0.05))
    w.run(until=600)
    assert w.releases.current_version(w.svc_index["web"]) == "v2"
    (sid,) = a.execute(base.CreateServer(service="web")).server_ids
    assert w.releases.version_of(int(sid[4:])) == "v1"  # the canary is not the stable version yet
    a.execute(Deploy(service="web", version="v2", fraction=1.0))
    w.run(until=900)
    (sid,) = a.execute(base.CreateServer(service="web")).server_ids
    assert w.releases.version_of(int(sid[4:])) == "v2"
    assert all(w.releases.version_of(int(s.id[4:])) == "v2" for s in a.servers(service="web"))


def test_canary_pipeline_promotes_after_the_bake() -> None:
    w = World(cfg(releases={"rate_per_day": 6, "benign": 1.0, "canary": {"fraction": 0.1, "bake": "30m"}}, **FAST))
    w.run(until=86400)
    ev = _release_log(w)
    assert ev and ev[0][4] == pytest.approx(0.1)
    promoted = [e for e in ev if e[4] == 1.0]
    assert promoted and promoted[0][0] - ev[0][0] >= 1800


def test_deploy_refuses_bad_arguments() -> None:
    _, a = world()
    with pytest.raises(NotFound):
        a.execute(Deploy(service="nope", version="v2"))
    with pytest.raises(Conflict):
        a.execute(Deploy(service="web", version="v2", fraction=0.0))
    with pytest.raises(Conflict):
        a.execute(RollbackDeploy(service="web"))  # at its first release


def test_scenario_bad_deploy_fault_is_a_release_rolled_back_by_the_human() -> None:
    w = World(cfg(faults=[{"type": "bad_deploy", "at": 600, "service": "web"}],
                  operator={"enabled": True, "response_delay": "10m"}))
    w.run(until=4 * 3600)
    (f,) = w.truth.faults
    assert f.release is not None and f.end is not None and f.resolved_by == "human"
    assert [d.actor for d in w.releases.events] == ["pipeline", "human"]


# ------------------------------------------------------------------ stop / shelve
def _rate(a: SimAdapter, project: str = "shop") -> float:
    return a.spend().rate_per_project[project]


def test_stop_keeps_the_host_and_stops_the_compute_bill() -> None:
    w, a = world()
    sid = a.servers(service="web")[0].id
    used = w.hv_used.sum(axis=0).copy()
    r0 = _rate(a)
    a.execute(StopServer(server_id=sid))
    w.run(until=w.now() + 120)
    assert a.server(sid).status == "SHUTOFF" and a.server(sid).hypervisor
    assert (w.hv_used.sum(axis=0) == used).all()
    assert _rate(a) == pytest.approx(r0 - 0.10)  # the small flavor's rate, per hour
    with pytest.raises(Conflict):
        a.execute(StopServer(server_id=sid))
    a.execute(StartServer(server_id=sid))
    w.run(until=w.now() + 120)
    assert a.server(sid).status == "ACTIVE" and _rate(a) == pytest.approx(r0)


def test_stopped_servers_pay_the_configured_share() -> None:
    w, a = world(prices={"on_demand": {"small": 0.10, "large": 0.4, "huge": 3.2}, "stopped": 0.25})
    r0 = _rate(a)
    a.execute(StopServer(server_id=a.servers(service="web")[0].id))
    w.run(until=w.now() + 120)
    assert _rate(a) == pytest.approx(r0 - 0.075)


def test_shelve_frees_the_host_and_unshelve_places_again() -> None:
    w, a = world()
    sid = a.servers(service="web")[0].id
    used = w.hv_used.sum(axis=0).copy()
    r0 = _rate(a)
    a.execute(ShelveServer(server_id=sid))
    w.run(until=w.now() + 300)
    s = a.server(sid)
    assert s.status == "SHELVED_OFFLOADED" and s.hypervisor is None
    assert (w.hv_used.sum(axis=0) == used - w.f_res[w.flavor_index["small"]]).all()
    assert _rate(a) == pytest.approx(r0 - 0.10)
    assert next(x for x in a.services() if x.name == "web").failed == 1
    assert math.isnan(a.metric_window("server_up", {"server": sid}, 30).last())  # no VM to scrape
    a.execute(StartServer(server_id=sid))
    w.run(until=w.now() + 300)
    s = a.server(sid)
    assert s.status == "ACTIVE" and s.hypervisor and (w.hv_used.sum(axis=0) == used).all()
    assert _rate(a) == pytest.approx(r0)


def test_a_shelved_server_is_on_no_host() -> None:
    w, a = world()
    sid, other = (s.id for s in a.servers(service="web")[:2])
    used = w.hv_used.copy()
    a.execute(ShelveServer(server_id=sid))
    w.run(until=w.now() + 300)
    for verb in (base.RebootServer(server_id=sid, hard=True), base.MigrateServer(server_id=sid),
                 ShelveServer(server_id=sid), StopServer(server_id=sid)):
        with pytest.raises(Conflict):
            a.execute(verb)
    a.execute(base.DeleteServer(server_id=sid))  # frees quota, and no host capacity twice
    w.run(until=w.now() + 60)
    assert a.server(sid) is None
    assert (w.hv_used == used - np.where(np.arange(w.n_hv)[:, None] == w.hv[int(sid[4:])],
                                         w.f_res[w.flavor_index["small"]], 0)).all()
    # deleting a server while it unshelves frees the capacity it claimed
    sid = other
    a.execute(ShelveServer(server_id=sid))
    w.run(until=w.now() + 300)
    before = w.hv_used.copy()
    a.execute(StartServer(server_id=sid))
    assert a.server(sid).status == "BUILD"
    a.execute(base.DeleteServer(server_id=sid))
    w.run(until=w.now() + 300)
    assert (w.hv_used == before).all() and (w.hv_used >= 0).all()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])  # the fault's drawn order puts either server first
def test_a_server_fault_never_hits_a_shelved_server(seed: int) -> None:
    w, a = world(seed=seed, faults=[{"type": "server_crash", "at": 900, "service": "batch"}])
    shelved, other = (s.id for s in a.servers(service="batch"))
    a.execute(ShelveServer(server_id=shelved))
    w.run(until=1000)
    (f,) = w.truth.faults
    assert f.servers == [other] and a.server(shelved).status == "SHELVED_OFFLOADED"


def test_unshelve_needs_room() -> None:
    w, a = world()
    sid = a.servers(service="web")[0].id
    a.execute(ShelveServer(server_id=sid))
    w.run(until=w.now() + 300)
    # fill every host with what is left of it
    free = w._hv_total - w.hv_used
    w.hv_used += free
    with pytest.raises(NoValidHost):
        a.execute(StartServer(server_id=sid))
    assert a.server(sid).status == "SHELVED_OFFLOADED"


# ------------------------------------------------------------------ chaos
def test_inject_fault_marks_chaos() -> None:
    w, a = world()
    sid = a.servers(service="web")[0].id
    a.execute(InjectFault(fault="server_crash", target_component=sid, experiment="gameday-1"))
    a.execute(InjectFault(fault="latency_degradation", target_component="web", magnitude=0.5))
    a.execute(InjectFault(fault="hypervisor_failure", target_component=w.hv_names[0]))
    assert [(f.type, f.chaos) for f in w.truth.faults] == [
        ("server_crash", True), ("latency_degradation", True), ("hypervisor_failure", True)]
    assert w.truth.faults[0].experiment == "gameday-1" and w.truth.faults[0].servers == [sid]  # that very server
    with pytest.raises(Conflict):
        a.execute(InjectFault(fault="no_such_fault", target_component="web"))
    with pytest.raises(NotFound):
        a.execute(InjectFault(fault="server_crash", target_component="nowhere"))
    with pytest.raises(Conflict):
        a.execute(InjectFault(fault="az_outage", target_component="web"))  # a zone fault
    a.execute(InjectFault(fault="bad_deploy", target_component="batch"))
    assert w.truth.faults[-1].chaos and w.truth.faults[-1].release["actor"] == "chaos"
    assert [(d.service, d.actor) for d in a.deploys(0)] == [("batch", "chaos")]
    w2 = World(cfg(faults=[{"type": "server_crash", "at": 60, "service": "web"}]))
    w2.run(until=120)
    assert [f.chaos for f in w2.truth.faults] == [False]


# ------------------------------------------------------------------ money
def test_reservations_are_billed_used_or_not() -> None:
    a_w, a = world()
    b_w, b = world()
    assert b.reservations() == []
    b.execute(PurchaseReservation(project="lab", flavor="small", count=3, term_s=3600.0))
    (r,) = b.reservations()
    assert (r.project, r.flavor, r.count, r.end - r.start) == ("lab", "small", 3, 3600.0)
    assert r.per_hour == pytest.approx(0.10 * 0.6)
    for w in (a_w, b_w):
        w.run(until=300 + 7200)
    extra = b.spend().per_project["lab"] - a.spend().per_project["lab"]
    assert extra == pytest.approx(3 * 0.06, rel=0.01)  # one hour of three reserved servers, none used
    assert b.spend().per_project["shop"] == pytest.approx(a.spend().per_project["shop"])
    with pytest.raises(NotFound):
        b.execute(PurchaseReservation(project="lab", flavor="nope"))


def test_scenario_commitments_are_listed() -> None:
    _, a = world(prices={"on_demand": {"small": 0.10, "large": 0.4, "huge": 3.2}, "reserved": {"commitments": {"small": 4}}})
    (r,) = a.reservations()
    assert (r.project, r.flavor, r.count, r.start) == ("shop", "small", 4, 0.0) and math.isinf(r.end)


def test_spend_per_service_and_rate_per_project() -> None:
    w, a = world()
    w.run(until=3600 + 1)  # the tick ending at 3600 included
    sp = a.spend()
    assert sp.per_service["web"] == pytest.approx(20 * 0.10)  # an hour of 20 servers at 0.10 / h
    assert sp.per_service["batch"] == pytest.approx(2 * 0.10)
    assert sum(sp.per_service.values()) == pytest.approx(sp.total)
    assert sp.rate_per_project == pytest.approx({"shop": 2.0, "lab": 0.2})


def test_budgets_show_spend_in_the_current_period() -> None:
    w, a = world(budgets=[{"project": "*", "period": "1h", "limit": 10.0},
                          {"project": "lab", "period": "1d", "limit": 1.0, "hard": True, "alert_at": [0.9]}])
    w.run(until=5400 + 1)
    acct, lab = a.budgets()
    assert acct.period_start == 3600.0 and acct.period_s == 3600.0
    assert acct.spent == pytest.approx(2.2 * 0.5, rel=1e-6)  # half an hour of the whole fleet
    assert lab.period_start == 0.0 and lab.hard and lab.alert_at == (0.9,)
    assert lab.spent == pytest.approx(0.2 * 1.5, rel=1e-6)


# ------------------------------------------------------------------ requests
REQUESTS = {"items": [
    {"at": 600, "requester": "alice", "kind": "create_servers", "service": "batch", "count": 2},
    {"at": 600, "requester": "bob", "kind": "quota_increase", "project": "lab", "instances": 10},
    {"at": 900, "requester": "carol", "kind": "resize", "service": "batch", "flavor": "large"},
], "human_delay": "2h"}


def test_inbox_fulfil_and_deny() -> None:
    w, a = world(requests=REQUESTS)
    assert a.requests() == []
    w.run(until=1000)
    reqs = a.requests()
    assert [(r.requester, r.kind, r.status) for r in reqs] == [
        ("alice", "create_servers", "open"), ("bob", "quota_increase", "open"), ("carol", "resize", "open")]
    r = a.execute(FulfillRequest(request_id=reqs[0].id, approve=True))
    assert len(r.server_ids) == 2
    q = next(q for q in a.quotas() if q.project == "lab").instances
    a.execute(FulfillRequest(request_id=reqs[1].id, approve=False, note="not now"))
    assert next(q for q in a.quotas() if q.project == "lab").instances == q
    with pytest.raises(Conflict):
        a.execute(FulfillRequest(request_id=reqs[0].id, approve=False))
    with pytest.raises(NotFound):
        a.execute(FulfillRequest(request_id="REQ-9999"))
    assert len(a.servers(service="batch")) == 4
    truth = {t.id: t for t in w.truth.requests}
    assert truth[reqs[0].id].status == "approved" and truth[reqs[0].id].answered_by == "automation"
    assert truth[reqs[1].id].status == "denied" and truth[reqs[1].id].note == "not now"
    assert truth[reqs[0].id].answered_at == pytest.approx(1000.0)
    # nobody answers carol: a person approves it after human_delay
    w.run(until=900 + 7200 + 400)
    c = truth[reqs[2].id]
    assert c.status == "approved" and c.answered_by == "human" and c.answered_at == pytest.approx(900 + 7200)
    assert w.flavor_names[w.flavor[int(c.params["server"][4:])]] == "large"


def test_random_requests_are_deterministic() -> None:
    rr = {"random": {"rate_per_day": 20, "requesters": ["dev1", "dev2"],
                     "kinds": ["create_servers", "quota_increase", "resize"]}, "human_delay": None}
    logs = []
    for _ in range(2):
        w = World(cfg(requests=rr, **FAST))
        w.run(until=86400)
        logs.append([(r.submitted_at, r.requester, r.kind, r.params) for r in w.truth.requests])
    assert logs[0] == logs[1] and len(logs[0]) > 5
    assert all(r.status == "open" for r in w.truth.requests)


def test_unknown_references_are_refused() -> None:
    with pytest.raises(ValueError, match="releases.services"):
        cfg(releases={"rate_per_day": 1, "services": ["nope"]})
    with pytest.raises(ValueError, match="budgets"):
        cfg(budgets=[{"project": "nope", "limit": 1}])
    with pytest.raises(ValueError, match="flavor"):
        cfg(requests={"items": [{"at": 1, "requester": "x", "kind": "resize", "service": "web"}]})


def test_observation_reads_the_new_views() -> None:
    w, a = world(budgets=[{"limit": 5}], requests=REQUESTS)
    w.run(until=1000)
    obs = base.Observation(a, w.now())
    assert set(obs.budgets) == {"*"} and len(obs.requests) == 3 and obs.reservations == ()
    assert obs.deploys(0) == () and obs.spend.per_service
    obs.close()
    assert np.isfinite(obs.now)
