"""One set of behaviours, three worlds: the twin's adapter, the shipped fake and the OpenStack adapter must agree.

Every case runs against ``adapters.sim.SimAdapter`` (a small twin world),
``adapters.fake.FakeAdapter`` (the in-memory world engine tests use) and
``adapters.openstack.OpenStackAdapter`` (the live test cloud; skipped when
none is configured, see tests/live/conftest.py).  A case states behaviour an
engine relies on; ``settle`` lets each world finish what it started (sim time
for the twin, the fake's own clock, wall-clock polling for the cloud) and
``advance(dt)`` moves it on by a little.

Where the worlds differ in a way an engine would notice, the case names the
divergence (``D1``...) documented in docs/adapter-mapping.md and is an
``xfail`` for that world.  The twin's new verbs (Deploy, StopServer,
ShelveServer, PurchaseReservation, InjectFault, FulfillRequest, the incident
board) and observations (metric_history, budgets, ...) are being built; until
the twin's adapter has them, its cases are ``xfail`` ("twin: not
implemented yet"), and they pass by themselves once it does.
"""

from __future__ import annotations

import doctest
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from adapters import base
from adapters.base import (
    ACTION_TYPES,
    LB_WEIGHT_KEY,
    Adapter,
    AdapterError,
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
    Observation,
    Page,
    PurchaseReservation,
    QuotaExceeded,
    RebootServer,
    ResizeServer,
    ResolveIncident,
    RestartService,
    RollbackDeploy,
    SetLBWeights,
    SetMetadata,
    SetServiceSetting,
    ShelveServer,
    StartServer,
    StopServer,
    UpdateIncident,
    UpdateQuota,
)

# openstacksdk's deprecation chatter says nothing about the contract
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning")

PROTOCOL_METHODS = (
    "now", "flavors", "hypervisors", "servers", "server", "services", "metric_window", "latest", "alerts", "prices",
    "spend", "quotas", "metric_history", "budgets", "reservations", "deploys", "incidents", "requests", "execute",
)


@dataclass
class World:
    name: str
    adapter: Adapter
    service: str
    project: str
    missing_id: str
    settle: Callable[[], None]
    advance: Callable[[float], None]
    big_flavor: str  # a flavor the service's servers can be resized to
    nohost_flavor: str  # a flavor no hypervisor has room for
    has_metrics: bool = True
    raise_alert: Callable[[], bool] | None = None  # makes an alert fire; None: this world cannot here
    submit_request: Callable[[str, dict[str, Any]], str] | None = None  # puts a request in the inbox
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def ensure_servers(self, n: int) -> list[str]:
        """At least ``n`` ACTIVE servers in the service; returns their ids."""
        have = [s.id for s in self.adapter.servers(service=self.service, status="ACTIVE")]
        if len(have) < n:
            self.adapter.execute(CreateServer(service=self.service, count=n - len(have), reason="contract"))
            self.settle()
            have = [s.id for s in self.adapter.servers(service=self.service, status="ACTIVE")]
        assert len(have) >= n, f"{self.name}: wanted {n} ACTIVE servers, have {have}"
        return have[:n]


def not_yet(world: World, what: str) -> None:
    """The twin's adapter lacks a new verb or observation: expected while "twin verbs" builds it."""
    if world.name == "sim":
        pytest.xfail(f"twin: {what} not implemented yet in adapters/sim.py")


def run(world: World, fn: Callable[[], Any], what: str) -> Any:
    """Call ``fn``; a missing verb or observation of the twin's adapter is an xfail, anything else propagates."""
    try:
        return fn()
    except AttributeError as e:
        if world.name == "sim" and any(m in str(e) for m in PROTOCOL_METHODS):
            not_yet(world, what)
        raise
    except Conflict as e:
        if world.name == "sim" and "does not support" in str(e):
            not_yet(world, what)
        raise


