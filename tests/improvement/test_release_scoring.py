"""Release scores on a small release train: gaming engines score badly on exactly the figure they game."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios.release_scoring import HARMFUL
from tests.builders import make_scenario
from tests.gaming import run_engines

SERVICES = [
    {"name": "api", "project": "p", "flavor": "small", "servers": 10, "min_servers": 10, "max_servers": 10,
     "capacity_per_vcpu": 50, "traffic": {"base": 500, "components": [{"type": "noise", "sigma": 0.03}]}},
]
TRAIN = dict(name="release-train", duration=12 * 3600, tick=30, telemetry={"scrape_interval": 30},
             services=SERVICES, operator={"response_delay": "24h"},
             releases={"rate_per_day": 40, "benign": 0.6, "improved": 0.2, "canary": {"fraction": 0.1, "bake": "1h"}})


@pytest.fixture(scope="module")
def train() -> dict[str, Any]:
    scn = make_scenario(**TRAIN)
    return {e: run_engines(scn, e) for e in ("static", "always-rollback")}


def test_never_rolling_back_lets_regressions_reach_full(train: dict[str, Any]) -> None:
    m = train["static"].score.metrics
    assert m["releases_bad"] > 0 and m["bad_releases_reaching_full"] > 0
    assert m["good_releases_rolled_back"] == 0 and m["change_success_rate"] < 1.0


def test_always_rollback_rolls_back_good_releases(train: dict[str, Any]) -> None:
    m = train["always-rollback"].score.metrics
    assert m["good_releases_rolled_back"] > 0 and m["rollbacks_of_good_releases"] > 0
    assert m["improvements_promoted"] in (None, 0.0) or m["improvements_promoted"] < \
        train["static"].score.metrics["improvements_promoted"]


def test_release_figures_follow_the_truth(train: dict[str, Any]) -> None:
    w = train["static"].world
    rels = [r for r in w.releases.releases if r.service >= 0 and r.seq > 1]
    m = train["static"].score.metrics
    assert m["releases_shipped"] == len(rels) and m["releases_bad"] == sum(r.effect in HARMFUL for r in rels)


def test_improvements_are_cumulative() -> None:
    """A neutral build after an efficient one keeps the efficiency (it is built on the code everyone runs)."""
    from twin.world import World

    w = World(make_scenario(services=SERVICES, duration=3600, tick=30,
                            releases={"rate_per_day": 0, "improved": 1.0, "benign": 1.0}))
    rm = w.releases
    rel = rm._new(0, "v2", "efficient", 1.0, "test")
    rm._roll(0, rel, 1.0, "test", 0.0)
    nxt = rm._new(0, "v3", "none", 0.0, "test")
    assert nxt.gain_cap == pytest.approx(1.3) and rel.effect not in HARMFUL


@pytest.mark.slow  # one more 12-hour run of the twin
def test_canary_analysis_on_the_train_beats_no_analysis(train: dict[str, Any]) -> None:
    from engines.registry import REGISTRY, register_set

    register_set("test-ci", [{"engine": "continuous_improvement", "bake_s": 600}], replace=True)
    try:
        run = run_engines(make_scenario(**TRAIN), "test-ci")
    finally:
        REGISTRY.unregister_set("test-ci")
    m, s = run.score.metrics, train["static"].score.metrics
    assert m["bad_releases_reaching_full"] == 0 < s["bad_releases_reaching_full"]
    assert m["good_releases_rolled_back"] <= 1 and m["change_success_rate"] == 1.0
