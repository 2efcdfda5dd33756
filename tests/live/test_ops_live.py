"""The ``ops`` engine set live: a crashed server on the devcloud is declared, fixed by a runbook and written up.

The engines are composed exactly as ``zeroops live --mode act`` composes them (:class:`zeroops.live.LiveController`
with the config's ``engines: ops``, the design's default safety limits, the audit trail and the adapter's journal).
The devcloud's Prometheus scrapes this test's exporter, which plays the service's app: every ACTIVE server
answers its scrape (``zeroops_server_up`` 1) unless the app on it crashed.  First an operator stops a server
cleanly through the API: by the ops center's design that is somebody's decision, and nothing is declared.  Then
the fault: a server's app dies while Nova still shows it ACTIVE, and once the controller has seen it stop
answering, the server is powered off out of band through openstacksdk (what the power-state sync would show;
the runbook's reboot may overtake it).  A crashed app comes back only when Nova starts the server again.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from livekit import EXPORTER, audit_bodies, servers_of, wait_until
from livekit import start as _start
from livekit import stop as _stop
from openstack.exceptions import ConflictException

from adapters.base import CreateServer
from adapters.journal import Journal
from adapters.openstack import META_SERVICE
from adapters.prometheus import DEFAULT_QUERIES, Prometheus
from control.audit import AuditReader
from engines.ops.anomalies import AnomalyFeed
from tests.metrics_server import serve_metrics
from zeroops.live import LiveController

pytestmark = pytest.mark.openstack
ROOT = Path(__file__).resolve().parents[2]
# the site's PromQL for the metrics the ops center reads: an instance answers its scrape; answering instances
QUERIES = DEFAULT_QUERIES | {
    "server_up": "max by (server_id, service) (zeroops_server_up)",
    "active_servers": "sum by (service) (zeroops_server_up)",
}
BOOT_GRACE_S = AnomalyFeed().boot_grace_s
RUNBOOK_VERBS = ("start_server", "reboot_server")  # what brings a powered-off server back in Nova


class AppExporter:
    """The service's app as Prometheus sees it: per server ``zeroops_server_up`` and CPU, per service the
    request rate and error ratio.  ``crash(id)`` stops the app on a server until Nova shows it started again."""

    def __init__(self, conn: Any, services: list[str], address: str = EXPORTER) -> None:
        self.conn, self.services = conn, services
        self.crashed: dict[str, str] = {}  # server id -> Nova's updated_at when its app died
        self._lock = threading.Lock()
        self._cache: tuple[float, list[Any]] = (0.0, [])
        host, port = address.rsplit(":", 1)
        app = self

        self.httpd, self.thread = serve_metrics(app.render, host, int(port))

    def crash(self, server_id: str) -> None:
        """The app on ``server_id`` dies; it stays down until Nova shows the server ACTIVE again after a change
        (a power-off passes through SHUTOFF, so only a start or a reboot brings it back)."""
        with self._lock:
            self.crashed[server_id] = self.conn.compute.get_server(server_id).updated_at or ""

    def _servers(self) -> list[Any]:
        t, cached = self._cache
        if time.monotonic() - t > 0.5:
            with contextlib.suppress(Exception):  # keep the last view: a scrape must not fail
                cached = list(self.conn.compute.servers(details=True))
            self._cache = (time.monotonic(), cached)
        return cached

    def _answers(self, s: Any) -> bool:
        if s.status != "ACTIVE" or s.task_state:
            return False
        with self._lock:
            down_through = self.crashed.get(s.id)
            if down_through is not None and (s.updated_at or "") > down_through:
                del self.crashed[s.id]  # started again by Nova: the app is back
                down_through = None
        return down_through is None

    def render(self) -> str:
        lines = ["# TYPE zeroops_server_up gauge"]
        for s in self._servers():
            service = (s.metadata or {}).get(META_SERVICE)
            if service in self.services:
                up = self._answers(s)
                labels = f'service="{service}",server_id="{s.id}"'
                lines.append(f"zeroops_server_up{{{labels}}} {int(up)}")
                if up:
                    lines.append(f"zeroops_server_cpu_util{{{labels}}} 0.3")
        for service in self.services:
            lines.append(f'zeroops_service_request_rate{{service="{service}"}} 10')
            lines.append(f'zeroops_service_error_ratio{{service="{service}"}} 0')
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _declared(path: Path, server: str) -> dict[str, Any] | None:
    for b in audit_bodies(path):
        if b.get("kind") == "declare_incident" and b.get("outcome") == "executed" and server in json.dumps(b):
            return b
    return None


def _fixed(path: Path, server: str) -> dict[str, Any] | None:
    for b in audit_bodies(path):
        if b.get("kind") in RUNBOOK_VERBS and b.get("target") == server and b.get("outcome") == "executed":
            return b
    return None


@pytest.mark.slow  # minutes of wall clock: `make test-live` runs it (quick pass: -m "openstack and not slow")
def test_ops_declares_fixes_resolves_and_writes_up_a_crashed_server(
    make_adapter: Any, conn: Any, svc: Any, prometheus: Prometheus, tmp_path: Path
) -> None:
    name = svc("ops")
    journal_path, audit = tmp_path / "journal.sqlite", tmp_path / "audit.sqlite"
    spec = [{"name": name, "min_servers": 2, "max_servers": 5}]
    a = make_adapter(spec, journal=Journal(journal_path), engines="ops",
                     prometheus={"url": prometheus.config.url, "queries": QUERIES})
    app = AppExporter(conn, [name])
    ctl, t = None, None
    try:
        created = time.monotonic()
        ids = a.execute(CreateServer(service=name, count=3, reason="initial fleet")).server_ids
        assert len(ids) == 3
        wait_until(lambda: prometheus.query(f'sum(zeroops_server_up{{service="{name}"}}) == 3'), 60,
                   "Prometheus to see the three servers answer")
        ctl = LiveController(a, a.config, "act", decisions=tmp_path / "decisions.jsonl", audit=audit,
                             out=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
        ops = next(e for e in ctl.engines if e.name == "ops-center")
        t = _start(ctl)
        # a calm baseline (the detectors and the pre-incident fleet size are learned) that outlasts the feed's
        # boot grace: a server younger than two minutes is not judged by its scrape
        time.sleep(max(20.0, BOOT_GRACE_S + 5.0 - (time.monotonic() - created)))
        # an operator's clean stop through the API is somebody's decision, not a fault: nothing is declared
        planned = ids[0]
        conn.compute.stop_server(planned)
        wait_until(lambda: conn.compute.get_server(planned).status == "SHUTOFF", 60, "the operator's stop")
        time.sleep(3 * ops.cadence)
        assert _declared(audit, planned) is None and _fixed(audit, planned) is None
        conn.compute.start_server(planned)
        wait_until(lambda: conn.compute.get_server(planned).status == "ACTIVE", 60, "the operator's start")
        wait_until(lambda: prometheus.query(f'sum(zeroops_server_up{{service="{name}"}}) == 3'), 60,
                   "Prometheus to see the three servers answer again")
        time.sleep(3 * ops.cadence)
        victim = ids[1]
        app.crash(victim)  # the app dies; Nova still says ACTIVE
        # then the power-state sync shows the server off: only once the controller saw it stop answering while
        # ACTIVE (as in a real cloud, where the sync lags by minutes); the runbook may already be rebooting it
        wait_until(lambda: victim in ops.feed._unanswered, 60, "the ops center to see the server stop answering")
        powered_off = False
        try:
            conn.compute.stop_server(victim)  # accepted; the runbook's reboot may overtake it
            powered_off = True
        except ConflictException:  # the runbook's reboot is already under way: the fix beat the power-off
            pass
        decl = wait_until(lambda: _declared(audit, victim), 180,  # a step can take long on a loaded 2-core box
                          "a DeclareIncident naming the server in the audit")
        fix = wait_until(lambda: _fixed(audit, victim), 120, "a runbook action starting the server again")
        wait_until(lambda: conn.compute.get_server(victim).status == "ACTIVE", 60, "the server to be ACTIVE again")
        incident_id = decl["target"]
        print(f"[ops-live] {incident_id}: declared {decl['at']:.1f}, {fix['kind']} {fix['at']:.1f} "
              f"(server powered off first: {powered_off})")
        wait_until(lambda: any(i.id == incident_id and i.status == "resolved" for i in a.incidents()), 300,
                   f"incident {incident_id} to be resolved on the board")
    finally:
        if ctl is not None and t is not None:
            _stop(ctl, t)
        app.close()
    assert fix["engine"] == "ops-center" and fix["action"]["incident"] == incident_id, fix
    assert fix["decision"] == "allow" and fix["approved_by"] == [], fix  # low risk: no human had to approve
    assert [s.status for s in servers_of(conn, name)].count("ACTIVE") == 3
    assert AuditReader(audit).verify().ok
    pm = subprocess.run(
        [sys.executable, "-m", "zeroops.cli", "postmortem", incident_id, "--db", str(audit),
         "--journal", str(journal_path)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert pm.returncode == 0, pm.stderr[-2000:]
    assert incident_id in pm.stdout and victim in pm.stdout, pm.stdout[:3000]
    assert fix["kind"] in pm.stdout, pm.stdout[:3000]