# ------------------------------------------------------------------ worlds
def _sim() -> World:
    from adapters.sim import SimAdapter
    from scenarios.schema import Scenario
    from twin.world import World as TwinWorld

    scn = Scenario.model_validate(
        {
            "name": "contract",
            "seed": 3,
            "duration": 10 * 86400,
            "regions": [
                {
                    "name": "r1",
                    "zones": [{"name": "az-1", "hypervisors": [{"count": 4, "vcpus": 32, "ram_mb": 131072, "disk_gb": 2000}]}],
                }
            ],
            "flavors": [
                {"name": "small", "vcpus": 2, "ram_mb": 4096, "disk_gb": 40},
                {"name": "large", "vcpus": 8, "ram_mb": 16384, "disk_gb": 160},
                {"name": "huge", "vcpus": 64, "ram_mb": 262144, "disk_gb": 4000},
            ],
            "prices": {"on_demand": {"small": 0.06, "large": 0.24, "huge": 2.0}},
            "projects": [{"name": "p"}],
            "services": [
                {
                    "name": "web",
                    "project": "p",
                    "flavor": "small",
                    "servers": 2,
                    "min_servers": 1,
                    "max_servers": 5,
                    "traffic": {"base": 50},
                }
            ],
            "alert_rules": [{"name": "ContractAlwaysOn", "expr": "active_servers > 0", "for": 0, "severity": "info"}],
            "operator": {"enabled": False},
        }
    )
    w = TwinWorld(scn)
    w.run(until=600)  # let the initial servers boot

    def settle() -> None:
        w.run(until=w.now() + 600)

    def advance(dt: float) -> None:
        w.run(until=w.now() + dt)

    def alert() -> bool:
        w.run(until=w.now() + 60)
        return True

    def submit(kind: str, params: dict[str, Any]) -> str:  # a team's request arrives in the twin's inbox
        return w.inbox.submit({"requester": "contract", "kind": kind, "project": "p", "params": params}).id

    return World("sim", SimAdapter(w), "web", "p", "srv-999999", settle, advance, "large", "huge", raise_alert=alert,
                 submit_request=submit)


def _fake() -> World:
    from adapters.base import Flavor
    from adapters.fake import FakeAdapter, FakeService

    flavors = (Flavor("small", 2, 4096, 40), Flavor("large", 8, 16384, 160), Flavor("huge", 64, 262144, 4000))
    hyps = [(f"hv-{i}", "az-1", "r1", 32, 131072, 2000) for i in range(4)]
    fake = FakeAdapter(
        [FakeService("web", "small", 2, min_servers=1, max_servers=5)],
        flavors=flavors, hypervisors=hyps, boot_delay=45, reboot_delay=25, restart_delay=10, t0=600.0,
    )
    for m in base.SERVICE_METRICS[:-1]:  # active_servers: counted from the fake's servers
        fake.feed(m, {"service": "web"}, fn=lambda t: 0.4 + 0.1 * math.sin(t / 600))

    def alert() -> bool:
        fake.push_alert("ContractAlwaysOn", {"service": "web"}, severity="info")
        fake.advance(1)
        return True

    return World("fake", fake, "web", "p", "srv-999999", lambda: fake.advance(600), fake.advance, "large", "huge",
                 raise_alert=alert, submit_request=lambda kind, params: fake.submit_request("p", kind, params))


def _openstack(tag: str, tmp: Any) -> Iterator[World]:
    cloud = os.environ.get("ZEROOPS_TEST_CLOUD")
    if not cloud:
        pytest.skip(
            "no OpenStack cloud configured: set ZEROOPS_TEST_CLOUD and OS_CLIENT_CONFIG_FILE (make devcloud-up prints them)"
        )
    import openstack

    from adapters.journal import Journal
    from adapters.live_config import parse_config
    from adapters.openstack import META_SERVICE, OpenStackAdapter

    service = f"ztc-{tag}"
    cfg = parse_config(
        {
            "cloud": cloud,
            "network": "none",
            "services": [
                {"name": service, "flavor": "zeroops.small", "image": "zeroops-tiny", "min_servers": 1, "max_servers": 5}
            ],
            "retry": {"attempts": 5, "base_delay": 0.1, "max_delay": 1.0},
            "wait": {"create": 60, "resize": 120, "poll": 0.3},
            "prices": {"zeroops.small": 0.02, "zeroops.big": 0.04},
            "budgets": [{"project": "*", "limit": 100.0, "period_s": 30 * 86400}],
        }
    )
    conn = openstack.connect(cloud=cloud, api_timeout=30)
    journal = Journal(tmp / "journal.sqlite")
    adapter = OpenStackAdapter(conn, cfg, journal=journal, cache_ttl=0.0)

    def settle() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            adapter.invalidate()
            if all(s.status != "BUILD" for s in adapter.servers(service=service)) and not [
                s
                for s in conn.compute.servers(details=True)
                if s.task_state and ((s.metadata or {}).get(META_SERVICE) == service or s.task_state == "deleting")
            ]:
                return
            time.sleep(0.3)

    def advance(dt: float) -> None:
        time.sleep(min(dt, 1.0))
        adapter.invalidate()

    try:
        yield World(
            "openstack", adapter, service, adapter.project_name, "00000000-0000-0000-0000-000000000000", settle, advance,
            "zeroops.big", "zeroops.nohost", has_metrics=False,
            submit_request=lambda kind, params: adapter.submit_request(adapter.project_name, kind, params),
        )
    finally:
        for s in list(conn.compute.servers(details=True)):
            if (s.metadata or {}).get(META_SERVICE) == service:
                conn.compute.delete_server(s, ignore_missing=True)
        journal.close()


