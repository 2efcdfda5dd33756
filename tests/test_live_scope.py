"""Managed scope (issue 13 item 2) and the min_servers floor, without a cloud: the fake world behind the seam.

A controller acts only on servers it manages; every other server is read-only context.  The property: no
sequence of actions, whoever proposes it, changes an unmanaged server, and each such attempt is a denied,
audited decision (rule ``out-of-scope``), or, past the gate, an ``OutOfScope`` failure of the adapter.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import (
    Action,
    CreateServer,
    DeleteServer,
    Deploy,
    InjectFault,
    Observation,
    RebootServer,
    ResizeServer,
    RestartService,
    Server,
    SetLBWeights,
    SetMetadata,
    ShelveServer,
    StartServer,
    StopServer,
    UpdateQuota,
)
from adapters.fake import FakeAdapter, FakeService
from adapters.live_config import parse_config
from adapters.scope import META_MANAGED, OutOfScope, Scope, ScopedAdapter, ScopeGate
from control.runtime import AllowAll, ChokePoint
from engines.baselines import CrashRestarter
from engines.floor import MinFloorKeeper

SCOPE = Scope("prod", frozenset({"p"}), None, frozenset({"web"}))


def _world() -> tuple[FakeAdapter, set[str]]:
    """web: 3 managed servers; an untagged SHUTOFF server, one of a service not ours, one in another project."""
    fake = FakeAdapter([FakeService("web", "small", 3), FakeService("legacy", "small", 1),
                        FakeService("elsewhere", "small", 1, project="other")])
    untagged = fake.servers(service="legacy")[0]
    fake._set(untagged, service=None, status="SHUTOFF")  # a hand-made server: no zeroops_service
    legacy = fake._place_new("legacy", "small", None, "on_demand", {}, status="SHUTOFF")
    other = fake.servers(service="elsewhere")[0]
    fake._set(other, service="web", status="SHUTOFF")  # 'web' by name, but in a project outside the scope
    return fake, {untagged.id, legacy.id, other.id}


def _snapshot(fake: FakeAdapter, ids: set[str]) -> dict[str, Any]:
    return {i: (s.status, s.flavor, dict(s.metadata), s.hypervisor) if (s := fake.server(i)) else None for i in ids}


def test_default_rule_tag_service_project() -> None:
    def srv(meta: dict[str, str], project: str = "p", service: str | None = None) -> Server:
        return Server("s1", "n", "small", project, "ACTIVE", "z", None, service, metadata=meta)

    assert SCOPE.manages(srv({META_MANAGED: "prod"}))
    assert SCOPE.manages(srv({"zeroops_service": "web"}))
    assert not SCOPE.manages(srv({}))
    assert "no zeroops_managed=prod and no zeroops_service" in (SCOPE.why_not(srv({})) or "")
    assert "service 'db'" in (SCOPE.why_not(srv({"zeroops_service": "db"})) or "")
    assert "outside the projects" in (SCOPE.why_not(srv({META_MANAGED: "prod"}, project="other")) or "")
    assert not SCOPE.manages(srv({META_MANAGED: "staging"}))
    custom = Scope("prod", frozenset(), {"owner": "team-a", "zeroops_service": "*"}, frozenset({"web"}))
    assert custom.manages(srv({"owner": "team-a", "zeroops_service": "x"}))
    assert "lacks owner=team-a" in (custom.why_not(srv({"zeroops_service": "web"})) or "")
    assert custom.create_metadata() == {"owner": "team-a"} and SCOPE.create_metadata() == {META_MANAGED: "prod"}
    aliased = SCOPE.with_aliases({"id-123": "p"})
    assert aliased.manages(srv({META_MANAGED: "prod"}, project="id-123"))


def test_config_scope_and_errors() -> None:
    cfg = parse_config({"scope": {"name": "prod", "projects": ["a", "b"], "managed_by": {"owner": "me"}}})
    assert cfg.scope.projects == ["a", "b"] and cfg.scope.managed_by == {"owner": "me"}
    with pytest.raises(ValueError, match="scope.managed_by: .*at least one"):
        parse_config({"scope": {"managed_by": {}}}, "live.yaml")
    with pytest.raises(ValueError, match="scope.nme: unknown field; allowed fields: managed_by, name, projects"):
        parse_config({"scope": {"nme": "x"}}, "live.yaml")


def _actions(ids: list[str]) -> st.SearchStrategy[Action]:
    sid = st.sampled_from(ids)
    return st.one_of(
        sid.map(lambda i: StartServer(server_id=i)),
        sid.map(lambda i: StopServer(server_id=i)),
        sid.map(lambda i: RebootServer(server_id=i, hard=True)),
        sid.map(lambda i: DeleteServer(server_id=i)),
        sid.map(lambda i: ShelveServer(server_id=i)),
        sid.map(lambda i: ResizeServer(server_id=i, flavor="medium")),
        sid.map(lambda i: SetMetadata(server_id=i, metadata={"k": "v"})),
        sid.map(lambda i: InjectFault(fault="server_crash", target_component=i)),
        st.lists(sid, min_size=1, max_size=3).map(lambda xs: SetLBWeights(service="web", weights=dict.fromkeys(xs, 0.5))),
        st.sampled_from(["web", "legacy"]).map(lambda s: CreateServer(service=s)),
        st.sampled_from(["web", "legacy"]).map(lambda s: RestartService(service=s)),
        st.sampled_from(["web", "legacy"]).map(lambda s: Deploy(service=s, version="9")),
        st.sampled_from(["p", "other"]).map(lambda p: UpdateQuota(project=p, instances=50)),
    )


_, _UNMANAGED = _world()
_ALL_IDS = sorted(s.id for s in _world()[0].servers())


@settings(max_examples=60, deadline=None)
@given(st.lists(_actions(_ALL_IDS), min_size=1, max_size=12), st.booleans())
def test_no_action_sequence_touches_an_unmanaged_server(actions: list[Action], through_gate: bool) -> None:
    fake, unmanaged = _world()
    before = _snapshot(fake, unmanaged)
    adapter = ScopedAdapter(fake, SCOPE)
    gate = ScopeGate(AllowAll(), SCOPE, fake.server, adapter.members) if through_gate else AllowAll()
    choke = ChokePoint(adapter, gate)
    for a in actions:
        rec = choke.submit(fake.now(), "anyone", a, Observation(fake, fake.now()))
        why = SCOPE.refusal(a, fake.server, adapter.members)
        if why is not None:  # refused: denied at the gate, or failed with OutOfScope at the adapter
            assert (rec.outcome, rec.verdict.rule) == ("denied", "out-of-scope") if through_gate else \
                (rec.outcome, rec.error) == ("failed", "OutOfScope"), rec
        fake.advance(60)
    assert _snapshot(fake, unmanaged) == before
    assert not [e for e in fake.executed if e[1].target() in unmanaged and e[1].changes_world]


def test_the_restarter_never_starts_an_untagged_stopped_server_in_a_live_controller(tmp_path: Path) -> None:
    from zeroops.live import LiveController, read_decisions

    fake, unmanaged = _world()
    mine = fake.servers(service="web")[0]
    fake._set(mine, status="SHUTOFF")  # one of ours crashed too: that one is started
    cfg = parse_config({"scope": {"name": "prod", "projects": ["p"]}, "keep_min_servers": False,
                        "services": [{"name": "web", "flavor": "small", "image": "img"}]})
    out = io.StringIO()
    ctl = LiveController(fake, cfg, "act", engines=[CrashRestarter(cadence=0.05, retry_s=0.1)],
                         decisions=tmp_path / "d.jsonl", audit=tmp_path / "a.db", state=str(tmp_path / "s.db"), out=out)
    ctl.run(duration=0.4)
    ctl.close()
    shown = [line for line in out.getvalue().splitlines() if "out of scope" in line]
    assert len(shown) == len(unmanaged) and "said once" in shown[0]  # the console: once per server
    assert fake.server(mine.id).status == "ACTIVE"
    assert all(fake.server(i).status == "SHUTOFF" for i in unmanaged)
    rows = read_decisions(tmp_path / "d.jsonl")
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert all(r["rule"] == "out-of-scope" and r["target"] in unmanaged for r in denied)
    assert len(denied) > len(unmanaged)  # proposed again and again: every attempt denied and recorded
    assert [r["target"] for r in rows if r["outcome"] == "executed"] == [mine.id]
    from control.audit import AuditReader

    assert any(e.body.get("rule") == "out-of-scope" for e in AuditReader(tmp_path / "a.db").list())


# ---------------------------------------------------------------- the OpenStack adapter's own check (mock Nova)
def _nova_server(sid: str, meta: dict[str, str], project: str = "pid", status: str = "SHUTOFF") -> Any:
    return SimpleNamespace(id=sid, name=sid, metadata=meta, project_id=project, status=status, task_state=None,
                           flavor=SimpleNamespace(original_name="m1"), availability_zone="nova", created_at=None,
                           hypervisor_hostname="h", fault=None)


class _Compute:
    def __init__(self, servers: list[Any]) -> None:
        self.by_id = {s.id: s for s in servers}
        self.started: list[str] = []

    def get_server(self, sid: str) -> Any:
        return self.by_id.get(sid)

    def servers(self, details: bool = True, **kw: Any) -> list[Any]:
        return list(self.by_id.values())

    def start_server(self, sid: str) -> None:
        self.started.append(sid)
        self.by_id[sid].status = "ACTIVE"


def test_openstack_adapter_refuses_an_unmanaged_server_before_any_api_call(tmp_path: Path) -> None:
    from adapters.journal import Journal
    from adapters.openstack import OpenStackAdapter

    compute = _Compute([_nova_server("mine", {"zeroops_service": "web"}), _nova_server("theirs", {}),
                        _nova_server("foreign", {"zeroops_service": "web"}, project="other-pid")])
    conn = SimpleNamespace(compute=compute, current_project_id="pid", current_project=SimpleNamespace(name="demo"))
    cfg = parse_config({"services": [{"name": "web", "flavor": "m1", "image": "img"}]})
    journal = Journal(tmp_path / "j.sqlite")
    a = OpenStackAdapter(conn, cfg, journal=journal, sleep=lambda s: None)
    assert a.scope.projects == {"demo"} and a.manages(a.server("mine")) and not a.manages(a.server("theirs"))
    assert a.execute(StartServer(server_id="mine")).ok and compute.started == ["mine"]
    for sid in ("theirs", "foreign"):
        with pytest.raises(OutOfScope, match="refused: server"):
            a.execute(StartServer(server_id=sid))
    assert compute.started == ["mine"] and [e.target for e in journal.all()] == ["mine"]  # nothing journalled


# ---------------------------------------------------------------- min_servers from zero, without metrics
def _empty(min_servers: int = 2) -> FakeAdapter:
    fake = FakeAdapter([FakeService("web", "small", 0, min_servers=min_servers)])
    return fake


def test_floor_keeper_creates_from_zero_without_metrics() -> None:
    fake = _empty()
    actions = list(MinFloorKeeper().step(0.0, Observation(fake, 0.0)))
    assert [(a.kind, a.target(), a.count) for a in actions] == [("create_server", "web", 1)] * 2
    assert "no servers" in actions[0].reason
    for a in actions:
        fake.execute(a)
    assert list(MinFloorKeeper().step(1.0, Observation(fake, 1.0))) == []
    fake._set(fake.servers()[0], status="SHUTOFF")  # failed: the restarter's, not a second reaction
    assert list(MinFloorKeeper().step(2.0, Observation(fake, 2.0))) == []


def test_floor_keeper_leaves_measured_services_to_the_scaler() -> None:
    fake = FakeAdapter([FakeService("web", "small", 1, min_servers=3)])
    keeper = MinFloorKeeper(only_when_unmeasured=True)
    actions = list(keeper.step(0.0, Observation(fake, 0.0)))  # no cpu_util reading: the scaler cannot act
    assert len(actions) == 2 and "no cpu_util" in actions[0].reason
    fake.feed("cpu_util", {"service": "web"}, [0.0], [0.5])
    assert list(keeper.step(1.0, Observation(fake, 1.0))) == []  # measured: the reactive scaler clamps to min


class _StatusFake(FakeAdapter):
    """The fake with what ``zeroops live status`` asks of a live adapter."""

    journal = None
    prometheus = None

    def describe(self) -> dict[str, Any]:
        return {"cloud": "fake", "project": "p", "region": "r", "auth_url": "-", "prometheus": None}

    def validate(self) -> list[str]:
        return []


def test_status_says_it_would_create_the_floor_and_act_mode_creates_it(tmp_path: Path) -> None:
    from control.safety import SafetyConfig
    from zeroops.live import LiveController, read_decisions, status_report

    cfg = parse_config({"services": [{"name": "web", "flavor": "small", "image": "img", "min_servers": 2}]})
    fake = _StatusFake([FakeService("web", "small", 0, min_servers=2)])
    report = status_report(fake, cfg, state_dir=tmp_path)
    assert "min-floor-keeper: create_server web {" in report and "(no servers): create 2 (2 of 2)" in report
    assert "would do now:\n  nothing" not in report
    observe = LiveController(fake, cfg, "observe", decisions=tmp_path / "o.jsonl", state_dir=tmp_path / "o",
                             out=io.StringIO())
    observe.run(duration=0.1)
    observe.close()
    assert fake.servers() == []
    ctl = LiveController(fake, replace_engines(cfg), "act", state_dir=tmp_path, out=io.StringIO(),
                         safety=SafetyConfig(min_scale_step=1))
    ctl.run(duration=0.3)
    ctl.close()
    # the gate's limits hold from zero: with MinScaleStep 1, one server per ScaleWindow (60 s); the second waits
    assert len(fake.servers(service="web")) == 1
    rules = {r["rule"] for r in read_decisions(ctl.paths.decisions) if r["outcome"] == "denied"}
    assert rules == {"max-scale-up"}
    # the default MinScaleStep (4, HPA's default policy) lets the floor of 2 come at once
    ctl = LiveController(fake, replace_engines(cfg), "act", state_dir=tmp_path / "2", out=io.StringIO())
    ctl.run(duration=0.3)
    ctl.close()
    assert len(fake.servers(service="web")) == 2  # then it stops: the floor is kept, not exceeded


def replace_engines(cfg: Any) -> Any:
    """The config with a fast floor keeper (its default cadence is 30 s)."""
    return cfg.model_copy(update={"engines": [{"engine": "min_floor_keeper", "cadence": 0.05}]})


def test_scoped_adapter_passes_reads_through() -> None:
    fake, unmanaged = _world()
    scoped = ScopedAdapter(fake, SCOPE)
    assert {s.id for s in scoped.servers()} >= unmanaged  # read-only context stays visible
    with pytest.raises(OutOfScope):
        scoped.execute(StartServer(server_id=sorted(unmanaged)[0]))
    assert scoped.refused


def test_several_projects_list_all_projects_and_keep_those_in_scope(tmp_path: Path) -> None:
    from adapters.openstack import OpenStackAdapter

    class AllProjects(_Compute):
        def servers(self, details: bool = True, **kw: Any) -> list[Any]:
            self.asked = kw
            return list(self.by_id.values())

    compute = AllProjects([_nova_server("a", {"zeroops_service": "web"}),
                           _nova_server("b", {"zeroops_service": "web"}, project="ops-pid"),
                           _nova_server("c", {"zeroops_service": "web"}, project="someone-else")])
    projects = {"ops": SimpleNamespace(id="ops-pid", name="ops")}
    identity = SimpleNamespace(find_project=lambda p, ignore_missing=True: projects.get(p),
                               get_project=lambda pid: SimpleNamespace(name={"ops-pid": "ops"}.get(pid, pid)))
    conn = SimpleNamespace(compute=compute, identity=identity, current_project_id="pid",
                           current_project=SimpleNamespace(name="demo"))
    cfg = parse_config({"scope": {"projects": ["demo", "ops"]},
                        "services": [{"name": "web", "flavor": "m1", "image": "img"}]})
    a = OpenStackAdapter(conn, cfg, sleep=lambda s: None)
    assert sorted(s.id for s in a.servers()) == ["a", "b"] and compute.asked == {"all_projects": True}
    assert all(a.manages(s) for s in a.servers())
    assert a.execute(StartServer(server_id="b")).ok  # a managed server of the second project
    with pytest.raises(OutOfScope, match="outside the projects"):
        a.execute(StartServer(server_id="c"))


def test_a_service_of_another_project_is_created_there(tmp_path: Path) -> None:
    from adapters.openstack import OpenStackAdapter

    class Creating(_Compute):
        def __init__(self, servers: list[Any], project: str) -> None:
            super().__init__(servers)
            self.project, self.created = project, []

        def create_server(self, **attrs: Any) -> Any:
            s = _nova_server(f"new-{len(self.created)}", attrs["metadata"], project=self.project, status="ACTIVE")
            self.created.append(attrs)
            return s

        def flavors(self) -> list[Any]:
            return [SimpleNamespace(id="f1", name="m1", vcpus=1, ram=512, disk=1, extra_specs={})]

    home, ops = Creating([], "pid"), Creating([], "ops-pid")
    as_ops = SimpleNamespace(compute=ops, authorize=lambda: "token")
    asked: list[Any] = []
    projects = {"ops": SimpleNamespace(id="ops-pid", name="ops", domain_id="default")}
    identity = SimpleNamespace(find_project=lambda p, ignore_missing=True: projects.get(p),
                               get_project=lambda pid: projects["ops"] if pid == "ops-pid" else None)
    conn = SimpleNamespace(compute=home, identity=identity, current_project_id="pid",
                           current_project=SimpleNamespace(name="demo"),
                           image=SimpleNamespace(images=lambda: [SimpleNamespace(id="i1", name="img", status="active",
                                                                                 size=1)]),
                           connect_as_project=lambda p: asked.append(p) or as_ops)
    cfg = parse_config({"services": [{"name": "web", "flavor": "m1", "image": "img", "project": "ops"}],
                        "wait": {"create": 0}})
    a = OpenStackAdapter(conn, cfg, sleep=lambda s: None)
    assert a.validate() == [] and a.scope.projects == {"demo", "ops"}
    r = a.execute(CreateServer(service="web", count=2))
    assert r.ok and len(ops.created) == 2 and home.created == []  # made in the service's project
    assert asked == [{"id": "ops-pid", "name": "ops", "domain_id": "default"}]
    assert all(c["metadata"]["zeroops_managed"] == "default" for c in ops.created)
