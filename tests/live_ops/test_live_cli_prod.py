"""``zeroops live --mode act --ha-backend ... --webhook-port ... --metrics-port ...`` end to end on a fake cloud:
an alert Alertmanager posts reaches an engine, its page goes out through the config's sinks, /metrics and
/healthz show it (issue 13 items 7, 9, 10 wired together)."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.alert_webhook import AlertWebhook
from adapters.base import Action, Observation, Page
from adapters.fake import FakeAdapter, FakeService
from adapters.journal import Journal
from adapters.live_config import parse_config
from engines.registry import REGISTRY, NoSettings
from tests.live_ops.test_alert_webhook import PAYLOAD, post
from zeroops import live
from zeroops.alertmanager import free_port
from zeroops.live import add_live_parser, live_paths


class Pager:
    """Pages once per firing alert (what the ops center's alerting does, minus its judgement)."""

    name, cadence = "zt-pager", 0.05

    def __init__(self) -> None:
        self.paged: set[str] = set()

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        out = []
        for a in obs.alerts(since=-1):
            if a.state == "firing" and a.fingerprint not in self.paged:
                self.paged.add(a.fingerprint)
                out.append(Page(who="oncall", severity="P1", components=(a.labels.get("service", "?"),),
                                why=f"{a.name} fires", reason=f"alert {a.name}", evidence={"fingerprints": [a.fingerprint]}))
        return out


@pytest.fixture
def pager() -> Iterator[None]:
    REGISTRY.register("zt_pager", lambda cfg: Pager(), NoSettings, description="test pager", replace=True)
    yield
    REGISTRY.unregister("zt_pager")


class Cloud(FakeAdapter):
    def __init__(self, journal: Journal) -> None:
        super().__init__([FakeService("web", "small", 1)])
        self.conn = SimpleNamespace(config=SimpleNamespace(name="fake", config={"auth": {"auth_url": "http://ks/v3"}}))
        self.journal = journal
        self.prometheus = None

    def describe(self) -> dict[str, Any]:
        return {"cloud": "fake", "project": "p", "region": "r", "auth_url": "http://ks/v3", "prometheus": None}

    def validate(self) -> list[str]:
        return []


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zeroops")
    add_live_parser(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(["live", *argv])


def _build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sinks: list[dict[str, Any]]) -> None:
    config = parse_config({"engines": [{"engine": "zt_pager"}], "keep_min_servers": False, "sinks": sinks,
                           "services": [{"name": "web", "flavor": "small", "image": "i"}]}, "live.yaml")
    paths = live_paths(config, tmp_path / "state")
    monkeypatch.setattr(live, "_build", lambda args: (Cloud(Journal(paths.journal)), config, paths))
    monkeypatch.setenv("ZEROOPS_LOCK_DIR", str(tmp_path / "locks"))


def test_alert_in_page_out_metrics_and_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pager: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with AlertWebhook() as pages:  # where the page goes: an Alertmanager-format sink posting to a receiver
        _build(monkeypatch, tmp_path, [{"type": "alertmanager", "url": pages.url, "receiver": "oncall"}])
        hook_port, metrics_port = free_port(), free_port()
        seen: dict[str, Any] = {}

        def operator() -> None:
            base = f"http://127.0.0.1:{metrics_port}"
            end = time.monotonic() + 5.5  # within the controller's 6 s
            while time.monotonic() < end:
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                        seen["health_before"] = json.load(r)
                    if seen["health_before"]["role"] == "leader":
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            seen["posted"] = post(f"http://127.0.0.1:{hook_port}/alerts", PAYLOAD)
            while not pages.firing() and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.2)
            with urllib.request.urlopen(base + "/metrics", timeout=2) as r:
                seen["metrics"] = {(s.name, tuple(sorted(s.labels.items()))): s.value
                                   for f in text_string_to_metric_families(r.read().decode()) for s in f.samples}

        t = threading.Thread(target=operator, daemon=True)
        t.start()
        rc = live.live_main(_args("--mode", "act", "--duration", "6", "--ha-backend", f"file://{tmp_path}/ha",
                                  "--webhook-port", str(hook_port), "--webhook-host", "127.0.0.1",
                                  "--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"))
        t.join(8)
        out = capsys.readouterr()
        assert rc == 0, out.err
        got = pages.firing()
    assert seen["posted"] == (200, {"accepted": 2})
    assert [(a.labels["alertname"], a.labels["component"], a.labels["severity"]) for a in got] == \
        [("zeroops-page", "web", "P1")]  # one page, for the firing alert only
    m = seen["metrics"]
    assert m[("zeroops_live_decisions_total", (("engine", "zt-pager"), ("outcome", "executed"),
                                               ("verdict", "allow")))] == 1
    assert m[("zeroops_live_leader", ())] == 1 and m[("zeroops_live_steps_total", (("engine", "zt-pager"),))] >= 1
    assert seen["health_before"]["role"] == "leader" and seen["health_before"]["status"] == "ok"
    assert "HA: file://" in out.out and "acting as leader" in out.out and "Alertmanager webhook: POST" in out.out


def test_a_bad_sink_is_a_one_line_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pager: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _build(monkeypatch, tmp_path, [{"type": "slack", "url": "hooks.example.org/T0"}])
    assert live.live_main(_args("--config", "live.yaml", "--duration", "0.1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zeroops live: error: invalid config: live.yaml: sinks[0].url:"), err


def test_a_second_act_controller_for_the_scope_exits_6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       pager: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: another state directory (so another journal), the same scope, no HA: refused."""
    from control.leader import LeaderLease
    from zeroops.live_prod import default_lock_dir

    _build(monkeypatch, tmp_path, [])
    first = LeaderLease(f"file://{default_lock_dir()}", "x")  # the running controller's scope lock
    from zeroops.live_prod import scope_lock

    first.name = scope_lock(SimpleNamespace(adapter=Cloud(Journal(":memory:")), config=SimpleNamespace(cloud=None),
                                            scope=SimpleNamespace(name="default", projects=frozenset())))
    assert first.poll()
    try:
        assert live.live_main(_args("--mode", "act", "--duration", "0.1")) == 6
    finally:
        first.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "acts for scope 'default' on this host" in err[0], err
