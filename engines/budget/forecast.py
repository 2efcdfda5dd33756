"""Spend series an engine accumulates itself, a seasonal-robust spend forecast, and cost anomaly checks.

Everything here works on one *cumulative* spend series per key (a project, a service or ``*``) sampled
whenever the engine steps: rates are differences of the cumulative figure, so a missed step loses no money.

* **Forecast** (:meth:`SpendSeries.forecast`): the level is the spend of the trailing 24 hours (one whole
  daily cycle, so daily seasonality cancels and a step change is fully in the level a day later); the interval
  comes from the spread ``sd`` of the last (up to 7) daily totals: ``z * sd * sqrt(n + n**2)`` for ``n`` days
  ahead (day-to-day noise, plus the level's own error: it is one day's total, so it errs by ``sd`` too).  With less than a
  day of history the level is the mean rate so far and the interval is wide (±25 % of the level per day).
* **Expected rate** (:meth:`SpendSeries.expected_rate`): the median over the previous (up to 7) days of the
  rate at the same time of day (±15 minutes), so a daily peak is expected, not anomalous; with less than a
  day of history, the highest 15-minute rate of the 6 hours before the window being judged (conservative: the
  rise of a daily cycle seen for the first time is not a spike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAY = 86400.0
Z90 = 1.645  # two-sided 90 % interval
T90 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943}  # Student's t, 95th percentile, by d.o.f.


@dataclass(frozen=True, slots=True)
class Forecast:
    """Spend expected over ``days`` from ``made_at``: ``point`` with a 90 % interval ``[lo, hi]``."""

    made_at: float
    days: float
    point: float
    lo: float
    hi: float
    level_per_day: float
    basis: str  # "24h" (a whole daily cycle) or "mean-so-far" (less than a day of history)

    def as_dict(self) -> dict[str, float | str]:
        return {"made_at": self.made_at, "days": self.days, "point": self.point, "lo": self.lo, "hi": self.hi,
                "level_per_day": self.level_per_day, "basis": self.basis}


class SpendSeries:
    """One key's cumulative spend samples ``(t, total)``, oldest first, kept for ``keep_s`` seconds."""

    __slots__ = ("t", "c", "n", "keep")

    def __init__(self, keep_s: float = 9 * DAY) -> None:
        self.t = np.empty(256)
        self.c = np.empty(256)
        self.n = 0
        self.keep = keep_s

    def add(self, t: float, cumulative: float) -> None:
        """A sample; out-of-order or repeated times are ignored, a falling total (a reset) restarts the series."""
        if self.n and t <= self.t[self.n - 1]:
            return
        if self.n and cumulative < self.c[self.n - 1] - 1e-9:
            self.n = 0
        if self.n == len(self.t):
            cut = int(np.searchsorted(self.t[: self.n], t - self.keep))
            if cut > self.n // 4:  # drop what is too old to matter
                self.t[: self.n - cut] = self.t[cut: self.n]
                self.c[: self.n - cut] = self.c[cut: self.n]
                self.n -= cut
            else:
                self.t = np.concatenate([self.t, np.empty(len(self.t))])
                self.c = np.concatenate([self.c, np.empty(len(self.c))])
        self.t[self.n] = t
        self.c[self.n] = cumulative
        self.n += 1

    @property
    def span(self) -> float:
        return float(self.t[self.n - 1] - self.t[0]) if self.n > 1 else 0.0

    def at(self, t: float) -> float:
        """Cumulative spend at ``t`` (linear between samples, clamped to the series)."""
        return float(np.interp(t, self.t[: self.n], self.c[: self.n]))

    def spend(self, a: float, b: float) -> float:
        """Money spent in ``(a, b]``."""
        return self.at(b) - self.at(a) if self.n > 1 else 0.0

    def rate(self, a: float, b: float) -> float:
        """Mean spend per hour over ``(a, b]`` (clamped to the series)."""
        if self.n < 2:
            return math.nan
        a, b = max(a, float(self.t[0])), min(b, float(self.t[self.n - 1]))
        return self.spend(a, b) / (b - a) * 3600.0 if b > a else math.nan

    def daily_totals(self, now: float, k: int = 7) -> np.ndarray:
        """Spend of the trailing whole days ending at ``now`` (newest first, up to ``k``)."""
        days = int(min(k, self.span // DAY))
        ends = now - DAY * np.arange(days)
        return np.array([self.spend(e - DAY, e) for e in ends])

    def forecast(self, now: float, days: float) -> Forecast:
        """Spend over the next ``days`` from ``now`` (see the module docstring)."""
        if self.n < 2 or self.span <= 0:
            return Forecast(now, days, math.nan, math.nan, math.nan, math.nan, "none")
        totals = self.daily_totals(now)
        if len(totals):
            level, basis = float(totals[0]), "24h"
            sd = float(np.std(totals, ddof=1)) if len(totals) >= 2 else 0.25 * level
        else:
            level, basis = self.spend(float(self.t[0]), now) / (now - float(self.t[0])) * DAY, "mean-so-far"
            sd = 0.25 * level
        point = level * days
        z = T90.get(len(totals) - 1, Z90)  # sd from a few days: Student's t, not the normal quantile
        half = z * sd * math.sqrt(days + days * days)  # day-to-day noise, and the level is one day's total
        return Forecast(now, days, point, max(point - half, 0.0), point + half, level, basis)

    def expected_rate(self, a: float, b: float, history_days: int = 7) -> float:
        """The rate expected over ``(a, b]`` from earlier days at the same time of day (NaN if unknown)."""
        if self.n < 2:
            return math.nan
        first = float(self.t[0])
        past = [self.rate(a - d * DAY - 900.0, b - d * DAY + 900.0)
                for d in range(1, history_days + 1) if a - d * DAY - 900.0 >= first]
        past = [r for r in past if r == r]
        if past:
            return float(np.median(past))
        if a - first < 3600.0:
            return math.nan  # too little history to know what is normal
        lo = max(first, a - 6 * 3600.0)
        edges = np.arange(lo, a + 1e-9, 900.0)
        rates = [self.rate(x, y) for x, y in zip(edges[:-1], edges[1:], strict=False)]
        rates = [r for r in rates if r == r]
        return float(np.max(rates)) if rates else math.nan  # the highest: a daily rise is no spike


@dataclass(frozen=True, slots=True)
class AnomalyCheck:
    """A trailing window's rate against its expected rate."""

    key: str
    observed: float
    expected: float

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else math.nan


def check(series: SpendSeries, key: str, now: float, window_s: float, history_days: int = 7) -> AnomalyCheck:
    """The observed rate over ``(now - window_s, now]`` and its seasonal expectation."""
    return AnomalyCheck(key, series.rate(now - window_s, now),
                        series.expected_rate(now - window_s, now, history_days))
