"""The OpenStack adapter against a real cloud: inventory, actions, errors, idempotency."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from livekit import BIG, FLAVOR, IMAGE, servers_of, settle_deletes, wait_until

from adapters.base import (
    Conflict,
    CreateServer,
    DeclareIncident,
    DeleteServer,
    Deploy,
    FulfillRequest,
    InjectFault,
    MigrateServer,
    NotFound,
    Notify,
    NoValidHost,
    Page,
    PurchaseReservation,
    QuotaExceeded,
    RebootServer,
    ResizeServer,
    RestartService,
    RollbackDeploy,
    SetLBWeights,
    SetMetadata,
    SetServiceSetting,
    ShelveServer,
    StartServer,
    StopServer,
    UpdateQuota,
)
from adapters.journal import Journal
from adapters.openstack import META_PREV_VERSION, META_REQUEST, META_VERSION

pytestmark = pytest.mark.openstack


def test_connect_and_describe_without_secrets(make_adapter: Any) -> None:
    a = make_adapter([])
    d = a.describe()
    assert d["auth_url"].startswith("http") and d["project"]
    text = json.dumps(d)
    auth = a.conn.config.config["auth"]
    assert not {"password", "token", "auth"} & set(d)
    assert a.conn.auth_token and a.conn.auth_token not in text
    if auth.get("password") not in (auth.get("username"), auth.get("project_name")):
        assert auth["password"] not in text
    assert a.validate() == []


def test_inventory(make_adapter: Any, svc: Any) -> None:
    a = make_adapter([{"name": svc("inv"), "min_servers": 1, "max_servers": 3}])
    flavors = {f.name: f for f in a.flavors()}
    assert flavors[FLAVOR].vcpus == 1 and flavors[FLAVOR].ram_mb == 512 and flavors[BIG].vcpus == 2
    hyps = a.hypervisors()
    assert hyps, "the cloud has no hypervisor"
    for h in hyps:  # sizes come from Placement: the compute API (>= 2.88) hides them
        assert h.state == "up" and h.vcpus > 0 and h.memory_mb > 0 and h.disk_gb > 0
        assert 0 <= h.vcpus_used <= h.vcpus
    assert IMAGE in {i["name"] for i in a.images()}
    (q,) = [q for q in a.quotas() if q.project == a.project_name]
    assert q.instances >= q.instances_used >= 0 and q.cores > 0
    (s,) = a.services()
    assert (s.min_servers, s.max_servers, s.active, s.building, s.failed) == (1, 3, 0, 0, 0)


def test_validate_names_unknown_flavor_and_image(make_adapter: Any, svc: Any) -> None:
    a = make_adapter([{"name": svc("bad"), "flavor": "no.such.flavor", "image": "no-such-image"}])
    problems = "\n".join(a.validate())
    assert "no.such.flavor" in problems and FLAVOR in problems  # names the allowed values
    assert "no-such-image" in problems and IMAGE in problems


def test_create_resize_reboot_delete(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("crud")
    a = make_adapter([{"name": name, "max_servers": 3}])
    t0 = time.monotonic()
    r = a.execute(CreateServer(service=name, reason="test"))
    create_s = time.monotonic() - t0
    assert r.ok and len(r.server_ids) == 1, r
    (sid,) = r.server_ids
    assert conn.compute.get_server(sid).status == "ACTIVE"
    assert create_s < 60
    (st,) = a.services()
    assert st.active == 1 and st.failed == 0
    server = a.servers(service=name)[0]
    assert server.flavor == FLAVOR and server.service == name and server.hypervisor

    r = a.execute(ResizeServer(server_id=sid, flavor=BIG))
    assert r.ok, r
    s = conn.compute.get_server(sid)
    assert s.status == "ACTIVE" and s.flavor.original_name == BIG  # confirmed, not left in VERIFY_RESIZE
    assert a.execute(ResizeServer(server_id=sid, flavor=BIG)).ok  # already there: no-op

    r = a.execute(RebootServer(server_id=sid))
    assert r.ok and "SOFT" in r.detail
    wait_until(
        lambda: conn.compute.get_server(sid).status == "ACTIVE" and not conn.compute.get_server(sid).task_state,
        60,
        "reboot to finish",
    )

    assert a.execute(DeleteServer(server_id=sid)).ok
    wait_until(lambda: not servers_of(conn, name), 60, "the server to disappear")
    assert a.services()[0].active == 0
    wait_until(lambda: conn.compute.find_server(sid) is None, 60, "Nova to forget the server")
    with pytest.raises(NotFound):
        a.execute(DeleteServer(server_id=sid))


def test_unknown_targets_raise_not_found(make_adapter: Any, svc: Any) -> None:
    a = make_adapter([{"name": svc("nf")}])
    missing = "00000000-0000-0000-0000-000000000000"
    for action in (
        DeleteServer(server_id=missing),
        RebootServer(server_id=missing),
        ResizeServer(server_id=missing, flavor=BIG),
        CreateServer(service="no-such-service"),
    ):
        with pytest.raises(NotFound) as ei:
            a.execute(action)
        assert hasattr(ei.value, "attempts") and "not" in str(ei.value)


def test_create_with_request_id_is_idempotent(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("idem")
    a = make_adapter([{"name": name}])
    r1 = a.execute(CreateServer(service=name, count=2, request_id="req-idem-" + name))
    r2 = a.execute(CreateServer(service=name, count=2, request_id="req-idem-" + name))
    assert r1.ok and r2.ok and set(r1.server_ids) == set(r2.server_ids) and len(r1.server_ids) == 2
    assert "found from an earlier attempt" in r2.detail
    assert len(servers_of(conn, name)) == 2
    assert {s.metadata[META_REQUEST] for s in servers_of(conn, name)} == {"req-idem-" + name}


def test_quota_exceeded_is_clear_and_not_retried(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("quota")
    a = make_adapter([{"name": name}])
    pid = a.project_id
    settle_deletes(conn)  # usage must not drop under the test's feet
    before = conn.compute.get_quota_set(pid, usage=True)
    used = int(before.usage["instances"])
    try:
        assert a.execute(UpdateQuota(project=a.project_name, instances=used + 1)).ok
        assert conn.compute.get_quota_set(pid).instances == used + 1
        r = a.execute(CreateServer(service=name, count=2))
        assert not r.ok and len(r.server_ids) == 1 and "QuotaExceeded" in r.detail, r
        with pytest.raises(QuotaExceeded) as ei:
            a.execute(CreateServer(service=name))
        assert ei.value.attempts == 1  # type: ignore[attr-defined] - a quota error is not retried
        assert "instances" in str(ei.value).lower()
        assert len(servers_of(conn, name)) == 1
    finally:
        conn.compute.update_quota_set(pid, instances=before.instances)
    assert conn.compute.get_quota_set(pid).instances == before.instances


def test_stopped_and_error_servers(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("crash")
    a = make_adapter([{"name": name}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    conn.compute.stop_server(sid)
    wait_until(lambda: conn.compute.get_server(sid).status == "SHUTOFF", 60, "the server to stop")
    a.invalidate()
    assert a.services()[0].failed == 1 and a.servers(service=name)[0].status == "SHUTOFF"
    r = a.execute(StartServer(server_id=sid))
    assert r.ok and "started" in r.detail
    wait_until(lambda: conn.compute.get_server(sid).status == "ACTIVE", 60, "the server to start")
    # ERROR: an admin state reset stands in for a crashed hypervisor; a HARD reboot recovers it
    conn.compute.reset_server_state(sid, "error")
    wait_until(lambda: conn.compute.get_server(sid).status == "ERROR", 30, "the server to be in ERROR")
    a.invalidate()
    assert a.servers(service=name)[0].status == "ERROR"
    with pytest.raises(Conflict):  # SOFT is refused by Nova for ERROR servers, as in the twin
        a.execute(RebootServer(server_id=sid))
    r = a.execute(RebootServer(server_id=sid, hard=True))
    assert r.ok and "HARD" in r.detail, r
    wait_until(lambda: conn.compute.get_server(sid).status == "ACTIVE", 60, "the ERROR server to recover")


def test_service_level_actions_map_to_metadata(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("meta")
    a = make_adapter([{"name": name}])
    ids = a.execute(CreateServer(service=name, count=2)).server_ids
    assert a.execute(SetServiceSetting(service=name, key="pool_size", value=40)).ok
    assert a.services()[0].settings == {"pool_size": 40.0}
    for sid in ids:
        assert conn.compute.get_server(sid).metadata["zeroops_setting_pool_size"] == "40.0"
    with pytest.raises(Conflict):
        a.execute(RollbackDeploy(service=name))  # version 0: nothing to roll back
    for sid in ids:
        a.execute(SetMetadata(server_id=sid, metadata={META_VERSION: "3"}))
    assert a.services()[0].version == 3
    assert a.execute(RollbackDeploy(service=name)).ok
    assert a.services()[0].version == 2
    assert a.execute(SetLBWeights(service=name, weights={ids[0]: 0.0})).ok
    assert conn.compute.get_server(ids[0]).metadata["zeroops_lb_weight"] == "0.0"
    with pytest.raises(NotFound):
        a.execute(SetLBWeights(service=name, weights={"not-a-member": 1.0}))
    # a new member inherits the service's version and settings
    (new,) = a.execute(CreateServer(service=name)).server_ids
    md = conn.compute.get_server(new).metadata
    assert md[META_VERSION] == "2" and md["zeroops_setting_pool_size"] == "40.0"
    r = a.execute(RestartService(service=name))
    assert r.ok and "3 of 3 restarted" in r.detail, r
    assert a.execute(Notify(component=name, message="hello")).ok


def test_no_valid_host_is_reported_and_cleaned_up(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("nohost")
    a = make_adapter([{"name": name, "flavor": "zeroops.nohost"}])  # more disk than any hypervisor has
    with pytest.raises(NoValidHost) as ei:
        a.execute(CreateServer(service=name))
    assert "no valid host" in str(ei.value).lower()
    wait_until(lambda: not servers_of(conn, name), 60, "the failed server to be deleted")


def test_cold_and_live_migration(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("mig")
    a = make_adapter([{"name": name}])
    hyps = [h.name for h in a.hypervisors() if h.state == "up"]
    if len(hyps) < 2:
        pytest.skip(f"migration needs two hypervisors, the cloud has {hyps} (DEVCLOUD_COMPUTES=2)")
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    src = conn.compute.get_server(sid).hypervisor_hostname
    r = a.execute(MigrateServer(server_id=sid))  # cold: the scheduler picks, then zeroops confirms
    assert r.ok, r
    s = conn.compute.get_server(sid)
    assert s.status == "ACTIVE" and s.hypervisor_hostname != src
    r = a.execute(MigrateServer(server_id=sid, hypervisor=src))  # live, to a named host
    assert r.ok, r
    wait_until(lambda: conn.compute.get_server(sid).hypervisor_hostname == src, 60, "the live migration")
    assert a.servers(service=name)[0].hypervisor == src


def test_connect_from_os_environment_variables(conn: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    auth = conn.config.config["auth"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env |= {
        "OS_AUTH_URL": auth["auth_url"],
        "OS_USERNAME": auth["username"],
        "OS_PASSWORD": auth["password"],
        "OS_PROJECT_NAME": auth["project_name"],
        "OS_USER_DOMAIN_NAME": auth.get("user_domain_name", "Default"),
        "OS_PROJECT_DOMAIN_NAME": auth.get("project_domain_name", "Default"),
        "OS_REGION_NAME": conn.config.region_name or "",
        "OS_IDENTITY_API_VERSION": "3",
    }
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, "-m", "zeroops.cli", "live", "status"],
        cwd=root,
        timeout=120,
        env=env | {"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"project {auth['project_name']}" in p.stdout and "hypervisors:" in p.stdout


def test_stop_shelve_and_unshelve(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("shelve")
    a = make_adapter([{"name": name}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    assert a.execute(StopServer(server_id=sid)).ok
    wait_until(lambda: conn.compute.get_server(sid).status == "SHUTOFF", 60, "the server to stop")
    assert a.execute(StopServer(server_id=sid)).ok  # stopped already: a no-op
    assert a.server(sid).status == "SHUTOFF" and a.services()[0].failed == 1  # type: ignore[union-attr]
    burn = a.spend().rate_per_hour  # a stopped server still holds its host: billed
    assert a.execute(ShelveServer(server_id=sid)).ok
    wait_until(lambda: conn.compute.get_server(sid).status == "SHELVED_OFFLOADED", 90, "Nova to offload the server")
    a.invalidate()
    s = a.server(sid)
    assert s is not None and s.status == "SHELVED_OFFLOADED" and not s.hypervisor
    assert burn - a.spend().rate_per_hour == pytest.approx(0.02)  # a shelved server burns no compute
    r = a.execute(StartServer(server_id=sid))
    assert r.ok and "unshelved" in r.detail, r
    wait_until(lambda: conn.compute.get_server(sid).status == "ACTIVE", 90, "the server to unshelve")


def test_restart_rolls_one_server_at_a_time(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("roll")
    a = make_adapter([{"name": name}])
    ids = a.execute(CreateServer(service=name, count=3)).server_ids
    r = a.execute(RestartService(service=name))
    assert r.ok and "3 of 3 restarted, 1 at a time" in r.detail, r
    # each reboot began after the previous one had finished: Nova's instance actions say when
    spans = []
    for sid in ids:
        act = next(x for x in conn.compute.server_actions(sid) if x.action == "reboot")
        events = conn.compute.get_server_action(act.request_id, sid).events or []
        finish = max((e["finish_time"] or "" for e in events), default="") if events else ""
        spans.append((act.start_time, finish or act.start_time, sid))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"a reboot started at {start} before the previous one ended at {end}: {spans}"
    assert all(conn.compute.get_server(sid).status == "ACTIVE" for sid in ids)


def test_deploy_tags_a_canary_and_is_journalled(make_adapter: Any, conn: Any, svc: Any, tmp_path: Any) -> None:
    name = svc("deploy")
    journal = Journal(tmp_path / "j.sqlite")
    a = make_adapter([{"name": name}], journal=journal)
    ids = a.execute(CreateServer(service=name, count=4)).server_ids
    t0 = a.now()
    r = a.execute(Deploy(service=name, version="7", fraction=0.25))
    assert r.ok and "1 of 4" in r.detail, r
    tagged = [sid for sid in ids if conn.compute.get_server(sid).metadata.get(META_VERSION) == "7"]
    assert len(tagged) == 1 and conn.compute.get_server(tagged[0]).metadata[META_PREV_VERSION] == "0"
    assert a.services()[0].version == 7
    assert a.execute(Deploy(service=name, version="7", fraction=1.0)).ok
    assert {conn.compute.get_server(sid).metadata[META_VERSION] for sid in ids} == {"7"}
    assert a.execute(RollbackDeploy(service=name)).ok
    assert {conn.compute.get_server(sid).metadata[META_VERSION] for sid in ids} == {"0"}
    # a second adapter on the same journal (a restarted controller) sees the same history
    b = make_adapter([{"name": name}], journal=journal)
    assert [(d.version, d.previous, d.fraction) for d in b.deploys(t0)] == [("7", "0", 0.25), ("7", "7", 1.0),
                                                                            ("0", "7", 1.0)]


def test_chaos_live_is_server_level_only(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("chaos")
    a = make_adapter([{"name": name}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    r = a.execute(InjectFault(fault="server_crash", target_component=name, reason="game day"))
    assert r.ok and sid in r.detail, r
    wait_until(lambda: conn.compute.get_server(sid).status == "SHUTOFF", 60, "the crashed server to be SHUTOFF")
    for fault in ("memory_leak", "az_outage", "db_pool_exhaustion"):
        with pytest.raises(Conflict, match="not supported live"):
            a.execute(InjectFault(fault=fault, target_component=name))
    with pytest.raises(Conflict, match="Blazar"):
        a.execute(PurchaseReservation(project=a.project_name, flavor=FLAVOR))


def test_budgets_and_reservations_come_from_the_config(make_adapter: Any, svc: Any) -> None:
    name = svc("money")
    a = make_adapter(
        [{"name": name}],
        budgets=[{"project": "*", "limit": 50.0, "period_s": 86400}],
        reservations=[{"id": "r1", "project": "admin", "flavor": FLAVOR, "count": 2, "per_hour": 0.01,
                       "start": 0, "end": 4e9}],
    )
    a.execute(CreateServer(service=name))
    (b,) = a.budgets()
    assert b.limit == 50.0 and b.period_start <= a.now() < b.period_start + 86400 and b.spent >= 0
    (r,) = a.reservations()
    assert (r.id, r.count, r.flavor) == ("r1", 2, FLAVOR)
    assert name in a.spend().per_service


def test_incidents_and_requests_persist_in_the_journal(make_adapter: Any, svc: Any, tmp_path: Any) -> None:
    name = svc("board")
    path = tmp_path / "j.sqlite"
    j1 = Journal(path)
    a = make_adapter([{"name": name}], journal=j1)
    assert a.execute(DeclareIncident(incident_id="inc-1", components=(name,), severity="P2", title="t")).ok
    assert a.execute(Page(who="oncall", incident_id="inc-1")).ok
    rid = a.submit_request(a.project_name, "create_servers", {"service": name, "count": 1})
    r = a.execute(FulfillRequest(request_id=rid))
    assert r.ok and len(r.server_ids) == 1, r
    j1.close()
    b = make_adapter([{"name": name}], journal=Journal(path))  # a restarted controller
    (inc,) = b.incidents()
    assert (inc.id, inc.status, inc.pages) == ("inc-1", "open", 1)
    assert {x.id: x.status for x in b.requests()}[rid] == "approved"
    # approving twice is refused, and the request id made the create idempotent anyway
    with pytest.raises(Conflict):
        b.execute(FulfillRequest(request_id=rid))


def test_metric_history_rolls_up_in_prometheus(make_adapter: Any, svc: Any, exporter: Any) -> None:
    name = svc("hist")
    a = make_adapter([{"name": name}])
    a.execute(CreateServer(service=name, count=2))
    exporter.load[name] = 1.0  # 0.5 per server

    def history() -> Any:
        h = a.metric_history("cpu_util", {"service": name}, 60, 10)
        return h if len(h.t) >= 3 and h.v[-1] == pytest.approx(0.5) else None

    h = wait_until(history, 60, "three 10-second rollups of cpu_util")
    assert all(t % 10 == 0 for t in h.t) and (h.t[1:] - h.t[:-1] == 10).all()
    assert len(h.t) <= 7
    with pytest.raises(ValueError, match="11,000"):
        a.metric_history("cpu_util", {"service": name}, 86400 * 30, 1)
