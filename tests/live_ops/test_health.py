"""The controller observable (issue 13 item 10): /metrics scraped during a short run, /healthz."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.base import Action, AdapterError, Observation
from adapters.fake import FakeAdapter, FakeService
from adapters.live_config import parse_config
from control.health import ControllerMetrics, HealthServer, instrument
from control.leader import attach_leadership, lease_from
from control.runtime import AllowAll
from engines.floor import MinFloorKeeper
from zeroops.live import LiveController


class Flaky:
    """Fails every other step with an adapter error (the runtime skips the step and counts it)."""

    name, cadence = "flaky", 0.05

    def __init__(self) -> None:
        self.n = 0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        self.n += 1
        if self.n % 2:
            raise AdapterError("nova: 503")
        return []


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def controller(tmp_path: Path, name: str = "a") -> LiveController:
    fake = FakeAdapter(services=[FakeService("web", servers=0, min_servers=2)])
    config = parse_config({"services": [{"name": "web", "flavor": "small", "image": "img", "min_servers": 2}],
                           "keep_min_servers": False}, "<t>")
    return LiveController(fake, config, "act", engines=[MinFloorKeeper(cadence=0.05), Flaky()], gate=AllowAll(),
                          state_dir=tmp_path / f"state-{name}", out=open(tmp_path / f"{name}.out", "w"))  # noqa: SIM115


def run_for(ctl: LiveController, seconds: float, target: Any = None) -> threading.Thread:
    t = threading.Thread(target=target or (lambda: ctl.run(seconds)), daemon=True)
    t.start()
    return t


def test_metrics_and_health_during_a_run(tmp_path: Path) -> None:
    ctl = controller(tmp_path)
    metrics = ControllerMetrics()
    health = instrument(ctl, metrics)
    server = HealthServer(metrics, health, port=0, host="127.0.0.1")
    try:
        t = run_for(ctl, 1.0)
        time.sleep(0.5)
        mid = scrape(server.url)  # while the loop runs
        t.join(5)
        m = scrape(server.url)
        code, h = get_json(server.url + "/healthz")
    finally:
        server.close()
        ctl.close()
    assert mid[("zeroops_live_steps_total", (("engine", "min-floor-keeper"),))] >= 3
    steps = m[("zeroops_live_steps_total", (("engine", "min-floor-keeper"),))]
    assert 5 <= steps <= 22, steps  # at most 21 steps of 50 ms in 1 s (fewer on a loaded machine)
    created = m[("zeroops_live_decisions_total", (("engine", "min-floor-keeper"), ("outcome", "executed"),
                                                  ("verdict", "allow")))]
    assert created == 2  # 0 -> min 2, then nothing more
    flaky_steps = m[("zeroops_live_steps_total", (("engine", "flaky"),))]
    assert m[("zeroops_live_errors_total", (("kind", "step"),))] == pytest.approx(flaky_steps // 2 + flaky_steps % 2)
    assert m[("zeroops_live_errors_total", (("kind", "action"),))] == 0
    assert 0 <= m[("zeroops_live_step_lag_seconds", (("engine", "flaky"),))] < 1.0
    assert m[("zeroops_live_leader", ())] == 1.0
    assert m[("zeroops_live_step_duration_seconds_count", (("engine", "flaky"),))] == flaky_steps
    assert code == 200 and h["status"] == "ok" and h["role"] == "leader" and h["steps"] == steps + flaky_steps
    assert h["step_errors"] > 0 and h["seconds_since_step"] < 2 and h["mode"] == "act"


def test_a_stalled_controller_answers_503(tmp_path: Path) -> None:
    ctl = controller(tmp_path)
    metrics = ControllerMetrics()
    health = instrument(ctl, metrics, stalled_after=0.2)
    server = HealthServer(metrics, health, host="127.0.0.1")
    try:
        time.sleep(0.3)  # never run: no step
        code, h = get_json(server.url + "/healthz")
        assert code == 503 and h["status"] == "stalled"
        assert get_json(server.url + "/nope")[0] == 404
    finally:
        server.close()
        ctl.close()


def test_leader_and_standby_are_visible(tmp_path: Path) -> None:
    """Two controllers for one scope in one process: one leader (gauge 1), one standby (gauge 0)."""
    url = f"file://{tmp_path}/ha"
    servers, ctls, threads = [], [], []
    try:
        for name in ("a", "b"):
            ctl = controller(tmp_path, name)
            lease = lease_from(url, ctl.scope.name, ctl.scope.projects, None, {"lease": 2.0, "heartbeat": 0.05})
            leadership = attach_leadership(ctl, lease)
            metrics = ControllerMetrics()
            servers.append(HealthServer(metrics, instrument(ctl, metrics, leadership=leadership), host="127.0.0.1"))
            ctls.append((ctl, lease))
            time.sleep(0.1)
        for ctl, _ in ctls:
            threads.append(run_for(ctl, 0.6, lambda c=ctl: (c.check_prometheus(), c.clock.run(c.clock.now() + 0.6))))
        time.sleep(0.4)
        roles = [get_json(s.url + "/healthz")[1]["role"] for s in servers]
        gauges = [scrape(s.url)[("zeroops_live_leader", ())] for s in servers]
        up = scrape(servers[1].url)[("zeroops_live_dependency_up", (("dependency", "ha_backend"),))]
        for t in threads:
            t.join(5)
    finally:
        for s in servers:
            s.close()
        for ctl, lease in ctls:
            lease.close()
            ctl.close()
    assert roles == ["leader", "standby"] and gauges == [1.0, 0.0] and up == 1.0
