"""One engine registry and one composition root, for the twin and for live mode."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

import adapters.base as base
from adapters.base import Action, CreateServer, Observation, Page, RebootServer
from adapters.fake import FakeAdapter
from adapters.live_config import LiveConfig
from control.compose import ControlPlane, HumanApprovals, SimulatedApprovals, compose, default_audit_path
from control.safety import SafetyConfig, profile
from engines import registry
from engines.registry import REGISTRY, EngineSetSpec, RegistryError
from scenarios.loader import ScenarioError, parse_scenario
from tests.builders import make_scenario


@pytest.fixture(autouse=True)
def audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit trails written here sign with a throwaway key, never the user's ~/.config one."""
    monkeypatch.setenv("ZEROOPS_AUDIT_KEY", str(tmp_path / "keys" / "audit-ed25519.key"))


# ------------------------------------------------------------------ registry
class Counter:
    """A test engine: creates ``per_step`` servers of ``service`` at each step, ``steps`` times."""

    name = "counter"

    def __init__(self, service: str, per_step: int, steps: int, cadence: float) -> None:
        self.service, self.per_step, self.left, self.cadence = service, per_step, steps, cadence

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        if self.left <= 0:
            return []
        self.left -= 1
        return [CreateServer(service=self.service, count=self.per_step, reason="test", request_id=f"r{self.left}")]


class CounterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = "api"
    per_step: int = Field(1, ge=1, le=5)
    steps: int = Field(1, ge=0)
    cadence: float = Field(10.0, gt=0)


@pytest.fixture
def counter() -> Iterator[None]:
    registry.register("counter", lambda c: Counter(**c.model_dump()), CounterConfig, description="test")
    registry.register_set("counting", [{"engine": "counter", "per_step": 2}], handles_alerting=True)
    try:
        yield
    finally:
        REGISTRY.unregister_set("counting")
        REGISTRY.unregister("counter")


def test_builtin_sets_and_engines_are_registered() -> None:
    assert REGISTRY.set_names()[:2] == ["static", "reactive"]
    assert {"reactive_scaler", "crash_restarter"} <= set(REGISTRY.engine_names())
    assert registry.build_engines("static") == []
    scaler, restarter = registry.build_engines("reactive")
    assert (scaler.name, restarter.name) == ("reactive-scaler", "crash-restarter")
    assert registry.resolve("reactive").operator_route == "raw_alerts"  # baselines: the human sees raw alerts


def test_register_plugs_an_engine_and_a_set_in(counter: None) -> None:
    spec = registry.resolve("counting")
    assert spec.handles_alerting and spec.operator_route == "pages"
    (engine,) = spec.build()
    assert isinstance(engine, Counter) and engine.per_step == 2
    assert registry.build_engines("counting")[0] is not engine  # fresh engines per run
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("counter", lambda c: Counter(**c.model_dump()), CounterConfig)

    class Loose(BaseModel):
        x: int = 1

    with pytest.raises(RegistryError, match="must forbid unknown settings"):
        registry.register("loose", lambda c: Counter("api", 1, 1, 1.0), Loose)


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("reactiv", "unknown engine set 'reactiv'; allowed: static, reactive"),
        ({"name": "x", "engines": [{"engine": "reactive_scalr"}]},
         "engines.0: unknown engine 'reactive_scalr'; did you mean 'reactive_scaler'? allowed: "),
        ({"name": "x", "engines": [{"engine": "reactive_scaler", "target": 0}]},
         "engines.0: reactive_scaler.target: Input should be greater than 0 (got 0)"),
        ({"name": "x", "engines": [{"engine": "crash_restarter"}, {"engine": "crash_restarter"}]},
         "engine 'crash_restarter' appears more than once"),
        ({"name": "reactive", "engines": []}, "'reactive' is a registered engine set; give the inline"),
        ({"name": "bad/name", "engines": []}, "name: String should match pattern"),
        ({"name": "static", "handles_alerting": True}, "its handles_alerting cannot be changed"),
        (7, "an engine set is a name (static, reactive"),
    ],
)
def test_registry_errors_say_what_is_allowed(ref: Any, needle: str) -> None:
    with pytest.raises(RegistryError) as ei:
        registry.resolve(ref)
    assert needle in str(ei.value), str(ei.value)


