"""The statistics: Mann-Whitney U (false-positive rate, power, agreement with scipy) and the mSPRT under peeking."""

from __future__ import annotations

import numpy as np
import pytest

from engines.improvement.stats import MSPRT, mann_whitney, mann_whitney_numpy


def test_u_test_false_positive_rate_near_nominal() -> None:
    rng = np.random.default_rng(1)
    alpha, runs = 0.05, 2000
    p = np.array([mann_whitney(rng.normal(size=20), rng.normal(size=60))[1] for _ in range(runs)])
    fpr = float((p < alpha).mean())
    assert 0.03 <= fpr <= 0.065, fpr  # nominal 5 %, ± Monte Carlo error (sd 0.5 %)


def test_u_test_false_positive_rate_with_ties() -> None:
    rng = np.random.default_rng(2)
    p = np.array([mann_whitney(rng.integers(0, 4, 30), rng.integers(0, 4, 30))[1] for _ in range(2000)])
    assert float((p < 0.05).mean()) <= 0.065


def test_u_test_power_on_a_known_shift() -> None:
    rng = np.random.default_rng(3)
    p = np.array([mann_whitney(rng.normal(1.0, 1, 30), rng.normal(size=30))[1] for _ in range(500)])
    assert float((p < 0.01).mean()) >= 0.85  # a one-sd shift, n = 30 per group: power ≈ 0.9 at 1 %


def test_u_test_one_sided_and_degenerate() -> None:
    assert mann_whitney(np.zeros(10) - 1, np.zeros(10))[1] > 0.5  # canary better: no regression
    assert mann_whitney(np.ones(10), np.ones(10))[1] == 1.0  # all tied
    assert mann_whitney(np.array([]), np.ones(3))[1] == 1.0


@pytest.mark.slow  # importing scipy takes seconds
def test_u_test_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    for _ in range(20):
        x, y = rng.normal(0.3, 1, 25).round(1), rng.normal(0, 1, 40).round(1)
        u, p = mann_whitney_numpy(x, y)
        r = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
        assert u == pytest.approx(r.statistic) and p == pytest.approx(r.pvalue, rel=1e-9)


def _peeking_fpr(rng: np.random.Generator, runs: int, n: int, alpha: float) -> float:
    """Share of null streams whose always-valid p-value ever falls below alpha, looking after every sample."""
    hits = 0
    for _ in range(runs):
        t = MSPRT(tau=0.5)
        for v in rng.normal(0, 1, n):
            if t.add([v]) < alpha:
                hits += 1
                break
    return hits / runs


def test_msprt_valid_under_continuous_peeking() -> None:
    rng = np.random.default_rng(5)
    fpr = _peeking_fpr(rng, 300, 200, 0.05)
    assert fpr <= 0.05 + 0.03, fpr  # bounded by alpha (MC sd ≈ 1.3 %)


def test_naive_fixed_test_under_peeking_is_not_valid() -> None:
    """The contrast the mSPRT exists for: a z-test peeked at after every sample rejects far too often."""
    rng = np.random.default_rng(6)
    hits = 0
    for _ in range(300):
        x = rng.normal(0, 1, 300)
        z = np.cumsum(x) / np.sqrt(np.arange(1, 301))
        hits += bool((np.abs(z[9:]) > 1.96).any())
    assert hits / 300 > 0.2


def test_msprt_power_and_interval_coverage() -> None:
    rng = np.random.default_rng(7)
    found, covered = 0, 0
    for _ in range(200):
        t = MSPRT(tau=0.5)
        t.add(rng.normal(0.5, 1, 200))
        found += t.p_value < 0.05
        lo, hi = t.interval(0.05)
        covered += lo <= 0.5 <= hi
    assert found / 200 >= 0.9
    assert covered / 200 >= 0.93  # a confidence sequence covers at least 1 − alpha (conservative)


def test_msprt_burn_in_and_degenerate() -> None:
    t = MSPRT()
    assert t.add([0.1] * 5) == 1.0 and t.interval(0.05)[0] < 0.1
    assert MSPRT().interval(0.05) == (-np.inf, np.inf)
