"""Planned maintenance marked in server metadata (engines/maintenance.py) silences what it explains, no more."""

from __future__ import annotations

import pytest

from adapters.base import SetMetadata
from engines.maintenance import MAINTENANCE_KEY, UNTIL_KEY
from tests.alerting.harness import Harness


def _mark(h: Harness, server: str, until: float | None = None) -> None:
    md = {MAINTENANCE_KEY: "CHG-1", **({UNTIL_KEY: f"{until:.0f}"} if until is not None else {})}
    h.fake.execute(SetMetadata(server_id=server, metadata=md))


def _db_servers(h: Harness) -> list[str]:
    return [s.id for s in h.fake.servers(service="db")]


def test_a_marked_server_going_down_pages_nobody_while_another_servers_crash_still_pages() -> None:
    h = Harness()
    planned, other = _db_servers(h)
    _mark(h, planned)
    h.fire("InstanceDown", "db", "critical", server=planned)
    h.run(600)
    assert h.pages() == []
    assert {t.server: t.fate for t in h.engine.tracks.by_fp.values()} == {planned: "silenced"}
    h.fire("InstanceDown", "db", "critical", server=other)  # not planned: a real failure, users see it
    h.errors("db", 0.30)
    h.errors("api", 0.30)
    h.run(60)
    assert {t.server: t.fate for t in h.engine.tracks.by_fp.values()} == {planned: "silenced", other: "grouped"}
    assert [a.components for _, a in h.pages()] == [("db", other)]


def test_a_service_symptom_is_silenced_only_within_what_the_maintenance_explains() -> None:
    h = Harness()
    _mark(h, _db_servers(h)[0])
    h.errors("db", 0.001)
    h.fire("PoolSaturated", "db", "critical")  # fewer servers, fuller pools: what planned work explains
    h.run(300)
    assert h.pages() == []
    h.resolve("PoolSaturated", "db", "critical")
    h.step()
    h.errors("db", 0.30)  # failing far beyond losing one server: a breach, paged
    h.errors("api", 0.30)
    h.fire("HighErrorRate", "db", "critical")
    h.run(60)
    assert [a.components for _, a in h.pages()] == [("db",)]


@pytest.mark.parametrize("until", [100.0, None])
def test_an_expired_mark_silences_nothing_and_a_mark_without_end_lasts(until: float | None) -> None:
    h = Harness()
    sid = _db_servers(h)[0]
    _mark(h, sid, until)
    h.run(200)  # past the mark's end, if it has one
    h.fire("InstanceDown", "db", "critical", server=sid)
    h.errors("api", 0.30)
    h.run(60)
    (track,) = h.engine.tracks.by_fp.values()
    assert track.fate == ("grouped" if until is not None else "silenced")
    assert len(h.pages()) == (1 if until is not None else 0)
