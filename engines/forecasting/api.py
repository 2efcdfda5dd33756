"""The one forecaster API: ``update(t, value)`` then ``forecast(horizon_s) -> (mean, lo, hi)``; ``update_many`` and
``forecast_many`` for N series at once (numpy state over N series, a few dozen vector operations a step).

The forecast quantity is what a scaler provisions for: the mean of the series over the ``window_s`` seconds
(default 300) ending ``horizon_s`` after the last sample.  Every forecaster is strictly causal: a forecast uses the
samples up to and including the last ``update`` and nothing later.  Non-finite values (NaN, a missing scrape) are
skipped; timestamps may be irregular.

Intervals are empirical: each forecast made for the configured ``horizon_s`` is kept until its target time
comes, its error (relative to the forecast's own scale) is measured against the realised window mean, and the
running lower and upper quantiles of those errors give the interval (``coverage``, default 90 %).  Other horizons
scale the interval by sqrt(h / horizon_s).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engines.detection.api import SamplingClock, halflife_alpha
from engines.forecasting.members import Member
from engines.forecasting.state import History, OnlineQuantiles, Pending, RecentWindow

DAY = 86400.0
WEEK = 7 * DAY


class Forecaster:
    """Members combined by their recent accuracy (one member: that member), with empirical intervals.

    Parameters (seconds): ``horizon_s`` the horizon whose errors are tracked (default 900), ``window_s`` the demand
    window forecast (default 300), ``coverage`` of the intervals, ``weight_halflife_s`` how fast the members'
    error memory forgets (default 6 h), ``combine`` "weights" (inverse mean squared error, Bates–Granger, among the
    members whose MSE is within ``trim`` (2) times the best one's: a much worse member only adds its error) or
    "best" (the member with the least recent error); ``tolerance`` and ``accuracy_halflife_s`` define the running
    ``accuracy`` (the recent share of forecasts within ±10 %).
    """

    name = "forecaster"

    def __init__(self, horizon_s: float = 900.0, window_s: float = 300.0, coverage: float = 0.9,
                 weight_halflife_s: float = 6 * 3600.0, combine: str = "weights",
                 history_s: float = 0.0, trim: float = 2.0, tolerance: float = 0.10,
                 accuracy_halflife_s: float = DAY) -> None:
        if not horizon_s > 0 or not window_s > 0:
            raise ValueError(f"{self.name}: horizon_s and window_s must be > 0 (got {horizon_s}, {window_s})")
        if not 0.0 < coverage < 1.0:
            raise ValueError(f"{self.name}: coverage must be in (0, 1), got {coverage}")
        if combine not in ("weights", "best"):
            raise ValueError(f"{self.name}: combine must be 'weights' or 'best', got {combine!r}")
        self.horizon, self.window_s, self.coverage = float(horizon_s), float(window_s), float(coverage)
        self.weight_hl, self.combine, self.history_s = float(weight_halflife_s), combine, float(history_s)
        self.trim, self.tolerance, self.accuracy_hl = float(trim), float(tolerance), float(accuracy_halflife_s)
        self.n: int | None = None

    # ------------------------------------------------------------ to implement
    def _members(self, n: int) -> list[Member]:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- setup
    def _alloc(self, n: int) -> None:
        self.n = n
        self.clock = SamplingClock(n)
        self.window = RecentWindow(n, self.window_s)
        self.history = History(n, self.window_s, self.history_s) if self.history_s > 0 else None
        self.members = self._members(n)
        m = len(self.members)
        self.pending = Pending(n, m + 1, self.window.width, self.horizon)
        self.mse = np.full((m, n), np.nan)  # running mean squared relative error per member
        self.scored = np.zeros((m, n))
        self.quant = OnlineQuantiles(n, self.coverage)
        self.ref = np.zeros(n)  # running mean |demand|: the floor of the error scale
        self.t_last = np.full(n, np.nan)
        self._cached: np.ndarray | None = None
        self.hit_share = np.full(n, np.nan)  # recent share of horizon forecasts within ±tolerance (see accuracy)

    # ---------------------------------------------------------------- API
    def update(self, timestamp: float, value: float) -> None:
        """Learn one sample of a single series (N = 1)."""
        self.update_many(timestamp, np.array([value], dtype=float))

    def forecast(self, horizon_s: float | None = None) -> tuple[float, float, float]:
        """(mean, lo, hi) of the window ending ``horizon_s`` (default: the configured horizon) after the last sample."""
        m, lo, hi = self.forecast_many(horizon_s)
        return float(m[0]), float(lo[0]), float(hi[0])

    def update_many(self, t: float | np.ndarray, values: np.ndarray) -> None:
        """Learn one sample of each of N series at time ``t`` (seconds; a scalar or one per series)."""
        x = np.asarray(values, dtype=float).reshape(-1)
        if self.n is None:
            self._alloc(len(x))
        elif len(x) != self.n:
            raise ValueError(f"{self.name}: expected {self.n} values, got {len(x)}")
        tt = np.asarray(t, dtype=float)
        tt = np.full(len(x), float(tt)) if tt.ndim == 0 else tt.reshape(-1)
        if len(tt) != len(x):
            raise ValueError(f"{self.name}: expected {len(x)} timestamps, got {len(tt)}")
        valid = np.isfinite(x) & np.isfinite(tt)
        x = np.where(valid, x, 0.0)
        self.clock.tick(tt, valid)
        self.window.add(tt, x, valid)
        if self.history is not None:
            self.history.add(tt, x, valid)
        for mem in self.members:
            mem.learn(tt, x, valid)
        self.t_last = np.where(valid, tt, self.t_last)
        actual = self.window.mean(tt)
        a_ref = np.where(valid, np.maximum(1.0 / np.maximum(self.clock.count, 1), 0.001), 0.0)
        self.ref = np.where(valid, self.ref + a_ref * (np.abs(actual) - self.ref), self.ref)
        self._score(tt, actual, valid)
        pts = self._points(tt, self.horizon)
        comb = self._combine(pts)
        self.pending.put(tt + self.horizon, np.vstack([pts, comb[None, :]]), valid)
        self._cached = comb if bool(valid.all()) else None  # forecast_many at the horizon reuses it

    def forecast_many(self, horizon_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, lo, hi) arrays over the N series, ``horizon_s`` after each series' last sample."""
        if self.n is None:
            raise ValueError(f"{self.name}: no data yet (call update_many first)")
        h = self.horizon if horizon_s is None else float(horizon_s)
        if not h > 0:
            raise ValueError(f"{self.name}: horizon_s must be > 0, got {horizon_s}")
        if h == self.horizon and self._cached is not None:
            mean = self._cached
        else:
            t = np.where(np.isfinite(self.t_last), self.t_last, 0.0)
            mean = self._combine(self._points(t, h))
        s = self._scale(mean) * np.sqrt(h / self.horizon)
        q_lo, q_hi = self.quant.bounds()
        lo = mean + q_lo * s
        hi = mean + q_hi * s
        return mean, lo, hi

    def forecast_series(self, t: Iterable[float], values: Iterable[float],
                        horizon_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Forecast a whole series sample by sample (the streaming path): row i's forecast uses rows ≤ i only."""
        tv = np.asarray(list(t), dtype=float)
        xv = np.asarray(list(values), dtype=float)
        out = np.full((3, len(xv)), np.nan)
        for i in range(len(xv)):
            self.update(tv[i], xv[i])
            if np.isfinite(self.t_last[0]):
                out[:, i] = self.forecast(horizon_s)
        return out[0], out[1], out[2]

    @property
    def accuracy(self) -> np.ndarray:
        """Per series, the recent share (exponentially weighted, half-life ``accuracy_halflife_s``, default a day) of
        the forecasts at the configured horizon that came within ±``tolerance`` (10 %) of the realised window mean;
        NaN until one has been scored.  A scaler compares it with its ``MinPredictionAccuracy``."""
        return self.hit_share.copy() if self.n is not None else np.array([])

    @property
    def weights(self) -> np.ndarray:
        """The members' current weights (M × N), for explanations."""
        return self._weights(self._points(np.where(np.isfinite(self.t_last), self.t_last, 0.0), self.horizon))

    # ------------------------------------------------------------ internals
    def _points(self, t: np.ndarray, h: float) -> np.ndarray:
        pts = np.vstack([mem.point(t, h) for mem in self.members])
        return np.where(np.isfinite(self.t_last)[None, :], pts, np.nan)

    def _scale(self, f: np.ndarray) -> np.ndarray:
        return np.maximum(np.maximum(np.abs(np.where(np.isfinite(f), f, 0.0)), 0.05 * self.ref), 1e-9)

    def _weights(self, pts: np.ndarray) -> np.ndarray:
        have = np.isfinite(pts)
        known = have & np.isfinite(self.mse)
        err = np.where(known, self.mse, np.inf)
        if self.combine == "best":
            w = (np.arange(len(pts))[:, None] == np.argmin(err, axis=0)[None, :]).astype(float)
        else:  # inverse-MSE weights among the members within ``trim`` × the best member's MSE
            best = err.min(axis=0)
            w = np.where(err <= self.trim * best + 1e-300, 1.0 / np.maximum(err, 1e-12), 0.0)
        w = np.where(known, w, 0.0)
        none = w.sum(axis=0) == 0  # no member scored yet: the first member that has a forecast (persistence first)
        if none.any():
            first = np.argmax(have, axis=0)
            w = np.where(none[None, :], (np.arange(len(pts))[:, None] == first[None, :]) & have, w)
        return w / np.maximum(w.sum(axis=0), 1e-300)

    def _combine(self, pts: np.ndarray) -> np.ndarray:
        if len(pts) == 1:
            return pts[0]
        w = self._weights(pts)
        out = (w * np.where(np.isfinite(pts), pts, 0.0)).sum(axis=0)
        return np.where(w.sum(axis=0) > 0, out, np.nan)

    def _score(self, t: np.ndarray, actual: np.ndarray, valid: np.ndarray) -> None:
        """Errors of the forecasts made ``horizon`` ago against the window mean that has now been realised."""
        due = self.pending.take(t, valid)
        if not np.isfinite(due).any():
            return
        s = self._scale(due[-1])
        e = (actual[None, :] - due) / s[None, :]
        ok = np.isfinite(e) & valid[None, :]
        m = len(self.members)
        self.scored += ok[:m]
        interval = self.clock.interval()
        a = halflife_alpha(interval, self.weight_hl)
        a = np.maximum(a[None, :], 1.0 / np.maximum(self.scored, 1.0))
        se = np.where(ok[:m], e[:m] ** 2, 0.0)
        self.mse = np.where(ok[:m], np.where(np.isfinite(self.mse), self.mse + a * (se - self.mse), se), self.mse)
        self.quant.add(np.where(ok[-1], e[-1], 0.0), ok[-1])
        hit = np.abs(due[-1] - actual) <= self.tolerance * np.abs(actual) + 1e-12
        a_hit = np.maximum(halflife_alpha(interval, self.accuracy_hl), 1.0 / np.maximum(self.quant.count, 1.0))
        self.hit_share = np.where(ok[-1], np.where(np.isfinite(self.hit_share), self.hit_share, 0.0)
                                  + a_hit * (hit - np.where(np.isfinite(self.hit_share), self.hit_share, 0.0)),
                                  self.hit_share)
