"""The default detector: one robust seasonal baseline, several tests on its residuals, the highest score wins.

* spikes and dips — |z| of the sample against the seasonal baseline;
* level shifts — CUSUM of z;
* variance changes — CUSUM of z²;
* slow faults — time until the (deseasonalised, seasonal-peak) trend crosses ``limit``, if a limit is given;
* SLO burn — multiwindow burn rate, if ``slo`` is given (for error-ratio series).

Each part scores 0.5 at its own alarm condition, so one threshold (0.5) serves all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engines.detection.api import DAY, Detector, fclip, gauss_z_for_rate, ramp
from engines.detection.burnrate import BurnRate
from engines.detection.changepoint import ChangeStats
from engines.detection.seasonal import AUTO, RobustBaseline
from engines.detection.trend import TrendToLimit


class EnsembleDetector(Detector):
    """Parameters (all optional):

    periods: seasonality periods in seconds, ``"auto"`` (test a day and a week), or ``()``.
    z_threshold: calibrated robust sigmas for a spike to score 0.5 (default 5).
    fp_per_day: instead of ``z_threshold``, a false-alarm budget for spikes: the threshold is the Gaussian z
        exceeded ``fp_per_day`` times a day at each series' own sampling interval (never below 3.5).  The z is
        tail-calibrated (its running 99th percentile is held at the Gaussian 2.58), so the budget is roughly
        kept on heavy-tailed data too; level-shift and variance alarms are not part of the budget.
    limit, direction, horizon_s, trend_window_s: enable predictive time-to-limit detection.
    slo: enable burn-rate alerts (the series is an error ratio in [0, 1]).
    """

    name = "ensemble"

    def __init__(self, periods: str | Sequence[float] = AUTO, z_threshold: float = 5.0,
                 fp_per_day: float | None = None,
                 limit: float | None = None, direction: str = "up", horizon_s: float = 12 * 3600.0,
                 trend_window_s: float = 6 * 3600.0, slo: float | None = None,
                 shift_h: float = 8.0, **baseline: object) -> None:
        super().__init__()
        if fp_per_day is not None and not fp_per_day > 0:
            raise ValueError("fp_per_day must be > 0")
        self.z_threshold, self.fp_per_day = z_threshold, fp_per_day
        # inverse Gaussian tail by table: log10 of the per-sample exceedance probability -> z
        self._lp = np.linspace(-12.0, np.log10(0.5), 400)
        self._z = np.array([gauss_z_for_rate(10.0**lp * DAY, 1.0) for lp in self._lp])
        self.periods, self.baseline_opts, self.shift_h = periods, baseline, shift_h
        self.limit, self.direction, self.horizon_s, self.trend_window_s = limit, direction, horizon_s, trend_window_s
        self.slo = slo
        self.parts: dict[str, np.ndarray] = {}

    def _alloc(self, n: int) -> None:
        self.base = RobustBaseline(n, periods=self.periods, **self.baseline_opts)  # type: ignore[arg-type]
        self.change = ChangeStats(n, h=self.shift_h)
        self.trend = None if self.limit is None else TrendToLimit(
            self.limit, self.direction, window_s=self.trend_window_s, horizon_s=self.horizon_s)
        if self.trend is not None:
            self.trend.n = n
            self.trend._alloc(n)
        self.burn = None if self.slo is None else BurnRate(self.slo)

    def _step(self, t: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        b = self.base
        b.step(t, x, valid)
        zt: np.ndarray | float = self.z_threshold
        if self.fp_per_day is not None:
            p = fclip(self.fp_per_day * b.clock.interval() / DAY, 1e-12, 0.5)
            zt = np.maximum(np.interp(np.log10(p), self._lp, self._z), 3.5)
        spike = ramp(np.abs(b.z), zt)  # type: ignore[arg-type]
        shift, var = self.change.step(b.z, valid, b)
        score = np.maximum(spike, np.maximum(shift, var))
        self.parts = {"spike": spike, "shift": shift, "variance": var}
        if self.trend is not None:
            # the trend of the deseasonalised series, shifted to the seasonal peak: when will the daily peak hit it?
            self.trend.offset = b.season_extreme(self.direction == "up")
            tr = self.trend.update_many(t, np.where(valid, x - b.season, np.nan))
            self.parts["trend"] = tr
            score = np.maximum(score, tr)
        if self.burn is not None:
            br = self.burn.update_many(t, np.where(valid, x, np.nan))
            self.parts["burnrate"] = br
            score = np.maximum(score, br)
        return score


__all__ = ["EnsembleDetector", "DAY"]
