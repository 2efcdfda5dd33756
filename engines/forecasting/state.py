"""Numpy state shared by the forecasters, each over N series: the recent window mean, the bucketed history, the
forecasts waiting for their target time, and online error quantiles.

All of it is strictly causal: a structure only ever holds samples already seen.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def _cols(t: np.ndarray, width: float) -> np.ndarray:
    return np.floor(t / width).astype(np.int64)


class RecentWindow:
    """The mean of each series over the last ``window_s`` seconds, from ``slots`` sub-buckets of ``window_s/slots``.

    The window is the current (partial) sub-bucket and the ``slots - 1`` before it, so it spans between
    ``(slots-1)/slots`` and one ``window_s``.  A series sampled coarser than the window (or after a gap) has an empty
    window: its mean is then its last value (persistence of the last sample).
    """

    def __init__(self, n: int, window_s: float, slots: int = 5) -> None:
        self.width = float(window_s) / slots
        self.slots, self.ring = slots, slots + 1
        self.sums = np.zeros((n, self.ring))
        self.cnts = np.zeros((n, self.ring))
        self.ids = np.full((n, self.ring), -(10**12), dtype=np.int64)
        self.last = np.full(n, np.nan)
        self._rows = np.arange(n)

    def add(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        b = _cols(np.where(valid, t, 0.0), self.width)
        c = b % self.ring
        r = self._rows
        stale = self.ids[r, c] != b
        self.sums[r, c] = np.where(valid & stale, 0.0, self.sums[r, c]) + np.where(valid, x, 0.0)
        self.cnts[r, c] = np.where(valid & stale, 0.0, self.cnts[r, c]) + valid
        self.ids[r, c] = np.where(valid, b, self.ids[r, c])
        self.last = np.where(valid, x, self.last)

    def mean(self, t: np.ndarray) -> np.ndarray:
        """Mean over the window ending at ``t`` (``t`` at or after the last sample added)."""
        b = _cols(t, self.width)
        live = (self.ids > (b[:, None] - self.slots)) & (self.ids <= b[:, None])
        s = np.where(live, self.sums, 0.0).sum(axis=1)
        k = np.where(live, self.cnts, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(k > 0, s / np.maximum(k, 1.0), self.last)


class History:
    """Bucket means over the last ``span_s`` seconds (float32, NaN = no sample), for seasonal-naive look-ups."""

    def __init__(self, n: int, width_s: float, span_s: float) -> None:
        self.width = float(width_s)
        self.len = int(np.ceil(span_s / self.width)) + 3
        self.ring = np.full((n, self.len), np.nan, dtype=np.float32)
        self.cur = np.full(n, -1, dtype=np.int64)
        self.acc = np.zeros(n)
        self.acc_n = np.zeros(n)
        self._rows = np.arange(n)
        self._ar = np.arange(self.len)[None, :]

    def add(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        b = np.where(valid, _cols(np.where(valid, t, 0.0), self.width), self.cur)
        close = valid & (b != self.cur) & (self.cur >= 0)
        if close.any():
            idx = np.flatnonzero(close)
            old, new = self.cur[idx], b[idx]
            self.ring[idx, old % self.len] = np.where(self.acc_n[idx] > 0,
                                                      self.acc[idx] / np.maximum(self.acc_n[idx], 1.0), np.nan)
            skipped = new - old - 1  # buckets with no sample at all: clear what the ring held for them
            if (skipped > 0).any():
                g = idx[skipped > 0]
                sk, o = skipped[skipped > 0], old[skipped > 0]
                clear = ((self._ar - (o[:, None] + 1)) % self.len) < np.minimum(sk, self.len)[:, None]
                self.ring[g] = np.where(clear, np.nan, self.ring[g])
            self.acc[idx] = 0.0
            self.acc_n[idx] = 0.0
        self.cur = np.where(valid, b, self.cur)
        self.acc += np.where(valid, x, 0.0)
        self.acc_n += valid

    def window_mean(self, end: np.ndarray, window_s: float) -> np.ndarray:
        """Mean over ``(end - window_s, end]`` (``window_s`` ≤ the bucket width) from the one or two closed buckets
        it overlaps, overlap-weighted; NaN where none is known."""
        lo = end - window_s
        k0 = _cols(lo, self.width)
        w1 = np.maximum(end - (k0 + 1) * self.width, 0.0)  # overlap with bucket k0 + 1
        w0 = np.minimum(end, (k0 + 1) * self.width) - lo
        v0, v1 = self._at(k0), self._at(k0 + 1)
        ok0, ok1 = np.isfinite(v0) & (w0 > 0), np.isfinite(v1) & (w1 > 0)
        den = np.where(ok0, w0, 0.0) + np.where(ok1, w1, 0.0)
        num = np.where(ok0, w0 * np.where(ok0, v0, 0.0), 0.0) + np.where(ok1, w1 * np.where(ok1, v1, 0.0), 0.0)
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def _at(self, k: np.ndarray) -> np.ndarray:
        """The closed bucket k of each series (NaN if open, too old or empty)."""
        ok = (k < self.cur) & (k > self.cur - self.len + 1)
        if len(k) > 1 and k[0] == k[-1] and bool(np.all(k == k[0])):
            v = self.ring[:, int(k[0]) % self.len]
        else:
            v = self.ring[self._rows, k % self.len]
        return np.where(ok, v.astype(float), np.nan)


class Pending:
    """Forecasts of M members waiting for their target time: stored by target sub-bucket, read back when it comes."""

    def __init__(self, n: int, members: int, width_s: float, horizon_s: float) -> None:
        self.width = float(width_s)
        self.len = int(np.ceil(horizon_s / self.width)) + 3
        self.f = np.full((members, n, self.len), np.nan)
        self.ids = np.full((n, self.len), -1, dtype=np.int64)
        self._rows = np.arange(n)

    def put(self, target_t: np.ndarray, forecasts: np.ndarray, valid: np.ndarray) -> None:
        b = _cols(np.where(valid, target_t, 0.0), self.width)
        c = b % self.len
        r = self._rows
        self.f[:, r, c] = np.where(valid[None, :], forecasts, self.f[:, r, c])
        self.ids[r, c] = np.where(valid, b, self.ids[r, c])

    def take(self, t: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The latest forecasts (M × N) whose target sub-bucket is at or before ``t``'s; NaN where none is waiting.

        Every waiting forecast due by ``t`` is consumed, so a series sampled coarser than the sub-buckets still
        scores one forecast per sample (against the first sample at or after its target time)."""
        b = _cols(np.where(valid, t, 0.0), self.width)
        due = (self.ids >= 0) & (self.ids <= b[:, None]) & valid[:, None]
        hit = due.any(axis=1)
        c = np.argmax(np.where(due, self.ids, -1), axis=1)
        out = np.where(hit[None, :], self.f[:, self._rows, c], np.nan)
        self.ids = np.where(due, -1, self.ids)
        return out