@pytest.fixture(params=["sim", "fake", pytest.param("openstack", marks=pytest.mark.openstack)])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[World]:
    if request.param == "sim":
        yield _sim()
    elif request.param == "fake":
        yield _fake()
    else:
        yield from _openstack(secrets.token_hex(3), tmp_path)


def divergence(world: World, worlds: tuple[str, ...], name: str) -> None:
    """A documented difference between worlds (docs/adapter-mapping.md, "Divergences"): xfail there."""
    if world.name in worlds:
        pytest.xfail(name)


def _svc(world: World) -> base.ServiceState:
    world.adapter.now()
    return {s.name: s for s in world.adapter.services()}[world.service]


# ------------------------------------------------------------------ protocol
def test_is_an_adapter(world: World) -> None:
    missing = [m for m in PROTOCOL_METHODS if not callable(getattr(world.adapter, m, None))]
    if missing:
        not_yet(world, f"protocol methods {missing}")
    assert not missing
    assert isinstance(world.adapter, Adapter) and world.adapter.name
    assert world.adapter.now() > 0


def test_inventory_is_consistent(world: World) -> None:
    a = world.adapter
    flavors = a.flavors()
    assert flavors and all(f.vcpus > 0 and f.ram_mb > 0 for f in flavors)
    hyps = a.hypervisors()
    assert hyps and all(0 <= h.vcpus_used <= h.vcpus and 0 <= h.memory_mb_used <= h.memory_mb for h in hyps)
    quotas = {q.project: q for q in a.quotas()}
    q = quotas[world.project]
    assert q.instances_used >= 0 and (q.instances < 0 or q.instances >= q.instances_used)


def test_service_is_listed_with_its_bounds(world: World) -> None:
    svc = _svc(world)
    assert (svc.min_servers, svc.max_servers) == (1, 5)
    assert svc.active >= 0 and svc.building >= 0 and svc.failed >= 0
    assert svc.project == world.project


def test_observations_are_read_only(world: World) -> None:
    """What an adapter returns cannot be written back: frozen records, read-only mappings."""
    (sid,) = world.ensure_servers(1)
    s = world.adapter.server(sid)
    assert s is not None
    with pytest.raises(AttributeError):
        s.status = "DELETED"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.metadata["x"] = "y"  # type: ignore[index]
    with pytest.raises(TypeError):
        _svc(world).settings["pool_size"] = 1.0  # type: ignore[index]


# ------------------------------------------------------------------ servers
def test_create_list_reboot_delete(world: World) -> None:
    a = world.adapter
    before = _svc(world).active
    r = a.execute(CreateServer(service=world.service, reason="contract"))
    assert r.ok and len(r.server_ids) == 1 and r.attempts >= 1
    (sid,) = r.server_ids
    world.settle()
    mine = {s.id: s for s in a.servers(service=world.service)}
    assert mine[sid].status == "ACTIVE" and mine[sid].service == world.service
    assert a.server(sid) == mine[sid]  # the lookup by id sees what the listing sees
    assert _svc(world).active == before + 1
    assert a.execute(RebootServer(server_id=sid)).ok
    world.settle()
    assert {s.id: s for s in a.servers(service=world.service)}[sid].status == "ACTIVE"
    assert a.execute(DeleteServer(server_id=sid)).ok
    world.settle()
    assert sid not in {s.id for s in a.servers()}
    assert a.server(sid) is None


