"""Detection quality on small labelled cases: bounded delay, few false positives (batched for speed)."""

from __future__ import annotations

import numpy as np

from engines.detection import BurnRate, EnsembleDetector, TrendToLimit, WindowedGaussian

STEP = 300.0
DAY = 86400.0
T0 = 1767571200.0  # a Monday 00:00 UTC


def run(det, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.stack([det.update_many(t[k], X[k]) for k in range(len(t))])


def onsets(alarm: np.ndarray) -> np.ndarray:
    return np.flatnonzero(alarm & ~np.r_[False, alarm[:-1]])


def test_spike_shift_dip_variance_in_a_daily_series() -> None:
    rng = np.random.default_rng(7)
    n = int(8 * DAY / STEP)
    t = T0 + np.arange(n) * STEP
    day = 2 * np.pi * (t - T0) / DAY
    base = 100 + 30 * np.sin(day) + 8 * np.sin(2 * day)
    X = np.stack([base + rng.normal(0, 2, n) for _ in range(6)], 1)
    X[:, 5] = 100 + rng.normal(0, 2, n)  # no seasonality at all
    spike, shift, dip, var = int(6 * DAY / STEP), int(6.5 * DAY / STEP), int(6.2 * DAY / STEP), int(6.7 * DAY / STEP)
    X[spike, 0] += 16  # 8 sigma
    X[shift:, 1] += 10  # 5 sigma, for good
    X[dip:dip + 6, 2] -= 0.4 * base[dip:dip + 6]  # an outage-like dip for 30 min
    X[var:, 3] = base[var:] + rng.normal(0, 8, n - var)  # noise x4
    det = EnsembleDetector()
    S = run(det, t, X)
    assert det.base.components[0].active.tolist() == [True] * 5 + [False]
    alarm = S >= 0.5
    settled = int(3 * DAY / STEP)  # after the daily profile is learned
    for col, at, max_delay in ((0, spike, 0), (1, shift, 6), (2, dip, 1), (3, var, 12)):
        hits = onsets(alarm[:, col])
        hits = hits[hits >= at]
        assert len(hits) and hits[0] - at <= max_delay, (col, hits[:3])
    for col, at in ((0, spike), (1, shift), (2, dip), (3, var)):
        before = onsets(alarm[settled:at, col])
        assert len(before) <= 1, (col, before)  # at most one false alarm in 3 days before the anomaly
    assert len(onsets(alarm[settled:, 4])) <= 1 and len(onsets(alarm[:, 5])) <= 1


def test_a_level_shift_ends_its_alarm_once_the_series_settles() -> None:
    rng = np.random.default_rng(8)
    t = T0 + np.arange(1200) * 60.0
    x = 50 + rng.normal(0, 1, 1200)
    x[600:] += 6
    s = EnsembleDetector(periods=()).score_series(t, x)
    alarm = s >= 0.5
    assert alarm[600:610].any()
    assert not alarm[800:].any()  # the baseline accepted the new level


def test_a_slow_ramp_is_predicted_before_it_reaches_the_limit() -> None:
    rng = np.random.default_rng(9)
    n = int(7 * DAY / STEP)
    t = T0 + np.arange(n) * STEP
    daily = 0.08 * np.sin(2 * np.pi * (t - T0) / DAY)
    X = np.stack([0.45 + daily + rng.normal(0, 0.015, n) for _ in range(2)], 1)
    start = int(4 * DAY / STEP)
    X[start:, 0] += (t[start:] - t[start]) / (36 * 3600) * 0.6  # reaches 1.0 at the daily peak after ~26 h
    X = np.minimum(X, 1.0)
    S = run(EnsembleDetector(limit=1.0), t, X)
    cross = int(np.flatnonzero(X[:, 0] >= 0.999)[0])
    settled = int(3 * DAY / STEP)  # the daily profile is learned after two days
    first = settled + int(np.flatnonzero(S[settled:, 0] >= 0.5)[0])
    assert start < first < cross - int(3 * 3600 / STEP), (first, cross)  # at least 3 h of warning
    assert S[int(3 * DAY / STEP):, 1].max() < 0.5


def test_theil_sen_time_to_limit_on_a_clean_line() -> None:
    t = np.arange(0, 30 * 3600, 60.0)
    x = 0.4 + 0.6 * t / (24 * 3600)  # hits 1.0 at 24 h
    d = TrendToLimit(limit=1.0, window_s=6 * 3600, horizon_s=12 * 3600)
    s = d.score_series(t, x)
    first = t[np.flatnonzero(s >= 0.5)[0]] / 3600
    assert 11.5 <= first <= 13.0  # 12 h before the limit, plus up to a bucket of lag
    assert s[t >= 24 * 3600].min() > 0.99


def test_burn_rate_follows_the_sre_workbook_conditions() -> None:
    t = np.arange(0, 12 * 3600, 60.0)
    budget = 0.001
    X = np.zeros((len(t), 4))
    X[:, 0] = 5 * budget  # 5x: within the page conditions for all 12 h
    X[:, 1] = 15 * budget  # 15x: the 1 h / 5 m pair fires once the hour is full
    X[t >= 3600, 2] = 1.0  # a full outage after an hour
    X[:, 3] = 7 * budget  # 7x: the 6 h / 30 m pair fires after 6 h·6/7
    S = run(BurnRate(slo=0.999), t, X)
    assert S[:, 0].max() < 0.5
    first = [t[np.flatnonzero(S[:, j] >= 0.5)[0]] for j in (1, 2, 3)]
    assert first[0] <= 3600
    assert first[1] - 3600 <= 5 * 60
    assert 5 * 3600 <= first[2] <= 6 * 3600


def test_windowed_gaussian_flags_a_spike_in_flat_noise() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(0, 1, 1000)
    x[800] = 9
    s = WindowedGaussian().score_series(np.arange(1000.0), x)
    assert s[800] >= 0.5 and (s >= 0.5).sum() <= 2
