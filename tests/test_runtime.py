"""The engine contract, the choke point and the clocks."""

from __future__ import annotations

import time

from adapters.base import CreateServer, Observation, RebootServer
from adapters.sim import SimAdapter
from control.runtime import ChokePoint, MemoryActionLog, Runtime, Verdict, WallClock
from tests.builders import make_scenario
from twin.clock import SimClock
from twin.world import World


class Scripted:
    """An engine that proposes a fixed list of actions at its first step."""

    def __init__(self, name: str, actions: list, cadence: float = 10.0) -> None:
        self.name, self.cadence, self.actions, self.seen = name, cadence, actions, []

    def step(self, now: float, obs: Observation):  # type: ignore[no-untyped-def]
        self.seen.append(now)
        out, self.actions = self.actions, []
        return out


class DenyReboots:
    def review(self, now, engine, action, obs):  # type: ignore[no-untyped-def]
        return Verdict("deny", rule="no-reboots") if action.kind == "reboot_server" else Verdict("allow")

    def executed(self, now, engine, action, result):  # type: ignore[no-untyped-def]
        self.last = action


def test_every_action_passes_the_choke_point_and_is_logged() -> None:
    w = World(make_scenario(duration=120))
    adapter = SimAdapter(w)
    log = MemoryActionLog()
    engine = Scripted("e", [CreateServer(service="api", reason="more"), RebootServer(server_id="srv-000000"),
                            RebootServer(server_id="srv-999999")])
    rt = Runtime(adapter, [engine], ChokePoint(adapter, DenyReboots(), log))
    rt.attach(SimClock(w.env))
    w.run()
    outcomes = [(r.kind, r.outcome, r.verdict.rule) for r in log.records]
    assert outcomes == [("create_server", "executed", ""), ("reboot_server", "denied", "no-reboots"),
                        ("reboot_server", "denied", "no-reboots")]
    assert w.n == 7  # the create reached the world; the denied reboots did not
    assert engine.seen == [10.0 * k for k in range(1, 13)]  # on the twin's clock, at its cadence


def test_adapter_errors_become_failed_records() -> None:
    w = World(make_scenario(duration=60))
    adapter = SimAdapter(w)
    choke = ChokePoint(adapter)
    rec = choke.submit(0.0, "e", RebootServer(server_id="srv-999999"))
    assert rec.outcome == "failed" and rec.error == "NotFound"
    rec = choke.submit(0.0, "e", CreateServer(service="api", count=10_000))
    assert rec.outcome == "failed" and rec.error == "QuotaExceeded" or rec.error == "NoValidHost"


def test_wall_clock_runs_periodic_calls_until_the_deadline() -> None:
    clock = WallClock()
    calls: list[float] = []
    clock.every(0.02, calls.append)
    start = time.time()
    clock.run(until=start + 0.15)
    assert 4 <= len(calls) <= 9
    assert all(b > a for a, b in zip(calls, calls[1:], strict=False))


def test_engine_names_must_be_unique() -> None:
    import pytest

    w = World(make_scenario(duration=60))
    with pytest.raises(ValueError, match="unique"):
        Runtime(SimAdapter(w), [Scripted("a", []), Scripted("a", [])])


def test_an_engine_cannot_read_its_observation_after_its_step() -> None:
    import pytest

    class Keeper:
        name, cadence = "keeper", 10.0

        def __init__(self) -> None:
            self.kept: list[Observation] = []

        def step(self, now, obs):  # type: ignore[no-untyped-def]
            obs.services  # noqa: B018 - reading during the step works
            self.kept.append(obs)
            return []

    w = World(make_scenario(duration=30))
    keeper = Keeper()
    rt = Runtime(SimAdapter(w), [keeper])
    rt.attach(SimClock(w.env))
    w.run()
    with pytest.raises(RuntimeError, match="closed"):
        keeper.kept[0].servers(service="api")
