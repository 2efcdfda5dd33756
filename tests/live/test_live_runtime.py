"""``zeroops live`` against the real cloud: observe mode, an act-mode scenario, restarts after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from livekit import BIG, CLOUD, FLAVOR, LoadExporter, Watch, servers_of, wait_until
from livekit import engines as _engines
from livekit import start as _start
from livekit import stop as _stop

from adapters.base import CreateServer, ResizeServer
from adapters.journal import Journal
from adapters.openstack import META_INDEX, META_REQUEST
from zeroops.live import LiveController, ObserveOnlyGate, read_decisions

pytestmark = pytest.mark.openstack
ROOT = Path(__file__).resolve().parents[2]


def test_observe_mode_proposes_without_acting(
    make_adapter: Any, conn: Any, svc: Any, exporter: LoadExporter, tmp_path: Path
) -> None:
    name = svc("obs")
    journal = Journal(tmp_path / "journal.sqlite")
    a = make_adapter([{"name": name, "min_servers": 1, "max_servers": 4}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    observed = make_adapter([{"name": name, "min_servers": 1, "max_servers": 4}], journal=journal)
    exporter.load[name] = 2.0  # one server at 100 % CPU: the scaler wants more
    decisions = tmp_path / "decisions.jsonl"
    ctl = LiveController(observed, observed.config, "observe", engines=_engines(), gate=ObserveOnlyGate(), decisions=decisions)
    t = _start(ctl)
    try:
        wait_until(lambda: any(r["kind"] == "create_server" for r in read_decisions(decisions)), 60, "a proposed create_server")
    finally:
        _stop(ctl, t)
    rows = read_decisions(decisions)
    assert rows and all(r["outcome"] == "proposed" and r["verdict"] == "approval" for r in rows)
    assert [s.id for s in servers_of(conn, name)] == [sid]  # nothing was created
    assert journal.all() == []  # nothing was even attempted


@pytest.mark.slow  # minutes of wall clock: `make test-live` runs it (quick pass: -m "openstack and not slow")
def test_act_mode_scales_out_in_and_restores_a_crashed_server(
    make_adapter: Any, conn: Any, svc: Any, exporter: LoadExporter, tmp_path: Path
) -> None:
    name = svc("act")
    spec = [{"name": name, "min_servers": 1, "max_servers": 4}]
    a = make_adapter(spec, journal=Journal(tmp_path / "journal.sqlite"))
    a.execute(CreateServer(service=name, reason="initial server"))
    watch = Watch(conn, name)
    decisions = tmp_path / "decisions.jsonl"
    audit = tmp_path / "audit.sqlite"
    ctl = LiveController(a, a.config, "act", engines=_engines(), decisions=decisions, audit=audit)
    t = _start(ctl)
    try:
        exporter.load[name] = 2.0  # spike: ~2 servers' worth of work on one
        wait_until(
            lambda: len([s for s in servers_of(conn, name) if s.status == "ACTIVE"]) >= 3,
            90,
            "the scaler to create servers in Nova",
        )
        exporter.load[name] = 0.2  # the spike is over
        wait_until(lambda: len(servers_of(conn, name)) == 1, 120, "the scaler to remove the extra servers")
        (last,) = servers_of(conn, name)
        conn.compute.stop_server(last)  # a crash, through the API
        wait_until(lambda: conn.compute.get_server(last.id).status == "SHUTOFF", 60, "the server to stop")
        wait_until(
            lambda: conn.compute.get_server(last.id).status == "ACTIVE", 60, "the crash restarter to restore the stopped server"
        )
    finally:
        _stop(ctl, t)
        watch.stop()
    rows = read_decisions(decisions)
    by = Counter((r["engine"], r["kind"], r["outcome"]) for r in rows)
    assert by[("reactive-scaler", "create_server", "executed")] >= 1, by
    assert by[("reactive-scaler", "delete_server", "executed")] >= 2, by
    assert by[("crash-restarter", "start_server", "executed")] >= 1, by
    assert all(r["reason"] for r in rows)
    created = {sid for r in rows if r["kind"] == "create_server" for sid in r["server_ids"]}
    assert created <= set(watch.seen) and len(watch.seen) == len(created) + 1
    assert watch.duplicates() == [] and watch.max_alive <= 4
    from control.audit import AuditReader

    trail = AuditReader(audit)
    assert trail.count() == len(rows) and trail.verify().ok  # the same decisions, hash-chained


# ------------------------------------------------------- SIGKILL mid-action
_CHILD = """
import json, sys
import openstack
from adapters.base import CreateServer, ResizeServer
from adapters.faults import FaultyConnection
from adapters.journal import Journal
from adapters.live_config import parse_config
from adapters.openstack import OpenStackAdapter
cfg = parse_config(json.loads(sys.argv[1]))
conn = FaultyConnection(openstack.connect(cloud=cfg.cloud), failure_rate=0.0, kill_after=sys.argv[3])
adapter = OpenStackAdapter(conn, cfg, journal=Journal(sys.argv[2]))
action = json.loads(sys.argv[4])
kind = action.pop("kind")
adapter.execute(CreateServer(**action) if kind == "create" else ResizeServer(**action))
print("NOT KILLED")
"""


def _kill_mid_action(a: Any, journal: Path, kill_after: str, action: dict[str, Any]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, a.config.model_dump_json(), str(journal), kill_after, json.dumps(action)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stdout, p.stderr[-2000:])


def test_restart_after_sigkill_mid_create_adopts_without_duplicates(
    make_adapter: Any, conn: Any, svc: Any, tmp_path: Path
) -> None:
    name = svc("kill")
    path = tmp_path / "journal.sqlite"
    a = make_adapter([{"name": name, "max_servers": 4}])
    _kill_mid_action(a, path, "create_server", {"kind": "create", "service": name, "count": 2})
    (entry,) = Journal(path).open_entries()  # the controller died with the action in flight
    assert entry.kind == "create_server" and entry.target == name
    assert len(servers_of(conn, name)) == 1  # the first POST went through, the second never happened

    cfg_file = tmp_path / "live.yaml"
    cfg_file.write_text(yaml.safe_dump(json.loads(a.config.model_dump_json())))
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "zeroops.live",
            "live",
            "status",
            "--cloud",
            str(CLOUD),
            "--config",
            str(cfg_file),
            "--journal",
            str(path),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr[-2000:]
    assert "in flight" in status.stdout and "would reconcile" in status.stdout and "adopt 1 of 2" in status.stdout
    assert "password" not in status.stdout.lower()

    restarted = make_adapter([{"name": name, "max_servers": 4}], journal=Journal(path))
    ctl = LiveController(restarted, restarted.config, "act", engines=[], decisions=tmp_path / "d.jsonl")
    notes = ctl.reconcile()
    ctl.close()
    assert any("adopt 1 of 2" in n for n in notes), notes
    assert Journal(path).open_entries() == [] and Journal(path).get(entry.request_id).state == "adopted"
    again = restarted.reconcile()  # a second restart finds nothing to do
    assert not any(entry.request_id[:8] in n for n in again)
    alive = servers_of(conn, name)
    assert len(alive) == 1 and alive[0].metadata[META_REQUEST] == entry.request_id
    # re-issuing the very same request (a retry after the restart) creates only the missing one
    r = restarted.execute(CreateServer(service=name, count=2, request_id=entry.request_id))
    assert r.ok and len(r.server_ids) == 2 and alive[0].id in r.server_ids
    assert sorted(s.metadata[META_INDEX] for s in servers_of(conn, name)) == ["0", "1"]


def test_restart_after_sigkill_mid_resize_confirms_it(make_adapter: Any, conn: Any, svc: Any, tmp_path: Path) -> None:
    name = svc("rkill")
    path = tmp_path / "journal.sqlite"
    a = make_adapter([{"name": name}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    _kill_mid_action(a, path, "resize_server", {"kind": "resize", "server_id": sid, "flavor": BIG})
    wait_until(lambda: conn.compute.get_server(sid).status == "VERIFY_RESIZE", 120, "the resize to await confirmation")
    restarted = make_adapter([{"name": name}], journal=Journal(path))
    notes = restarted.reconcile(act=False)
    assert any("would confirm" in n for n in notes) and conn.compute.get_server(sid).status == "VERIFY_RESIZE"
    notes = restarted.reconcile(act=True)
    assert any("confirm resize" in n for n in notes), notes
    s = conn.compute.get_server(sid)
    assert s.status == "ACTIVE" and s.flavor.original_name == BIG
    assert restarted.execute(ResizeServer(server_id=sid, flavor=BIG)).ok  # and the engine's retry is a no-op
    assert s.flavor.original_name != FLAVOR


def test_cli_observe_mode_runs_until_sigterm(
    make_adapter: Any, conn: Any, svc: Any, exporter: LoadExporter, tmp_path: Path
) -> None:
    name = svc("cli")
    a = make_adapter([{"name": name, "max_servers": 3}])
    (sid,) = a.execute(CreateServer(service=name)).server_ids
    exporter.load[name] = 3.0
    cfg = json.loads(a.config.model_dump_json())
    cfg["engines"] = [
        {"kind": "reactive_scaler", "params": {"cadence": 1.0}},
        {"kind": "crash_restarter", "params": {"cadence": 1.0}},
    ]
    cfg_file = tmp_path / "live.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    decisions = tmp_path / "decisions.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zeroops.cli",
            "live",
            "--cloud",
            str(CLOUD),
            "--config",
            str(cfg_file),
            "--journal",
            str(tmp_path / "j.sqlite"),
            "--decisions",
            str(decisions),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: read_decisions(decisions) or proc.poll() is not None, 60, "a decision from the CLI")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "mode observe" in out and "proposed" in out and "create_server" in out
    rows = read_decisions(decisions)
    assert rows and {r["outcome"] for r in rows} == {"proposed"}
    assert [s.id for s in servers_of(conn, name)] == [sid]
