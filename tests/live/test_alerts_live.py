"""Issue 13 item 9 against the real cloud: a real Prometheus alert on real servers reaches the ops center's
alerting in ``zeroops live``, and its notification goes out through the config's sinks (here an
Alertmanager-format sink posting to a receiver), with ``/metrics`` counting the decision."""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from livekit import LoadExporter, wait_until
from livekit import start as _start
from livekit import stop as _stop

from adapters.alert_webhook import AlertWebhook
from adapters.base import CreateServer
from adapters.prometheus import Prometheus
from engines.alerting import SmartAlerting
from engines.alerting.config import SmartAlertingConfig
from zeroops.live import LiveController
from zeroops.live_prod import start_production

pytestmark = pytest.mark.openstack


def test_a_prometheus_alert_reaches_the_ops_center_and_goes_out_through_a_sink(
        make_adapter: Any, svc: Any, exporter: LoadExporter, prometheus: Prometheus, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROOPS_LOCK_DIR", str(tmp_path / "locks"))
    name = svc("alert")
    with AlertWebhook() as receiver:
        a = make_adapter([{"name": name, "min_servers": 0, "max_servers": 1}], scope={"name": name},
                         sinks=[{"type": "alertmanager", "url": receiver.url, "kinds": ["page", "notify"]}])
        a.execute(CreateServer(service=name))
        ctl = LiveController(a, a.config, "act", engines=[SmartAlerting(SmartAlertingConfig(cadence=1.0))],
                             state_dir=tmp_path / "state", out=io.StringIO())
        prod = start_production(ctl, SimpleNamespace(ha_backend=None, ha_lease=None, webhook_port=None,
                                                     metrics_port=0, metrics_host="127.0.0.1", config="<test>"))
        t = _start(ctl)
        try:
            t0 = time.monotonic()
            exporter.load[name] = 4.0  # 100 % CPU: the devcloud's rule ZeroopsServiceHot fires after 5 s
            got = wait_until(lambda: [x for x in receiver.firing() if x.labels.get("component") == name], 90,
                             "the ops center's notification to reach the sink")
            took = time.monotonic() - t0
            m = prod.metrics.exposition().decode()
        finally:
            exporter.load[name] = 0.0
            _stop(ctl, t)
            prod.close()
    print(f"[alerts-live] Prometheus alert to sink in {took:.1f} s: {got[0].labels}")
    assert got[0].labels["alertname"] in ("zeroops-notify", "zeroops-page")
    assert 'zeroops_live_decisions_total{engine="smart_alerting",outcome="executed",verdict="allow"}' in m
