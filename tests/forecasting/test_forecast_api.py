"""The forecaster API: causality, one series vs N, gaps/NaN/constant series, level shifts, bad options."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.forecasting import MODELS, make_forecaster

ALL = sorted(MODELS)
T0 = 1767571200.0

value_st = st.one_of(st.floats(-50, 500), st.just(float("nan")))
series_st = st.lists(st.tuples(st.sampled_from([0.0, 20.0, 60.0, 60.0, 61.0, 300.0, 5000.0]), value_st),
                     min_size=2, max_size=90)


@pytest.mark.parametrize("model", ALL)
@settings(max_examples=10, deadline=None)
@given(rows=series_st, cut=st.integers(1, 89))
def test_a_forecast_never_changes_when_later_rows_arrive(model: str, rows: list[tuple[float, float]], cut: int) -> None:
    t = np.cumsum([r[0] for r in rows]) + T0
    x = np.array([r[1] for r in rows])
    cut = min(cut, len(rows))
    full = make_forecaster(model, horizon_s=600).forecast_series(t, x)
    prefix = make_forecaster(model, horizon_s=600).forecast_series(t[:cut], x[:cut])
    for a, b in zip(full, prefix, strict=True):
        np.testing.assert_array_equal(a[:cut], b)
    m, lo, hi = full
    ok = np.isfinite(m)
    assert np.all(lo[ok] <= m[ok] + 1e-9) and np.all(m[ok] <= hi[ok] + 1e-9)


@pytest.mark.parametrize("model", ALL)
def test_n_series_at_once_match_one_at_a_time(model: str) -> None:
    rng = np.random.default_rng(1)
    t = T0 + np.arange(400) * 60.0
    x = 100 + 30 * np.sin(2 * np.pi * t / 7200)[:, None] + rng.normal(0, 3, (400, 3))
    x[rng.uniform(size=x.shape) < 0.05] = np.nan
    many = make_forecaster(model)
    for i in range(len(t)):
        many.update_many(t[i], x[i])
    got = many.forecast_many()
    for k in range(3):
        one = make_forecaster(model)
        for i in range(len(t)):
            one.update(t[i], x[i, k])
        np.testing.assert_allclose([g[k] for g in got], one.forecast(), rtol=1e-9)


@pytest.mark.parametrize("model", ALL)
def test_a_constant_series_is_forecast_exactly_with_a_zero_width_interval(model: str) -> None:
    t = T0 + np.arange(300) * 60.0
    m, lo, hi = make_forecaster(model).forecast_series(t, np.full(300, 42.0))
    assert np.allclose(m, 42.0) and np.allclose(lo, 42.0) and np.allclose(hi, 42.0)


@pytest.mark.parametrize("model", ALL)
def test_nan_values_and_gaps_are_skipped(model: str) -> None:
    t = T0 + np.arange(600) * 60.0
    x = 200 + np.random.default_rng(2).normal(0, 5, 600)
    x[::7] = np.nan
    keep = (t < T0 + 4 * 3600) | (t > T0 + 7 * 3600)  # a three-hour gap
    m, lo, hi = make_forecaster(model).forecast_series(t[keep], x[keep])
    assert np.isnan(m[0])  # row 0 is NaN: nothing to forecast from yet
    assert np.all(np.isfinite(m[1:])) and np.all(np.isfinite(lo[1:])) and np.all(np.isfinite(hi[1:]))
    assert abs(m[-1] - 200) < 15


def test_nan_before_any_value_gives_nan_then_forecasts() -> None:
    fc = make_forecaster("ensemble")
    fc.update(T0, float("nan"))
    assert all(np.isnan(v) for v in fc.forecast())
    fc.update(T0 + 60, 10.0)
    assert fc.forecast() == (10.0, 10.0, 10.0)


@pytest.mark.parametrize("model", ["ensemble", "seasonal", "persistence"])
def test_a_level_shift_is_followed_within_half_an_hour(model: str) -> None:
    rng = np.random.default_rng(3)
    t = T0 + np.arange(1200) * 60.0
    x = np.where(np.arange(1200) < 900, 100.0, 200.0) + rng.normal(0, 2, 1200)
    m, _, _ = make_forecaster(model).forecast_series(t, x)
    assert abs(m[930] - 200) < 10  # 30 minutes after the shift


def test_forecasts_at_other_horizons_widen_the_interval() -> None:
    rng = np.random.default_rng(4)
    fc = make_forecaster("persistence", horizon_s=900)
    for i in range(600):
        fc.update(T0 + 60 * i, 100 + rng.normal(0, 10))
    m1, lo1, hi1 = fc.forecast()
    m4, lo4, hi4 = fc.forecast(3600)
    assert hi4 - lo4 == pytest.approx(2 * (hi1 - lo1))


def test_bad_names_options_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown forecasting model 'arima'"):
        make_forecaster("arima")
    with pytest.raises(ValueError, match="coverage must be in"):
        make_forecaster("ensemble", coverage=1.5)
    with pytest.raises(ValueError, match="horizon_s and window_s must be > 0"):
        make_forecaster("seasonal", horizon_s=0)
    with pytest.raises(TypeError):
        make_forecaster("persistence", nonsense=1)
    fc = make_forecaster("ensemble")
    with pytest.raises(ValueError, match="no data yet"):
        fc.forecast()
    fc.update_many(T0, np.ones(3))
    with pytest.raises(ValueError, match="expected 3 values, got 2"):
        fc.update_many(T0 + 60, np.ones(2))


def test_recent_accuracy_is_the_share_of_horizon_forecasts_within_ten_percent() -> None:
    t = T0 + np.arange(600) * 60.0
    calm = make_forecaster("persistence")
    calm.forecast_series(t, np.full(600, 100.0))
    assert calm.accuracy[0] == 1.0
    wild = make_forecaster("persistence")
    wild.forecast_series(t, np.where(np.arange(600) // 15 % 2 == 0, 100.0, 300.0))  # flips every 15 minutes
    assert wild.accuracy[0] < 0.2
    assert np.isnan(make_forecaster("ensemble").accuracy).all()
