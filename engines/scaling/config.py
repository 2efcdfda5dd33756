"""Settings of ``predictive_scaler``: the design's names (``PredictionWindowMinutes``, ...) are accepted as aliases."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictiveScalerConfig(BaseModel):
    """Settings of ``predictive_scaler`` (engines.registry validates them; docs/scaling.md explains each)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    prediction_window_minutes: float = Field(15.0, gt=0, le=24 * 60, alias="PredictionWindowMinutes",
                                             description="forecast horizon: capacity is kept for this far ahead")
    min_prediction_accuracy: float = Field(0.8, ge=0, le=1, alias="MinPredictionAccuracy",
                                           description="below this running share of forecasts within ±10 %, the "
                                                       "service is scaled reactively (and the reason says so)")
    max_scale_up_percent: float = Field(100.0, gt=0, alias="MaxScaleUpPercent",
                                        description="servers added per scale-up window, percent of the count at "
                                                    "the window's start (at least min_scale_up_step)")
    max_scale_down_percent: float = Field(50.0, ge=0, le=100, alias="MaxScaleDownPercent",
                                          description="servers removed per scale-down window, percent of the count "
                                                      "at the window's start (at least one when > 0)")
    scale_up_threshold: float = Field(0.70, gt=0, le=1, alias="ScaleUpThreshold",
                                      description="utilisation the provisioned demand may reach; above it now, "
                                                  "scale up at once (the reactive safety net)")
    target_utilization: float = Field(0.60, gt=0, le=1, alias="TargetUtilization",
                                      description="utilisation an interactive service's forecast demand is sized for: "
                                                  "below ScaleUpThreshold, the safety net's trigger (sized at the "
                                                  "trigger, noise alone crossed it and the two fought: "
                                                  "docs/scaling.md)")
    scale_down_threshold: float = Field(0.30, ge=0, lt=1, alias="ScaleDownThreshold",
                                        description="reactive mode: scale down below this utilisation")
    cost_weight: float = Field(0.4, ge=0, alias="CostWeight", description="weight of cost in the headroom choice")
    performance_weight: float = Field(0.6, ge=0, alias="PerformanceWeight",
                                      description="weight of performance: the share of the forecast interval's upper "
                                                  "half provisioned for is performance / (cost + performance)")
    scale_to_zero_idle_minutes: float = Field(60.0, gt=0, alias="ScaleToZeroIdleMinutes",
                                              description="a service with min_servers 0 and no requests this long "
                                                          "goes to zero (keeping a warm pool)")
    scale_from_zero_max_seconds: float = Field(30.0, gt=0, alias="ScaleFromZeroMaxSeconds",
                                               description="the resume latency the warm pool must meet")
    warm_pool_size: int = Field(1, ge=0, description="servers kept stopped (or shelved) at zero for a fast resume")
    warm_pool_mode: Literal["stop", "shelve"] = Field(
        "stop", description="stop: keeps its host, resumes in seconds, may bill a share; shelve: free, slow resume")
    scale_up_window_s: float = Field(30.0, gt=0, description="window of max_scale_up_percent (seconds)")
    scale_down_window_s: float = Field(300.0, gt=0, description="stabilisation window and the window of "
                                                                "max_scale_down_percent (seconds)")
    min_scale_up_step: int = Field(2, ge=1, description="servers that may always be added per scale-up window")
    default_boot_s: float = Field(60.0, gt=0, description="boot time assumed until one BUILD -> ACTIVE is seen")
    network_mbps_per_server: float = Field(1000.0, gt=0, description="network capacity of one server (its NIC), "
                                                                      "for the network dimension")
    batch_utilization: float = Field(0.9, gt=0, le=1, description="utilisation batch services are sized for "
                                                                  "(throughput, not latency)")
    batch_deadline_share: float = Field(0.8, gt=0, le=1, description="batch: queued work must be done within this "
                                                                     "share of its deadline")
    batch_spot: bool = Field(True, description="batch services scale up on spot capacity when a spot price exists")
    capacity_halflife_s: float = Field(7200.0, gt=0, description="memory of the learnt utilisation per request")
    forecast_every_s: float = Field(15.0, gt=0, description="seconds between forecaster updates (the safety net runs "
                                                            "every step); 60 s costs a quarter but made the forecast "
                                                            "intervals unstable on product-launch (docs/scaling.md)")
    max_headroom: float = Field(1.0, ge=0, description="the demand provisioned for is at most (1 + this) x the "
                                                       "forecast mean (a runaway interval must not buy a fleet)")
    cadence: float = Field(15.0, gt=0, description="seconds between steps")

    @model_validator(mode="after")
    def _consistent(self) -> PredictiveScalerConfig:
        if not self.scale_down_threshold < self.target_utilization <= self.scale_up_threshold:
            raise ValueError(f"TargetUtilization ({self.target_utilization}) must be above ScaleDownThreshold "
                             f"({self.scale_down_threshold}) and at most ScaleUpThreshold ({self.scale_up_threshold})")
        if self.scale_down_threshold >= self.scale_up_threshold:
            raise ValueError(f"ScaleDownThreshold ({self.scale_down_threshold}) must be below ScaleUpThreshold "
                             f"({self.scale_up_threshold})")
        if self.cost_weight + self.performance_weight <= 0:
            raise ValueError("CostWeight + PerformanceWeight must be > 0")
        return self

    @property
    def horizon_s(self) -> float:
        return self.prediction_window_minutes * 60.0

    @property
    def headroom_share(self) -> float:
        """The share of the interval's upper half (mean -> hi) provisioned for: performance / (cost + performance)."""
        return self.performance_weight / (self.cost_weight + self.performance_weight)
