"""The statistics of canary analysis and A/B experiments: Mann-Whitney U and the mixture SPRT.

* :func:`mann_whitney` — the rank test Kayenta's judge uses: one-sided, in numpy, normal approximation with
  the tie and continuity corrections (the same p-values as ``scipy.stats.mannwhitneyu(..., method=
  "asymptotic")``, checked in the tests; scipy itself is not imported: it costs seconds per process).
  Under no difference its false-positive rate is about ``alpha`` per test.
* :class:`MSPRT` — the mixture sequential probability ratio test (Robbins 1970; Johari, Pekelis and Walsh,
  "Always valid inference", 2017) on a stream of (paired) differences: the always-valid p-value stays
  valid however often it is peeked at, and :meth:`MSPRT.interval` is the matching confidence sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def norm_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_numpy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """One-sided U test that ``x`` tends to be larger than ``y``: (U of x, p); normal approximation."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    both = np.concatenate((x, y))
    order = np.argsort(both, kind="mergesort")
    srt = both[order]
    ranks = np.empty(len(both))
    # average ranks over ties
    _, first, counts = np.unique(srt, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    n = n1 + n2
    tie = float((counts**3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u1, 1.0  # every value tied: no evidence either way
    z = (u1 - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u1, norm_sf(z)


def mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """One-sided U test that ``x`` (canary) tends to be larger than ``y`` (baseline): (U, p)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) == 0 or len(y) == 0:
        return 0.0, 1.0
    if np.ptp(np.concatenate((x, y))) == 0:
        return len(x) * len(y) / 2.0, 1.0
    return mann_whitney_numpy(x, y)


@dataclass
class MSPRT:
    """Normal-mixture SPRT of H0: mean difference = 0 on a stream of differences.

    ``tau`` is the mixing prior's spread (the effect sizes worth finding, in the data's units); the variance
    is the running sample variance, floored at ``sigma_floor``² (a plug-in, as in Johari et al.'s practice).
    ``p_value`` is always valid: P(it ever falls below alpha | H0) <= alpha, whenever one looks.
    """

    tau: float = 0.05
    sigma_floor: float = 1e-3
    burn_in: int = 10  # observations before the plug-in variance is trusted (the p-value stays 1 until then)
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    p_value: float = 1.0

    def add(self, values: np.ndarray | list[float]) -> float:
        """Add observations (Welford); update and return the always-valid p-value."""
        for v in np.asarray(values, float).ravel():
            if not math.isfinite(v):
                continue
            self.n += 1
            d = v - self.mean
            self.mean += d / self.n
            self.m2 += d * (v - self.mean)
            if self.n >= self.burn_in:
                self.p_value = min(self.p_value, 1.0 / max(self._lr(0.0), 1e-300))
        return self.p_value

    @property
    def var(self) -> float:
        s2 = self.m2 / (self.n - 1) if self.n > 1 else 0.0
        return max(s2, self.sigma_floor**2)

    def _lr(self, theta: float) -> float:
        """The mixture likelihood ratio of the data against mean ``theta``."""
        if self.n == 0:
            return 1.0
        s2, t2, n = self.var, self.tau**2, self.n
        expo = n * n * t2 * (self.mean - theta) ** 2 / (2.0 * s2 * (s2 + n * t2))
        return math.sqrt(s2 / (s2 + n * t2)) * math.exp(min(expo, 700.0))

    def interval(self, alpha: float) -> tuple[float, float]:
        """Always-valid (1 − alpha) confidence sequence for the mean difference, now."""
        if self.n == 0:
            return -math.inf, math.inf
        s2, t2, n = self.var, self.tau**2, self.n
        half = math.sqrt(2.0 * s2 * (s2 + n * t2) / (n * n * t2) * math.log(math.sqrt((s2 + n * t2) / s2) / alpha))
        return self.mean - half, self.mean + half