def test_new_server_is_visible_at_once(world: World) -> None:
    """Right after CreateServer returns, the new server is listed and counted as coming or present capacity."""
    a = world.adapter
    s0 = _svc(world)
    (sid,) = a.execute(CreateServer(service=world.service)).server_ids
    s = a.server(sid)
    assert s is not None and s.status in ("BUILD", "ACTIVE") and s.service == world.service
    s1 = _svc(world)
    assert s1.active + s1.building == s0.active + s0.building + 1


def test_create_returns_before_the_server_is_active(world: World) -> None:
    divergence(world, ("openstack",), "D1: the OpenStack adapter's CreateServer waits until ACTIVE (wait.create)")
    (sid,) = world.adapter.execute(CreateServer(service=world.service)).server_ids
    assert world.adapter.server(sid).status == "BUILD"  # type: ignore[union-attr]
    world.settle()
    assert world.adapter.server(sid).status == "ACTIVE"  # type: ignore[union-attr]


def test_create_with_request_id_is_idempotent(world: World) -> None:
    a = world.adapter
    rid = "contract-" + secrets.token_hex(4)
    first = a.execute(CreateServer(service=world.service, request_id=rid))
    again = a.execute(CreateServer(service=world.service, request_id=rid))
    assert first.ok and again.ok and first.server_ids == again.server_ids
    assert sum(s.metadata.get("zeroops_request_id") == rid for s in a.servers()) == 1


def test_unknown_server_is_not_found(world: World) -> None:
    assert world.adapter.server(world.missing_id) is None
    for action in (DeleteServer(server_id=world.missing_id), RebootServer(server_id=world.missing_id),
                   StartServer(server_id=world.missing_id), ResizeServer(server_id=world.missing_id,
                                                                         flavor=world.big_flavor)):
        with pytest.raises(NotFound):
            world.adapter.execute(action)
    for action in (StopServer(server_id=world.missing_id), ShelveServer(server_id=world.missing_id)):
        with pytest.raises(NotFound):
            run(world, lambda action=action: world.adapter.execute(action), action.kind)


def test_unknown_service_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.adapter.execute(CreateServer(service="no-such-service"))


def test_quota_exceeded_creates_nothing(world: World) -> None:
    a = world.adapter
    world.settle()  # usage must be stable while the quota is at it
    q = {q.project: q for q in a.quotas()}[world.project]
    n = len(a.servers())
    try:
        assert a.execute(UpdateQuota(project=world.project, instances=q.instances_used)).ok
        with pytest.raises(QuotaExceeded):
            a.execute(CreateServer(service=world.service))
        assert len(a.servers()) == n
    finally:
        a.execute(UpdateQuota(project=world.project, instances=q.instances))


def test_no_valid_host_creates_nothing(world: World) -> None:
    a = world.adapter
    n = len(a.servers(service=world.service))
    with pytest.raises(NoValidHost):
        a.execute(CreateServer(service=world.service, flavor=world.nohost_flavor))
    world.settle()
    assert len(a.servers(service=world.service)) == n


def test_stop_then_start(world: World) -> None:
    (sid,) = world.ensure_servers(1)
    failed = _svc(world).failed
    run(world, lambda: world.adapter.execute(StopServer(server_id=sid)), "StopServer")
    world.settle()
    assert world.adapter.server(sid).status == "SHUTOFF"  # type: ignore[union-attr]
    assert _svc(world).failed == failed + 1  # a stopped server counts as failed capacity
    assert world.adapter.execute(StartServer(server_id=sid)).ok
    world.settle()
    assert world.adapter.server(sid).status == "ACTIVE"  # type: ignore[union-attr]


