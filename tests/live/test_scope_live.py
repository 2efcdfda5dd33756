"""Issue 13 items 2, 5, 6 against the real cloud: the managed scope, the min_servers floor from zero, the audit
trail in the state directory, and one-line errors for bad credentials and a dead endpoint."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from livekit import CLOUD, FLAVOR, IMAGE, PREFIX, servers_of, wait_until
from livekit import start as _start
from livekit import stop as _stop

from adapters.base import CreateServer, StartServer
from adapters.journal import Journal
from adapters.scope import OutOfScope
from control.safety import SafetyConfig
from engines.baselines import CrashRestarter
from zeroops.live import LiveController, read_decisions, status_report

pytestmark = pytest.mark.openstack
ROOT = Path(__file__).resolve().parents[2]


def _raw_server(conn: Any, name: str, metadata: dict[str, str]) -> Any:
    """A server made by hand, outside zeroops (the tests' own connection), ACTIVE."""
    flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    image = conn.image.find_image(IMAGE, ignore_missing=False)
    s = conn.compute.create_server(name=name, flavor_id=flavor.id, image_id=image.id, networks="none",
                                   metadata=metadata)
    return conn.compute.wait_for_server(s, status="ACTIVE", wait=120)


def test_a_stopped_untagged_server_is_never_started(make_adapter: Any, conn: Any, svc: Any, tmp_path: Path) -> None:
    name = svc("scope")
    theirs = _raw_server(conn, f"{PREFIX}-handmade", {})  # no zeroops_service, no zeroops_managed
    try:
        conn.compute.stop_server(theirs)
        wait_until(lambda: conn.compute.get_server(theirs.id).status == "SHUTOFF", 60, "the hand-made server to stop")
        a = make_adapter([{"name": name, "min_servers": 0, "max_servers": 2}], journal=Journal(tmp_path / "j.sqlite"))
        assert not a.manages(a.server(theirs.id))
        with pytest.raises(OutOfScope, match="not managed by scope"):
            a.execute(StartServer(server_id=theirs.id))  # the adapter itself refuses, before any API call
        decisions = tmp_path / "decisions.jsonl"
        ctl = LiveController(a, a.config, "act", engines=[CrashRestarter(cadence=1.0, retry_s=2.0)],
                             decisions=decisions, state_dir=tmp_path / "state", out=io.StringIO())
        t = _start(ctl)
        try:
            wait_until(lambda: len([r for r in read_decisions(decisions) if r["target"] == theirs.id]) >= 2, 60,
                       "the restarter to propose the hand-made server twice")
        finally:
            _stop(ctl, t)
        rows = [r for r in read_decisions(decisions) if r["target"] == theirs.id]
        assert rows and all((r["outcome"], r["rule"]) == ("denied", "out-of-scope") for r in rows), rows
        assert conn.compute.get_server(theirs.id).status == "SHUTOFF"  # untouched
        actions = [x.action for x in conn.compute.server_actions(theirs.id)]
        assert actions.count("start") == 0, actions
    finally:
        conn.compute.delete_server(theirs, ignore_missing=True)


def test_min_servers_from_zero_without_metrics(make_adapter: Any, conn: Any, svc: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    name = svc("floor")
    spec = [{"name": name, "min_servers": 2, "max_servers": 4}]
    a = make_adapter(spec, journal=Journal(tmp_path / "j.sqlite"),
                     engines=[{"engine": "min_floor_keeper", "cadence": 1.0}],
                     prometheus={"url": "http://127.0.0.1:9"})  # no metrics at all
    report = status_report(a, a.config, state_dir=tmp_path / "state")
    assert f"min-floor-keeper: create_server {name}" in report and "(no servers): create 2" in report, report
    assert f"{name}: restart: rolling reboot, 1 at a time" in report, report  # what the verbs really do here
    assert "deploy: zeroops_version metadata only" in report, report
    ctl = LiveController(a, a.config, "act", state_dir=tmp_path / "state", safety=SafetyConfig(min_scale_step=2),
                         prometheus_wait=600, out=io.StringIO())
    t = _start(ctl)
    try:
        wait_until(lambda: len([s for s in servers_of(conn, name) if s.status == "ACTIVE"]) == 2, 120,
                   "two servers from zero")
    finally:
        _stop(ctl, t)
    assert ctl.degraded  # Prometheus never answered: degraded, and still the floor was kept
    assert len(servers_of(conn, name)) == 2
    assert all(s.metadata.get("zeroops_managed") == "default" for s in servers_of(conn, name))
    from zeroops.cli import main

    monkeypatch.setenv("ZEROOPS_STATE_DIR", str(tmp_path / "state"))
    assert main(["audit", "verify"]) == 0  # the controller's trail, found without --db


def _clouds(tmp_path: Path, change: dict[str, Any]) -> dict[str, str]:
    """An environment whose clouds.yaml has the test cloud's entry with ``change`` applied to its auth."""
    src = os.environ.get("OS_CLIENT_CONFIG_FILE")
    if not src:
        pytest.skip("OS_CLIENT_CONFIG_FILE is not set")
    data = yaml.safe_load(Path(src).read_text())
    data["clouds"][CLOUD]["auth"].update(change)
    out = tmp_path / "clouds.yaml"
    out.write_text(yaml.safe_dump(data))
    return os.environ | {"OS_CLIENT_CONFIG_FILE": str(out), "ZEROOPS_STATE_DIR": str(tmp_path / "state")}


def _live(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zeroops.cli", "live", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=180)


def test_bad_credentials_are_one_line_exit_3(tmp_path: Path, conn: Any) -> None:
    env = _clouds(tmp_path, {"password": "definitely-wrong"})
    p = _live(env, "status", "--cloud", str(CLOUD))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 3, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("zeroops live: error: authentication failed"), p.stderr
    assert "definitely-wrong" not in p.stderr + p.stdout


def test_dead_keystone_is_one_line_exit_4(tmp_path: Path, conn: Any) -> None:
    env = _clouds(tmp_path, {"auth_url": "http://127.0.0.1:9/v3"})
    p = _live(env, "--cloud", str(CLOUD), "--mode", "act", "--duration", "1")
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 4, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("zeroops live: error: cannot reach the cloud"), p.stderr
    assert "http://127.0.0.1:9/v3" in lines[0]


def test_restart_adoptions_and_abandonments_are_audited(make_adapter: Any, conn: Any, svc: Any,
                                                        tmp_path: Path) -> None:
    from control.audit import AuditReader

    name = svc("adopt")
    journal = Journal(tmp_path / "j.sqlite")
    a = make_adapter([{"name": name, "min_servers": 0, "max_servers": 3}], journal=journal)
    kept = "a" * 32
    (sid,) = a.execute(CreateServer(service=name, request_id=kept)).server_ids
    journal.begin(kept, "create_server", name, {})  # reopened as if killed mid-create (its params are kept)
    journal.begin("b" * 32, "create_server", name, {"service": name, "count": 1, "request_id": "b" * 32})
    ctl = LiveController(a, a.config, "act", engines=[], state_dir=tmp_path / "state", out=io.StringIO())
    ctl.run(duration=0.5)
    ctl.close()
    rows = [r for r in read_decisions(ctl.paths.decisions) if r["engine"] == "reconcile"]
    reasons = [r["reason"] for r in rows]
    assert len(rows) == 2 and any(f"adopt 1 of 1 server(s): ['{sid}']" in r for r in reasons), reasons
    assert any("abandon: no server under its request id" in r for r in reasons), reasons
    entries = [e for e in AuditReader(ctl.paths.audit).list() if e.body.get("engine") == "reconcile"]
    assert len(entries) == 2 and AuditReader(ctl.paths.audit).verify().ok
    assert journal.open_entries() == []


def test_a_second_project_in_scope(make_adapter: Any, conn: Any, svc: Any, tmp_path: Path) -> None:
    """A service of another project: servers created there, listed, managed; a third project's server is not."""
    name = svc("proj")
    project = conn.identity.create_project(name=f"{PREFIX}-p2-{name[-4:]}", domain_id="default")
    try:
        user = conn.current_user_id
        for role in conn.identity.roles():
            if role.name in ("admin", "member"):
                conn.identity.assign_project_role_to_user(project, user, role)
        a = make_adapter([{"name": name, "min_servers": 0, "max_servers": 2, "project": project.name}])
        assert a.validate() == []
        (sid,) = a.execute(CreateServer(service=name)).server_ids
        s = conn.compute.get_server(sid)
        assert s.project_id == project.id and a.manages(a.server(sid))
        assert sid in {x.id for x in a.servers(service=name)}
    finally:
        for s in conn.compute.servers(details=True, all_projects=True, project_id=project.id):
            conn.compute.delete_server(s, ignore_missing=True)
        wait_until(lambda: not list(conn.compute.servers(all_projects=True, project_id=project.id)), 60,
                   "the second project's servers to go")
        conn.identity.delete_project(project, ignore_missing=True)
