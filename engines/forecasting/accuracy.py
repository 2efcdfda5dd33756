"""Forecast accuracy on the quantity a scaler provisions for, computed offline from a whole series.

The target of the forecast made at row i is the mean of the samples in ``(t_i + h - w, t_i + h]`` (h the horizon,
w the demand window, at least the series' median sampling interval so the window never falls between samples);
rows whose target window is empty or runs past the end of the series are not scored.

* MAPE — mean |forecast − target| / |target| (targets of 0 are left out of it);
* within ±10 % — the share of forecasts with |forecast − target| ≤ 10 % of |target|;
* MASE — MAE of the forecasts / MAE of seasonal-naive (the target window one period earlier) on the same rows
  (the out-of-sample relative form; < 1 beats seasonal-naive);
* coverage — the share of targets inside [lo, hi].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DAY = 86400.0


def effective_window(t: np.ndarray, window_s: float) -> float:
    """The demand window, widened to the median sampling interval of a coarser series."""
    d = np.diff(np.asarray(t, dtype=float))
    d = d[d > 0]
    return max(float(window_s), float(np.median(d)) if len(d) else 0.0)


def window_means(t: np.ndarray, x: np.ndarray, ends: np.ndarray, window_s: float) -> np.ndarray:
    """Mean of the finite samples with timestamp in ``(end − window_s, end]`` for each end; NaN where none."""
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    cs = np.r_[0.0, np.cumsum(np.where(ok, x, 0.0))]
    cn = np.r_[0, np.cumsum(ok)]
    hi = np.searchsorted(t, ends, side="right")
    lo = np.searchsorted(t, ends - window_s, side="right")
    n = cn[hi] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cs[hi] - cs[lo]) / n
    return np.where((n > 0) & np.isfinite(ends) & (ends <= t[-1] if len(t) else False), out, np.nan)


def targets(t: np.ndarray, x: np.ndarray, horizon_s: float, window_s: float) -> np.ndarray:
    """Row i's target: the mean demand over the window ending ``horizon_s`` after row i."""
    t = np.asarray(t, dtype=float)
    return window_means(t, x, t + horizon_s, window_s)


def seasonal_naive(t: np.ndarray, x: np.ndarray, horizon_s: float, window_s: float,
                   period_s: float = DAY) -> np.ndarray:
    """The seasonal-naive forecast of each row's target: the same window one period earlier (NaN before that)."""
    t = np.asarray(t, dtype=float)
    return window_means(t, x, t + horizon_s - period_s, window_s)


@dataclass
class Accuracy:
    n: int  # scored rows
    mape: float
    within_10: float
    mase: float  # vs seasonal-naive on the rows where both have a forecast (NaN if none)
    coverage: float
    mae: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score(forecast: np.ndarray, target: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
          naive: np.ndarray | None = None, tolerance: float = 0.10) -> Accuracy:
    """Accuracy of the forecasts of the rows that have both a forecast and a target."""
    f = np.asarray(forecast, dtype=float)
    y = np.asarray(target, dtype=float)
    ok = np.isfinite(f) & np.isfinite(y)
    err = np.abs(f - y)
    n = int(ok.sum())
    if n == 0:
        return Accuracy(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    nz = ok & (y != 0)
    mape = float(np.mean(err[nz] / np.abs(y[nz]))) if nz.any() else float("nan")
    within = float(np.mean(err[ok] <= tolerance * np.abs(y[ok]) + 1e-12))
    mase = float("nan")
    if naive is not None:
        nv = np.asarray(naive, dtype=float)
        both = ok & np.isfinite(nv)
        den = float(np.mean(np.abs(nv[both] - y[both]))) if both.any() else 0.0
        if den > 0:
            mase = float(np.mean(err[both])) / den
    cov = float("nan")
    if lo is not None and hi is not None:
        lo_, hi_ = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        cok = ok & np.isfinite(lo_) & np.isfinite(hi_)
        if cok.any():
            cov = float(np.mean((y[cok] >= lo_[cok] - 1e-9) & (y[cok] <= hi_[cok] + 1e-9)))
    return Accuracy(n, mape, within, mase, cov, float(np.mean(err[ok])))


def noise_floor(rate: float, window_samples: int = 5, dispersion: float = 1.0, burst_sigma: float = 0.0,
                n: int = 20000, tolerance: float = 0.10, seed: int = 0) -> float:
    """Share of windows within ±``tolerance`` of a PERFECT rate forecast when each sample is a count with mean
    ``rate`` (Poisson at ``dispersion`` 1; negative binomial with variance = dispersion × mean above 1; with
    ``burst_sigma`` the rate of each sample is first multiplied by a lognormal burst, mean 1), the target being the
    mean of ``window_samples`` samples.  What no forecaster can beat on such counts."""
    rng = np.random.default_rng(seed)
    shape = (n, window_samples)
    lam = rate * np.exp(rng.normal(-0.5 * burst_sigma**2, burst_sigma, shape)) if burst_sigma > 0 else \
        np.full(shape, float(rate))
    if dispersion <= 1.0:
        c = rng.poisson(lam)
    else:
        p = 1.0 / dispersion  # NB with mean lam, variance lam / p
        c = rng.negative_binomial(lam * p / (1.0 - p), p)
    m = c.mean(axis=1)
    return float(np.mean(np.abs(m - rate) <= tolerance * rate))
