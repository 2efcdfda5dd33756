"""Everyday errors of ``zeroops live`` are one line with a documented exit code (issue 13 item 6), and live
mode's state lives in one absolute state directory with the audit trail always on (item 5).

The cloud is mocked here (openstacksdk's ``connect`` or the whole adapter); ``tests/live/test_scope_live.py``
does the same against the devcloud.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from keystoneauth1.exceptions import connection as ksconn
from keystoneauth1.exceptions import http as kshttp
from openstack import exceptions as osexc

from adapters.base import TransientAPIError
from adapters.fake import FakeAdapter, FakeService
from adapters.journal import Journal
from adapters.live_config import LiveConfig, parse_config
from zeroops import live
from zeroops.live import EXIT_CODES, LiveController, add_live_parser, live_paths

AUTH = {"auth_url": "http://127.0.0.1:5000/v3", "username": "demo", "password": "s3cret", "project_name": "demo"}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zeroops")
    add_live_parser(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(["live", *argv])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zeroops live: error: ") and "Traceback" not in err, err
    assert "s3cret" not in err
    return lines[0]


class _Conn:
    """What ``openstack.connect`` returns, failing on ``authorize`` as the cloud would."""

    def __init__(self, error: Exception | None = None) -> None:
        self.config = SimpleNamespace(name="devcloud", config={"auth": dict(AUTH)}, region_name="RegionOne")
        self.error = error

    def authorize(self) -> str:
        if self.error is not None:  # as openstacksdk does: keystoneauth's error, wrapped in an SDKException
            try:
                raise self.error
            except Exception as e:
                raise osexc.SDKException(str(e))  # noqa: B904 - the SDK chains implicitly
        return "token"


def _connect_with(monkeypatch: pytest.MonkeyPatch, conn: Any = None, raises: Exception | None = None) -> None:
    import openstack

    def connect(**kw: Any) -> Any:
        if raises is not None:
            raise raises
        return conn

    monkeypatch.setattr(openstack, "connect", connect)


def test_wrong_password_is_one_line_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _connect_with(monkeypatch, _Conn(kshttp.Unauthorized("The request you have made requires authentication.")))
    assert live.live_main(_args("status", "--cloud", "devcloud")) == 3
    line = _one_line(capsys)
    assert "authentication failed" in line and "HTTP 401" in line and AUTH["auth_url"] in line and "user demo" in line


def test_unreachable_keystone_is_one_line_exit_4(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = ksconn.ConnectFailure("Unable to establish connection to http://127.0.0.1:5000/v3/auth/tokens: refused")
    _connect_with(monkeypatch, _Conn(err))
    assert live.live_main(_args("--cloud", "devcloud", "--mode", "act")) == 4
    line = _one_line(capsys)
    assert "cannot reach the cloud" in line and "Keystone http://127.0.0.1:5000/v3" in line and "ConnectFailure" in line


def test_unknown_cloud_entry_is_a_config_error(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _connect_with(monkeypatch, raises=osexc.ConfigException("Cloud nope was not found."))
    assert live.live_main(_args("status", "--cloud", "nope")) == 2
    assert "cloud nope" in _one_line(capsys)


def test_bad_engine_parameters_in_status_fail_before_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _connect_with(monkeypatch, raises=AssertionError("must not connect"))
    cfg = tmp_path / "live.yaml"
    cfg.write_text("engines:\n  - {engine: reactive_scaler, target: 3}\n  - {engine: crash_restarter, retry: 5}\n")
    assert live.live_main(_args("status", "--config", str(cfg))) == 2
    line = _one_line(capsys)
    assert f"{cfg}: engines[0]: reactive_scaler.target" in line and "engines[1]: crash_restarter.retry" in line


class _Cloud(FakeAdapter):
    """The fake world dressed as the live adapter: a connection to describe, a journal, a Prometheus."""

    def __init__(self, journal: Journal, prometheus: Any = None, **kw: Any) -> None:
        super().__init__([FakeService("web", "small", 2)], **kw)
        self.conn = _Conn()
        self.journal = journal
        self.prometheus = prometheus
        self.fail_validate: Exception | None = None

    def describe(self) -> dict[str, Any]:
        return {"cloud": "devcloud", "project": "demo", "region": "r", "auth_url": AUTH["auth_url"], "prometheus": None}

    def validate(self) -> list[str]:
        if self.fail_validate is not None:
            raise self.fail_validate
        return []


class _Prom:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.config = SimpleNamespace(url="http://127.0.0.1:9999")

    def ready(self) -> bool:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _cloud_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prometheus: Any = None) -> _Cloud:
    config = LiveConfig(engines="static", keep_min_servers=False)
    paths = live_paths(config, tmp_path / "state")
    cloud = _Cloud(Journal(paths.journal), prometheus)
    monkeypatch.setattr(live, "_build", lambda args: (cloud, config, paths))
    return cloud


def test_prometheus_that_never_answers_is_degraded_then_exit_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _cloud_build(monkeypatch, tmp_path, _Prom([False]))
    assert live.live_main(_args("--prometheus-wait", "0.2", "--duration", "10")) == 5
    out = capsys.readouterr()
    assert "DEGRADED: Prometheus at http://127.0.0.1:9999 does not answer" in out.out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroops live: error: Prometheus at http://127.0.0.1:9999 did not")


def test_prometheus_that_comes_up_ends_degraded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _cloud_build(monkeypatch, tmp_path, _Prom([False, False, True]))
    assert live.live_main(_args("--prometheus-wait", "0.8", "--duration", "1.0")) == 0
    out = capsys.readouterr()
    assert "DEGRADED" in out.out and "answers: leaving degraded mode" in out.out and out.err == ""


def test_a_second_acting_controller_is_one_line_exit_6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cloud = _cloud_build(monkeypatch, tmp_path)
    first = Journal(cloud.journal.path)
    first.lock()  # the controller already running
    try:
        assert live.live_main(_args("--mode", "act", "--duration", "0.1")) == 6
    finally:
        first.close()
    line = _one_line(capsys)
    assert "another zeroops live controller" in line and cloud.journal.path in line


def test_a_second_controller_on_the_same_audit_trail_is_one_line_exit_6(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from control.audit import AuditLog

    _cloud_build(monkeypatch, tmp_path)
    holder = AuditLog(tmp_path / "state" / "audit.db", batch_size=1)
    try:
        assert live.live_main(_args("--duration", "0.1")) == 6
    finally:
        holder.close()
    assert "holds the audit trail" in _one_line(capsys)


def test_a_dead_compute_endpoint_is_one_line_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cloud = _cloud_build(monkeypatch, tmp_path)
    cloud.fail_validate = TransientAPIError("list flavors: giving up after 5 attempts: ConnectFailure")
    assert live.live_main(_args("--duration", "0.1")) == 4
    assert "cannot reach the cloud (cloud devcloud, Keystone http://127.0.0.1:5000/v3" in _one_line(capsys)


def test_an_unexpected_error_is_one_line_exit_1_with_a_debug_switch(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(live, "_build", boom)
    monkeypatch.delenv("ZEROOPS_DEBUG", raising=False)
    assert live.live_main(_args()) == 1
    assert "unexpected RuntimeError: boom; second line (ZEROOPS_DEBUG=1" in _one_line(capsys)
    monkeypatch.setenv("ZEROOPS_DEBUG", "1")
    with pytest.raises(RuntimeError):
        live.live_main(_args())


def test_exit_codes_are_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "live-mode.md").read_text()
    for code in EXIT_CODES:
        assert f"\n| {code} | " in doc, code


# ------------------------------------------------------------------ item 5: state directory, audit, seq
def test_state_paths_are_absolute_and_shared_across_working_directories(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from control.compose import default_audit_path, default_state_path
    from control.statedir import state_dir

    monkeypatch.delenv("ZEROOPS_AUDIT_DB", raising=False)
    monkeypatch.delenv("ZEROOPS_SAFETY_DB", raising=False)
    cfg = parse_config({"journal": "j/journal.sqlite"})
    seen = []
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        p = live_paths(cfg)
        assert all(x.is_absolute() for x in (p.journal, p.decisions, p.audit, p.safety))
        seen.append(p)
        assert str(p.audit) == default_audit_path() and str(p.safety) == default_state_path()
    assert seen[0] == seen[1] and seen[0].journal == state_dir() / "j" / "journal.sqlite"
    monkeypatch.delenv("ZEROOPS_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    import os

    expected = Path("/var/lib/zeroops") if os.geteuid() == 0 else tmp_path / "xdg" / "zeroops"
    assert state_dir() == expected and state_dir("rel") == Path.cwd() / "rel"


def test_audit_always_on_seq_continues_and_reconcile_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setenv("ZEROOPS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("ZEROOPS_AUDIT_DB", raising=False)
    from control.audit import AuditReader
    from zeroops.cli import main
    from zeroops.live import read_decisions

    class Reconciling(FakeAdapter):
        def reconcile(self, act: bool = True) -> list[str]:
            return ["create_server web (abcd1234): adopt 1 of 2 server(s): ['srv-9']",
                    "reboot_server srv-1 (ef012345): abandoned"]

    from tests.test_live_scope import replace_engines

    cfg = replace_engines(parse_config({"services": [{"name": "web", "flavor": "small", "image": "i",
                                                      "min_servers": 3}]}))
    for _ in range(2):
        fake = Reconciling([FakeService("web", "small", 2, min_servers=3)])
        ctl = LiveController(fake, cfg, "act", out=io.StringIO())  # every path from the state directory
        ctl.run(duration=0.2)
        ctl.close()
    rows = read_decisions(tmp_path / "live-decisions.jsonl")
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(1, len(rows) + 1))  # the second run went on from the first's last seq
    assert [r["engine"] for r in rows].count("reconcile") == 4
    assert any("adopt 1 of 2" in r["reason"] for r in rows if r["engine"] == "reconcile")
    entries = AuditReader(tmp_path / "audit.db").list()
    assert sum(e.body.get("engine") == "reconcile" for e in entries) == 4 and len(entries) == len(rows)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0  # no --db: the state directory's trail ($ZEROOPS_STATE_DIR)


@pytest.mark.filterwarnings("ignore")  # openstacksdk's own chatter (influxdb)
def test_a_dead_keystone_for_real_is_one_line_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """No mock: openstacksdk and keystoneauth against a port nobody listens on (discard, 9)."""
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  dead:\n    auth: {auth_url: 'http://127.0.0.1:9/v3', username: admin, password: s3cret,"
                      " project_name: admin, user_domain_name: Default, project_domain_name: Default}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.delenv("ZEROOPS_DEBUG", raising=False)
    assert live.live_main(_args("status", "--cloud", "dead")) == 4
    line = _one_line(capsys)
    assert line.endswith("ConnectFailure: connection refused at http://127.0.0.1:9/v3/auth/tokens"), line


def test_bad_safety_limits_fail_before_connecting(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _connect_with(monkeypatch, raises=AssertionError("must not connect"))
    assert live.live_main(_args("--mode", "act", "--profile", "week9")) == 2
    assert "invalid safety limits: unknown safety profile 'week9'; allowed: week1" in _one_line(capsys)
    assert live.live_main(_args("--mode", "act", "--safety", "/nonexistent/safety.yaml")) == 2
    assert "/nonexistent/safety.yaml" in _one_line(capsys)
