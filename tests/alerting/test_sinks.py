"""Sinks deliver executed pages after the choke point: webhooks to a local http.server, e-mail to aiosmtpd."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from adapters.base import DeclareIncident, Notify, Page
from adapters.fake import FakeAdapter, FakeService
from control.compose import compose
from control.runtime import ActionRecord, AllowAll, Verdict
from control.sinks import (
    AlertmanagerWebhookSink,
    Delivery,
    Message,
    RecordingSink,
    SlackWebhookSink,
    SmtpSink,
    alertmanager_payload,
)

PAGE = Page(who="oncall", why="P0: api failing 40%", incident_id="inc-7", severity="P0", components=("api", "db"),
            reason="smart alerting: P0 group grp-1", confidence=0.9,
            evidence={"group": "grp-1", "fingerprints": ["fp-a", "fp-b"]})


def record(action: Any, outcome: str = "executed", at: float = 120.0) -> ActionRecord:
    return ActionRecord(1, at, "smart_alerting", action, Verdict("allow"), outcome)  # type: ignore[arg-type]


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", got
    finally:
        srv.shutdown()
        srv.server_close()


def test_alertmanager_webhook_payload_reaches_a_local_receiver(http_server: tuple[str, list]) -> None:
    url, got = http_server
    sink = AlertmanagerWebhookSink(url=f"{url}/alerts", receiver="oncall-webhook", origin=1_767_225_600.0)
    Delivery([sink])(record(PAGE))
    (req,) = got
    assert req["path"] == "/alerts" and req["type"] == "application/json"
    body = req["body"]
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "oncall-webhook"
    assert set(body) >= {"groupKey", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts",
                         "truncatedAlerts"}
    assert body["groupLabels"] == {"group": "grp-1"} and body["commonLabels"]["severity"] == "P0"
    assert [a["labels"]["component"] for a in body["alerts"]] == ["api", "db"]
    a = body["alerts"][0]
    assert a["status"] == "firing" and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert a["startsAt"].startswith("2026-01-01T00:02:00")  # origin + 120 s
    assert a["annotations"]["fingerprints"] == "fp-a,fp-b" and sink.sent == 1


def test_slack_webhook_gets_text_and_a_block(http_server: tuple[str, list]) -> None:
    url, got = http_server
    Delivery([SlackWebhookSink(url=url)])(record(PAGE))
    body = got[0]["body"]
    assert body["text"].startswith("[P0] api, db: P0: api failing 40%")
    assert body["blocks"][0]["type"] == "section" and "inc-7" in body["blocks"][0]["text"]["text"]


def test_smtp_sink_sends_an_email_to_a_local_server() -> None:
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    got: list[Any] = []

    class Keep(MessageHandler):
        def handle_message(self, message: Any) -> None:
            got.append(message)

    with socket.socket() as probe:  # a free port (aiosmtpd's controller cannot report one it chose itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(Keep(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        sink = SmtpSink(host="127.0.0.1", port=port, to=("oncall@example.com",))
        Delivery([sink])(record(PAGE))
    finally:
        ctl.stop()
    (m,) = got
    assert m["To"] == "oncall@example.com" and m["Subject"].startswith("[P0] api, db")
    assert "inc-7" in m.get_payload() and "fp-a, fp-b" in m.get_payload() and sink.sent == 1


def test_only_executed_pages_are_delivered_and_failures_do_not_raise() -> None:
    rec, dead = RecordingSink(), SlackWebhookSink(url="http://127.0.0.1:9/")  # nothing listens on port 9
    d = Delivery([rec, dead])
    d(record(PAGE, outcome="denied"))
    d(record(PAGE, outcome="proposed"))
    d(record(DeclareIncident(incident_id="i", components=("api",))))
    assert rec.messages == [] and dead.sent == dead.failures == 0
    d(record(PAGE))
    d(record(Notify(component="api", severity="info", message="P3 to the dashboard")))
    assert [m.kind for m in rec.messages] == ["page", "notify"] and rec.messages[1].channel == "dashboard"
    assert dead.failures == 1 and dead.errors and dead.sent == 0  # Slack sink takes pages only


def test_channels_route_pages() -> None:
    p0, p1 = RecordingSink(channels=frozenset({"pagerduty"})), RecordingSink(channels=frozenset({"slack"}))
    Delivery([p0, p1])(record(Page(who="pagerduty", severity="P0")))
    assert len(p0.messages) == 1 and p1.messages == []


def test_payload_without_components_names_the_group() -> None:
    rec = record(Page(who="oncall", evidence={"group": "g9"}))
    body = alertmanager_payload(Message.of(rec), "r")
    assert [a["labels"]["component"] for a in body["alerts"]] == ["g9"]


class _PagingEngine:
    name, cadence = "pager", 5.0

    def __init__(self) -> None:
        self.done = False

    def step(self, now: float, obs: Any) -> list[Any]:
        if self.done:
            return []
        self.done = True
        return [PAGE]


def test_compose_delivers_after_the_choke_point() -> None:
    fake = FakeAdapter([FakeService("api")])
    sink = RecordingSink()
    plane = compose(fake, [_PagingEngine()], gate=AllowAll(), notify_sinks=[sink])
    plane.runtime.step(plane.engines[0], 5.0)
    plane.close()
    (m,) = sink.messages
    assert m.kind == "page" and m.fingerprints == ("fp-a", "fp-b") and m.incident == "inc-7"


def test_sinks_from_config_and_errors_that_name_the_field() -> None:
    from control.sinks import build_sinks

    sinks = build_sinks([{"type": "alertmanager", "url": "http://127.0.0.1:9093/hook", "channels": ["pagerduty"]},
                         {"type": "smtp", "host": "127.0.0.1", "sender": "z@x", "to": ["o@x"]},
                         {"type": "recording"}])
    assert [type(s).__name__ for s in sinks] == ["AlertmanagerWebhookSink", "SmtpSink", "RecordingSink"]
    assert sinks[0].channels == frozenset({"pagerduty"}) and sinks[2].kinds == ("page", "notify")
    with pytest.raises(ValueError, match=r"^sinks\[0\]: type must be one of alertmanager, slack, smtp, recording$"):
        build_sinks([{"type": "pager"}])
    with pytest.raises(ValueError, match=r"^sinks\[1\]\.url: String should match pattern"):
        build_sinks([{"type": "recording"}, {"type": "slack", "url": "ftp://x"}])