def test_shelve_then_unshelve(world: World) -> None:
    (sid,) = world.ensure_servers(1)
    failed = _svc(world).failed
    run(world, lambda: world.adapter.execute(ShelveServer(server_id=sid)), "ShelveServer")
    world.settle()
    s = world.adapter.server(sid)
    assert s is not None and s.status == "SHELVED_OFFLOADED"
    assert _svc(world).failed == failed + 1  # shelved capacity is not serving: counted as failed, like stopped
    assert world.adapter.execute(StartServer(server_id=sid)).ok  # StartServer unshelves
    world.settle()
    s = world.adapter.server(sid)
    assert s is not None and s.status == "ACTIVE" and s.hypervisor


def test_soft_reboot_of_an_error_server_is_refused(world: World) -> None:
    """Nova refuses a SOFT reboot of a server in ERROR; engines send ``hard=True`` (all worlds raise Conflict)."""
    (sid,) = world.ensure_servers(1)
    if not _put_in_error(world, sid):
        pytest.skip(f"{world.name}: no way to put a server in ERROR here")
    with pytest.raises(Conflict):
        world.adapter.execute(RebootServer(server_id=sid))
    assert world.adapter.execute(RebootServer(server_id=sid, hard=True)).ok
    world.settle()
    assert world.adapter.server(sid).status == "ACTIVE"  # type: ignore[union-attr]


def _put_in_error(world: World, sid: str) -> bool:
    a: Any = world.adapter
    if world.name == "fake":
        a.set_status(sid, "ERROR")
        return True
    if world.name == "openstack":
        a.conn.compute.reset_server_state(sid, "error")
        end = time.monotonic() + 30
        while time.monotonic() < end and a.conn.compute.get_server(sid).status != "ERROR":
            time.sleep(0.3)
        a.invalidate()
        return True
    from twin.world import ERROR

    i = int(sid[4:])
    a.w.status[i] = ERROR
    a.w.invalidate()
    return True


def test_start_of_an_active_server_is_a_no_op(world: World) -> None:
    divergence(world, ("sim",), "D5: the twin raises Conflict for StartServer of an ACTIVE server")
    (sid,) = world.ensure_servers(1)
    assert world.adapter.execute(StartServer(server_id=sid)).ok
    assert world.adapter.server(sid).status == "ACTIVE"  # type: ignore[union-attr]


def test_resize(world: World) -> None:
    (sid,) = world.ensure_servers(1)
    assert world.adapter.execute(ResizeServer(server_id=sid, flavor=world.big_flavor)).ok
    world.settle()
    s = world.adapter.server(sid)
    assert s is not None and s.flavor == world.big_flavor and s.status == "ACTIVE"


def test_migrate_moves_the_server(world: World) -> None:
    hyps = [h.name for h in world.adapter.hypervisors() if h.state == "up"]
    if len(hyps) < 2:
        pytest.skip(f"{world.name}: migration needs two hypervisors, has {hyps}")
    (sid,) = world.ensure_servers(1)
    src = world.adapter.server(sid).hypervisor  # type: ignore[union-attr]
    assert world.adapter.execute(MigrateServer(server_id=sid)).ok
    world.settle()
    s = world.adapter.server(sid)
    assert s is not None and s.status == "ACTIVE" and s.hypervisor != src


def test_set_metadata(world: World) -> None:
    (sid,) = world.ensure_servers(1)
    assert world.adapter.execute(SetMetadata(server_id=sid, metadata={"owner": "contract"})).ok
    world.settle()
    assert world.adapter.server(sid).metadata["owner"] == "contract"  # type: ignore[union-attr]


# ------------------------------------------------------------------ services
def test_restart_is_rolling(world: World) -> None:
    """RestartService restarts one server at a time: the service never loses more than one server to it."""
    ids = world.ensure_servers(2)
    n = len(world.adapter.servers(service=world.service, status="ACTIVE"))
    assert world.adapter.execute(RestartService(service=world.service)).ok
    lowest = n
    for _ in range(60):
        lowest = min(lowest, _svc(world).active)
        world.advance(2.0)
    world.settle()
    assert lowest >= n - 1, f"{world.name}: {n - lowest} servers were down at once"
    assert all(world.adapter.server(i).status == "ACTIVE" for i in ids)  # type: ignore[union-attr]


def test_service_setting(world: World) -> None:
    world.ensure_servers(1)
    assert world.adapter.execute(SetServiceSetting(service=world.service, key="pool_size", value=40)).ok
    world.settle()
    assert _svc(world).settings["pool_size"] == 40.0


