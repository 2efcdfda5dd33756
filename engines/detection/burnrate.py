"""Multiwindow, multi-burn-rate SLO alerts for error-ratio series (Google SRE workbook, ch. 5).

The burn rate over a window is the mean error ratio divided by the error budget
(1 − SLO).  An alert pair (long, short, factor) fires when both windows burn
faster than ``factor``; the defaults are the workbook's page conditions for a
99.9 % SLO over 30 days: 14.4× over 1 h and 5 m (2 % of the budget in an hour),
6× over 6 h and 30 m (5 % in six hours).  Score per pair =
clip(min(burn_long, burn_short)/factor − 0.5, 0, 1), so 0.5 exactly at the
alert condition; the detector's score is the highest pair.

Windows are exact to ``resolution_s`` (default: a fifth of the shortest window):
cumulative sums are snapshotted at that resolution, so memory is
N × (longest window / resolution) × 2 floats and each update is O(N).  The
series of one batch share one clock (a scrape time); with per-series times the
latest is used.  Samples are weighted equally (a ratio per scrape).  While a
window is not yet covered by data (start-up), its unseen part counts as
error-free, so a fresh detector does not page on its first few samples.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from engines.detection.api import Detector, fclip

SRE_WORKBOOK_PAGES: tuple[tuple[float, float, float], ...] = ((3600.0, 300.0, 14.4), (21600.0, 1800.0, 6.0))


class BurnRate(Detector):
    name = "burnrate"

    def __init__(self, slo: float = 0.999, windows: Sequence[tuple[float, float, float]] = SRE_WORKBOOK_PAGES,
                 resolution_s: float | None = None) -> None:
        super().__init__()
        if not 0.0 < slo < 1.0:
            raise ValueError("slo must be between 0 and 1 (e.g. 0.999)")
        self.budget = 1.0 - slo
        self.windows = tuple((float(a), float(b), float(f)) for a, b, f in windows)
        shortest = min(min(a, b) for a, b, _ in self.windows)
        self.res = resolution_s or shortest / 5.0
        self.keep = max(max(a, b) for a, b, _ in self.windows) + 2 * self.res

    def _alloc(self, n: int) -> None:
        self.cs = np.zeros(n)
        self.cn = np.zeros(n)
        self.snap_t: list[float] = []
        self.snap_s: list[np.ndarray] = []
        self.snap_n: list[np.ndarray] = []
        self.first_t = np.full(n, np.nan)

    def _mean_since(self, now: float, window: float) -> np.ndarray:
        i = bisect.bisect_right(self.snap_t, now - window) - 1
        s, c = (self.snap_s[i], self.snap_n[i]) if i >= 0 else (0.0, 0.0)
        cnt = self.cn - c
        mean = np.where(cnt > 0, (self.cs - s) / np.maximum(cnt, 1.0), 0.0)
        # a window not yet covered by data counts its unseen part as error-free (no alarm storm at start-up)
        covered = fclip((now - self.first_t + self.res) / window, 0.0, 1.0)
        return mean * np.where(np.isfinite(covered), covered, 0.0)

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        now = float(np.nanmax(t)) if np.isfinite(t).any() else (self.snap_t[-1] if self.snap_t else 0.0)
        if not self.snap_t or now - self.snap_t[-1] >= self.res:
            self.snap_t.append(now)
            self.snap_s.append(self.cs.copy())
            self.snap_n.append(self.cn.copy())
            drop = bisect.bisect_left(self.snap_t, now - self.keep)
            if drop > 0:
                del self.snap_t[:drop], self.snap_s[:drop], self.snap_n[:drop]
        self.first_t = np.where(np.isnan(self.first_t) & valid, t, self.first_t)
        self.cs = self.cs + np.maximum(x, 0.0) * valid
        self.cn = self.cn + valid
        score = np.zeros(len(x))
        for long_w, short_w, factor in self.windows:
            burn = np.minimum(self._mean_since(now, long_w), self._mean_since(now, short_w)) / self.budget
            score = np.maximum(score, fclip(burn / factor - 0.5, 0.0, 1.0))
        return score
