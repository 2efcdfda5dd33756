"""Predictive detection of slow faults: a robust trend gives the time until the series crosses a limit.

The series is averaged into ``buckets`` buckets over a sliding ``window_s``; when a
bucket closes, the Theil–Sen slope (median of the pairwise slopes of the bucket
means) and the Mann–Kendall agreement (share of concordant pairs minus
discordant ones) are computed.  If the trend is consistent (agreement ≥
``min_agreement``) and heads for ``limit``, the predicted crossing time is
stored; the score is ``1 − time_to_limit / (2·horizon_s)`` clipped to [0, 1], so
it is 0.5 when the limit is ``horizon_s`` away, and 1 once it is reached.
Cost: O(1) per sample, O(buckets²) per series per closed bucket; when many series close a
bucket at once (a shared scrape clock) the refits are spread over the next updates,
256 series per update.
"""

from __future__ import annotations

import warnings

import numpy as np

from common.nanstats import nanmedian
from engines.detection.api import Detector, fclip
from engines.detection.seasonal import ROWS_PER_STEP

HOUR = 3600.0


class TrendToLimit(Detector):
    name = "trend"

    def __init__(self, limit: float = 1.0, direction: str = "up", window_s: float = 6 * HOUR,
                 horizon_s: float = 12 * HOUR, buckets: int = 12, min_agreement: float = 0.6) -> None:
        super().__init__()
        if direction not in ("up", "down"):
            raise ValueError("direction must be 'up' (an upper limit) or 'down' (a lower limit)")
        self.limit, self.sign = float(limit), 1.0 if direction == "up" else -1.0
        self.window_s, self.horizon_s, self.k, self.min_agreement = window_s, horizon_s, buckets, min_agreement
        self.bw = window_s / buckets
        i, j = np.triu_indices(buckets, k=1)
        self._i, self._j = i, j

    def _alloc(self, n: int) -> None:
        self.cur_b = np.full(n, -1, dtype=np.int64)
        self.acc_t = np.zeros(n)
        self.acc_x = np.zeros(n)
        self.acc_n = np.zeros(n)
        self.rt = np.full((n, self.k), np.nan)
        self.ry = np.full((n, self.k), np.nan)
        self.t_cross = np.full(n, np.inf)
        self.ttl = np.full(n, np.inf)
        self.offset = np.zeros(n)  # added to the values (e.g. the seasonal peak) before comparing with the limit
        self.dirty = np.zeros(n, dtype=bool)  # a bucket closed, the trend is not yet refitted

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        b = np.where(valid, np.floor(t / self.bw), -1).astype(np.int64)
        close = valid & (b != self.cur_b) & (self.acc_n > 0)
        if close.any():
            self._close(np.flatnonzero(close))
        if self.dirty.any():  # with a shared clock every series closes at once: refit ROWS_PER_STEP per update
            rows = np.flatnonzero(self.dirty)[:ROWS_PER_STEP]
            self.dirty[rows] = False
            self._fit(rows)
        self.cur_b = np.where(valid, b, self.cur_b)
        self.acc_t += np.where(valid, t, 0.0)
        self.acc_x += np.where(valid, x, 0.0)
        self.acc_n += valid
        self.ttl = np.maximum(self.t_cross - t, 0.0)
        return fclip(1.0 - self.ttl / (2.0 * self.horizon_s), 0.0, 1.0)

    def _close(self, idx: np.ndarray) -> None:
        m = self.acc_n[idx]
        self.rt[idx] = np.concatenate([self.rt[idx, 1:], (self.acc_t[idx] / m)[:, None]], axis=1)
        self.ry[idx] = np.concatenate([self.ry[idx, 1:], (self.acc_x[idx] / m + self.offset[idx])[:, None]], axis=1)
        self.acc_t[idx] = self.acc_x[idx] = self.acc_n[idx] = 0.0
        self.dirty[idx] = True

    def _fit(self, idx: np.ndarray) -> None:
        t_now = self.rt[idx, -1]
        # a bucket older than the window (a gap) does not count
        old = self.rt[idx] < (t_now[:, None] - self.window_s - self.bw)
        rt = np.where(old, np.nan, self.rt[idx])
        ry = np.where(old, np.nan, self.ry[idx])
        dy = ry[:, self._j] - ry[:, self._i]
        dtt = rt[:, self._j] - rt[:, self._i]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            slopes = dy / dtt
            ok = np.isfinite(slopes)
            npairs = ok.sum(axis=1)
            agree = (np.where(ok, np.sign(slopes), 0.0).sum(axis=1)) / np.maximum(npairs, 1)
            slope = nanmedian(np.where(ok, slopes, np.nan), axis=1)
            icpt = nanmedian(ry - slope[:, None] * (rt - t_now[:, None]), axis=1)  # level at t_now
            gap = (self.limit - icpt) * self.sign  # > 0: below an upper limit / above a lower one
            heading = (slope * self.sign > 0) & (agree * self.sign >= self.min_agreement)
            ttl = np.where(heading, gap / np.abs(slope), np.inf)
        ready = npairs >= (self.k // 2) * (self.k // 2 - 1) // 2
        ttl = np.where(gap <= 0, 0.0, ttl)
        ttl = np.where(ready & np.isfinite(icpt), ttl, np.inf)
        self.t_cross[idx] = t_now + ttl