# ------------------------------------------------------------ scenario format
def _scn(engines: str) -> Any:
    import yaml

    from tests.builders import scenario_dict

    data = scenario_dict(duration=3600) | {"name": "inline", "engines": yaml.safe_load(engines)}
    return parse_scenario(yaml.safe_dump(data), Path("inline.yaml"))


def test_scenarios_list_sets_by_name_or_inline() -> None:
    scn = _scn("[static, reactive]")
    assert scn.engines == ["static", "reactive"]  # backward compatible: names
    scn = _scn("[static, {name: half, engines: [{engine: reactive_scaler, target: 0.5}, {engine: crash_restarter}]}]")
    assert scn.engines == ["static", "half"]
    spec = scn.engine_set("half")
    assert [u.engine for u in spec.engines or ()] == ["reactive_scaler", "crash_restarter"]
    assert spec.build()[0].target == 0.5 and not spec.handles_alerting
    assert scn.model_copy(update={"seed": 3}).engine_set("half") == spec  # kept across copies (per-seed runs)
    assert scn.engine_set("reactive").name == "reactive"  # a registered set not listed is still found


@pytest.mark.parametrize(
    ("engines", "needle"),
    [
        ("[reactiv]", "inline.yaml: engines[0]: unknown engine set 'reactiv'; allowed: static, reactive"),
        ("[{name: x, engines: [{engine: reactive_scaler, targett: 1}]}]",
         "inline.yaml: engines[0].engines[0]: reactive_scaler.targett: unknown setting of engine reactive_scaler; "
         "did you mean 'target'? allowed: cadence, min_floor, stabilisation_s, target, tolerance"),
        ("[{nam: x}]", "engines[0].nam: unknown field 'nam'; allowed: description, engines, handles_alerting, name"),
        ("[static, static]", "engine set 'static' is listed twice"),
    ],
)
def test_scenario_engine_errors_name_file_field_and_allowed_values(engines: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        _scn(engines)
    assert needle in str(ei.value), str(ei.value)


def test_an_inline_set_runs_in_the_twin_through_the_composition_root() -> None:
    from scenarios.runner import run_scenario

    scn = _scn("[{name: two-steps, engines: [{engine: reactive_scaler, target: 0.05, cadence: 30}]}]")
    r = run_scenario(scn, "two-steps")
    assert r.engines == "two-steps"
    assert any(rec.kind == "create_server" and rec.outcome == "executed" for rec in r.records)


def test_a_set_that_handles_alerting_routes_the_twin_human_through_pages(counter: None) -> None:
    from scenarios.runner import set_operator_route

    class World:
        operator_route = "raw_alerts"

    w = World()
    set_operator_route(w, registry.resolve("counting"))  # type: ignore[arg-type]
    assert w.operator_route == "pages"
    set_operator_route(w, registry.resolve("reactive"))  # type: ignore[arg-type]
    assert w.operator_route == "raw_alerts"


# ------------------------------------------------------------ composition root
def test_twin_and_live_use_the_same_composition_root(tmp_path: Path) -> None:
    import scenarios.runner
    import zeroops.live

    assert scenarios.runner.compose is compose
    fake = FakeAdapter(services={"web": ("small", 2)})
    ctl = zeroops.live.LiveController(fake, LiveConfig(engines="reactive"), "act", decisions=tmp_path / "d.jsonl",
                                      audit=tmp_path / "a.db", state=str(tmp_path / "s.db"), out=io.StringIO())
    try:
        assert isinstance(ctl.plane, ControlPlane) and ctl.plane.name == "reactive-floor"  # + min_floor_keeper
        assert ctl.queue is not None and ctl.queue.on_record in ctl.choke.listeners  # proposals are queued
        assert ctl.audit is not None and ctl.audit_path == tmp_path / "a.db"
    finally:
        ctl.close()


def test_compose_wires_gate_queue_audit_and_simulated_approvers(tmp_path: Path) -> None:
    from adapters.sim import SimAdapter
    from twin.clock import SimClock
    from twin.world import World

    world = World(make_scenario(duration=1800))
    adapter = SimAdapter(world)
    class Distinct(Counter):
        """Three different creates (1, 2, 3 servers): the same intent proposed again while one waits is queued
        once (ApprovalQueue.enqueue), so the steps must differ in what they ask for to be three proposals."""

        def step(self, now: float, obs: Observation) -> Iterable[Action]:
            return [replace(a, count=self.left + 1) for a in super().step(now, obs)]

    engine = Distinct("api", per_step=1, steps=3, cadence=60.0)
    plane = compose(adapter, [engine], clock=SimClock(world.env), safety="week1",
                    approvals=SimulatedApprovals(count=1, delay=120, cadence=30), audit_path=tmp_path / "audit.db")
    records: list[Any] = []
    plane.choke.listeners.append(records.append)
    world.run()
    plane.close()
    outcomes = [(r.engine, r.outcome, r.verdict.rule) for r in records]
    assert outcomes.count(("counter", "proposed", "human-approval")) == 3
    assert [o for o in outcomes if o[1] == "executed"] == [("counter", "executed", "human-approval")] * 3
    from control.audit import AuditReader

    assert AuditReader(tmp_path / "audit.db").verify().ok


def test_safety_profiles_by_name_and_unknown_profiles() -> None:
    fake = FakeAdapter()
    plane = compose(fake, "static", safety="week2")
    assert plane.gate.config == profile("week2")  # type: ignore[attr-defined]
    plane.close()
    with pytest.raises(ValueError, match="unknown safety profile 'week9'; allowed: week1"):
        compose(fake, "static", safety="week9")


# ----------------------------------------------------------- live approvals
class ProposeOnce:
    """Proposes one CreateServer and one Page at its first step."""

    name = "scaler"
    cadence = 0.05

    def __init__(self) -> None:
        self.done = False

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        if self.done:
            return []
        self.done = True
        return [CreateServer(service="web", reason="cpu high"), Page(who="oncall", why="test")]


def test_live_approvals_are_queued_voted_with_the_cli_and_executed_in_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from zeroops.cli import main
    from zeroops.live import LiveController, read_decisions

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZEROOPS_AUDIT_DB", raising=False)
    monkeypatch.setenv("ZEROOPS_SAFETY_DB", str(tmp_path / "state.db"))
    fake = FakeAdapter(services={"web": ("small", 2)})
    out = io.StringIO()
    ctl = LiveController(fake, LiveConfig(), "act", engines=[ProposeOnce()], decisions=tmp_path / "d.jsonl",
                         safety=profile("week1"), executor_cadence=0.05, out=out)
    assert ctl.audit_path == Path(default_audit_path()) == Path(os.environ["ZEROOPS_STATE_DIR"]) / "audit.db"  # on
    votes = itertools.count()

    def person(now: float) -> None:  # someone at a terminal, a little later: `zeroops approvals approve`
        pending = ctl.queue.list("pending")
        if pending and next(votes) >= 2:
            assert main(["approvals", "approve", str(pending[0].id), "--by", "alice"]) == 0

    ctl.clock.every(0.05, person, offset=0.05)
    ctl.clock.every(0.05, lambda now: ctl.stop() if len(fake.servers(service="web")) == 3 else None, offset=0.05)
    ctl.run(duration=5.0)
    ctl.close()
    assert len(fake.servers(service="web")) == 3  # approved, then executed through the choke point
    assert [p.kind for p in fake.pages] == ["page"]  # record-only: ran at once even in week1, audited
    rows = [(r["kind"], r["outcome"], r["rule"]) for r in read_decisions(tmp_path / "d.jsonl")]
    assert rows == [("create_server", "proposed", "human-approval"), ("page", "executed", "within-limits"),
                    ("create_server", "executed", "human-approval")]
    assert "queued: zeroops approvals list" in out.getvalue()
    capsys.readouterr()
    assert main(["approvals", "list", "--all"]) == 0
    assert "executed" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0  # no --db: the same default path the controller wrote
    assert main(["decisions", "list"]) == 0
    assert capsys.readouterr().out.count("create_server") == 2  # proposed, then executed once approved


def test_observe_mode_queues_nothing_and_changes_nothing(tmp_path: Path) -> None:
    from zeroops.live import LiveController

    fake = FakeAdapter(services={"web": ("small", 2)})
    ctl = LiveController(fake, LiveConfig(), "observe", engines=[ProposeOnce()], decisions=tmp_path / "d.jsonl",
                         audit=tmp_path / "a.db", state=str(tmp_path / "s.db"), out=io.StringIO())
    ctl.run(duration=0.3)
    ctl.close()
    assert ctl.queue is None and len(fake.servers(service="web")) == 2 and fake.pages == []


def test_the_approval_executor_closes_its_observation() -> None:
    from control.safety import SafetyKit

    fake = FakeAdapter(services={"web": ("small", 2)})
    kit = SafetyKit.build(fake, SafetyConfig(human_approval=True))
    obs = Observation(fake, 0.0)
    kit.choke.submit(0.0, "e", RebootServer(server_id="srv-1"), obs)
    obs.close()
    (p,) = kit.queue.list()
    kit.queue.vote(p.id, "alice", "approve", 1.0)
    before = set(base._READERS)
    kit.executor.step(2.0)
    assert kit.queue.get(p.id).status == "executed"
    assert set(base._READERS) <= before  # no reader left open behind the executor's re-check
    kit.close()


def test_human_approvals_default_to_the_cli_state_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROOPS_SAFETY_DB", "/tmp/x/safety.db")
    assert HumanApprovals().path() == "/tmp/x/safety.db"
    monkeypatch.delenv("ZEROOPS_SAFETY_DB")
    assert HumanApprovals().path() == os.path.join(os.environ["ZEROOPS_STATE_DIR"], "safety.db")  # absolute
    assert isinstance(EngineSetSpec.model_validate("static"), EngineSetSpec)


def test_the_runner_sets_the_twin_route_from_the_engine_set(counter: None) -> None:
    from scenarios.runner import run_scenario

    scn = _scn("[static]").model_copy(update={"duration": 120.0})
    if not hasattr(run_scenario(scn, "static").world, "operator_route"):
        pytest.skip("this twin has no operator route yet")
    assert run_scenario(scn, "static").world.operator_route == "raw_alerts"
    assert run_scenario(scn, "counting").world.operator_route == "pages"  # the set handles alerting


def test_a_cloud_error_in_the_approval_executor_skips_its_step_not_the_controller(tmp_path: Path) -> None:
    from adapters.base import TransientAPIError
    from zeroops.live import LiveController

    class Flaky(FakeAdapter):
        down = False

        def services(self) -> Any:
            if self.down:
                raise TransientAPIError("compute API unavailable")
            return super().services()

    fake = Flaky(services={"web": ("small", 2)})
    out = io.StringIO()
    ctl = LiveController(fake, LiveConfig(), "act", engines=[ProposeOnce()], decisions=tmp_path / "d.jsonl",
                         audit=tmp_path / "a.db", state=str(tmp_path / "s.db"), safety="week1",
                         executor_cadence=0.05, out=out)

    def approve_then_break(now: float) -> None:
        for p in ctl.queue.list("pending"):
            ctl.queue.vote(p.id, "alice", "approve", now)
            fake.down = True

    ctl.clock.every(0.05, approve_then_break, offset=0.02)
    ctl.run(duration=0.5)
    assert "approval executor: step skipped: TransientAPIError" in out.getvalue()
    assert [p.kind for p in ctl.queue.list("approved")] == ["create_server"]  # still waiting, not lost
    ctl.close()
