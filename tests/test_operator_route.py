"""Who pages the simulated human: raw alerts (baselines) or only Page actions (engines that handle alerting)."""

from __future__ import annotations

from adapters import base
from adapters.sim import SimAdapter
from tests.builders import make_scenario
from twin.world import World

CRASH = [{"type": "server_crash", "at": 100, "service": "api"}]


def _world(route: str | None = None) -> World:
    w = World(make_scenario(duration=3600, faults=CRASH, operator={"response_delay": 600}))
    if route is not None:
        w.operator_route = route  # what the runner sets from the engine set
    return w


def test_raw_alerts_page_the_human_by_default() -> None:
    w = _world()
    assert w.operator_route == "raw_alerts"
    w.run()
    w.finish()
    (rec,) = w.truth.faults
    assert w.truth.pages and rec.human_started is not None and rec.resolved_by == "human"


def test_on_the_pages_route_raw_alerts_page_nobody() -> None:
    w = _world("pages")
    w.run()
    w.finish()
    (rec,) = w.truth.faults
    assert w.alerting.alerts  # the raw alerts still fire (engines see them)
    assert not w.truth.pages and rec.human_started is None and rec.end is None


def test_a_page_on_a_faulted_component_brings_the_human_after_the_response_delay() -> None:
    w = _world("pages")
    w.run(until=400)
    (rec,) = w.truth.faults
    SimAdapter(w).execute(base.Page(who="oncall", components=(rec.servers[0],), reason="server down"))
    w.run()
    w.finish()
    assert [t for t, _ in w.truth.pages] == [400.0]
    assert rec.human_started == 1000.0 and rec.resolved_by == "human"


def test_the_route_comes_from_the_config() -> None:
    w = World(make_scenario(operator={"route": "pages"}))
    assert w.operator_route == "pages"
