"""The textbook baseline (NAB's "windowed Gaussian"): z of each sample against the mean and standard
deviation of the previous ``window`` samples.  0.5 at |z| = ``z_threshold``.  O(1) per update."""

from __future__ import annotations

import numpy as np

from engines.detection.api import Detector, ramp


class WindowedGaussian(Detector):
    name = "gaussian"

    def __init__(self, window: int = 288, z_threshold: float = 4.0, min_samples: int = 16) -> None:
        super().__init__()
        self.w, self.z_threshold, self.min_samples = int(window), z_threshold, min_samples

    def _alloc(self, n: int) -> None:
        self.buf = np.zeros((n, self.w))
        self.pos = np.zeros(n, dtype=np.int64)
        self.cnt = np.zeros(n, dtype=np.int64)
        self.ref = np.full(n, np.nan)  # values are summed relative to the first one (precision)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        self._rows = np.arange(n)

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.ref = np.where(np.isnan(self.ref) & valid, x, self.ref)
        y = np.where(valid, x - np.nan_to_num(self.ref), 0.0)
        m = np.minimum(self.cnt, self.w).astype(float)
        mean = self.s1 / np.maximum(m, 1.0)
        var = np.maximum(self.s2 / np.maximum(m, 1.0) - mean * mean, 0.0)
        sd = np.sqrt(var)
        d = y - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(np.abs(d) <= 1e-12 * (np.abs(mean) + 1.0), 0.0, d / sd)
        z = np.where(np.isfinite(z), z, 1e6)
        score = np.where(self.cnt >= self.min_samples, ramp(np.abs(z), self.z_threshold), 0.0)
        # learn: replace the oldest sample in the window
        old = self.buf[self._rows, self.pos]
        full = self.cnt >= self.w
        self.s1 += np.where(valid, y - np.where(full, old, 0.0), 0.0)
        self.s2 += np.where(valid, y * y - np.where(full, old * old, 0.0), 0.0)
        self.buf[self._rows, self.pos] = np.where(valid, y, old)
        self.pos = np.where(valid, (self.pos + 1) % self.w, self.pos)
        self.cnt += valid
        return score
