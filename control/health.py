"""The live controller observable: ``/healthz`` (JSON) and ``/metrics`` (Prometheus exposition format).

:class:`ControllerMetrics` holds the controller's own metrics in a ``prometheus_client`` registry of its own:

* ``zeroops_live_steps_total{engine}`` — engine steps run;
* ``zeroops_live_decisions_total{engine,outcome,verdict}`` — decisions through the choke point (outcome
  executed/failed/denied/proposed; verdict allow/deny/approval);
* ``zeroops_live_errors_total{kind}`` — ``step`` (a step skipped on an adapter error), ``action`` (an action
  that failed);
* ``zeroops_live_step_lag_seconds{engine}`` — how late the engine's last step started after it was due;
* ``zeroops_live_step_duration_seconds{engine}`` — a histogram of step durations;
* ``zeroops_live_last_step_timestamp_seconds{engine}`` — wall time of the last step;
* ``zeroops_live_leader`` — 1 while this controller acts as leader (always 1 without HA, in act mode);
* ``zeroops_live_dependency_up{dependency}`` — 1 when Prometheus (and the HA backend) answers, else 0.

:func:`instrument` wires them into a :class:`zeroops.live.LiveController` (duck-typed), and
:class:`HealthServer` serves both paths on ``--metrics-port``.  A later API server (FastAPI) mounts the same
registry and the same health function instead of a second set of numbers::

    app.mount("/metrics", prometheus_client.make_asgi_app(registry=metrics.registry))
    app.add_api_route("/healthz", lambda: health.report())
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from control.runtime import ActionRecord

STEP_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


class ControllerMetrics:
    """The controller's metrics in ``registry`` (a fresh one by default, so tests and two controllers in one
    process do not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.steps = Counter("zeroops_live_steps", "Engine steps run", ["engine"], registry=r)
        self.decisions = Counter("zeroops_live_decisions", "Decisions through the choke point",
                                 ["engine", "outcome", "verdict"], registry=r)
        self.errors = Counter("zeroops_live_errors", "Skipped steps (kind=step) and failed actions (kind=action)",
                              ["kind"], registry=r)
        self.step_lag = Gauge("zeroops_live_step_lag_seconds", "How late the last step started after it was due",
                              ["engine"], registry=r)
        self.step_duration = Histogram("zeroops_live_step_duration_seconds", "Duration of engine steps", ["engine"],
                                       buckets=STEP_BUCKETS, registry=r)
        self.last_step = Gauge("zeroops_live_last_step_timestamp_seconds", "Wall time of the last step", ["engine"],
                               registry=r)
        self.leader = Gauge("zeroops_live_leader", "1 while this controller acts (leader), 0 as standby or observer",
                            registry=r)
        self.dependency_up = Gauge("zeroops_live_dependency_up", "1 when a dependency answers", ["dependency"],
                                   registry=r)
        for kind in ("step", "action"):
            self.errors.labels(kind)  # present from the start, at 0

    def record(self, rec: ActionRecord) -> None:
        """A choke-point listener."""
        self.decisions.labels(rec.engine, rec.outcome, rec.verdict.decision).inc()
        if rec.outcome == "failed":
            self.errors.labels("action").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """What ``/healthz`` answers: role, last step, lag, degraded dependencies; ``stalled_after`` seconds without
    a step make it unhealthy (HTTP 503)."""

    def __init__(self, role: Callable[[], str], dependencies: Callable[[], dict[str, bool]],
                 stalled_after: float = 120.0, info: dict[str, Any] | None = None) -> None:
        self.role = role
        self.dependencies = dependencies
        self.stalled_after = stalled_after
        self.info = dict(info or {})
        self.started = time.time()
        self.last_step: float | None = None
        self.lag: dict[str, float] = {}
        self.steps = 0
        self.errors = 0
        self._lock = threading.Lock()

    def stepped(self, engine: str, at: float, lag: float) -> None:
        with self._lock:
            self.last_step = at
            self.lag[engine] = lag
            self.steps += 1

    def report(self) -> dict[str, Any]:
        now = time.time()
        deps = self.dependencies()
        with self._lock:
            last = self.last_step
            lag = max(self.lag.values(), default=0.0)
            steps, errors = self.steps, self.errors
        since = now - (last if last is not None else self.started)
        stalled = since > self.stalled_after
        degraded = sorted(d for d, up in deps.items() if not up)
        status = "stalled" if stalled else "degraded" if degraded else "ok"
        return {"status": status, "role": self.role(), "last_step_at": last, "seconds_since_step": round(since, 3),
                "max_step_lag_seconds": round(lag, 3), "steps": steps, "step_errors": errors,
                "dependencies": {d: ("up" if up else "down") for d, up in sorted(deps.items())},
                "degraded": degraded, "uptime_seconds": round(now - self.started, 3), **self.info}


