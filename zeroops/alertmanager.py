"""A real Prometheus Alertmanager on 127.0.0.1, and a webhook receiver that records what it sends.

:class:`Alertmanager` starts the ``alertmanager`` binary (Debian's ``prometheus-alertmanager``; another
path with ``ZEROOPS_ALERTMANAGER``) with clustering off, a temporary storage directory and a free port,
waits for ``/-/ready`` and stops it on :meth:`Alertmanager.close`.  :class:`WebhookReceiver` is an HTTP
server in this process: every POST Alertmanager's webhook makes is one notification, kept with the wall
time it arrived.  :func:`production_config` is the configuration the peer runs with: the production
defaults issue 8 names, every duration divided by a time-compression factor ``k``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

BINARIES = ("alertmanager", "prometheus-alertmanager")

# The production configuration the peer runs (issue 8): real seconds, before compression.
GROUP_BY = ("alertname", "service")
GROUP_WAIT_S = 30.0
GROUP_INTERVAL_S = 300.0
REPEAT_INTERVAL_S = 4 * 3600.0
RESOLVE_TIMEOUT_S = 300.0
# Alertmanager removes an aggregation group that has become empty at its next maintenance tick, every 30 s of
# wall time (dispatch.go); an alert arriving before that joins the old group and waits for its group_interval
MAINTENANCE_S = 30.0
# critical silences warning on the same service: the twin's critical and warning rules have different
# alert names (HighLatency / SlowResponses), so an `equal` that included alertname would never inhibit
INHIBIT_EQUAL = ("service",)


class AlertmanagerError(RuntimeError):
    """Alertmanager could not be found, started or reached."""


def find_binary() -> str | None:
    """The alertmanager binary: ``$ZEROOPS_ALERTMANAGER``, else ``alertmanager`` or Debian's name on PATH."""
    env = os.environ.get("ZEROOPS_ALERTMANAGER")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def duration(seconds: float) -> str:
    """A Prometheus duration string in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(seconds * 1000))}ms"


def production_config(webhook_url: str, k: float = 1.0, extra_group_by: tuple[str, ...] = ()) -> dict[str, Any]:
    """The production configuration with every duration divided by ``k`` (time compression).

    ``extra_group_by`` adds grouping labels (the replay's group-lifetime label, see :mod:`zeroops.alerting_peer`).
    """
    if not k > 0:
        raise ValueError(f"time compression k must be > 0, got {k}")
    return {
        "global": {"resolve_timeout": duration(RESOLVE_TIMEOUT_S / k)},
        "route": {
            "receiver": "webhook",
            "group_by": [*GROUP_BY, *extra_group_by],
            "group_wait": duration(GROUP_WAIT_S / k),
            "group_interval": duration(GROUP_INTERVAL_S / k),
            "repeat_interval": duration(REPEAT_INTERVAL_S / k),
        },
        "receivers": [{"name": "webhook",
                       "webhook_configs": [{"url": webhook_url, "send_resolved": True, "max_alerts": 0}]}],
        "inhibit_rules": [{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                           "equal": list(INHIBIT_EQUAL)}],
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Notification:
    """One webhook POST from Alertmanager: when it arrived (wall clock) and its JSON payload."""

    wall: float
    payload: dict[str, Any]

    @property
    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.payload.get("alerts", []) if a.get("status") == "firing"]


@dataclass
class WebhookReceiver:
    """A local HTTP server recording every notification posted to it."""

    notifications: list[Notification] = field(default_factory=list)

    def __post_init__(self) -> None:
        lock = threading.Lock()
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"invalid": body.decode(errors="replace")}
                with lock:
                    received.append(Notification(now, payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Alertmanager:
    """A real Alertmanager process on 127.0.0.1 with ``config``; a context manager that stops it."""

    def __init__(self, config: dict[str, Any], binary: str | None = None, ready_timeout: float = 20.0) -> None:
        self.binary = binary or find_binary()
        if not self.binary:
            raise AlertmanagerError("alertmanager not found: install Debian's prometheus-alertmanager "
                                    "(apt-get install prometheus-alertmanager) or set ZEROOPS_ALERTMANAGER")
        self._dir = tempfile.TemporaryDirectory(prefix="zeroops-am-")
        cfg = Path(self._dir.name) / "alertmanager.yml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(Path(self._dir.name) / "alertmanager.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={cfg}", f"--storage.path={self._dir.name}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AlertmanagerError(f"alertmanager exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise AlertmanagerError(f"alertmanager not ready on {self.url} after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, n: int = 5) -> str:
        self._log.flush()
        lines = (Path(self._dir.name) / "alertmanager.log").read_text(errors="replace").splitlines()
        return " | ".join(lines[-n:]) or "(no output)"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        self._dir.cleanup()

    def __enter__(self) -> Alertmanager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
