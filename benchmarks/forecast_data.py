"""Synthetic demand series with known structure, for comparing forecasters (benchmarks/compare_forecasters.py).

Generic shapes, not the twin's generators: per-minute request counts (Poisson and overdispersed) with daily and
weekly cycles, trend, level shifts and flash crowds; 5-minute VM CPU utilisation; a series with no seasonality;
gaps, NaN and irregular timestamps.  Each family has its own seed stream.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DAY = 86400.0
START = 1767571200.0  # Monday 2026-01-05 00:00 UTC


def _daily(t: np.ndarray, phase: float, amp: float) -> np.ndarray:
    h = (t % DAY) / DAY
    # a day shape with a morning rise and an evening peak (not a pure sine)
    return 1.0 + amp * (0.6 * np.sin(2 * np.pi * (h - 0.3 + phase)) + 0.4 * np.sin(4 * np.pi * (h - 0.2 + phase)))


def _counts(rng: np.random.Generator, rate: np.ndarray, dispersion: float) -> np.ndarray:
    if dispersion <= 1.0:
        return rng.poisson(rate).astype(float)
    p = 1.0 / dispersion
    return rng.negative_binomial(np.maximum(rate * p / (1.0 - p), 1e-9), p).astype(float)


def daily_poisson(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 8 * DAY, 60.0)
    return t, _counts(rng, rng.uniform(200, 2000) * _daily(t, rng.uniform(-0.1, 0.1), 0.5), 1.0)


def weekly_overdispersed(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 21 * DAY, 300.0)  # 5-minute counts
    weekend = np.where(((t - START) // DAY) % 7 >= 5, rng.uniform(0.4, 0.7), 1.0)
    return t, _counts(rng, rng.uniform(1500, 15000) * _daily(t, 0.0, 0.6) * weekend, 3.0)


def trend_multiplicative(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 8 * DAY, 60.0)
    growth = 1.0 + rng.uniform(0.02, 0.06) * (t - START) / DAY  # +2–6 % a day
    return t, _counts(rng, 400 * growth * _daily(t, 0.05, 0.5), 1.5)


def level_shifts(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 8 * DAY, 60.0)
    lvl = np.ones(len(t))
    for at in np.sort(rng.uniform(2.5 * DAY, 7.5 * DAY, 3)):
        lvl = np.where(t - START >= at, lvl * rng.choice([0.5, 0.7, 1.5, 2.0]), lvl)
    return t, _counts(rng, 800 * lvl * _daily(t, 0.0, 0.4), 1.5)


def flash_crowds(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bursty per-minute web counts: overdispersion, minute-scale bursts and a few hour-long flash crowds/outages."""
    t = START + np.arange(0, 8 * DAY, 60.0)
    rate = 600 * _daily(t, rng.uniform(-0.1, 0.1), 0.6)
    bursts = np.exp(rng.normal(0, 0.15, len(t)))  # minute-scale bursts (lognormal)
    for at in rng.uniform(2 * DAY, 8 * DAY, 4):
        dur = rng.uniform(20, 120) * 60
        rate = np.where((t - START >= at) & (t - START < at + dur), rate * rng.choice([0.1, 2.5, 4.0]), rate)
    return t, _counts(rng, rate * bursts, 2.0)


def no_season_ar(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 7 * DAY, 60.0)
    z = np.zeros(len(t))
    e = rng.normal(0, 0.02, len(t))
    for i in range(1, len(t)):
        z[i] = 0.995 * z[i - 1] + e[i]
    return t, 500 * np.exp(z)


def vm_cpu_5min(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.arange(0, 21 * DAY, 300.0)
    u = 35 * _daily(t, rng.uniform(-0.1, 0.1), 0.6) + rng.normal(0, 2.5, len(t))
    return t, np.clip(u, 0, 100)


def gaps_irregular(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + np.cumsum(rng.uniform(30, 90, int(8 * DAY / 60)))
    x = _counts(rng, 1000 * _daily(t, 0.0, 0.5), 1.0)
    x[rng.uniform(size=len(x)) < 0.05] = np.nan
    for at in rng.uniform(2 * DAY, 7.5 * DAY, 3):  # three 1–4 h gaps
        keep = (t - START < at) | (t - START > at + rng.uniform(1, 4) * 3600)
        t, x = t[keep], x[keep]
    return t, x


FAMILIES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "daily_poisson": daily_poisson,
    "weekly_overdispersed": weekly_overdispersed,
    "trend_multiplicative": trend_multiplicative,
    "level_shifts": level_shifts,
    "flash_crowds": flash_crowds,
    "no_season_ar": no_season_ar,
    "vm_cpu_5min": vm_cpu_5min,
    "gaps_irregular": gaps_irregular,
}


def series(family: str, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Series k of a family (deterministic for a seed)."""
    fam = list(FAMILIES).index(family)
    return FAMILIES[family](np.random.default_rng([seed, fam, k]))