def instrument(ctl: Any, metrics: ControllerMetrics, *, stalled_after: float | None = None,
               leadership: Any = None) -> Health:
    """Count a live controller's steps, decisions, errors and lag into ``metrics``; its :class:`Health`.

    ``ctl`` is duck-typed (:class:`zeroops.live.LiveController`): ``runtime`` (its ``step`` is wrapped),
    ``choke`` (a listener is added), ``engines``, ``mode``, ``degraded``, ``adapter``.  ``leadership``
    (:class:`control.leader.Leadership`) makes the role leader/standby; without it an act-mode controller leads.
    """
    runtime = ctl.runtime
    inner_step = runtime.step
    cadences = {e.name: float(e.cadence) for e in ctl.engines}
    due: dict[str, float] = {}

    def role() -> str:
        if leadership is not None:
            return str(leadership.role)
        return "leader" if getattr(ctl, "mode", "act") == "act" else "observer"

    def dependencies() -> dict[str, bool]:
        deps: dict[str, bool] = {}
        if getattr(ctl.adapter, "prometheus", None) is not None:
            deps["prometheus"] = not getattr(ctl, "degraded", False)
        if leadership is not None:
            deps["ha_backend"] = not leadership.lease.state.last_error
        return deps

    slowest = max(cadences.values(), default=30.0)
    health = Health(role, dependencies, stalled_after or max(120.0, 4 * slowest),
                    info={"mode": getattr(ctl, "mode", None), "engines": sorted(cadences)})

    def step(engine: Any, now: float) -> list[ActionRecord]:
        name = engine.name
        cadence = cadences.get(name, float(engine.cadence))
        # the wall clock's schedule: next due = max(previous due + cadence, time of the previous call)
        expected = due.get(name)
        lag = 0.0 if expected is None else max(0.0, now - expected)
        due[name] = max((expected if expected is not None else now) + cadence, now)
        errors_before = getattr(runtime, "errors", 0)
        t0 = time.perf_counter()
        try:
            return inner_step(engine, now)
        finally:
            metrics.step_duration.labels(name).observe(time.perf_counter() - t0)
            metrics.steps.labels(name).inc()
            metrics.step_lag.labels(name).set(lag)
            metrics.last_step.labels(name).set(time.time())
            skipped = getattr(runtime, "errors", 0) - errors_before
            if skipped > 0:
                metrics.errors.labels("step").inc(skipped)
                health.errors += skipped
            health.stepped(name, time.time(), lag)

    runtime.step = step
    ctl.choke.listeners.append(metrics.record)
    metrics.leader.set_function(lambda: 1.0 if role() == "leader" else 0.0)
    for dep in dependencies():  # only what this controller depends on: Prometheus when configured, the HA backend
        metrics.dependency_up.labels(dep).set_function(lambda d=dep: float(dependencies().get(d, True)))
    return health


class HealthServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0: a free one), in a daemon thread."""

    def __init__(self, metrics: ControllerMetrics, health: Health, port: int = 0, host: str = "0.0.0.0") -> None:
        self.metrics, self.health = metrics, health
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, code, ctype = outer.metrics.exposition(), 200, CONTENT_TYPE_LATEST
                elif path in ("/healthz", "/health"):
                    report = outer.health.report()
                    body = json.dumps(report).encode()
                    code, ctype = (503 if report["status"] == "stalled" else 200), "application/json"
                else:
                    body, code, ctype = b'{"error": "not found: try /healthz or /metrics"}', 404, "application/json"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self._thread = threading.Thread(target=self._server.serve_forever, name="zeroops-health", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
