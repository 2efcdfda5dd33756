"""Labelled synthetic metric series for judging detectors (tests and ``benchmarks/compare_detectors.py``).

Nothing here comes from the twin: the shapes are the ones real operations metrics
show (diurnal and weekly cycles, trends, heavy-tailed noise, missing scrapes,
irregular timestamps) with anomalies injected at random times, each with a
ground-truth window ``(start, end)`` in seconds: a detection inside it is a true
positive, the delay is the first detection time − ``start``.

Every series: 14 days at a 5-minute scrape (4,032 samples, NAB's typical length
and interval), starting on a Monday 00:00 UTC; anomalies start after day 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY = 86400.0
HOUR = 3600.0
STEP = 300.0
N_SAMPLES = 4032
T0 = 1767571200.0  # 2026-01-05 00:00 UTC, a Monday


@dataclass
class Labelled:
    name: str
    family: str
    t: np.ndarray
    x: np.ndarray
    windows: list[tuple[float, float]] = field(default_factory=list)
    limit: float | None = None  # a hard limit the series must not reach (utilisation 1.0)
    slo: float | None = None  # the series is an error ratio under this SLO


def _diurnal(t: np.ndarray, amp: float, phase: float = 0.0) -> np.ndarray:
    h = 2 * np.pi * ((t - T0) / DAY + phase)
    return amp * (np.sin(h - np.pi / 2) + 0.35 * np.sin(2 * h))


def _weekend(t: np.ndarray, drop: float) -> np.ndarray:
    dow = np.floor((t - T0) / DAY) % 7
    return np.where(dow >= 5, -drop, 0.0)


def _times(rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    t = T0 + np.arange(N_SAMPLES) * STEP
    if jitter:
        t = t + rng.uniform(-jitter, jitter, N_SAMPLES) * STEP
        t = np.maximum.accumulate(t)
    return t


def _when(rng: np.random.Generator, t: np.ndarray, k: int, min_day: float = 4.0, sep: float = DAY) -> list[float]:
    """k anomaly start times after ``min_day``, at least ``sep`` apart, leaving a day at the end."""
    out: list[float] = []
    while len(out) < k:
        s = T0 + rng.uniform(min_day * DAY, 13 * DAY)
        if all(abs(s - o) > sep for o in out):
            out.append(s)
    return sorted(out)


def family_spike(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    sigma = 2.0
    x = 50 + _diurnal(t, 15, rng.uniform()) + rng.normal(0, sigma, len(t))
    w = []
    for s in _when(rng, t, 3):
        j = int(np.searchsorted(t, s))
        x[j] += rng.choice([-1, 1]) * rng.uniform(6, 12) * sigma
        w.append((t[j], t[j] + HOUR))
    return Labelled(f"spike-{i}", "spike_daily", t, x, w)


def family_dip(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    x = 1000 * (1 + 0.5 * _diurnal(t, 1.0, rng.uniform()) / 1.35 + _weekend(t, 0.3)) * rng.lognormal(0, 0.03, len(t))
    w = []
    for s in _when(rng, t, 2):
        m = (t >= s) & (t < s + rng.uniform(0.25, 0.75) * HOUR)
        x[m] *= rng.uniform(0.3, 0.6)
        w.append((s, s + HOUR))
    return Labelled(f"dip-{i}", "outage_dip_weekly", t, x, w)


def family_shift(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    sigma = 1.0
    x = 20 + _diurnal(t, 5, rng.uniform()) + _weekend(t, 4) + rng.normal(0, sigma, len(t))
    (s,) = _when(rng, t, 1)
    x[t >= s] += rng.choice([-1, 1]) * rng.uniform(3, 6) * sigma
    return Labelled(f"shift-{i}", "level_shift_weekly", t, x, [(s, s + 3 * HOUR)])


def family_trend_shift(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    sigma = 0.5
    x = 10 + (t - T0) / DAY * rng.uniform(-0.5, 0.5) + rng.normal(0, sigma, len(t))
    (s,) = _when(rng, t, 1)
    x[t >= s] += rng.choice([-1, 1]) * rng.uniform(2.5, 4) * sigma
    return Labelled(f"trend-shift-{i}", "trend_small_shift", t, x, [(s, s + 3 * HOUR)])


def family_variance(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    sigma = 1.0
    noise = rng.normal(0, sigma, len(t))
    (s,) = _when(rng, t, 1)
    m = (t >= s) & (t < s + 12 * HOUR)
    noise[m] *= rng.uniform(3, 5)
    x = 30 + _diurnal(t, 6, rng.uniform()) + noise
    return Labelled(f"variance-{i}", "variance_change", t, x, [(s, s + 3 * HOUR)])


def family_ramp(rng: np.random.Generator, i: int) -> Labelled:
    """A leak: utilisation rises steadily until it reaches 1.0, then the process restarts."""
    t = _times(rng)
    x = 0.45 + 0.08 * _diurnal(t, 1.0, rng.uniform()) / 1.35 + rng.normal(0, 0.015, len(t))
    (s,) = _when(rng, t, 1, min_day=4.0)
    dur = rng.uniform(24, 48) * HOUR
    ramp = np.clip((t - s) / dur, 0.0, None) * 0.6
    cross = s + dur * (1.0 - 0.45 - 0.08) / 0.6  # when the daily peak first could reach 1.0 (about)
    restart = s + dur
    ramp[t >= restart] = 0.0
    x = np.minimum(x + ramp, 1.0)
    # the window: the ramp until the series actually reaches the limit
    hit = t[(t >= s) & (t < restart) & (x >= 0.999)]
    end = float(hit[0]) if len(hit) else min(cross, restart)
    return Labelled(f"ramp-{i}", "slow_ramp_to_limit", t, x, [(s, end)], limit=1.0)


def family_constant(rng: np.random.Generator, i: int) -> Labelled:
    t = _times(rng)
    x = np.full(len(t), float(rng.choice([0.0, 1.0, 42.0, 1e6])))
    if i % 2:
        (s,) = _when(rng, t, 1)
        x[t >= s] += max(abs(x[0]) * 0.1, 1.0)
        return Labelled(f"constant-jump-{i}", "constant", t, x, [(s, s + HOUR)])
    return Labelled(f"constant-{i}", "constant", t, x, [])


def family_gaps(rng: np.random.Generator, i: int) -> Labelled:
    """AR(1) noise around a daily cycle, irregular timestamps, 5 % NaN, two long gaps, two spikes."""
    t = _times(rng, jitter=0.3)
    e = np.zeros(len(t))
    z = rng.normal(0, 1, len(t))
    for k in range(1, len(t)):
        e[k] = 0.7 * e[k - 1] + z[k]
    x = 100 + _diurnal(t, 10, rng.uniform()) + 1.4 * e
    x[rng.uniform(size=len(t)) < 0.05] = np.nan
    for g in _when(rng, t, 2, min_day=3.0):
        x[(t >= g) & (t < g + rng.uniform(2, 6) * HOUR)] = np.nan
    w = []
    for s in _when(rng, t, 2, min_day=4.5):
        j = int(np.searchsorted(t, s))
        while not np.isfinite(x[j]):
            j += 1
        x[j] += rng.choice([-1, 1]) * rng.uniform(12, 18)
        w.append((t[j], t[j] + HOUR))
    return Labelled(f"gaps-{i}", "gaps_nan_irregular", t, x, w)


def family_heavy(rng: np.random.Generator, i: int) -> Labelled:
    """Heavy-tailed latency (Student t, 3 dof) on a daily cycle; one sustained rise."""
    t = _times(rng)
    x = 120 + _diurnal(t, 20, rng.uniform()) + 5 * rng.standard_t(3, len(t))
    (s,) = _when(rng, t, 1)
    m = (t >= s) & (t < s + rng.uniform(2, 4) * HOUR)
    x[m] += rng.uniform(25, 40)
    return Labelled(f"heavy-{i}", "heavy_tail_latency", t, x, [(s, s + 2 * HOUR)])


def family_error_ratio(rng: np.random.Generator, i: int) -> Labelled:
    """Error ratio of a service at 99.9 %: Poisson errors at 0.02 %; an incident burns at 20-40x for 30-90 min."""
    t = _times(rng)
    reqs = 3000.0 * (1 + 0.5 * _diurnal(t, 1.0) / 1.35)
    p = np.full(len(t), 0.0002)
    (s,) = _when(rng, t, 1)
    m = (t >= s) & (t < s + rng.uniform(0.5, 1.5) * HOUR)
    p[m] = 0.001 * rng.uniform(20, 40)
    x = rng.poisson(reqs * p) / reqs
    return Labelled(f"errors-{i}", "error_ratio_burn", t, x, [(s, s + HOUR)], slo=0.999)


FAMILIES = (family_spike, family_dip, family_shift, family_trend_shift, family_variance, family_ramp,
            family_constant, family_gaps, family_heavy, family_error_ratio)


def generate(seed: int = 0, per_family: int = 4) -> list[Labelled]:
    """``per_family`` series of every family, reproducible from ``seed``."""
    out = []
    for f_i, fam in enumerate(FAMILIES):
        for i in range(per_family):
            out.append(fam(np.random.default_rng([seed, f_i, i]), i))
    return out
