"""Autonomous predictive scaling (docs/scaling.md): forecast-first, multi-dimensional, reactive safety net."""

from engines.scaling.capacity import DIMENSIONS, CapacityModel
from engines.scaling.config import PredictiveScalerConfig
from engines.scaling.scaler import PredictiveScaler

__all__ = ["DIMENSIONS", "CapacityModel", "PredictiveScaler", "PredictiveScalerConfig"]
