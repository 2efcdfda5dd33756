"""The one detector API: ``update(t, value) -> score`` for one series, ``update_many(t, values)`` for N.

Every detector here keeps its state as numpy arrays over N series, so scoring one
scrape of 10,000 series is a few dozen vector operations.  ``update`` is the
N = 1 case of ``update_many``.  Scores are in [0, 1]; 0.5 is the default alert
threshold.  Every detector is strictly causal: the score of a sample depends on
that sample and earlier ones only (a sample is scored before it is learned).

Non-finite values (NaN, inf, a missing scrape) score 0 and leave the state as it
was; a gap in time is allowed and widens the tolerance of the next sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

DAY = 86400.0
WEEK = 7 * DAY


def fclip(x: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """``np.clip`` without its wrapper's overhead (it dominates on the arrays of one of a single series)."""
    return np.minimum(np.maximum(x, lo), hi)


def ramp(x: np.ndarray, at_half: float | np.ndarray) -> np.ndarray:
    """Map a non-negative statistic to [0, 1]: 0 up to ``at_half``/2, 0.5 at ``at_half``, 1 from 1.5 × ``at_half``."""
    return fclip(x / at_half - 0.5, 0.0, 1.0)


def halflife_alpha(dt: np.ndarray, halflife: np.ndarray | float) -> np.ndarray:
    """Weight of a new sample in an exponentially weighted mean after ``dt`` seconds (time-aware EWMA)."""
    return 1.0 - np.exp2(-np.maximum(dt, 0.0) / halflife)


class Detector:
    """Base class: state for N series, allocated on the first ``update_many`` call.

    Subclasses implement ``_alloc(n)`` and ``_step(t, x, valid) -> scores``, where
    ``t`` and ``x`` are float arrays of length N and ``valid`` marks the finite values.
    """

    name = "detector"

    def __init__(self) -> None:
        self.n: int | None = None

    # ---------------------------------------------------------------- API
    def update(self, timestamp: float, value: float) -> float:
        """Score one sample of a single series (N = 1); returns a score in [0, 1]."""
        return float(self.update_many(timestamp, np.array([value], dtype=float))[0])

    def update_many(self, t: float | np.ndarray, values: np.ndarray) -> np.ndarray:
        """Score one sample of each of N series at time ``t`` (seconds; a scalar or one time per series)."""
        x = np.asarray(values, dtype=float).reshape(-1)
        if self.n is None:
            self.n = len(x)
            self._alloc(self.n)
        elif len(x) != self.n:
            raise ValueError(f"{self.name}: expected {self.n} values, got {len(x)}")
        tt = np.asarray(t, dtype=float)
        tt = np.full(self.n, float(tt)) if tt.ndim == 0 else tt.reshape(-1)
        if len(tt) != self.n:
            raise ValueError(f"{self.name}: expected {self.n} timestamps, got {len(tt)}")
        valid = np.isfinite(x) & np.isfinite(tt)
        s = self._step(tt, np.where(valid, x, 0.0), valid)
        return np.where(valid, fclip(s, 0.0, 1.0), 0.0)

    def score_series(self, t: Iterable[float], values: Iterable[float]) -> np.ndarray:
        """Score a whole series sample by sample (the streaming path, for files and tests)."""
        tv = np.asarray(list(t), dtype=float)
        xv = np.asarray(list(values), dtype=float)
        out = np.empty(len(xv))
        for i in range(len(xv)):
            out[i] = self.update(tv[i], xv[i])
        return out

    # ------------------------------------------------------------ to implement
    def _alloc(self, n: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class SamplingClock:
    """Per-series sampling interval, learned robustly online, and the time since each series' last sample."""

    def __init__(self, n: int) -> None:
        self.last_t = np.full(n, np.nan)
        self.dt_est = np.full(n, np.nan)
        self.count = np.zeros(n, dtype=np.int64)

    def tick(self, t: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Advance with the valid samples; returns dt since the previous valid sample (0 for a first sample)."""
        dt = np.where(np.isfinite(self.last_t), t - self.last_t, 0.0)
        dt = np.maximum(dt, 0.0)
        pos = valid & (dt > 0)
        first = pos & ~np.isfinite(self.dt_est)
        est = np.where(np.isfinite(self.dt_est), self.dt_est, dt)
        step = fclip(dt, 0.5 * est, 2.0 * est)
        self.dt_est = np.where(first, dt, np.where(pos, est + 0.05 * (step - est), self.dt_est))
        self.last_t = np.where(valid, t, self.last_t)
        self.count += valid
        return dt

    def interval(self, default: float = 60.0) -> np.ndarray:
        return np.where(np.isfinite(self.dt_est), self.dt_est, default)


def gauss_z_for_rate(fp_per_day: float, interval_s: float) -> float:
    """The two-sided Gaussian z whose exceedance rate is ``fp_per_day`` false alarms a day at this sampling interval."""
    p = min(max(fp_per_day * interval_s / DAY, 1e-12), 0.5)
    # inverse of the two-sided tail 2·Q(z) = p, by bisection on erfc
    lo, hi = 0.0, 40.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid / math.sqrt(2.0)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