def test_lb_weights(world: World) -> None:
    (sid, _) = world.ensure_servers(2)
    assert world.adapter.execute(SetLBWeights(service=world.service, weights={sid: 0.0})).ok
    world.settle()
    # every world shows the weight where engines can see a drained server: its metadata
    assert float(world.adapter.server(sid).metadata[LB_WEIGHT_KEY]) == 0.0  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        world.adapter.execute(SetLBWeights(service=world.service, weights={world.missing_id: 1.0}))


def test_deploy_canary_then_rollback(world: World) -> None:
    a = world.adapter
    world.ensure_servers(2)
    t0 = a.now()
    before = _svc(world).version
    r = run(world, lambda: a.execute(Deploy(service=world.service, version=str(before + 1), fraction=0.5)), "Deploy")
    assert r.ok
    world.settle()
    events = [d for d in run(world, lambda: a.deploys(t0), "deploys()") if d.service == world.service]
    assert events and events[-1].version == str(before + 1) and events[-1].fraction == 0.5 and events[-1].at >= t0
    assert _svc(world).version == before + 1
    assert a.execute(RollbackDeploy(service=world.service)).ok
    world.settle()
    assert _svc(world).version == before


def test_rollback_without_a_release_is_a_conflict(world: World) -> None:
    world.ensure_servers(1)
    if world.name == "sim":
        pytest.skip("the twin's services start at their first release already rolled out")
    with pytest.raises(Conflict):
        world.adapter.execute(RollbackDeploy(service=world.service))


# ------------------------------------------------------------------ money
def test_prices_and_spend(world: World) -> None:
    a = world.adapter
    world.ensure_servers(1)
    flavor = _svc(world).flavor
    assert any(p.flavor == flavor and p.pricing == "on_demand" and p.per_hour > 0 for p in a.prices())
    world.advance(60)
    sp = a.spend()
    assert sp.total >= 0 and sp.rate_per_hour > 0
    assert world.project in sp.per_project
    assert math.isclose(sum(sp.per_project.values()), sp.total, rel_tol=1e-6, abs_tol=1e-9)
    if world.service not in sp.per_service:
        not_yet(world, "Spend.per_service")
    assert sp.per_service[world.service] > 0


def test_budgets(world: World) -> None:
    budgets = run(world, lambda: world.adapter.budgets(), "budgets()")
    for b in budgets:
        assert b.limit > 0 and b.period_s > 0 and b.spent >= 0 and b.period_start <= world.adapter.now()


def test_purchase_reservation(world: World) -> None:
    divergence(world, ("openstack",), "D2: OpenStack has no reservations without Blazar; PurchaseReservation is a Conflict")
    a = world.adapter
    before = len(run(world, lambda: a.reservations(), "reservations()"))
    flavor = _svc(world).flavor
    r = run(world, lambda: a.execute(PurchaseReservation(project=world.project, flavor=flavor, count=2,
                                                         term_s=86400.0)), "PurchaseReservation")
    assert r.ok
    res = a.reservations()
    assert len(res) == before + 1
    new = res[-1]
    assert (new.project, new.flavor, new.count) == (world.project, flavor, 2) and new.end - new.start == 86400.0


# ------------------------------------------------------------------ chaos, requests
def test_inject_a_server_crash(world: World) -> None:
    (sid,) = world.ensure_servers(1)
    r = run(world, lambda: world.adapter.execute(InjectFault(fault="server_crash", target_component=sid,
                                                              reason="game day")), "InjectFault")
    assert r.ok


def test_inject_an_unknown_fault_is_refused(world: World) -> None:
    with pytest.raises(AdapterError):
        run(world, lambda: world.adapter.execute(InjectFault(fault="no_such_fault", target_component=world.service)),
            "InjectFault")


