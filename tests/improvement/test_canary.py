"""The canary engine and the fixed-threshold peer on a fake service whose metrics follow each server's version."""

from __future__ import annotations

from adapters.base import Deploy, RollbackDeploy
from engines.improvement import (
    ContinuousImprovement,
    ContinuousImprovementConfig,
    FixedThresholdCanary,
    FixedThresholdCanaryConfig,
)
from tests.improvement.harness import Effect, World

FAST = ContinuousImprovementConfig(bake_s=600, warmup_s=60, cadence=60)


def _ship(w: World, version: str) -> None:
    w.shipped_at = w.fake.now()
    w.fake.record_deploy("web", version, 0.05, actor="pipeline")


def test_good_release_goes_through_every_step() -> None:
    w = World({"2": Effect()})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 300)
    _ship(w, "2")
    w.run(eng, 3 * 3600)
    assert w.kinds() == [("deploy", 0.25), ("deploy", 0.5), ("deploy", 1.0)]
    assert set(w.versions()) == {"2"}
    promote = w.actions[0][1]
    assert promote.evidence["improvement"] == "canary_promote" and promote.evidence["comparisons"]


def test_no_false_rollbacks_over_null_releases() -> None:
    """Ten releases with no effect, each on fresh noise: every one promoted, none rolled back."""
    outcomes = []
    for salt in range(10):
        w = World({}, salt=salt)
        eng = ContinuousImprovement(FAST)
        w.run(eng, 300)
        _ship(w, "2")
        w.run(eng, 2700, step=60)
        outcomes.append(w.kinds())
    assert all(k == [("deploy", 0.25), ("deploy", 0.5), ("deploy", 1.0)] for k in outcomes), outcomes


def test_bad_release_rolled_back_at_the_first_step_with_evidence() -> None:
    w = World({"2": Effect(err=0.05)})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 300)
    _ship(w, "2")
    w.run(eng, 3600)
    assert w.kinds() == [("rollback_deploy", None)]
    at, rb = w.actions[0]
    assert isinstance(rb, RollbackDeploy) and rb.evidence["fraction"] == 0.05
    assert at - 300 <= 60 + 60 * FAST.min_samples / 2 + 120  # rollout, warmup, min samples, one interval
    bad = [c for c in rb.evidence["comparisons"] if c["regression"]]
    assert [c["metric"] for c in bad] == ["error_ratio"] and bad[0]["p"] < FAST.alpha / 7
    assert set(w.versions()) == {"1"}


def test_cost_drift_is_a_regression() -> None:
    w = World({"2": Effect(cpu=1.3)})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 300)
    _ship(w, "2")
    w.run(eng, 3600)
    assert w.kinds() == [("rollback_deploy", None)]
    bad = {c["metric"] for c in w.actions[0][1].evidence["comparisons"] if c["regression"]}
    assert {"cpu_per_request", "cost_per_request"} <= bad


def test_load_dependent_latency_caught_before_full() -> None:
    """Latency shows only at the service level: too small at 5 %, caught at a later step, never at 100 %."""
    w = World({"2": Effect(lat=3.0)})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 1800)
    _ship(w, "2")
    w.run(eng, 3 * 3600)
    kinds = w.kinds()
    assert kinds[-1] == ("rollback_deploy", None) and ("deploy", 1.0) not in kinds


def test_memory_leak_caught() -> None:
    w = World({"2": Effect(mem=0.2)})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 300)
    _ship(w, "2")
    w.run(eng, 3600)
    assert w.kinds() == [("rollback_deploy", None)]


def test_slow_leak_caught_by_its_growth_before_the_level_shows() -> None:
    """A leak of 20 % an hour: over a 10-minute step the canary's mean is up under 2 %, the level tolerance."""
    w = World({"2": Effect(leak=0.2)})
    eng = ContinuousImprovement(FAST)
    w.run(eng, 300)
    _ship(w, "2")
    w.run(eng, 3 * 3600)
    assert w.kinds()[-1] == ("rollback_deploy", None) and ("deploy", 1.0) not in w.kinds()
    bad = {c["metric"] for c in w.actions[-1][1].evidence["comparisons"] if c["regression"]}
    assert bad == {"memory_growth"}


def test_experiment_winner_is_rolled_out_through_the_canary_path() -> None:
    w = World({"exp1-web": Effect(cpu=0.8)})
    eng = ContinuousImprovement(ContinuousImprovementConfig(bake_s=600, cadence=60, experiments_per_week=7 * 24,
                                                            experiment_fraction=0.25))
    w.run(eng, 4 * 3600)
    deploys = [a for _, a in w.actions if isinstance(a, Deploy) and a.version == "exp1-web"]
    assert [d.fraction for d in deploys] == [0.25, 0.5, 1.0]
    ex = deploys[1].evidence["experiment"]
    assert ex["decision"] == "winner" and ex["ci"][0] < ex["effect"] < ex["ci"][1] < 0
    assert abs(ex["effect"] - (-0.2)) < 0.05


def test_experiment_loser_rolled_back() -> None:
    w = World({"exp1-web": Effect(cpu=1.05)})  # 5 % worse: under the guard's tolerance, found by the mSPRT
    eng = ContinuousImprovement(ContinuousImprovementConfig(cadence=60, experiments_per_week=7 * 12))
    w.run(eng, 2 * 3600)
    rb = [a for _, a in w.actions if isinstance(a, RollbackDeploy)]
    assert rb and rb[0].evidence["experiment"]["decision"] == "loser"


def test_peer_promotes_good_and_rolls_back_errors_but_misses_cost_drift() -> None:
    cfg = FixedThresholdCanaryConfig(iterations=5)
    for effect, want in ((Effect(), "promote"), (Effect(err=0.05), "rollback"), (Effect(cpu=1.5), "promote")):
        w = World({"2": effect})
        eng = FixedThresholdCanary(cfg)
        w.run(eng, 300)
        _ship(w, "2")
        w.run(eng, 3 * 3600)
        kinds = w.kinds()
        if want == "promote":
            assert kinds == [("deploy", 0.25), ("deploy", 0.5), ("deploy", 1.0)], effect
        else:
            assert kinds == [("rollback_deploy", None)]


def test_config_errors_name_the_setting() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="steps"):
        ContinuousImprovementConfig(steps=(0.5, 0.25, 1.0))
    with pytest.raises(ValidationError, match="steps"):
        FixedThresholdCanaryConfig(steps=(0.05, 0.5))
