"""The point forecasters the models are made of; each predicts, for N series, the mean of the window that ends
``h`` seconds after the last sample.  They share the forecaster's ``RecentWindow`` and ``History``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engines.detection.seasonal import AUTO, RobustBaseline
from engines.forecasting.state import History, RecentWindow


class Member:
    """A point forecaster over N series: ``learn`` each sample, then ``point(t, h)`` for the window ending at t+h."""

    name = "member"

    def learn(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        """Take one sample per series (called after the shared window and history took it)."""

    def point(self, t: np.ndarray, h: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class PersistenceMember(Member):
    """The mean of the last window, carried forward: what a reactive scaler assumes."""

    name = "persistence"

    def __init__(self, window: RecentWindow) -> None:
        self.window = window

    def point(self, t: np.ndarray, h: float) -> np.ndarray:
        return self.window.mean(t)


class SeasonalNaiveMember(Member):
    """The same window one period earlier (NaN until a period of history is known)."""

    def __init__(self, history: History, period_s: float, window_s: float) -> None:
        self.history, self.period, self.window_s = history, float(period_s), float(window_s)
        self.name = {86400.0: "snaive-day", 604800.0: "snaive-week"}.get(self.period, f"snaive-{self.period:g}s")

    def point(self, t: np.ndarray, h: float) -> np.ndarray:
        if self.period < h + self.window_s:
            return np.full(len(t), np.nan)
        return self.history.window_mean(t + h - self.period, self.window_s)


class SeasonalTrendMember(Member):
    """Robust seasonal + damped trend (Holt–Winters-like): engines/detection's ``RobustBaseline`` — per-slot
    seasonal profiles with auto-detected daily/weekly periods, a damped Holt level and slope, Huber-clipped
    updates — extrapolated to the target window.  A level shift (``shift_run`` consecutive samples beyond
    ``shift_z`` calibrated sigmas on the same side) moves the level to the recent mean at once."""

    name = "seasonal"

    def __init__(self, n: int, window_s: float, periods: str | Sequence[float] = AUTO,
                 level_halflife_s: float | None = 1800.0, shift_z: float = 3.0, shift_run: int = 4) -> None:
        self.base = RobustBaseline(n, periods=periods, level_halflife_s=level_halflife_s)
        self.window_s = float(window_s)
        self.shift_z, self.shift_run = shift_z, shift_run
        self.run = np.zeros(n)
        self.t_last = np.full(n, np.nan)

    def learn(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        self.base.step(t, x, valid)
        z = self.base.z
        side = np.where(z > self.shift_z, 1.0, np.where(z < -self.shift_z, -1.0, 0.0))
        same = (side != 0) & (np.sign(self.run) == side)
        self.run = np.where(valid, np.where(same, self.run + side, side), self.run)
        shifted = valid & (np.abs(self.run) >= self.shift_run)
        if shifted.any():
            self.base.reset_level(shifted)
            self.run = np.where(shifted, 0.0, self.run)
        self.t_last = np.where(valid, t, self.t_last)

    def season_at(self, when: np.ndarray) -> np.ndarray:
        """The active seasonal profiles' sum at the given times (0 where none is active)."""
        season = np.zeros(len(when))
        scalar = bool(np.all(when == when[0]))
        for c in self.base.components:
            if c.active.any():
                season += c.value(c.locate(when, scalar))
        return season

    def point(self, t: np.ndarray, h: float) -> np.ndarray:
        b = self.base
        interval = b.clock.interval()
        mid = t + h - 0.5 * self.window_s  # the window's centre
        ahead = np.maximum(mid - np.where(np.isfinite(self.t_last), self.t_last, t), 0.0)
        steps_n = np.minimum(ahead / interval, 1e4)
        phi = b.phi
        steps = phi * (1.0 - np.power(phi, steps_n)) / (1.0 - phi) if phi < 1.0 else steps_n
        out = b.level + b.slope * interval * steps + self.season_at(mid)
        return np.where(b.clock.count > 0, out, np.nan)


class SeasonalDeltaMember(Member):
    """Persistence plus the seasonal change: the last window's mean + (profile at the target window − profile at the
    last window), with the profiles of a ``SeasonalTrendMember``.  Persistence's current level with the seasonal
    shape's expected rise or fall (equal to persistence while no seasonality is active)."""

    name = "persistence+season"

    def __init__(self, window: RecentWindow, seasonal: SeasonalTrendMember) -> None:
        self.window, self.seasonal = window, seasonal

    def point(self, t: np.ndarray, h: float) -> np.ndarray:
        half = 0.5 * self.seasonal.window_s
        delta = self.seasonal.season_at(t + h - half) - self.seasonal.season_at(t - half)
        return self.window.mean(t) + delta