def test_fulfill_a_request(world: World) -> None:
    if world.submit_request is None:
        not_yet(world, "the request inbox")
        pytest.skip(f"{world.name}: no way to submit a request here")
    a = world.adapter
    rid = world.submit_request("create_servers", {"service": world.service, "count": 1})
    assert [r.id for r in a.requests() if r.status == "open"] == [rid]
    r = a.execute(FulfillRequest(request_id=rid, approve=True))
    assert r.ok and len(r.server_ids) == 1
    assert {x.id: x.status for x in a.requests()}[rid] == "approved"
    with pytest.raises(Conflict):
        a.execute(FulfillRequest(request_id=rid, approve=False))
    rid2 = world.submit_request("quota_increase", {"instances": 100})
    assert a.execute(FulfillRequest(request_id=rid2, approve=False, note="no")).ok
    assert {x.id: x.status for x in a.requests()}[rid2] == "denied"
    with pytest.raises(NotFound):
        a.execute(FulfillRequest(request_id="req-does-not-exist"))


# ------------------------------------------------------------------ record-only decisions
def test_incident_lifecycle(world: World) -> None:
    a = world.adapter
    iid = "inc-" + secrets.token_hex(3)
    n = len(a.servers())
    rc = ({"component": world.service, "score": 0.8},)
    r = run(world, lambda: a.execute(DeclareIncident(incident_id=iid, components=(world.service,), severity="P2",
                                                    title="contract", root_causes=rc, confidence=0.7)),
            "DeclareIncident")
    assert r.ok
    inc = {i.id: i for i in run(world, lambda: a.incidents(), "incidents()")}[iid]
    assert inc.status == "open" and inc.components == (world.service,) and inc.severity == "P2"
    assert inc.root_causes[0]["component"] == world.service
    with pytest.raises(Conflict):
        a.execute(DeclareIncident(incident_id=iid, components=(world.service,)))
    assert a.execute(UpdateIncident(incident_id=iid, status="mitigating", severity="P1")).ok
    assert a.execute(Page(who="oncall", why="contract", incident_id=iid)).ok
    inc = {i.id: i for i in a.incidents()}[iid]
    assert (inc.status, inc.severity, inc.pages) == ("mitigating", "P1", 1)
    assert a.execute(ResolveIncident(incident_id=iid, postmortem="pm-1")).ok
    inc = {i.id: i for i in a.incidents()}[iid]
    assert inc.status == "resolved" and inc.resolved_at is not None and inc.postmortem == "pm-1"
    with pytest.raises(NotFound):
        a.execute(UpdateIncident(incident_id="inc-none", note="x"))
    assert len(a.servers()) == n  # record-only: no infrastructure changed
    obs = Observation(a, a.now())
    assert iid not in obs.incidents  # the observation shows open incidents only
    obs.close()


def test_notify_changes_nothing(world: World) -> None:
    n = len(world.adapter.servers())
    assert world.adapter.execute(Notify(component=world.service, message="contract")).ok
    assert len(world.adapter.servers()) == n


# ------------------------------------------------------------------ metrics and alerts
def _check_window(w: base.MetricWindow, start: float, end: float, slack: float = 30.0) -> None:
    """Equal lengths, ascending times, within [start, end] give or take a scrape (``slack``)."""
    t, v = np.asarray(w.t), np.asarray(w.v)
    assert t.shape == v.shape and t.ndim == 1
    assert np.all(np.diff(t) > 0), "times ascend"
    if len(t):
        assert start - slack <= t[0] and t[-1] <= end + 1e-6


def test_metric_window(world: World) -> None:
    a = world.adapter
    world.ensure_servers(1)
    world.advance(120)
    now = a.now()
    w = a.metric_window("cpu_util", {"service": world.service}, 300)
    assert w.metric == "cpu_util" and w.labels["service"] == world.service
    _check_window(w, now - 300, now)
    if world.has_metrics:
        assert len(w.t) > 0 and np.all(np.isfinite(w.v))


def test_server_error_ratio_per_server(world: World) -> None:
    a = world.adapter
    world.ensure_servers(1)
    world.advance(120)
    sid = next(s.id for s in a.servers(service=world.service) if s.status == "ACTIVE")
    if world.name == "fake":  # the fake shows what a test feeds
        a.feed("server_error_ratio", {"server": sid, "service": world.service}, fn=lambda t: 0.02)
    now = a.now()
    w = a.metric_window("server_error_ratio", {"server": sid}, 300)
    assert w.metric == "server_error_ratio" and w.labels["server"] == sid
    _check_window(w, now - 300, now)
    if world.has_metrics:
        assert len(w.t) > 0 and np.all((w.v >= 0.0) & (w.v <= 1.0))


