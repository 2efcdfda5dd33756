"""Alerts pushed by Alertmanager: a webhook receiver whose alerts live mode's engines read through ``obs.alerts``.

Alertmanager POSTs a JSON body (``"version": "4"``: ``receiver``, ``status``, ``alerts[]`` with ``status``,
``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``, plus ``groupLabels``, ``commonLabels``,
``groupKey``, ``truncatedAlerts``) to every ``webhook_configs`` URL of a receiver.  :class:`AlertWebhook` is
that URL: an HTTP server (standard library, one daemon thread) that keeps what is firing and what resolved,
and answers :meth:`AlertWebhook.alerts` exactly as :meth:`adapters.prometheus.Prometheus.alerts` does (firing
alerts plus resolutions of the last hour).  An alert's fingerprint is the digest of its labels that the
Prometheus reader uses, so the same alert from both paths is one alert (:func:`merged`).

Point Alertmanager at it::

    receivers:
      - name: zeroops
        webhook_configs:
          - url: http://controller-host:9094/alerts
            send_resolved: true

and start ``zeroops live --webhook-port 9094``.  With ``token`` set, a request must carry
``Authorization: Bearer <token>`` (Alertmanager: ``http_config: {authorization: {credentials: ...}}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapters.base import AdapterError, Alert
from adapters.prometheus import epoch_seconds

HISTORY_S = 3600.0  # resolutions kept, as the Prometheus reader keeps them
MAX_BODY = 4 << 20
SEVERITIES = ("critical", "warning", "info")


class WebhookError(ValueError):
    """A POST that is not an Alertmanager webhook payload (answered 400 with this one-line message)."""


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint :class:`adapters.prometheus.Prometheus` gives an alert with these labels."""
    return hashlib.sha1(json.dumps(sorted(dict(labels).items())).encode()).hexdigest()[:16]


def _value(annotations: Mapping[str, Any]) -> float:
    try:
        return float(annotations.get("value", math.nan))
    except (TypeError, ValueError):
        return math.nan


class AlertWebhook:
    """An Alertmanager webhook receiver on ``host:port`` (port 0: a free one); :meth:`start`, :meth:`close`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.host, self.port = host, port
        self.token = token
        self._clock = clock
        self._firing: dict[str, Alert] = {}
        self._history: list[Alert] = []
        self._lock = threading.Lock()
        self.received = 0  # notifications accepted
        self.rejected = 0
        self.last_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ payloads
    def ingest(self, payload: Any) -> int:
        """Take one notification; returns the number of alerts in it.  :class:`WebhookError` if malformed."""
        if not isinstance(payload, dict):
            raise WebhookError(f"expected a JSON object, got {type(payload).__name__}")
        version = str(payload.get("version", ""))
        if version != "4":
            raise WebhookError(f"unsupported webhook version {version!r}; Alertmanager sends version \"4\"")
        alerts = payload.get("alerts")
        if not isinstance(alerts, list):
            raise WebhookError("field 'alerts' must be a list of alerts")
        now = self._clock()
        parsed: list[tuple[str, Alert]] = []
        for i, a in enumerate(alerts):
            if not isinstance(a, dict) or not isinstance(a.get("labels"), dict):
                raise WebhookError(f"alerts[{i}]: each alert needs an object 'labels'")
            status = a.get("status")
            if status not in ("firing", "resolved"):
                raise WebhookError(f"alerts[{i}].status: {status!r}; allowed: firing, resolved")
            labels = {str(k): str(v) for k, v in a["labels"].items()}
            severity = labels.get("severity", "warning")
            fp = label_fingerprint(labels)
            parsed.append((fp, Alert(
                name=labels.get("alertname", ""),
                severity=severity if severity in SEVERITIES else "warning",  # type: ignore[arg-type]
                labels=labels, state=status, starts_at=epoch_seconds(a.get("startsAt")), at=now,
                value=_value(a.get("annotations") or {}), fingerprint=fp)))
        with self._lock:
            for fp, alert in parsed:
                if alert.state == "firing":
                    self._firing[fp] = alert
                else:
                    if self._firing.pop(fp, None) is not None or not any(h.fingerprint == fp for h in self._history):
                        self._history.append(alert)
            self._history = [h for h in self._history if h.at >= now - HISTORY_S]
            self.received += 1
            self.last_at = now
        return len(parsed)

    def alerts(self, since: float) -> list[Alert]:
        """Resolutions at or after ``since`` (last hour), then what fires now (received at or after ``since``)."""
        with self._lock:
            return ([a for a in self._history if a.at >= since]
                    + [a for a in self._firing.values() if a.at >= since])

    def firing(self) -> list[Alert]:
        with self._lock:
            return list(self._firing.values())

    # ------------------------------------------------------------------ HTTP
    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server else self.port
        return f"http://{self.host}:{port}/alerts"

    def start(self) -> AlertWebhook:
        """Listen (a taken port raises ``OSError``) and serve in a daemon thread."""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                if hook.token is not None:
                    got = self.headers.get("Authorization", "")
                    if not hmac.compare_digest(got.encode(), f"Bearer {hook.token}".encode()):
                        hook.rejected += 1
                        self._answer(401, {"error": "missing or wrong bearer token"})
                        return
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    hook.rejected += 1
                    self._answer(413, {"error": f"body of {n} bytes is over {MAX_BODY}"})
                    return
                try:
                    count = hook.ingest(json.loads(self.rfile.read(n) or b"null"))
                except (WebhookError, ValueError) as e:
                    hook.rejected += 1
                    self._answer(400, {"error": str(e).splitlines()[0][:300]})
                    return
                self._answer(200, {"accepted": count})

            def do_GET(self) -> None:  # noqa: N802
                self._answer(200, {"firing": len(hook.firing()), "received": hook.received,
                                   "rejected": hook.rejected, "last_at": hook.last_at})

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="zeroops-alert-webhook", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AlertWebhook:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merged(*sources: Sequence[Alert]) -> list[Alert]:
    """Alerts of several sources, one per (fingerprint, state): the first source's copy wins."""
    seen: set[tuple[str, str]] = set()
    out: list[Alert] = []
    for src in sources:
        for a in src:
            key = (a.fingerprint, a.state)
            if key not in seen:
                seen.add(key)
                out.append(a)
    return out


def attach_webhook(adapter: Any, hook: AlertWebhook) -> None:
    """Make ``hook``'s alerts part of ``adapter.alerts(since)`` (merged after the adapter's own, e.g. those
    Prometheus reports), so every engine reading ``obs.alerts`` sees them.  A failing Prometheus does not hide
    the pushed alerts."""
    own = adapter.alerts

    def alerts(since: float) -> list[Alert]:
        try:
            first = list(own(since))
        except AdapterError:
            first = []  # Prometheus down (degraded mode says so): what Alertmanager pushed still counts
        return merged(first, hook.alerts(since))

    adapter.alerts = alerts
