"""Metrics and alerts through a real Prometheus scraping the test exporter for real servers."""

from __future__ import annotations

from typing import Any

import pytest
from livekit import LoadExporter, wait_until

from adapters.base import CreateServer
from adapters.prometheus import Prometheus, PrometheusError

pytestmark = pytest.mark.openstack


def test_latest_window_and_alerts_from_prometheus(
    make_adapter: Any, svc: Any, exporter: LoadExporter, prometheus: Prometheus
) -> None:
    name = svc("prom")
    a = make_adapter([{"name": name}])
    ids = a.execute(CreateServer(service=name, count=2)).server_ids
    exporter.load[name] = 1.0  # two servers share one server's worth of work: 0.5 each
    wait_until(lambda: abs(a.latest("cpu_util").get(name, 0) - 0.5) < 1e-6, 30, "cpu_util 0.5 in Prometheus")
    per_server = a.latest("server_cpu_util")
    assert {sid: per_server.get(sid) for sid in ids} == {sid: 0.5 for sid in ids}
    assert a.latest("active_servers")[name] == 2.0  # not in Prometheus: counted from Nova

    def window() -> Any:
        w = a.metric_window("cpu_util", {"service": name}, 30)
        return w if len(w.t) >= 3 else None

    w = wait_until(window, 30, "three samples in the window")
    assert len(w.t) >= 3 and w.last() == pytest.approx(0.5) and (w.t[1:] > w.t[:-1]).all()
    assert len(a.metric_window("cpu_util", {"service": "nobody"}, 30).v) == 0
    with pytest.raises(ValueError, match="unknown metric"):  # the contract: every world refuses an unknown metric
        a.latest("no_such_metric")

    exporter.load[name] = 4.0  # 100 % CPU: the devcloud's rule ZeroopsServiceHot fires after 5 s
    since = a.now()
    hot = wait_until(
        lambda: [x for x in a.alerts(0) if x.labels.get("service") == name and x.state == "firing"],
        60,
        "the ZeroopsServiceHot alert to fire",
    )
    assert hot[0].name == "ZeroopsServiceHot" and hot[0].severity == "warning" and hot[0].value == pytest.approx(1.0)
    exporter.load[name] = 0.5
    resolved = wait_until(
        lambda: [x for x in a.alerts(since) if x.labels.get("service") == name and x.state == "resolved"],
        60,
        "the alert to resolve",
    )
    assert resolved[0].fingerprint == hot[0].fingerprint


def test_bad_promql_is_a_clear_error(prometheus: Prometheus) -> None:
    with pytest.raises(PrometheusError, match="bad_data|parse"):
        prometheus.query("sum by (")
