"""Faults between the adapter and the real cloud: retries, lost responses, convergence, no duplicates."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from livekit import LoadExporter, Watch, servers_of, wait_until
from livekit import engines as _engines
from livekit import start as _start
from livekit import stop as _stop

from adapters.base import CreateServer, DeleteServer, TransientAPIError
from adapters.faults import FaultyConnection
from adapters.journal import Journal
from zeroops.live import LiveController, read_decisions

pytestmark = pytest.mark.openstack


def test_lost_create_response_is_found_not_repeated(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("lost")
    faulty = FaultyConnection(conn, 0.0, script={"create_server": ["lose", "lose"]})
    a = make_adapter([{"name": name}], connection=faulty)
    r = a.execute(CreateServer(service=name, count=2))
    assert r.ok and len(r.server_ids) == 2, r
    assert faulty.stats["lost:create_server"] == 2
    assert r.detail.count("found the result of an earlier attempt") == 2
    assert len(servers_of(conn, name)) == 2  # both POSTs reached Nova once; neither was repeated


def test_5xx_is_retried_with_every_attempt_recorded(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("5xx")
    faulty = FaultyConnection(conn, 0.0, script={"create_server": ["fail", "fail"], "delete_server": ["fail"]})
    a = make_adapter([{"name": name}], connection=faulty)
    r = a.execute(CreateServer(service=name))
    assert r.ok and r.attempts == 3 and r.detail.count("HTTP 503") == 2 and "retry in" in r.detail, r
    d = a.execute(DeleteServer(server_id=r.server_ids[0]))
    assert d.ok and d.attempts == 2


def test_retries_give_up_with_a_transient_error(make_adapter: Any, conn: Any, svc: Any) -> None:
    name = svc("giveup")
    faulty = FaultyConnection(conn, 0.0, script={"create_server": ["fail"] * 10})
    a = make_adapter([{"name": name}], connection=faulty, retry={"attempts": 3, "base_delay": 0.01})
    with pytest.raises(TransientAPIError) as ei:
        a.execute(CreateServer(service=name))
    assert ei.value.attempts == 3 and "giving up" in str(ei.value)  # type: ignore[attr-defined]
    assert servers_of(conn, name) == []


@pytest.mark.slow  # minutes of wall clock: `make test-live` runs it (quick pass: -m "openstack and not slow")
def test_engines_converge_under_30_percent_faults_without_duplicates(
    make_adapter: Any, conn: Any, svc: Any, exporter: LoadExporter, tmp_path: Path
) -> None:
    name = svc("chaos")
    spec = [{"name": name, "min_servers": 1, "max_servers": 4}]
    make_adapter(spec).execute(CreateServer(service=name, reason="initial server"))
    faulty = FaultyConnection(conn, failure_rate=0.3, delay=(0.0, 0.2), seed=20261126)
    a = make_adapter(
        spec,
        connection=faulty,
        journal=Journal(tmp_path / "journal.sqlite"),
        retry={"attempts": 8, "base_delay": 0.05, "max_delay": 0.5},
    )
    watch = Watch(conn, name)
    decisions = tmp_path / "decisions.jsonl"
    ctl = LiveController(a, a.config, "act", engines=_engines(), decisions=decisions)
    t = _start(ctl)
    try:
        exporter.load[name] = 2.0
        wait_until(
            lambda: len([s for s in servers_of(conn, name) if s.status == "ACTIVE"]) >= 3, 150, "scale-out through a faulty API"
        )
        exporter.load[name] = 0.2
        wait_until(lambda: len(servers_of(conn, name)) == 1, 180, "scale-in through a faulty API")
    finally:
        _stop(ctl, t)
        watch.stop()
    assert faulty.stats["failed"] > 0 and faulty.stats["lost"] > 0, faulty.stats
    assert watch.duplicates() == [] and watch.max_alive <= 4, (watch.seen, watch.max_alive)
    rows = read_decisions(decisions)
    by = Counter((r["kind"], r["outcome"]) for r in rows)
    assert by[("create_server", "executed")] >= 1 and by[("delete_server", "executed")] >= 2, by
    assert any(r["attempts"] > 1 for r in rows), "no decision record shows a retry"
    assert Journal(tmp_path / "journal.sqlite").open_entries() == []