def test_metric_history(world: World) -> None:
    a = world.adapter
    world.ensure_servers(1)
    world.advance(900)
    now = a.now()
    h = run(world, lambda: a.metric_history("cpu_util", {"service": world.service}, 3600, 300), "metric_history()")
    _check_window(h, now - 3600 - 300, now + 300)
    assert len(h.t) <= 3600 / 300 + 1
    if len(h.t) > 1:
        assert np.allclose(np.diff(h.t) % 300, 0), "one point per step"
    if world.has_metrics:
        assert len(h.t) >= 2


def test_latest_is_keyed_by_service(world: World) -> None:
    a = world.adapter
    world.ensure_servers(1)
    world.advance(30)
    names = {s.name for s in a.services()}
    for m in ("cpu_util", "active_servers"):
        got = a.latest(m)
        assert set(got) <= names
    assert a.latest("active_servers").get(world.service, 0) >= 1


def test_unknown_metric_is_a_value_error(world: World) -> None:
    with pytest.raises(ValueError):
        world.adapter.latest("no_such_metric")
    with pytest.raises(ValueError):
        world.adapter.metric_window("no_such_metric", {"service": world.service}, 60)


def test_alerts_since(world: World) -> None:
    a = world.adapter
    if world.raise_alert is None:
        pytest.skip(f"{world.name}: no alert rule to fire here (tests/live/test_prometheus_live.py covers live alerts)")
    t0 = a.now()
    assert world.raise_alert()
    got = a.alerts(t0 - 1)
    assert any(x.name == "ContractAlwaysOn" and x.state == "firing" for x in got)
    assert all(x.at > t0 - 1 for x in got)
    assert all(x.severity in ("critical", "warning", "info") and x.fingerprint for x in got)
    assert a.alerts(a.now() + 1) == [] or list(a.alerts(a.now() + 1)) == []


def test_observation_reads_every_view(world: World) -> None:
    """Every Observation view works on every world, and closing it ends the reads."""
    a = world.adapter
    obs = Observation(a, a.now())
    assert obs.flavors and obs.hypervisors and world.service in obs.services and obs.quotas
    obs.servers(service=world.service)
    obs.window("cpu_util", 60, service=world.service)
    obs.alerts(0.0)
    assert obs.prices and obs.spend.total >= 0
    run(world, lambda: (obs.budgets, obs.reservations, obs.incidents, obs.requests, obs.deploys(0.0),
                        obs.history("cpu_util", 3600, 300, service=world.service)), "new observation views")
    obs.close()
    with pytest.raises(RuntimeError):
        _ = obs.reservations if not obs._cached("reservations") else obs.servers(status="ERROR")  # noqa: SLF001


# ------------------------------------------------------------------ the fake itself
def test_the_fake_handles_every_verb() -> None:
    from adapters.fake import _HANDLERS

    assert set(_HANDLERS) == set(ACTION_TYPES)


def test_the_fake_docstring_examples() -> None:
    import adapters.fake

    res = doctest.testmod(adapters.fake)
    assert res.attempted > 5 and res.failed == 0


def test_the_fake_bills_reservations_and_budgets() -> None:
    from adapters.fake import FakeAdapter

    fake = FakeAdapter({"web": ("small", 2)})
    fake.add_budget("p", limit=1.0, period_s=7200)
    fake.advance(3600)
    sp = fake.spend()
    assert math.isclose(sp.total, 2 * 0.05) and math.isclose(sp.per_service["web"], 0.1)
    fake.execute(PurchaseReservation(project="p", flavor="small", count=1, term_s=3600))
    fake.advance(3600)  # the reservation bills 0.03/h; the servers are on demand: 0.1/h
    assert math.isclose(fake.spend().total, 0.1 + 0.1 + 0.03)
    fake.advance(3600)  # the reservation has ended; a new budget period began at 7200
    (b,) = fake.budgets()
    assert b.period_start == 7200 and math.isclose(b.spent, 0.1)
    fake.execute(ShelveServer(server_id="srv-1"))
    assert math.isclose(fake.spend().rate_per_hour, 0.05)  # shelved servers cost nothing
