"""``zeroops live`` production options (issue 13 items 7, 9, 10): scope lock, HA backend, webhook, metrics, sinks."""

from __future__ import annotations

import argparse
import io
import socket
from pathlib import Path
from typing import Any

import pytest

from adapters.fake import FakeAdapter, FakeService
from adapters.live_config import parse_config
from control.runtime import AllowAll
from engines.floor import MinFloorKeeper
from zeroops.live import LiveController, LiveError
from zeroops.live_prod import add_production_arguments, default_lock_dir, scope_lock, start_production


class Cloud(FakeAdapter):
    def describe(self) -> dict[str, Any]:
        return {"cloud": "c", "project": "p", "region": "r", "auth_url": "http://keystone:5000/v3", "prometheus": None}


def args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_production_arguments(p)
    return p.parse_args(list(argv))


def ctl_of(tmp_path: Path, name: str, mode: str = "act", scope: str = "default") -> LiveController:
    config = parse_config({"services": [{"name": "web", "flavor": "small", "image": "i", "min_servers": 1}],
                           "scope": {"name": scope}, "keep_min_servers": False}, "<t>")
    return LiveController(Cloud([FakeService("web", servers=0, min_servers=1)]), config, mode,
                          engines=[MinFloorKeeper(cadence=0.05)], gate=AllowAll(), state_dir=tmp_path / name,
                          out=io.StringIO())


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROOPS_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("ZEROOPS_HA_BACKEND", raising=False)


def test_a_second_controller_for_the_scope_on_another_state_dir_is_refused(tmp_path: Path) -> None:
    first, second, other = ctl_of(tmp_path, "a"), ctl_of(tmp_path, "b"), ctl_of(tmp_path, "c", scope="other")
    assert scope_lock(first) == scope_lock(second) != scope_lock(other)
    assert first.paths.journal != second.paths.journal
    p1 = start_production(first, args())
    try:
        with pytest.raises(LiveError, match="another zeroops live controller acts for scope 'default'") as e:
            start_production(second, args())
        assert e.value.code == 6 and str(default_lock_dir()) in str(e.value)
        start_production(other, args()).close()  # another scope: its own lock
        observer = ctl_of(tmp_path, "d", mode="observe")
        start_production(observer, args()).close()  # observing takes no lock
        observer.close()
    finally:
        p1.close()
    start_production(second, args()).close()  # free once the first is gone
    for c in (first, second, other):
        c.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tooz's PyMySQL calls
@pytest.mark.parametrize(("url", "code", "text"), [
    ("zk://h:2181", 2, "unsupported scheme 'zk'"),
    ("file://rel/dir", 2, "absolute directory"),
    ("mysql://zeroops:s3cret@127.0.0.1:1/zeroops", 4, "cannot use the HA backend: HA backend mysql://zeroops:***@"),
])
def test_ha_backend_errors_are_one_line(tmp_path: Path, url: str, code: int, text: str) -> None:
    ctl = ctl_of(tmp_path, "a")
    with pytest.raises(LiveError) as e:
        start_production(ctl, args("--ha-backend", url))
    assert e.value.code == code and text in str(e.value) and "s3cret" not in str(e.value)
    assert "\n" not in str(e.value)
    ctl.close()


def test_a_taken_port_is_a_config_error(tmp_path: Path) -> None:
    ctl = ctl_of(tmp_path, "a", mode="observe")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for opt in ("--webhook-port", "--metrics-port"):
            host = "--webhook-host" if opt == "--webhook-port" else "--metrics-host"
            with pytest.raises(LiveError, match=f"{opt} {port}: cannot listen on 127.0.0.1:{port}") as e:
                start_production(ctl, args(opt, str(port), host, "127.0.0.1"))
            assert e.value.code == 2
    ctl.close()


def test_ha_standby_then_leader(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/ha"
    a, b = ctl_of(tmp_path, "a"), ctl_of(tmp_path, "b")
    pa = start_production(a, args("--ha-backend", url, "--ha-lease", "2"))
    pb = start_production(b, args("--ha-backend", url, "--ha-lease", "2"))
    try:
        assert pa.lease is not None and pa.lease.is_leader and pb.lease is not None and not pb.lease.is_leader
        assert "standby (another controller leads this scope)" in b.out.getvalue()
        assert pa.guard is None  # HA replaces the host-wide lock
    finally:
        pa.close()
        pb.close()
        a.close()
        b.close()
