"""Helpers of the live tests (importable as ``livekit``; fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from adapters.live_config import LiveConfig, parse_config
from adapters.openstack import META_INDEX, META_REQUEST, META_SERVICE, map_status
from engines.baselines import CrashRestarter, ReactiveScaler
from tests.metrics_server import serve_metrics
from zeroops.live import LiveController

CLOUD = os.environ.get("ZEROOPS_TEST_CLOUD")
PROM_URL = os.environ.get("ZEROOPS_TEST_PROMETHEUS", "http://127.0.0.1:9090")
EXPORTER = os.environ.get("ZEROOPS_TEST_EXPORTER", "127.0.0.1:9477")
FLAVOR, BIG, IMAGE = "zeroops.small", "zeroops.big", "zeroops-tiny"
PREFIX = "zt" + secrets.token_hex(2)

NO_CLOUD = (
    "no OpenStack cloud configured for the live tests: run `make devcloud-up`, then set "
    "ZEROOPS_TEST_CLOUD=devcloud and OS_CLIENT_CONFIG_FILE=.devcloud/run/etc/openstack/clouds.yaml "
    "(or run `make test-live`)"
)


def live_config(services: list[dict[str, Any]], **extra: Any) -> LiveConfig:
    """A live config for the test cloud, fast retries, Prometheus at PROM_URL."""
    data: dict[str, Any] = {
        "cloud": CLOUD,
        "network": "none",
        "services": [{"flavor": FLAVOR, "image": IMAGE} | s for s in services],
        "prometheus": {"url": PROM_URL},
        "retry": {"attempts": 6, "base_delay": 0.1, "max_delay": 1.0},
        "wait": {"create": 60, "resize": 120, "poll": 0.3},
        "prices": {FLAVOR: 0.02, BIG: 0.04},
    }
    data.update(extra)
    return parse_config(data, "<test>")


def audit_bodies(path: Any) -> list[dict[str, Any]]:
    """Every record of an audit trail (the controller may still be writing it); [] before it exists."""
    from pathlib import Path

    from control.audit import AuditReader

    if not Path(path).is_file():
        return []
    r = AuditReader(path)
    try:
        return [e.body for e in r.list()]
    finally:
        r.db.close()


def servers_of(conn: Any, service: str) -> list[Any]:
    """Servers of a service as Nova shows them, deleted ones left out."""
    return [
        s
        for s in conn.compute.servers(details=True)
        if (s.metadata or {}).get(META_SERVICE) == service and map_status(s.status, s.task_state) != "DELETED"
    ]


def settle_deletes(conn: Any, timeout: float = 60) -> None:
    """Wait until no server of the project is being deleted (quota usage is stable then)."""
    wait_until(
        lambda: not [s for s in conn.compute.servers(details=True) if s.task_state == "deleting"],
        timeout,
        "pending deletes to finish",
    )


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``cond`` until truthy; fail the test naming ``what`` on time-out."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------ test exporter
class LoadExporter:
    """Publishes per-server CPU for the real servers of some services, for Prometheus to scrape.

    A service's offered load is ``load[service]`` server-equivalents, shared
    evenly by its ACTIVE servers in Nova: ``zeroops_server_cpu_util = min(1, load / n)``.
    """

    def __init__(self, conn: Any, address: str = EXPORTER) -> None:
        self.conn = conn
        self.load: dict[str, float] = {}
        self.scrapes = 0
        host, port = address.rsplit(":", 1)
        exporter = self

        self.httpd, self.thread = serve_metrics(exporter.render, host, int(port))
        self._cache: tuple[float, list[Any]] = (0.0, [])

    def _servers(self) -> list[Any]:
        t, cached = self._cache
        if time.monotonic() - t > 0.5:
            with contextlib.suppress(Exception):  # keep the last view: a scrape must not fail
                cached = list(self.conn.compute.servers(details=True))
            self._cache = (time.monotonic(), cached)
        return cached

    def render(self) -> str:
        self.scrapes += 1
        lines = ["# TYPE zeroops_server_cpu_util gauge"]
        servers = self._servers()
        for service, load in sorted(self.load.items()):
            active = [
                s
                for s in servers
                if (s.metadata or {}).get(META_SERVICE) == service and s.status == "ACTIVE" and not s.task_state
            ]
            for s in active:
                u = min(1.0, load / len(active))
                lines.append(f'zeroops_server_cpu_util{{service="{service}",server_id="{s.id}"}} {u:.4f}')
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def engines() -> list[Any]:
    """The baseline engines with cadences short enough for a test."""
    return [ReactiveScaler(target=0.6, cadence=2.0, stabilisation_s=8.0), CrashRestarter(cadence=2.0, retry_s=10.0)]


def start(ctl: LiveController) -> threading.Thread:
    """Run a live controller in a background thread."""
    t = threading.Thread(target=ctl.run, name="zeroops-live", daemon=True)
    t.start()
    return t


def stop(ctl: LiveController, t: threading.Thread) -> None:
    """Stop a controller started by :func:`start` and close its decision log."""
    ctl.stop()
    t.join(timeout=120)
    ctl.close()
    assert not t.is_alive(), "the live controller did not stop"


class Watch:
    """Records every server of a service Nova ever shows, to prove nothing was created twice."""

    def __init__(self, conn: Any, service: str) -> None:
        self.conn, self.service = conn, service
        self.seen: dict[str, tuple[str, str]] = {}
        self.max_alive = 0
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alive = servers_of(self.conn, self.service)
            except Exception:
                alive = []
            self.max_alive = max(self.max_alive, len(alive))
            for s in alive:
                self.seen[s.id] = (s.metadata.get(META_REQUEST, ""), s.metadata.get(META_INDEX, ""))
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self.t.join()

    def duplicates(self) -> list[tuple[str, str]]:
        return [k for k, n in Counter(self.seen.values()).items() if n > 1]
