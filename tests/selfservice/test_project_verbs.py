"""CreateProject and DeleteProject behave alike on the twin and the fake (the devcloud: test_live_openstack.py)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import Conflict, CreateProject, DeleteProject, DeleteServer, NotFound, UpdateQuota
from adapters.fake import FakeAdapter, FakeService
from adapters.sim import SimAdapter
from tests.builders import make_scenario
from twin.world import World


def _sim() -> tuple[Any, str]:
    d = make_scenario(projects=[{"name": "p"}, {"name": "lab"}])
    d = d.model_copy(update={"services": [*d.services, d.services[0].model_copy(update={"name": "nb", "project": "lab",
                                                                                        "servers": 1})]})
    return SimAdapter(World(d)), "lab"


def _fake() -> tuple[Any, str]:
    return FakeAdapter([FakeService("web", "small", 2), FakeService("nb", "small", 1, project="lab")]), "lab"


@pytest.fixture(params=["sim", "fake"])
def world(request: pytest.FixtureRequest) -> tuple[Any, str]:
    return _sim() if request.param == "sim" else _fake()


def test_create_project_with_quota_and_budget(world: tuple[Any, str]) -> None:
    a, _ = world
    assert a.execute(CreateProject(project="team-x", instances=3, cores=6, ram_mb=8192, budget=50.0,
                                   alert_route="team-x")).ok
    q = {q.project: q for q in a.quotas()}["team-x"]
    assert (q.instances, q.cores, q.ram_mb, q.instances_used) == (3, 6, 8192, 0)
    assert [b.limit for b in a.budgets() if b.project == "team-x"] == [50.0]
    with pytest.raises(Conflict):
        a.execute(CreateProject(project="team-x"))
    assert a.execute(UpdateQuota(project="team-x", instances=5)).ok
    assert a.execute(DeleteProject(project="team-x")).ok
    assert "team-x" not in {q.project for q in a.quotas()}
    with pytest.raises(NotFound):
        a.execute(DeleteProject(project="team-x"))


def test_a_project_with_servers_cannot_be_deleted(world: tuple[Any, str]) -> None:
    a, project = world
    servers = [s for s in a.servers() if s.project == project]
    assert servers
    with pytest.raises(Conflict, match="server"):
        a.execute(DeleteProject(project=project))
    for s in servers:
        a.execute(DeleteServer(server_id=s.id))
    assert a.execute(DeleteProject(project=project)).ok
    assert project not in {q.project for q in a.quotas()}
