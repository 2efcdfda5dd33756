"""Robust seasonal baseline, learned online: level + seasonal profiles + a robust residual scale.

For each series the baseline predicts the next value as ``level + Σ profile_k(phase_k(t))``
*before* the value is seen; the residual is standardised by a robust scale (an
exponentially weighted mean absolute residual, Huber-clipped so that outliers do
not inflate it).  Seasonal profiles are per-slot (hourly by default) and
interpolated linearly between slot centres; the level and each slot learn with
the clipped residual, so a spike hardly moves the baseline.

Seasonality is either given (periods in seconds) or auto-detected per series:
hourly bucket means of the last three weeks are kept, and once a day each
candidate period P is tested with a variance ratio that ignores trends and
levels:  var(y[t] − y[t−P]) / var(y[t] − y[t−P/2])  (for the daily candidate) and
var(y[t] − y[t−week]) / var(y[t] − y[t−day]) (weekly on top of daily).  A
pattern that repeats every P makes the numerator small; noise gives ≈ 1 and a
trend or random walk > 1.  When a period is switched on, its profile starts
from the per-slot medians of the buffered history, so the baseline is seasonal
at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from engines.detection.api import DAY, WEEK, Detector, SamplingClock, fclip, halflife_alpha, ramp

AUTO = "auto"
ROWS_PER_STEP = 256  # periodic per-series work (seasonality tests) done for at most this many series per update


class _Profile:
    """One seasonal component for N series: ``slots`` values per period, interpolated between slot centres."""

    def __init__(self, n: int, period: float, slots: int, active: bool) -> None:
        self.period, self.slots, self.width = float(period), int(slots), float(period) / int(slots)
        self.prof = np.zeros((n, self.slots))
        self.active = np.full(n, active)
        self._rows = np.arange(n)

    def locate(self, t: np.ndarray, scalar: bool) -> tuple[np.ndarray | int, np.ndarray | int, np.ndarray | float]:
        tt = t[:1] if scalar else t
        u = np.mod(tt, self.period) / self.width - 0.5
        fl = np.floor(u)
        f = u - fl
        i0 = fl.astype(np.int64) % self.slots
        i1 = (i0 + 1) % self.slots
        if scalar:
            return int(i0[0]), int(i1[0]), float(f[0])
        return i0, i1, f

    def value(self, loc: tuple) -> np.ndarray:
        i0, i1, f = loc
        if isinstance(i0, int):
            v = (1.0 - f) * self.prof[:, i0] + f * self.prof[:, i1]
        else:
            v = (1.0 - f) * self.prof[self._rows, i0] + f * self.prof[self._rows, i1]
        return np.where(self.active, v, 0.0)

    def learn(self, loc: tuple, e: np.ndarray) -> None:
        i0, i1, f = loc
        if isinstance(i0, int):
            self.prof[:, i0] += (1.0 - f) * e
            self.prof[:, i1] += f * e
        else:
            self.prof[self._rows, i0] += (1.0 - f) * e
            self.prof[self._rows, i1] += f * e


class RobustBaseline:
    """The shared engine of the detectors: per-series prediction, residual, robust z and deseasonalised value.

    Parameters (all optional; times in seconds, ``None`` = in units of each series' own sampling interval):
      periods: ``"auto"`` (test ``candidates``), a sequence of periods in seconds, or ``()`` for none.
      level_halflife_s: how fast the level follows the data (default 48 sampling intervals).
      scale_halflife_s: how fast the noise scale adapts (default 96 sampling intervals).
      season_halflife_periods: how many periods a seasonal slot takes to move half way to a new shape.
      clip: residuals beyond ``clip`` robust sigmas are clipped before they are learned (Huber).
      warmup: samples per series before any score is non-zero.
      slope_beta, slope_damping: the damped Holt local trend (0 switches it off); the trend's forecast over
        h sampling intervals is φ + … + φ^h slopes, so it never runs away across a gap.
    """

    def __init__(self, n: int, periods: str | Sequence[float] = AUTO, candidates: Sequence[float] = (DAY, WEEK),
                 level_halflife_s: float | None = None, scale_halflife_s: float | None = None,
                 season_halflife_periods: float = 3.0, clip: float = 3.0, warmup: int = 16,
                 slope_beta: float = 0.1, slope_damping: float = 0.98) -> None:
        self.n = n
        self.clock = SamplingClock(n)
        self.level = np.zeros(n)
        self.slope = np.zeros(n)  # local trend per second (damped Holt), so a smooth curve is not a lagging level
        self.beta, self.phi = slope_beta, slope_damping
        self.fast = np.zeros(n)  # deseasonalised value, half-life of 2 samples: the new level after a change point
        self.fast_abs = np.zeros(n)  # recent mean |residual|, unclipped: the new scale after a variance change
        self.scale = np.zeros(n)
        # tail calibration: online estimates of the 99th and 99.9th percentiles of |z| (log scale, stochastic
        # approximation); heavy-tailed noise raises them and so every threshold built on z
        self.log_q99 = np.full(n, np.log(2.576))
        self.log_q999 = np.full(n, np.log(3.291))
        # lag-1 autocorrelation of the residuals (exponentially weighted), for the change statistics
        self.c0 = np.ones(n)
        self.c1 = np.zeros(n)
        self.z_prev = np.zeros(n)
        self.level_hl, self.scale_hl = level_halflife_s, scale_halflife_s
        self.season_hl = season_halflife_periods
        self.clip, self.warmup = clip, warmup
        self.auto = isinstance(periods, str)
        plist = sorted(float(p) for p in (candidates if self.auto else periods))
        self.components = [_Profile(n, p, int(min(168, max(24, round(p / 3600.0)))), active=not self.auto)
                           for p in plist]
        if self.auto and self.components:
            self._init_auto(n, plist)
        # outputs of the last step, for the detectors built on the baseline
        self.z = np.zeros(n)
        self.r = np.zeros(n)
        self.season = np.zeros(n)
        self.gap = np.ones(n)

    # ------------------------------------------------------------ auto seasonality
    def _init_auto(self, n: int, plist: list[float]) -> None:
        self.bw = plist[0] / 24.0  # bucket width: an hour for the daily candidate
        self.ring_len = int(min(np.ceil(3 * plist[-1] / self.bw), 24 * 7 * 3 + 24))
        self.ring = np.full((n, self.ring_len), np.nan, dtype=np.float32)
        self.ring_b = np.full((n, self.ring_len), -1, dtype=np.int64)
        self.cur_b = np.full(n, -1, dtype=np.int64)
        self.acc = np.zeros(n)
        self.acc_n = np.zeros(n)
        self.lags = [round(p / self.bw) for p in plist]
        # the daily test is due for every series at once (shared clock): spread it over scrapes, ROWS_PER_STEP at a time
        self.due = np.zeros(n, dtype=bool)
        self.due_end = np.zeros(n, dtype=np.int64)

    def _buckets(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        b = np.where(valid, np.floor(t / self.bw), -1).astype(np.int64)
        close = valid & (b != self.cur_b) & (self.acc_n > 0)
        if close.any():
            idx = np.flatnonzero(close)
            cb = self.cur_b[idx]
            self.ring[idx, cb % self.ring_len] = self.acc[idx] / self.acc_n[idx]
            self.ring_b[idx, cb % self.ring_len] = cb
            self.acc[idx] = 0.0
            self.acc_n[idx] = 0.0
            day_end = (cb + 1) % self.lags[0] == 0
            if day_end.any():
                self.due[idx[day_end]] = True
                self.due_end[idx[day_end]] = cb[day_end]
        if self.due.any():
            rows = np.flatnonzero(self.due)[:ROWS_PER_STEP]
            self.due[rows] = False
            self._test(rows, self.due_end[rows])
        self.cur_b = np.where(valid, b, self.cur_b)
        self.acc += np.where(valid, x, 0.0)
        self.acc_n += valid

    def _test(self, idx: np.ndarray, end_b: np.ndarray) -> None:
        L = self.ring_len
        e = end_b[:, None] - (L - 1) + np.arange(L)[None, :]  # absolute bucket numbers, oldest first
        y = self.ring[idx[:, None], e % L].astype(float)
        y = np.where(self.ring_b[idx[:, None], e % L] == e, y, np.nan)

        def msd(lag: int) -> tuple[np.ndarray, np.ndarray]:
            d = y[:, lag:] - y[:, :-lag]
            ok = np.isfinite(d)
            cnt = ok.sum(axis=1)
            return np.where(ok, d * d, 0.0).sum(axis=1) / np.maximum(cnt, 1), cnt

        prev_lag = None
        for k, (comp, lag) in enumerate(zip(self.components, self.lags, strict=True)):
            ref = prev_lag if prev_lag and lag % prev_lag == 0 else max(lag // 2, 1)
            num, cnt = msd(lag)
            den, _ = msd(ref)
            need = lag  # a full period of pairs: two periods of data (as STL needs)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(den > 0, num / den, 1.0)
            enough = cnt >= need
            was = comp.active[idx]
            on = enough & ((ratio < 0.5) | (was & (ratio < 1.0)))
            new = on & ~was
            if new.any():
                self._seed_profile(k, idx[new], y[new], e[new])
            comp.active[idx] = np.where(enough, on, was)
            prev_lag = lag

    def _seed_profile(self, k: int, rows: np.ndarray, y: np.ndarray, e: np.ndarray) -> None:
        """Start component k's profile at the per-slot medians of the buffered history (minus the other components)."""
        comp, lag = self.components[k], self.lags[k]
        y = y.copy()
        for j, other in enumerate(self.components):
            if j != k and other.active[rows].any() and other.width == self.bw:
                y -= np.where(other.active[rows, None], other.prof[rows[:, None], e % other.slots], 0.0)
        periods = min(3, y.shape[1] // lag)
        tail = y[:, -periods * lag:]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            base = np.nanmedian(tail, axis=1, keepdims=True)
            med = np.nanmedian((tail - base).reshape(len(rows), periods, lag), axis=1)
        med = np.where(np.isfinite(med), med, 0.0)
        if comp.slots == lag and comp.width == self.bw:
            # med[:, j] belongs to slot (start + j) mod slots; rows may have different bucket clocks
            starts = e[:, -periods * lag] % comp.slots
            cols = (np.arange(lag)[None, :] - starts[:, None]) % lag
            prof = np.take_along_axis(med, cols, axis=1)
            comp.prof[rows] = prof - prof.mean(axis=1, keepdims=True)

    # ------------------------------------------------------------------ step
    def step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        dt = self.clock.tick(t, valid)
        cnt = self.clock.count  # includes this sample
        first = valid & (cnt == 1)
        interval = self.clock.interval()
        lvl_hl = self.level_hl or 48.0 * interval
        scl_hl = self.scale_hl or 96.0 * interval
        scalar = t[0] == t[-1] and bool(np.all(t == t[0]))
        locs = [c.locate(t, scalar) for c in self.components]
        season = np.zeros(self.n)
        for c, loc in zip(self.components, locs, strict=True):
            season += c.value(loc)
        # damped-trend forecast: φ + φ² + … + φ^h steps of the local slope (h = dt in sampling intervals)
        h = np.minimum(dt / interval, 1e4)
        steps = self.phi * (1.0 - np.power(self.phi, h)) / (1.0 - self.phi) if self.phi < 1.0 else h
        trend_term = self.slope * interval * steps
        pred = self.level + trend_term + season
        r = np.where(first, 0.0, x - pred)
        # a gap widens the tolerance: the prediction is older than usual
        excess = np.where(interval > 0, np.maximum(dt / interval - 1.0, 0.0), 0.0)
        gap = np.sqrt(1.0 + excess / 48.0)
        sigma = 1.2533 * self.scale * gap  # mean absolute deviation → Gaussian sigma
        tiny = 1e-9 * (np.abs(pred) + 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(np.abs(r) <= tiny, 0.0, r / sigma)
        z = np.where(np.isfinite(z), z, np.sign(r) * 1e6)
        warm = cnt > self.warmup
        z = np.where(valid & warm, z, 0.0)
        self.z_raw = z
        upd = valid & warm
        az = np.abs(z)
        self.log_q99 = np.where(upd, self.log_q99 + 0.02 * (0.99 - (az <= np.exp(self.log_q99))), self.log_q99)
        self.log_q999 = np.where(upd, self.log_q999 + 0.05 * (0.999 - (az <= np.exp(self.log_q999))), self.log_q999)
        self.tail = fclip(np.maximum(np.exp(self.log_q99) / 2.576, np.exp(self.log_q999) / 3.291), 1.0, 20.0)
        self.z = z / self.tail
        zc = fclip(self.z, -4.0, 4.0)
        dt_cap = np.minimum(dt, 2.0 * interval)  # statistics of the noise learn per sample, not per second of a gap
        a_r = halflife_alpha(dt_cap, 4.0 * (self.scale_hl or 96.0 * interval))  # slow: an anomaly must not teach it
        self.c0 = np.where(upd, self.c0 + a_r * (zc * zc - self.c0), self.c0)
        self.c1 = np.where(upd, self.c1 + a_r * (zc * self.z_prev - self.c1), self.c1)
        self.z_prev = np.where(upd, zc, self.z_prev)
        self.rho = fclip(self.c1 / np.maximum(self.c0, 1e-9), 0.0, 0.9)
        self.r = np.where(valid, r, 0.0)
        self.season = season
        self.gap = gap
        # ---- learn (after scoring: strictly causal)
        a_l = halflife_alpha(dt, lvl_hl)
        a_s = halflife_alpha(dt_cap, scl_hl)
        a_f = halflife_alpha(dt, 2.0 * interval)
        n_eff = np.maximum(cnt, 1).astype(float)
        a_l = np.where(warm, a_l, 1.0 / n_eff)  # running mean while warming up
        a_s = np.where(warm, a_s, 1.0 / np.maximum(n_eff - 1.0, 1.0))
        bound = self.clip * np.maximum(self.scale, tiny)
        rc = np.where(warm, fclip(r, -bound, bound), r)
        des = x - season
        self.level = np.where(first, x, np.where(valid, self.level + trend_term + a_l * rc, self.level))
        if self.beta > 0:
            damp = np.power(self.phi, np.minimum(dt / interval, 1e3))
            nxt = damp * (self.slope + self.beta * a_l * rc / np.maximum(dt, 0.5 * interval))
            self.slope = np.where(valid & warm & ~first, nxt, self.slope)
        self.fast = np.where(first, des, np.where(valid, self.fast + a_f * (des - self.fast), self.fast))
        absr = np.abs(r)
        self.fast_abs = np.where(valid, self.fast_abs + a_f * (absr - self.fast_abs), self.fast_abs)
        grow = np.minimum(absr, bound)  # a variance change resets the scale (changepoint.py); here it stays robust
        self.scale = np.where(valid & ~first, self.scale + a_s * (np.where(warm, grow, absr) - self.scale), self.scale)
        if any(c.active.any() for c in self.components):
            e = np.where(valid & warm, (1.0 - a_l) * rc, 0.0)
            for c, loc in zip(self.components, locs, strict=True):
                if c.active.any():
                    slot_samples = c.width / interval
                    eta = 1.0 - np.exp2(-1.0 / np.maximum(self.season_hl * slot_samples, 1.0))
                    c.learn(loc, np.where(c.active, eta * e, 0.0))
        if self.auto and self.components:
            self._buckets(t, x, valid)

    def reset_level(self, rows: np.ndarray) -> None:
        """A change point: the level jumps to the recent deseasonalised mean."""
        self.level = np.where(rows, self.fast, self.level)
        self.slope = np.where(rows, 0.0, self.slope)

    def reset_scale(self, rows: np.ndarray) -> None:
        """A variance change: the scale jumps to the recent mean absolute residual."""
        self.scale = np.where(rows, np.maximum(self.fast_abs, self.scale), self.scale)

    def season_extreme(self, high: bool = True) -> np.ndarray:
        """The highest (or lowest) value the active seasonal profiles reach: when will a daily peak hit a limit?"""
        out = np.zeros(self.n)
        for c in self.components[:1]:  # the shortest period only: a longer profile may hold a past anomaly
            if c.active.any():
                out += np.where(c.active, c.prof.max(axis=1) if high else c.prof.min(axis=1), 0.0)
        return out


class SeasonalDetector(Detector):
    """Spike/dip score: the robust z of each sample against the seasonal baseline. 0.5 at |z| = ``z_threshold``."""

    name = "seasonal"

    def __init__(self, z_threshold: float = 5.0, **baseline: object) -> None:
        super().__init__()
        self.z_threshold = z_threshold
        self.opts = baseline

    def _alloc(self, n: int) -> None:
        self.base = RobustBaseline(n, **self.opts)  # type: ignore[arg-type]

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.base.step(t, x, valid)
        return ramp(np.abs(self.base.z), self.z_threshold)
