"""Accuracy: a known daily-seasonal series after two periods, honest interval coverage, the offline metrics."""

from __future__ import annotations

import numpy as np
import pytest

from engines.forecasting import accuracy as acc
from engines.forecasting import make_forecaster

DAY = 86400.0
T0 = 1767571200.0


def test_a_daily_seasonal_series_is_forecast_tightly_after_two_periods() -> None:
    rng = np.random.default_rng(5)
    t = T0 + np.arange(0, 4 * DAY, 300.0)
    h = (t % DAY) / DAY
    x = 500 * (1 + 0.5 * np.sin(2 * np.pi * h) + 0.2 * np.sin(4 * np.pi * h)) + rng.normal(0, 5, len(t))
    y = acc.targets(t, x, 900, 300)
    late = t >= T0 + 2.5 * DAY
    for model in ("seasonal", "ensemble"):
        f, lo, hi = make_forecaster(model).forecast_series(t, x)
        s = acc.score(f[late], y[late], lo[late], hi[late], acc.seasonal_naive(t, x, 900, 300)[late])
        assert s.mape < 0.02, (model, s)
        assert s.within_10 > 0.99, (model, s)
        # the seasonal model beats the same window a day earlier; the ensemble, switching between the two, about ties
        assert s.mase < (1.0 if model == "seasonal" else 1.1), (model, s)


@pytest.mark.parametrize("model", ["persistence", "ensemble"])
def test_intervals_cover_about_their_nominal_share_on_stationary_noise(model: str) -> None:
    rng = np.random.default_rng(6)
    t = T0 + np.arange(0, 2 * DAY, 60.0)
    x = 100 + rng.normal(0, 10, len(t))
    f, lo, hi = make_forecaster(model, coverage=0.8).forecast_series(t, x)
    y = acc.targets(t, x, 900, 300)
    late = t >= T0 + 6 * 3600
    s = acc.score(f[late], y[late], lo[late], hi[late])
    assert 0.74 <= s.coverage <= 0.86, s


def test_targets_are_window_means_at_the_horizon_and_end_with_the_series() -> None:
    t = np.arange(0.0, 600.0, 60.0)  # 0 … 540
    x = np.arange(10.0)
    y = acc.targets(t, x, 120.0, 180.0)  # row 0: mean of samples in (-60, 120] = 0, 1, 2
    assert y[0] == pytest.approx(1.0)
    assert y[3] == pytest.approx(4.0)  # (120, 300]: 3, 4, 5
    assert np.isnan(y[-1]) and np.isnan(y[-2])  # past the end: not scored
    assert acc.effective_window(np.arange(0.0, 6000.0, 600.0), 300.0) == 600.0


def test_score_counts_within_tolerance_coverage_and_mase() -> None:
    y = np.array([100.0, 100.0, 100.0, 100.0])
    f = np.array([105.0, 89.0, 100.0, np.nan])
    s = acc.score(f, y, f - 5, f + 5, naive=np.array([110.0, 110.0, 110.0, 110.0]))
    assert s.n == 3 and s.within_10 == pytest.approx(2 / 3) and s.coverage == pytest.approx(2 / 3)
    assert s.mape == pytest.approx(16 / 300) and s.mase == pytest.approx((16 / 3) / 10)


def test_the_noise_floor_of_poisson_counts_is_far_from_one() -> None:
    assert acc.noise_floor(100, window_samples=1) < 0.75  # a perfect rate forecast vs one raw minute
    assert acc.noise_floor(100, window_samples=5) > acc.noise_floor(100, window_samples=1)
    assert acc.noise_floor(100, window_samples=1, dispersion=10) < 0.45  # bursty counts: under half
