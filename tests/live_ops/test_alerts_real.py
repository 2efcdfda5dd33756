"""Alerts from a real Prometheus reach the engines both ways (issue 13 item 9): pulled from its
``/api/v1/alerts`` and pushed by a real Alertmanager to the webhook receiver, merged into one alert."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.alert_webhook import AlertWebhook, attach_webhook
from adapters.base import Observation
from adapters.fake import FakeAdapter
from adapters.prometheus import Prometheus, PrometheusConfig
from tests.metrics_server import serve_metrics
from zeroops.alertmanager import Alertmanager, find_binary, free_port, production_config

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.alertmanager,
    pytest.mark.slow,  # ~8 s: Prometheus evaluates its first rule ~5 s after it is ready
    pytest.mark.skipif(find_binary() is None or PROMETHEUS is None,
                       reason="needs Debian's prometheus and prometheus-alertmanager binaries "
                              "(apt-get install prometheus prometheus-alertmanager; .ci/run installs them)"),
]


class Exporter:
    """``zeroops_test_hot{service="web"}`` at a value a test sets."""

    def __init__(self) -> None:
        self.value = 0.0
        self.server, _ = serve_metrics(
            lambda: f'# TYPE zeroops_test_hot gauge\nzeroops_test_hot{{service="web"}} {self.value}\n', "127.0.0.1", 0)
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chain() -> Iterator[tuple[Exporter, Prometheus, AlertWebhook]]:
    """exporter -> Prometheus (rule ZeroopsTestHot) -> Alertmanager -> webhook receiver."""
    exporter, hook = Exporter(), AlertWebhook().start()
    am = Alertmanager(production_config(hook.url, k=300.0))
    d = Path(tempfile.mkdtemp(prefix="zeroops-prom-"))
    (d / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [{
        "alert": "ZeroopsTestHot", "expr": "zeroops_test_hot > 0.5", "for": "0s",
        "labels": {"severity": "critical"}, "annotations": {"summary": "web runs hot"}}]}]}))
    (d / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "200ms", "evaluation_interval": "200ms"},
        "rule_files": [str(d / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am.port}"]}]}]},
        "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}]}))
    port = free_port()
    log = open(d / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(PROMETHEUS), f"--config.file={d / 'prometheus.yml'}",
                             f"--storage.tsdb.path={d / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    prom = Prometheus(PrometheusConfig(url=f"http://127.0.0.1:{port}", timeout=2))
    try:
        end = time.monotonic() + 20
        while not prom.ready():
            assert proc.poll() is None and time.monotonic() < end, (d / "prometheus.log").read_text()[-2000:]
            time.sleep(0.1)
        yield exporter, prom, hook
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        am.close()
        hook.close()
        exporter.close()
        shutil.rmtree(d, ignore_errors=True)


def test_a_prometheus_rule_reaches_obs_alerts_pulled_and_pushed_as_one(
        chain: tuple[Exporter, Prometheus, AlertWebhook]) -> None:
    exporter, prom, hook = chain

    class Live(FakeAdapter):  # the live adapter's alert path: Prometheus first, then the webhook
        def alerts(self, since: float) -> list[Any]:
            return prom.alerts(since)

    adapter = Live(services={"web": ("small", 1)})
    attach_webhook(adapter, hook)
    exporter.value = 0.95
    t0 = time.monotonic()
    pulled = pushed = None
    while pulled is None or pushed is None:
        assert time.monotonic() - t0 < 30, f"pulled {pulled}, pushed {pushed}"
        if pulled is None and any(a.name == "ZeroopsTestHot" for a in prom.alerts(0)):
            pulled = time.monotonic() - t0
        if pushed is None and any(a.name == "ZeroopsTestHot" for a in hook.firing()):
            pushed = time.monotonic() - t0
        time.sleep(0.1)
    obs = Observation(adapter, time.time())
    try:
        firing = [a for a in obs.alerts(0) if a.state == "firing"]
    finally:
        obs.close()
    assert [(a.name, a.severity, a.labels["service"]) for a in firing] == [("ZeroopsTestHot", "critical", "web")]
    print(f"[alerts] pulled from Prometheus after {pulled:.2f} s, pushed by Alertmanager after {pushed:.2f} s")
    exporter.value = 0.1  # resolved: Prometheus sends the resolution, Alertmanager forwards it (send_resolved)
    end = time.monotonic() + 30
    while hook.firing():
        assert time.monotonic() < end, "the resolution never reached the receiver"
        time.sleep(0.1)
    assert [a.state for a in hook.alerts(0)] == ["resolved"]
    with urllib.request.urlopen(hook.url, timeout=5) as r:
        assert b'"firing": 0' in r.read()
