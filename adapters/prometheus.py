"""Metrics and alerts for live mode, read from a Prometheus server (HTTP API, PromQL).

Each protocol metric (``cpu_util``, ``latency_p95_ms``, ...) is one PromQL
expression from configuration, so a site's existing exporters serve as they
are: the expression only has to return one series per service carrying the
label named by ``service_label`` (``service`` by default), or per server with
``server_label`` for the ``server_*`` metrics.  Only the standard library is
used (urllib), and only ``/api/v1/query``, ``/api/v1/query_range`` and
``/api/v1/alerts``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import Alert, MetricWindow, TransientAPIError

#: Queries that fit the metrics published by zeroops' own test exporter; a
#: site replaces them with expressions over its exporters (docs/live-mode.md).
DEFAULT_QUERIES: dict[str, str] = {
    "cpu_util": "avg by (service) (zeroops_server_cpu_util)",
    "memory_util": "max by (service) (zeroops_server_memory_util)",
    "request_rate": "sum by (service) (zeroops_service_request_rate)",
    "error_ratio": "max by (service) (zeroops_service_error_ratio)",
    "latency_p95_ms": "max by (service) (zeroops_service_latency_p95_ms)",
    "server_cpu_util": "max by (server_id, service) (zeroops_server_cpu_util)",
    # per instance, from the app's request counters: failed / served, 0 where it served nothing
    "server_error_ratio": "(sum by (server_id, service) (rate(zeroops_server_requests_failed_total[1m]))"
                          " / (sum by (server_id, service) (rate(zeroops_server_requests_total[1m])) > 0))"
                          " or (sum by (server_id, service) (rate(zeroops_server_requests_total[1m])) * 0)",
}


class PrometheusConfig(BaseModel):
    """Where Prometheus is and which PromQL expression yields each metric."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:9090"
    timeout: float = Field(5.0, gt=0, description="seconds per HTTP request")
    service_label: str = "service"
    server_label: str = "server_id"
    queries: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_QUERIES))
    max_points: int = Field(240, ge=2, description="points per metric_window (sets the range-query step)")


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def epoch_seconds(s: str | None) -> float:
    """Seconds since the epoch of an ISO-8601 time as OpenStack and Prometheus write it; 0.0 if absent or bad."""
    if not s:
        return 0.0
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class PrometheusError(TransientAPIError):
    """Prometheus could not be reached or rejected a query."""


