"""Streaming forecasts of metric series: one API, several models (see docs/forecasting.md).

    fc = make_forecaster("ensemble", horizon_s=900)   # or seasonal, snaive, persistence
    fc.update(t, value)                               # one series
    mean, lo, hi = fc.forecast()                      # the 5-minute mean demand 15 minutes ahead, 90 % interval
    fc.update_many(t, values); fc.forecast_many()     # N series, vectorised

Engines import only numpy here: no twin, no simpy, no openstack.
"""

from __future__ import annotations

from typing import Any

from engines.forecasting.api import DAY, WEEK, Forecaster
from engines.forecasting.models import Ensemble, Persistence, Seasonal, SeasonalNaive

MODELS: dict[str, type[Forecaster]] = {
    "ensemble": Ensemble,
    "seasonal": Seasonal,
    "snaive": SeasonalNaive,
    "persistence": Persistence,
}


def make_forecaster(model: str = "ensemble", **options: Any) -> Forecaster:
    """A fresh forecaster by name; unknown options raise TypeError, unknown names ValueError."""
    try:
        cls = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown forecasting model {model!r}; choose one of {', '.join(MODELS)}") from None
    return cls(**options)


__all__ = ["DAY", "MODELS", "WEEK", "Ensemble", "Forecaster", "Persistence", "Seasonal", "SeasonalNaive",
           "make_forecaster"]
