"""The detector API: causality, batch = one by one, constant series, NaN and gaps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.detection import METHODS, make_detector

ALL = sorted(METHODS)
OPTS = {"trend": {"limit": 100.0, "window_s": 3600.0, "horizon_s": 3600.0}, "burnrate": {"slo": 0.99},
        "ensemble": {"limit": 100.0}}


def det(method: str):
    return make_detector(method, **OPTS.get(method, {}))


def noisy(n: int, seed: int = 0, step: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(n) * step, 10 + rng.normal(0, 1, n)


series_st = st.lists(
    st.tuples(st.floats(0.0, 900.0),  # time step, zero allowed (duplicates)
              st.one_of(st.floats(-1e3, 1e3), st.just(float("nan")))),
    min_size=2, max_size=120)


@pytest.mark.parametrize("method", ALL)
@settings(max_examples=12, deadline=None)
@given(rows=series_st, cut=st.integers(1, 119))
def test_a_score_never_changes_when_later_rows_arrive(method: str, rows: list[tuple[float, float]], cut: int) -> None:
    t = np.cumsum([r[0] for r in rows]) + 1.7e9
    x = np.array([r[1] for r in rows])
    cut = min(cut, len(rows))
    full = det(method).score_series(t, x)
    prefix = det(method).score_series(t[:cut], x[:cut])
    np.testing.assert_array_equal(full[:cut], prefix)
    assert np.all((full >= 0) & (full <= 1))


@pytest.mark.parametrize("method", ALL)
def test_update_many_scores_each_series_as_if_alone(method: str) -> None:
    rng = np.random.default_rng(1)
    n = 240
    t = np.arange(n) * 60.0 + 1.7e9
    X = np.stack([10 + rng.normal(0, 1, n), 50 + 5 * np.sin(np.arange(n) / 20), np.r_[np.zeros(120), np.ones(120)]], 1)
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    X[200, 0] = 40.0
    batch = det(method)
    got = np.stack([batch.update_many(t[k], X[k]) for k in range(n)])
    for j in range(X.shape[1]):
        alone = det(method).score_series(t, X[:, j])
        np.testing.assert_allclose(got[:, j], alone, atol=1e-9)


@pytest.mark.parametrize("method", ALL)
def test_a_constant_series_scores_zero(method: str) -> None:
    values = np.array([0.0, 1.0, 42.0, -3.5, 1e9, 1e-9])
    if method == "burnrate":
        values = np.zeros(3)  # an error ratio: constant 0 (a constant error ratio above the budget does burn it)
    opts = {**OPTS.get(method, {}), **({"limit": 2e9} if "limit" in OPTS.get(method, {}) else {})}
    d = make_detector(method, **opts)
    worst = max(d.update_many(k * 60.0, values).max() for k in range(700))
    assert worst == 0.0


@pytest.mark.parametrize("method", ALL)
def test_nan_rows_score_zero_and_do_not_crash(method: str) -> None:
    t, x = noisy(600)
    x[::7] = np.nan
    x[100:160] = np.nan
    x[5] = np.inf
    s = det(method).score_series(t, x)
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
    assert np.all(s[~np.isfinite(x)] == 0.0)


@pytest.mark.parametrize("method", ["ensemble", "seasonal", "cusum", "gaussian"])
def test_gaps_and_missing_values_raise_no_alarm_on_plain_noise(method: str) -> None:
    t, x = noisy(900, seed=3)
    keep = np.ones(len(t), bool)
    keep[400:700] = False  # a 5-hour gap
    keep[750:770] = False
    t, x = t[keep], x[keep]
    x[np.random.default_rng(4).uniform(size=len(x)) < 0.1] = np.nan
    s = det(method).score_series(t, x)
    assert s.max() < 0.5


def test_irregular_timestamps_are_fine() -> None:
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.exponential(60.0, 800))
    x = 5 + rng.normal(0, 0.2, len(t))
    x[600] += 5
    s = make_detector().score_series(t, x)
    assert s[600] >= 0.5
    assert (s >= 0.5).sum() <= 3


def test_wrong_batch_size_and_unknown_method_are_errors() -> None:
    d = make_detector()
    d.update_many(0.0, np.zeros(3))
    with pytest.raises(ValueError, match="expected 3 values"):
        d.update_many(1.0, np.zeros(4))
    with pytest.raises(ValueError, match="unknown detection method"):
        make_detector("magic")
