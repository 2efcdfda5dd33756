"""Alerts in (issue 13 item 9): Alertmanager's webhook reaches ``obs.alerts`` of the live adapter."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from adapters.alert_webhook import AlertWebhook, WebhookError, attach_webhook, label_fingerprint
from adapters.base import Observation
from adapters.fake import FakeAdapter
from adapters.prometheus import Prometheus, PrometheusError
from zeroops.alertmanager import Alertmanager, find_binary, production_config

# The body Alertmanager POSTs to a webhook_configs URL (version 4, as documented on prometheus.io
# "Configuration / <webhook_config>"), with a firing and a resolved alert of one group.
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="HighLatency"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "zeroops",
    "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency", "severity": "critical", "job": "web"},
    "commonAnnotations": {"summary": "p95 latency above 500 ms"},
    "externalURL": "http://alertmanager.example.org:9093",
    "alerts": [
        {"status": "firing",
         "labels": {"alertname": "HighLatency", "severity": "critical", "job": "web", "service": "web"},
         "annotations": {"summary": "p95 latency above 500 ms", "value": "0.73"},
         "startsAt": "2026-12-03T06:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=latency", "fingerprint": "1a30ba71cca2921f"},
        {"status": "resolved",
         "labels": {"alertname": "HighLatency", "severity": "critical", "job": "web", "service": "api"},
         "annotations": {"summary": "p95 latency above 500 ms"},
         "startsAt": "2026-12-03T05:50:00.000Z", "endsAt": "2026-12-03T05:58:00.000Z",
         "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=latency", "fingerprint": "2b41cb82ddb3a320"},
    ],
}


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip() else {}
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture
def hook() -> Any:
    with AlertWebhook() as h:
        yield h


def test_a_posted_alertmanager_payload_shows_in_obs_alerts(hook: AlertWebhook) -> None:
    fake = FakeAdapter(services={"web": ("small", 2), "api": ("small", 1)})
    fake.push_alert("DiskFull", {"service": "api"}, severity="warning")
    attach_webhook(fake, hook)
    assert post(hook.url, PAYLOAD) == (200, {"accepted": 2})
    obs = Observation(fake, fake.now())
    try:
        got = {(a.name, a.labels.get("service"), a.state) for a in obs.alerts(since=-1)}
    finally:
        obs.close()
    assert got == {("DiskFull", "api", "firing"), ("HighLatency", "web", "firing"), ("HighLatency", "api", "resolved")}
    firing = hook.firing()[0]
    assert firing.severity == "critical" and firing.value == pytest.approx(0.73)
    assert firing.starts_at == pytest.approx(1796277600.0)  # 2026-12-03T06:00:00Z


def test_resolved_later_moves_the_alert_out_of_firing(hook: AlertWebhook) -> None:
    hook.ingest(PAYLOAD)
    t = time.time()
    resolved = {**PAYLOAD, "status": "resolved",
                "alerts": [{**PAYLOAD["alerts"][0], "status": "resolved", "endsAt": "2026-12-03T06:10:00Z"}]}
    hook.ingest(resolved)
    hook.ingest(resolved)  # Alertmanager repeats notifications: one resolution kept
    assert hook.firing() == []
    states = sorted((a.labels["service"], a.state) for a in hook.alerts(since=t - 1))
    assert states == [("api", "resolved"), ("web", "resolved")]


def test_the_same_alert_from_prometheus_and_alertmanager_is_one(hook: AlertWebhook,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    labels = PAYLOAD["alerts"][0]["labels"]
    prom = Prometheus()
    monkeypatch.setattr(prom, "_get", lambda path, params=None: {"alerts": [
        {"labels": labels, "annotations": {}, "state": "firing", "activeAt": "2026-12-03T06:00:00Z", "value": "0.73"}]})

    class Adapter:
        def alerts(self, since: float) -> list[Any]:
            return prom.alerts(since)

    a = Adapter()
    attach_webhook(a, hook)
    hook.ingest(PAYLOAD)
    firing = [x for x in a.alerts(0) if x.state == "firing"]
    assert len(firing) == 1 and firing[0].fingerprint == label_fingerprint(labels)

    def down(path: str, params: Any = None) -> Any:
        raise PrometheusError("prometheus /api/v1/alerts: connection refused")

    monkeypatch.setattr(prom, "_get", down)
    assert [x.name for x in a.alerts(0) if x.state == "firing"] == ["HighLatency"]  # pushed alerts still seen


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "Expecting property name"),
    ({"version": "3", "alerts": []}, "unsupported webhook version '3'"),
    ({"version": "4", "alerts": {}}, "'alerts' must be a list"),
    ({"version": "4", "alerts": [{"status": "pending", "labels": {}}]}, "alerts[0].status: 'pending'"),
])
def test_a_bad_payload_is_refused_with_one_line(hook: AlertWebhook, body: Any, message: str) -> None:
    code, answer = post(hook.url, body)
    assert code == 400 and message in answer["error"] and "\n" not in answer["error"]
    assert hook.rejected == 1 and hook.firing() == []


def test_a_token_is_required_when_set() -> None:
    with AlertWebhook(token="s3cret") as h:
        assert post(h.url, PAYLOAD)[0] == 401
        assert post(h.url, PAYLOAD, {"Authorization": "Bearer s3cret"})[0] == 200
        assert len(h.firing()) == 1


def test_ingest_rejects_non_objects() -> None:
    with pytest.raises(WebhookError, match="JSON object"):
        AlertWebhook().ingest([1, 2])


@pytest.mark.alertmanager
@pytest.mark.skipif(find_binary() is None, reason="alertmanager binary not installed "
                    "(apt-get install prometheus-alertmanager; .ci/run installs it)")
def test_a_real_alertmanager_forwards_to_the_receiver(hook: AlertWebhook) -> None:
    """Alerts posted to a real Alertmanager reach obs.alerts through its webhook, firing then resolved."""
    fake = FakeAdapter(services={"web": ("small", 1)})
    attach_webhook(fake, hook)
    cfg = production_config(hook.url, k=300.0)  # group_wait 100 ms, group_interval 1 s
    labels = {"alertname": "InstanceDown", "severity": "critical", "service": "web", "instance": "10.0.0.5:9100"}
    with Alertmanager(cfg) as am:
        assert post(am.url + "/api/v2/alerts", [{"labels": labels, "annotations": {"summary": "down"}}])[0] == 200
        end = time.monotonic() + 15
        while not [a for a in fake.alerts(0) if a.name == "InstanceDown" and a.state == "firing"]:
            assert time.monotonic() < end, "Alertmanager's notification never reached the receiver"
            time.sleep(0.05)
        past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        assert post(am.url + "/api/v2/alerts", [{"labels": labels, "endsAt": past}])[0] == 200
        while not [a for a in fake.alerts(0) if a.name == "InstanceDown" and a.state == "resolved"]:
            assert time.monotonic() < end + 15, "the resolution never reached the receiver"
            time.sleep(0.05)
    got = hook.alerts(0)
    assert [a.state for a in got if a.name == "InstanceDown"] == ["resolved"]
    assert got[0].fingerprint == label_fingerprint(labels) and got[0].severity == "critical"