class Prometheus:
    """A small client of the Prometheus HTTP API that speaks the adapter's metric vocabulary."""

    def __init__(self, config: PrometheusConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or PrometheusConfig()
        self._clock = clock
        self._firing: dict[str, Alert] = {}
        self._history: list[Alert] = []

    # ---------------------------------------------------------------- HTTP
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        url = self.config.url.rstrip("/") + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.config.timeout) as resp:  # noqa: S310 - configured URL
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                msg = json.load(e).get("error", str(e))
            except (ValueError, OSError):
                msg = str(e)
            raise PrometheusError(f"prometheus {path}: HTTP {e.code}: {msg}") from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PrometheusError(f"prometheus {path}: {e}") from e
        if body.get("status") != "success":
            raise PrometheusError(f"prometheus {path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """Instant query: (labels, value) for each series of a vector result."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [({}, _num(data["result"][1]))]
        if data["resultType"] != "vector":
            raise PrometheusError(f"expected a vector from {promql!r}, got {data['resultType']}")
        return [(r["metric"], _num(r["value"][1])) for r in data["result"]]

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        """Range query: (labels, times, values) for each series of a matrix result."""
        data = self._get(
            "/api/v1/query_range",
            {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"},
        )
        out = []
        for r in data["result"]:
            vals = r.get("values", [])
            out.append((r["metric"], np.array([float(t) for t, _ in vals]), np.array([_num(v) for _, v in vals])))
        return out

    def ready(self) -> bool:
        """True when Prometheus answers a trivial query."""
        try:
            self.query("vector(1)")
        except PrometheusError:
            return False
        return True

    # ------------------------------------------------------------ protocol
    def _key_label(self, metric: str) -> str:
        return self.config.server_label if metric.startswith("server_") else self.config.service_label

    def latest(self, metric: str) -> dict[str, float]:
        """Latest value of ``metric`` keyed by service (or server id for ``server_*``); {} if unconfigured."""
        promql = self.config.queries.get(metric)
        if not promql:
            return {}
        key = self._key_label(metric)
        return {labels[key]: v for labels, v in self.query(promql) if key in labels and not math.isnan(v)}

    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> MetricWindow:
        """Samples of the configured expression over the last ``seconds``, for the series matching ``labels``."""
        promql = self.config.queries.get(metric)
        empty = MetricWindow(metric, dict(labels), np.array([]), np.array([]))
        if not promql or seconds <= 0:
            return empty
        end = self._clock()
        step = max(1.0, seconds / (self.config.max_points - 1))
        for series_labels, t, v in self.query_range(promql, end - seconds, end, step):
            if self._matches(series_labels, labels):
                return MetricWindow(metric, dict(labels), t, v)
        return empty

    def _matches(self, series_labels: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        """The seam's ``server``/``service`` labels name the configured ``server_label``/``service_label``."""
        names = {"server": self.config.server_label, "service": self.config.service_label}
        return all(series_labels.get(k, series_labels.get(names.get(k, k))) == val for k, val in labels.items())

    def metric_history(self, metric: str, labels: Mapping[str, str], seconds: float, step: float) -> MetricWindow:
        """Mean per ``step`` seconds over the last ``seconds``: ``avg_over_time((expr)[step:])`` as a range query.

        Each point is stamped with the end of its step, at a multiple of ``step`` (the range is aligned), so
        points line up across calls, as the twin's 1- and 5-minute rollups do.
        """
        promql = self.config.queries.get(metric)
        empty = MetricWindow(metric, dict(labels), np.array([]), np.array([]))
        if step <= 0:
            raise ValueError(f"step must be > 0, got {step}")
        if not promql or seconds <= 0:
            return empty
        if seconds / step > 11_000:  # Prometheus refuses more points per series
            raise ValueError(f"{seconds:.0f} s at step {step:.0f} s is more than 11,000 points; use a larger step")
        end = math.floor(self._clock() / step) * step
        start = end - math.floor(seconds / step) * step
        rollup = f"avg_over_time(({promql})[{step:g}s:])"
        for series_labels, t, v in self.query_range(rollup, start, end, step):
            if self._matches(series_labels, labels):
                return MetricWindow(metric, dict(labels), t, v)
        return empty

    def alerts(self, since: float) -> list[Alert]:
        """Firing alerts from ``/api/v1/alerts`` and resolutions seen since the last call, at or after ``since``."""
        now = self._clock()
        seen: dict[str, Alert] = {}
        for a in self._get("/api/v1/alerts").get("alerts", []):
            if a.get("state") != "firing":
                continue
            labels = dict(a.get("labels", {}))
            fp = hashlib.sha1(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]
            severity = labels.get("severity", "warning")
            if severity not in ("critical", "warning", "info"):
                severity = "warning"
            seen[fp] = Alert(
                name=labels.get("alertname", ""),
                severity=severity,  # type: ignore[arg-type]
                labels=labels,
                state="firing",
                starts_at=epoch_seconds(a.get("activeAt")),
                at=now,
                value=_num(a.get("value")),
                fingerprint=fp,
            )
        for fp, old in self._firing.items():
            if fp not in seen:
                self._history.append(
                    Alert(old.name, old.severity, old.labels, "resolved", old.starts_at, now, old.value, fp)
                )
        self._firing = seen
        self._history = [a for a in self._history if a.at >= now - 3600]
        return [a for a in self._history if a.at >= since] + [a for a in seen.values() if a.at >= since]
