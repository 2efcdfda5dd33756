"""The budget scores cannot be gamed: each gaming engine scores badly on the figure it aims at."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest

from adapters.base import Action, Notify, Observation, ShelveServer
from scenarios.budget_scoring import anomaly_episodes
from tests.builders import make_scenario
from tests.gaming import installed
from zeroops.budget_cli import main as budget_main

DAY = 86400.0


def _scenario(**kw: Any) -> Any:
    svcs = [{"name": "api", "project": "p", "flavor": "small", "servers": 3, "min_servers": 1, "max_servers": 10,
             "capacity_per_vcpu": 50, "traffic": {"base": 150, "components": [{"type": "noise", "sigma": 0.03}]}}]
    args: dict[str, Any] = {"name": "budget-small", "duration": 2 * DAY, "tick": 60,
                            "telemetry": {"scrape_interval": 60}, "services": svcs,
                            "budgets": [{"project": "*", "period": 2 * DAY, "limit": 10.0},
                                        {"project": "p", "period": 2 * DAY, "limit": 10.0}]}
    return make_scenario(**(args | kw))


class StopEverything:
    """Meets any budget: shelves every server it sees."""

    name = "stop-everything"
    cadence = 60.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [ShelveServer(server_id=s.id) for s in obs.servers(status="ACTIVE")]


class AnomalyEveryStep:
    """Cries 'cost anomaly' every 5 minutes, hoping to be early for any spike."""

    name = "anomaly-spam"
    cadence = 300.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [Notify(component="api", message="anomaly!", evidence={"cost_anomaly": {"project": "p"}})]


class ForecastZero:
    """Forecasts the period's spend as nothing at all, every hour."""

    name = "forecast-zero"
    cadence = 3600.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        b = obs.budgets["*"]
        fc = {"point": 0.0, "lo": 0.0, "hi": 0.0}
        return [Notify(component="account", message="all is fine", evidence={"budget_forecast": {
            "project": "*", "period_start": b.period_start, "period_end": b.period_start + b.period_s,
            "forecast_period_end": fc}})]


def _run(name: str, engine: Any) -> Any:
    from control.runtime import AllowAll
    from scenarios.runner import run_scenario

    scn = _scenario()
    if engine is None:
        return run_scenario(scn, name, gate=AllowAll())
    with installed(name, lambda: [engine()]):
        return run_scenario(scn, name, gate=AllowAll())


@pytest.mark.slow
def test_gaming_engines_score_badly_on_what_they_game() -> None:
    static = _run("static", None).score.metrics
    stop = _run("stop-everything", StopEverything).score.metrics
    assert stop["budget_overruns"] == 0 and stop["cost"] < 0.2 * static["cost"]  # it meets the budget...
    assert stop["availability"] < static["availability"] - 0.5  # ...by serving nobody
    assert stop["slo_violation_minutes"] > static["slo_violation_minutes"] + 1000
    spam = _run("anomaly-spam", AnomalyEveryStep).score.metrics
    assert spam["cost_anomalies"] == 0 and spam["cost_anomaly_false_alarms"] >= 500
    zero = _run("forecast-zero", ForecastZero).score.metrics
    assert zero["budget_forecast_error"] == pytest.approx(1.0) and zero["budget_forecast_coverage"] == 0.0


def test_truth_finds_a_50_percent_spike_and_nothing_on_a_seasonal_series() -> None:
    t = np.arange(0, 5 * DAY + 1, 60.0)
    rate = 2.0 * (1 + 0.4 * np.sin(2 * np.pi * t / DAY))
    plain = np.cumsum(rate * 60 / 3600)
    assert anomaly_episodes(t, plain, 5 * DAY) == []
    onset = 4 * DAY + 3600
    spiky = np.cumsum(np.where(t >= onset, rate * 1.6, rate) * 60 / 3600)
    eps = anomaly_episodes(t, spiky, 5 * DAY)
    assert len(eps) == 1 and onset <= eps[0][0] <= onset + 900


def test_budget_cli_reads_a_run_and_refuses_bad_input(tmp_path: Any, capsys: Any) -> None:
    from control.runtime import AllowAll
    from scenarios.results import write_run
    from scenarios.runner import run_scenario

    scn = _scenario(duration=3 * 3600, engines=[{"name": "b", "engines": [{"engine": "budget_manager",
                                                                            "report_every_s": 3600}]}])
    write_run(run_scenario(scn, "b", gate=AllowAll()), tmp_path)
    assert budget_main(["budget", "forecast", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "budget-small / b" in out and "period end" in out
    assert budget_main(["budget", "status", str(tmp_path), "--json"]) == 0
    assert budget_main(["budget", "anomalies", str(tmp_path / "budget-small" / "b")]) == 0
    capsys.readouterr()
    assert budget_main(["budget", "status", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert budget_main(["budget", "status", str(tmp_path), "--engines", "zzz"]) == 2
    assert "no run folder" in capsys.readouterr().err
    bad = tmp_path / "x" / "y"
    bad.mkdir(parents=True)
    (bad / "actions.csv").write_text("a,b\n1,2\n")
    assert budget_main(["budget", "status", str(bad)]) == 2
    assert "missing columns" in capsys.readouterr().err
