"""The ops center and planned maintenance marked in server metadata: the planned stop is no incident, a real
crash during the window still is."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import Observation, SetMetadata
from adapters.fake import FakeAdapter, FakeService
from engines.maintenance import MAINTENANCE_KEY, UNTIL_KEY, PlannedWork
from scenarios.runner import RunResult, run_scenario
from tests.builders import make_scenario
from twin import maintenance as twin_maintenance

WINDOW = {"at": 600, "duration": 900, "service": "api", "servers": 2, "description": "patching"}


def _run(faults: list[dict[str, Any]], seed: int = 1) -> RunResult:
    return run_scenario(make_scenario(duration=2400.0, seed=seed, maintenance=[WINDOW], faults=faults), "ops")


def _ops(r: RunResult, kind: str) -> list[Any]:
    return [x for x in r.records if x.engine == "ops-center" and x.kind == kind]


def test_the_twin_marks_planned_work_with_the_engines_convention() -> None:
    assert (twin_maintenance.MAINTENANCE_KEY, twin_maintenance.UNTIL_KEY) == (MAINTENANCE_KEY, UNTIL_KEY)


def test_a_maintained_server_stopped_and_restarted_is_no_incident_and_no_page() -> None:
    r = _run([])
    (_, _, stopped, _), (_, _, started, _) = r.world.maintenance_log
    assert len(stopped) == 2 and started == stopped  # the work happened: servers went down and came back
    assert _ops(r, "declare_incident") == [] and _ops(r, "page") == []
    assert [x for x in r.records if x.kind == "page"] == []  # nor did smart alerting page
    assert all(MAINTENANCE_KEY not in md for md in r.world.metadata)  # the marks were cleared afterwards


def test_a_crash_of_another_server_during_the_window_is_still_declared() -> None:
    r = _run([{"type": "server_crash", "at": 900, "service": "api"}], seed=2)
    (fault,) = r.world.truth.faults
    (_, _, stopped, _) = r.world.maintenance_log[0]
    assert fault.servers[0] not in stopped  # the crash hit a server nobody planned to stop
    decl = _ops(r, "declare_incident")
    assert len(decl) == 1 and decl[0].at - fault.start <= 10.0
    assert decl[0].action.root_causes[0]["component"] == fault.servers[0]
    assert not set(stopped) & set(decl[0].action.components)  # the planned work is not part of it
    assert r.score.metrics["detection_precision"] == 1.0


def _fake_with_mark(until: str | None, errors: float) -> tuple[FakeAdapter, str]:
    fake = FakeAdapter([FakeService("db", servers=3)])
    fake.feed("error_ratio", {"service": "db"}, fn=lambda t: errors)
    sid = fake.servers(service="db")[0].id
    md = {MAINTENANCE_KEY: "CHG-7", **({UNTIL_KEY: until} if until is not None else {})}
    fake.execute(SetMetadata(server_id=sid, metadata=md))
    fake.advance(10.0)
    return fake, sid


@pytest.mark.parametrize(("until", "errors", "server", "service"), [
    (None, 0.001, True, True),  # marked, service fine: both silenced
    ("5", 0.001, False, False),  # the mark expired at t=5
    ("soon", 0.001, True, True),  # an unreadable end: the mark itself still holds
    (None, 0.20, True, False),  # a breach beyond losing a server counts
])
def test_planned_work_silences_the_marked_server_and_its_service_short_of_a_breach(
        until: str | None, errors: float, server: bool, service: bool) -> None:
    fake, sid = _fake_with_mark(until, errors)
    planned = PlannedWork(Observation(fake, fake.now()), fake.now())
    assert planned.silences({"server": sid, "service": "db"}) is server
    assert planned.silences({"service": "db"}) is service
    assert planned.silences({"service": "api", "dependency": "db"}) is service  # the edge calling it
    assert not planned.silences({"service": "db"}, service_level=False)  # e.g. a leak's trend
    other = fake.servers(service="db")[1].id
    assert not planned.silences({"server": other, "service": "db"})
