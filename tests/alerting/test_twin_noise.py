"""The twin's noise features for the noisy week: traffic bursts (transient blips) and planned maintenance."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tests.builders import make_scenario
from tests.gaming import run_engines
from twin.config import Traffic
from twin.traffic import rate_series


def test_bursts_are_short_random_spikes_of_the_given_factor() -> None:
    tr = Traffic.model_validate({"base": 100, "components": [
        {"type": "bursts", "rate_per_day": 24, "duration": 120, "factor": 3.0, "ramp": 30}]})
    t = np.arange(0.0, 4 * 86400, 15.0)
    r = rate_series(tr, t, np.random.default_rng(3))
    starts = np.flatnonzero(np.diff((r > 150).astype(int)) == 1)
    assert 60 <= len(starts) <= 130  # about 96 in four days (a Poisson count)
    assert r.max() == pytest.approx(300.0) and r.min() == pytest.approx(100.0)
    assert (r > 150).mean() < 0.1  # transient: the rate is at its base most of the time
    again = rate_series(tr, t, np.random.default_rng(3))
    assert np.array_equal(r, again)  # drawn from the given stream: the same for every engine set on a seed


def test_planned_maintenance_stops_and_restarts_servers_and_is_no_fault() -> None:
    scn = make_scenario(duration=2400, maintenance=[{"at": 600, "duration": 900, "service": "api", "servers": 2}])
    run = run_engines(scn, "static")
    w = run.world
    (t0, svc, stopped, kind0), (t1, _, started, kind1) = w.maintenance_log
    assert (t0, svc, kind0, t1, kind1) == (600.0, "api", "stop", 1500.0, "start") and stopped == started
    assert len(stopped) == 2
    down = [a for a in w.alerting.alerts if a.name == "InstanceDown" and a.state == "firing"]
    assert {a.labels["server"] for a in down} == set(stopped) and all(600 < a.at < 1600 for a in down)
    assert list(w.truth.faults) == [] and run.score.metrics["incidents"] == 0


@pytest.mark.parametrize(("entry", "message"), [
    ({"at": 60, "duration": 60, "service": "nope"}, "maintenance[0].service: unknown 'nope'"),
    ({"at": 99999, "duration": 60, "service": "api"}, "maintenance[0].at"),
    ({"at": 60, "duration": 0, "service": "api"}, "duration"),
])
def test_bad_maintenance_is_refused_by_name(entry: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_scenario(maintenance=[entry])
