"""Change detection on the standardised residuals of the robust baseline: CUSUM for level shifts and
a CUSUM of squared residuals for variance changes.

Two-sided CUSUM (Page 1954) on the robust z, each step clipped to ±``z_clip`` so that
one spike cannot raise a level-shift alarm:  S⁺ ← max(0, S⁺ + z − k),  S⁻ ← max(0, S⁻ − z − k).
With k = 1 and h = 8 a persistent 2σ shift is flagged after about 8 samples, a 4σ
shift after 3; a 1σ shift (the noise itself) is not.  When S reaches 1.5 h the
baseline accepts the change: its level jumps to the recent mean and S restarts,
so an alarm ends once the series has settled at its new level.

The variance statistic V ← max(0, V + min(z², 16) − 3) works the same way; at its
reset the noise scale jumps to the recent mean absolute residual — unless a level
shift is under way: a shift is accepted first and clears V, so a step is not
mistaken for noise (which would blind the detector for hours).
"""

from __future__ import annotations

import numpy as np

from engines.detection.api import Detector, fclip, ramp
from engines.detection.seasonal import RobustBaseline


class ChangeStats:
    """Level-shift and variance-change statistics for N series, fed with the baseline's z."""

    def __init__(self, n: int, k: float = 1.0, h: float = 8.0, z_clip: float = 4.0,
                 var_h: float = 16.0, var_drift: float = 3.0) -> None:
        self.pos = np.zeros(n)
        self.neg = np.zeros(n)
        self.var = np.zeros(n)
        self.k, self.h, self.z_clip, self.var_h, self.var_drift = k, h, z_clip, var_h, var_drift

    def step(self, z: np.ndarray, valid: np.ndarray, base: RobustBaseline) -> tuple[np.ndarray, np.ndarray]:
        """Returns (shift score, variance score) and resets the baseline where a change is accepted."""
        # autocorrelated noise wanders: a sum of n residuals has sd ≈ √n·√((1+ρ)/(1−ρ)), so scale the steps down
        inflate = np.sqrt((1.0 + base.rho) / (1.0 - base.rho))
        zc = fclip(z, -self.z_clip, self.z_clip) / inflate
        self.pos = np.where(valid, np.maximum(0.0, self.pos + zc - self.k), self.pos)
        self.neg = np.where(valid, np.maximum(0.0, self.neg - zc - self.k), self.neg)
        self.var = np.where(valid, np.maximum(0.0, self.var + np.minimum(z * z, 16.0) - self.var_drift), self.var)
        s = np.maximum(self.pos, self.neg)
        shift = ramp(s, self.h)
        vscore = ramp(self.var, self.var_h)
        accept = s >= 1.5 * self.h
        if accept.any():
            base.reset_level(accept)
            self.pos = np.where(accept, 0.0, self.pos)
            self.neg = np.where(accept, 0.0, self.neg)
            # the residuals that raised the variance statistic were the shift's: forget them
            self.var = np.where(accept, 0.0, self.var)
            base.fast_abs = np.where(accept, base.scale, base.fast_abs)
        vaccept = (self.var >= 1.5 * self.var_h) & ~accept & (s < self.h)
        if vaccept.any():
            base.reset_scale(vaccept)
            self.var = np.where(vaccept, 0.0, self.var)
        return shift, vscore


class CusumDetector(Detector):
    """Level shifts only: CUSUM over the robust seasonal baseline's residuals (0.5 when S = h)."""

    name = "cusum"

    def __init__(self, k: float = 1.0, h: float = 8.0, **baseline: object) -> None:
        super().__init__()
        self.k, self.h, self.opts = k, h, baseline

    def _alloc(self, n: int) -> None:
        self.base = RobustBaseline(n, **self.opts)  # type: ignore[arg-type]
        self.stats = ChangeStats(n, k=self.k, h=self.h)

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.base.step(t, x, valid)
        shift, _ = self.stats.step(self.base.z, valid, self.base)
        return shift
