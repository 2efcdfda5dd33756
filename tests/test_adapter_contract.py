"""One set of behaviours, two worlds: the simulated adapter and the OpenStack adapter must agree.

Every case runs against ``adapters.sim.SimAdapter`` (a small twin world) and
``adapters.openstack.OpenStackAdapter`` (the live test cloud; skipped when
none is configured, see tests/live/conftest.py).  A case states behaviour an
engine relies on; ``settle`` lets each world finish what it started (sim
time for the twin, wall-clock polling for the cloud).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from adapters.base import (
    Adapter,
    CreateServer,
    DeleteServer,
    NotFound,
    Notify,
    QuotaExceeded,
    RebootServer,
    UpdateQuota,
)

# openstacksdk's deprecation chatter says nothing about the contract
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning")


@dataclass
class World:
    adapter: Adapter
    service: str
    project: str
    missing_id: str
    settle: Callable[[], None]


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
            ],
            "prices": {"on_demand": {"small": 0.06, "large": 0.24}},
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
        }
    )
    w = TwinWorld(scn)
    w.run(until=600)  # let the initial servers boot

    def settle() -> None:
        w.run(until=w.now() + 600)

    return World(SimAdapter(w), "web", "p", "srv-999999", settle)


def _openstack(tag: str) -> Iterator[World]:
    cloud = os.environ.get("ZEROOPS_TEST_CLOUD")
    if not cloud:
        pytest.skip(
            "no OpenStack cloud configured: set ZEROOPS_TEST_CLOUD and OS_CLIENT_CONFIG_FILE (make devcloud-up prints them)"
        )
    import openstack

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
        }
    )
    conn = openstack.connect(cloud=cloud, api_timeout=30)
    adapter = OpenStackAdapter(conn, cfg, cache_ttl=0.0)

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

    try:
        yield World(adapter, service, adapter.project_name, "00000000-0000-0000-0000-000000000000", settle)
    finally:
        for s in list(conn.compute.servers(details=True)):
            if (s.metadata or {}).get(META_SERVICE) == service:
                conn.compute.delete_server(s, ignore_missing=True)


@pytest.fixture(params=["sim", pytest.param("openstack", marks=pytest.mark.openstack)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "sim":
        yield _sim()
    else:
        yield from _openstack(secrets.token_hex(3))


def test_is_an_adapter(world: World) -> None:
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
    svc = {s.name: s for s in world.adapter.services()}[world.service]
    assert (svc.min_servers, svc.max_servers) == (1, 5)
    assert svc.active >= 0 and svc.building >= 0 and svc.failed >= 0
    assert svc.project == world.project


def test_create_list_reboot_delete(world: World) -> None:
    a = world.adapter
    before = {s.name: s for s in a.services()}[world.service].active
    r = a.execute(CreateServer(service=world.service, reason="contract"))
    assert r.ok and len(r.server_ids) == 1 and r.attempts >= 1
    (sid,) = r.server_ids
    world.settle()
    mine = {s.id: s for s in a.servers(service=world.service)}
    assert mine[sid].status == "ACTIVE" and mine[sid].service == world.service
    assert a.server(sid) == mine[sid]  # the lookup by id sees what the listing sees
    assert {s.name: s for s in a.services()}[world.service].active == before + 1
    assert a.execute(RebootServer(server_id=sid)).ok
    world.settle()
    assert {s.id: s for s in a.servers(service=world.service)}[sid].status == "ACTIVE"
    assert a.execute(DeleteServer(server_id=sid)).ok
    world.settle()
    assert sid not in {s.id for s in a.servers()}
    assert a.server(sid) is None


def test_create_with_request_id_is_idempotent(world: World) -> None:
    a = world.adapter
    rid = "contract-" + secrets.token_hex(4)
    first = a.execute(CreateServer(service=world.service, request_id=rid))
    again = a.execute(CreateServer(service=world.service, request_id=rid))
    assert first.ok and again.ok and first.server_ids == again.server_ids
    assert sum(s.metadata.get("zeroops_request_id") == rid for s in a.servers()) == 1


def test_unknown_server_is_not_found(world: World) -> None:
    assert world.adapter.server(world.missing_id) is None
    for action in (DeleteServer(server_id=world.missing_id), RebootServer(server_id=world.missing_id)):
        with pytest.raises(NotFound):
            world.adapter.execute(action)


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


def test_notify_changes_nothing(world: World) -> None:
    n = len(world.adapter.servers())
    assert world.adapter.execute(Notify(component=world.service, message="contract")).ok
    assert len(world.adapter.servers()) == n
