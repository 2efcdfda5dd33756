"""Browser tests: Debian's headless Chromium driven by Playwright against a running ``zeroops serve``.

Playwright launches ``/usr/bin/chromium`` (``ZEROOPS_CHROMIUM`` overrides it); it never downloads a browser.
Without Playwright or without that binary every test here skips with the reason.  ``.ci/run`` installs
``chromium`` from Debian.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Console, Server
from zeroops.serve.auth import TokenAuthority, load_key

CHROMIUM = os.environ.get("ZEROOPS_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "browser" / "dashboard-small.yaml"
START_TIMEOUT_S = 40.0


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]'); the browser tests need it"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM} (Debian: sudo apt-get install chromium; .ci/run installs it; "
                "ZEROOPS_CHROMIUM names another binary)")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _zeroops() -> list[str]:
    exe = shutil.which("zeroops", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "zeroops.cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``zeroops serve --scenario`` on a free port, with a viewer, an approver and an admin token."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("serve")
    key = d / "serve.key"
    env = {**os.environ, "ZEROOPS_STATE_DIR": str(d / "state"), "PYTHONUNBUFFERED": "1"}
    # the tokens `zeroops serve token mint` would print, minted in-process (a CLI start per token costs seconds)
    authority = TokenAuthority(load_key(key, create=True))
    tokens = {role: authority.mint(name, role) for name, role in (("vic", "viewer"), ("ann", "approver"), ("ada", "admin"))}
    port = free_port()
    log = d / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([*_zeroops(), "serve", "--scenario", str(SCENARIO), "--speed", "60",
                                 "--host", "127.0.0.1", "--port", str(port), "--key-file", str(key),
                                 "--state-dir", str(d / "state")],
                                env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", tokens, log, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"zeroops serve exited with {proc.returncode}:\n{srv.tail()}")
            try:
                srv.get("/api/zeroops/operations/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"zeroops serve not up after {START_TIMEOUT_S:.0f} s:\n{srv.tail()}")
                time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Console]]:
    """A fresh browser context (empty sessionStorage); console errors are collected and fail the test."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    console = Console()
    pg.on("console", lambda m: console.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: console.errors.append(f"uncaught: {e}"))
    # no CDN, no fonts, nothing from elsewhere: every request the page makes goes to the server on 127.0.0.1
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1:", "data:", "about:"))
          else console.errors.append(f"request outside the server: {r.url}"))
    yield pg, console
    ctx.close()
    console.check()
