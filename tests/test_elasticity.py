"""SPEC RG elasticity metrics: hand-computed curves, the twin's demand model, and engines that game them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scenarios.elasticity import elasticity, run_elasticity, service_curves, slo_utilisation
from scenarios.schema import Scenario
from tests.builders import scenario_dict
from tests.gaming import run_engines
from twin.world import World


def test_hand_computed_curve() -> None:
    # minute steps: demand 2 2 4 4, supply 2 3 3 4
    e = elasticity([2, 2, 4, 4], [2, 3, 3, 4], 60.0)
    assert e.under_accuracy == pytest.approx(100 * (1 / 4) * 60 / 240)  # one server short of 4 for a minute
    assert e.over_accuracy == pytest.approx(100 * (1 / 2) * 60 / 240)  # one server over 2 for a minute
    assert e.under_timeshare == pytest.approx(25.0)
    assert e.over_timeshare == pytest.approx(25.0)
    # supply moves up, flat, up; demand flat, up, flat: never in step
    assert e.instability == pytest.approx(100.0)
    assert e.jitter_per_hour == pytest.approx((2 - 1) / (240 / 3600))


def test_perfect_tracking_scores_zero() -> None:
    d = [1, 3, 5, 5, 2, 2]
    e = elasticity(d, d, [10, 20, 30, 10, 10, 10])
    assert (e.under_accuracy, e.over_accuracy, e.under_timeshare, e.over_timeshare) == (0, 0, 0, 0)
    assert e.instability == 0.0 and e.jitter_per_hour == 0.0


def test_uneven_steps_weight_by_time() -> None:
    e = elasticity([4, 4], [2, 4], [30.0, 90.0])  # half of demand missing for 30 s of 120 s
    assert e.under_accuracy == pytest.approx(100 * 0.5 * 30 / 120)
    assert e.under_timeshare == pytest.approx(25.0)


def test_zero_demand_counts_surplus_per_unit() -> None:
    e = elasticity([0, 0], [2, 2], 60.0)
    assert e.over_accuracy == pytest.approx(200.0)  # divided by one unit where nothing is demanded
    assert e.over_timeshare == pytest.approx(100.0)


def test_bad_curves_are_refused() -> None:
    with pytest.raises(ValueError, match="1-D curves of one length"):
        elasticity([1, 2], [1], 1.0)


def _scenario(api_servers: int, duration: float = 1800, noise: bool = True) -> Scenario:
    d = scenario_dict(duration=duration)
    api = d["services"][0]
    api["servers"] = api_servers
    api["min_servers"] = 1
    api["max_servers"] = 30
    if not noise:
        api["traffic"]["components"] = []
    return Scenario.model_validate(d)


def test_demand_is_the_servers_that_meet_the_slo() -> None:
    """Supplied exactly the demanded servers, the api meets its latency SLO; one fewer, it breaches."""
    scn = _scenario(4, duration=600, noise=False)
    w = World(scn)
    rho = slo_utilisation(w)[0]
    cap = 2 * 50.0  # small flavor: 2 vCPUs x 50 requests per second
    need = math.ceil(200.0 / (cap * rho))
    for servers, breaches in ((need, False), (need - 1, True)):
        w = World(_scenario(servers, duration=600, noise=False))
        w.run()
        assert (w.truth.breach_seconds[0] > 0) == breaches, (servers, need)
    dt, demand, supply = service_curves(w)  # type: ignore[misc]
    assert len(dt) == w.ticks and float(dt.sum()) == pytest.approx(600.0)
    assert demand[-1, 0] == need and supply[-1, 0] == pytest.approx(need - 1)


def test_run_elasticity_reports_each_interactive_service() -> None:
    w = World(_scenario(4, duration=300))
    w.run()
    el = run_elasticity(w)
    assert set(el["elasticity_by_service"]) == {"api", "db"}
    assert el["elasticity_over_timeshare"] == pytest.approx(
        np.mean([v["over_timeshare"] for v in el["elasticity_by_service"].values()]))


def test_gaming_scale_to_max_is_over_provisioned_and_doing_nothing_at_floor_is_under() -> None:
    """An engine that scales everything to its maximum scores badly on over-provisioning, one that sits at the
    floor under load scores badly on under-provisioning; the reactive baseline beats each on its figure."""
    scn = _scenario(1)  # the api starts at its floor of one server, under a load that needs three
    big = run_engines(scn, "scale-everything").score.metrics
    idle = run_engines(scn, "do-nothing").score.metrics
    hpa = run_engines(scn, "reactive").score.metrics
    assert big["elasticity_over_accuracy"] > 2 * hpa["elasticity_over_accuracy"]
    assert big["elasticity_over_timeshare"] > 90.0
    assert idle["elasticity_under_timeshare"] > 45.0  # the api (one of two services) short all the time
    assert idle["elasticity_under_accuracy"] > 2 * hpa["elasticity_under_accuracy"]
    assert hpa["elasticity_under_timeshare"] < idle["elasticity_under_timeshare"]


def test_longest_unserved_stretch_counts_only_demand_with_no_supply() -> None:
    from scenarios.elasticity import longest_unserved

    dt = np.full(8, 5.0)
    demand = np.array([0, 1, 1, 1, 0, 2, 2, 2], dtype=float)
    supply = np.array([0, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    assert longest_unserved(demand, supply, dt) == 15.0  # the last three ticks; the idle tick 4 is no wait
    assert longest_unserved(demand, demand, dt) == 0.0
