"""The predictive scaler in the twin, on small scenarios: to zero and back, and no gaming of the savings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.runtime import AllowAll
from engines.registry import resolve
from scenarios.loader import load_scenario
from scenarios.runner import compare_to_static, run_scenario
from tests.builders import make_scenario
from tests.gaming import run_engines

HERE = Path(__file__).parent
PRED = {"name": "pred", "engines": [{"engine": "predictive_scaler"}]}


def _done(run: Any, kind: str) -> list[Any]:
    return [r for r in run.records if r.kind == kind and r.outcome == "executed"]


@pytest.fixture(scope="module")
def idle_run() -> Any:
    return run_scenario(load_scenario(HERE / "idle-to-zero.yaml"), resolve(PRED))


def test_an_idle_service_goes_to_zero_keeps_a_warm_pool_and_comes_back_on_its_first_request(idle_run: Any) -> None:
    stops = [r for r in _done(idle_run, "stop_server")]
    assert len(stops) == 1 and "scale to zero" in stops[0].action.reason
    assert stops[0].at >= 20 * 60 + 60 * 60  # idle from 20 min: not before ScaleToZeroIdleMinutes (60)
    starts = [r for r in _done(idle_run, "start_server") if "scale from zero" in r.action.reason]
    assert len(starts) == 1 and starts[0].action.server_id == stops[0].action.server_id
    assert 110 * 60 < starts[0].at <= 110 * 60 + 15  # the first step after the first request (cadence 15 s)
    ev = starts[0].action.evidence
    assert ev["warm_pool_cost_per_hour"] < ev["cost_before_per_hour"]  # measured from the service's spend
    assert not [r for r in idle_run.records if r.action.target() == "api" and r.kind == "stop_server"]


def test_scaling_everything_to_max_saves_nothing_the_scaler_saves_a_lot() -> None:
    scn = make_scenario(name="scale-gaming", duration=2400)
    runs = [run_engines(scn, "static"), run_engines(scn, "scale-everything"),
            run_scenario(scn, resolve(PRED), gate=AllowAll())]
    compare_to_static(runs)
    static, gamer, pred = (r.score.metrics for r in runs)
    assert gamer["cost_savings_raw"] < -1.0
    assert pred["cost"] < 0.5 * gamer["cost"]
    assert pred["cost"] <= static["cost"]  # never dearer than the static fleet sized for the load
    assert pred["slo_violation_minutes"] <= static["slo_violation_minutes"] + 1.0
