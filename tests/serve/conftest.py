"""Fixtures of the serve tests: one twin behind the app per module, tokens per role, a subprocess server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "serve-twin.yaml"
ROLES = ("viewer", "operator", "approver", "admin")
KEY = b"serve-tests-key-" * 4


@pytest.fixture(scope="module")
def serve_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private audit signing key and state directory for the module."""
    d = tmp_path_factory.mktemp("serve")
    old = {k: os.environ.get(k) for k in ("ZEROOPS_AUDIT_KEY", "ZEROOPS_STATE_DIR")}
    os.environ["ZEROOPS_AUDIT_KEY"] = str(d / "audit.key")
    os.environ["ZEROOPS_STATE_DIR"] = str(d / "state")
    yield d
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def authority() -> Any:
    from zeroops.serve.auth import TokenAuthority

    return TokenAuthority(KEY)


@pytest.fixture(scope="module")
def headers(authority: Any) -> dict[str, dict[str, str]]:
    """Authorization headers per role; principal ``<role>-user``."""
    return {r: {"Authorization": f"Bearer {authority.mint(f'{r}-user', r)}"} for r in ROLES}


def make_loop(state_dir: Path, speed: float = 3600.0) -> Any:
    from zeroops.serve.loop import TwinLoop

    return TwinLoop(SCENARIO, speed=speed, state_dir=state_dir)


@pytest.fixture(scope="module")
def twin(serve_env: Path, authority: Any) -> Iterator[tuple[Any, Any]]:
    """(TestClient, AppState) of a running twin; the loop is run a little so there are decisions to read."""
    from fastapi.testclient import TestClient

    from zeroops.serve.app import Settings, create_app

    loop = make_loop(serve_env / "twin")
    app = create_app(loop.state, authority, Settings(rate_per_s=0))
    with TestClient(app) as client:
        deadline = time.time() + 20
        while time.time() < deadline and not loop.state.queue.list("pending"):
            time.sleep(0.1)
        yield client, loop.state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``zeroops serve --scenario`` as a subprocess on a free port."""

    def __init__(self, state_dir: Path, key_file: Path, speed: float = 600.0, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ZEROOPS_AUDIT_KEY": str(state_dir.parent / "audit.key")}
        self.log = open(state_dir.parent / f"server-{self.port}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zeroops.cli", "serve", "--scenario", str(SCENARIO), "--speed", str(speed),
             "--port", str(self.port), "--state-dir", str(state_dir), "--key-file", str(key_file), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=HERE.parent.parent)

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {timeout} s: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)