class OnlineQuantiles:
    """Running lower/upper quantiles of each series' errors (stochastic approximation, as adaptive conformal
    inference does): q ← q + γ·(τ − 1[e ≤ q]) with γ proportional to the running mean |error|, so the share of
    errors inside [q_lo, q_hi] tracks the nominal coverage on the recent error distribution.  While fewer than
    ``warmup`` errors are known, the bounds are at least the Gaussian ones from the mean absolute error."""

    def __init__(self, n: int, coverage: float = 0.9, lr: float = 0.04, warmup: int = 50) -> None:
        self.tau_lo, self.tau_hi = (1.0 - coverage) / 2.0, 1.0 - (1.0 - coverage) / 2.0
        self.z = NormalDist().inv_cdf(self.tau_hi) * 1.2533  # Gaussian bound in mean absolute errors
        self.warmup = warmup
        self.lo = np.zeros(n)
        self.hi = np.zeros(n)
        self.mae = np.zeros(n)
        self.count = np.zeros(n)
        self.lr = lr

    def add(self, e: np.ndarray, ok: np.ndarray) -> None:
        self.count += ok
        first = ok & (self.count == 1)
        a = np.where(ok, np.maximum(1.0 / np.maximum(self.count, 1.0), 0.02), 0.0)
        self.mae = np.where(ok, self.mae + a * (np.abs(e) - self.mae), self.mae)
        g = self.lr * np.maximum(self.mae, 1e-12)
        g = g * np.maximum(1.0, 8.0 / np.maximum(self.count, 1.0))  # bigger steps while few errors are known
        self.lo = np.where(first, e, np.where(ok, self.lo + g * (self.tau_lo - (e <= self.lo)), self.lo))
        self.hi = np.where(first, e, np.where(ok, self.hi + g * (self.tau_hi - (e <= self.hi)), self.hi))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) error bounds: the running quantiles, widened to the Gaussian ones while warming up."""
        g = np.where(self.count < self.warmup, self.z * self.mae, 0.0)
        return np.minimum(np.minimum(self.lo, 0.0), -g), np.maximum(np.maximum(self.hi, 0.0), g)
