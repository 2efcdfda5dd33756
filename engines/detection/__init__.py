"""Streaming anomaly detection over metric series: one API, several methods (see docs/detection.md).

    det = make_detector("ensemble")          # or seasonal, cusum, trend, burnrate, gaussian
    score = det.update(t, value)             # one series, score in [0, 1], 0.5 = alert
    scores = det.update_many(t, values)      # N series at one scrape, vectorised

Engines import only numpy here: no twin, no simpy, no openstack.
"""

from __future__ import annotations

from typing import Any

from engines.detection.api import DAY, WEEK, Detector
from engines.detection.burnrate import BurnRate
from engines.detection.changepoint import CusumDetector
from engines.detection.ensemble import EnsembleDetector
from engines.detection.gaussian import WindowedGaussian
from engines.detection.seasonal import AUTO, RobustBaseline, SeasonalDetector
from engines.detection.trend import TrendToLimit

METHODS: dict[str, type[Detector]] = {
    "ensemble": EnsembleDetector,
    "seasonal": SeasonalDetector,
    "cusum": CusumDetector,
    "trend": TrendToLimit,
    "burnrate": BurnRate,
    "gaussian": WindowedGaussian,
}


def make_detector(method: str = "ensemble", **options: Any) -> Detector:
    """A fresh detector by name; unknown options raise TypeError, unknown names ValueError."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown detection method {method!r}; choose one of {', '.join(METHODS)}") from None
    return cls(**options)


__all__ = ["AUTO", "DAY", "WEEK", "METHODS", "BurnRate", "CusumDetector", "Detector", "EnsembleDetector",
           "RobustBaseline", "SeasonalDetector", "TrendToLimit", "WindowedGaussian", "make_detector"]
