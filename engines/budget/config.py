"""Settings of ``budget_manager`` with the design's names (``AlertThresholds``, ``AutoScaleDownAtPercent``,
``EnforceHardLimit``, ``ForecastDays``, ``CostAnomalyThreshold``); snake_case forms are accepted too."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

PRIORITY_SETTING = "priority"  # ServiceState.settings["priority"]; live: server metadata zeroops_setting_priority
CAP_SETTING = "budget_max_servers"  # a budget cap on a service's running servers, placed by the budget manager
CAP_UNTIL_SETTING = "budget_cap_until"  # the cap holds until this time (the budget period's end)


def _f(default: Any, alias: str, snake: str, doc: str, **kw: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(alias, snake), serialization_alias=alias, description=doc,
                 **kw)


class BudgetManagerConfig(BaseModel):
    """Budget management (issue 9 §4): alerts, low-priority scale-down, hard limits, reallocation, forecasts."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    alert_thresholds: tuple[float, ...] = _f((0.8, 0.9, 1.0), "AlertThresholds", "alert_thresholds",
                                             "shares of a budget's limit at which to notify, once each per period")
    auto_scale_down_at_percent: float = _f(0.9, "AutoScaleDownAtPercent", "auto_scale_down_at_percent",
                                           "from this share of the limit spent, scale down low-priority work when "
                                           "the forecast to the period's end exceeds the limit", gt=0, le=2)
    enforce_hard_limit: bool = _f(False, "EnforceHardLimit", "enforce_hard_limit",
                                  "treat every budget as hard: scale down low-priority work as soon as the spend "
                                  "projected at the current rate would pass the limit (the gate's side is the "
                                  "safety setting EnforceHardLimit)")
    forecast_days: float = _f(30.0, "ForecastDays", "forecast_days", "horizon of the spend forecast, days",
                              gt=0, le=366)
    cost_anomaly_threshold: float = _f(0.5, "CostAnomalyThreshold", "cost_anomaly_threshold",
                                       "a spend rate this far above its expected (seasonal) rate is an anomaly "
                                       "(0.5 = +50 %)", gt=0, le=100)
    auto_reallocation: bool = _f(True, "AutoReallocation", "auto_reallocation",
                                 "move unused headroom of an account budget's projects to higher-priority projects")
    cadence: float = Field(300.0, gt=0, le=3600, description="seconds between steps")
    anomaly_window_s: float = Field(1800.0, ge=300, le=6 * 3600, description="trailing window judged for anomalies")
    anomaly_slack: float = Field(0.1, ge=0, lt=1, description="an anomaly fires at (1 + threshold * (1 - slack)) "
                                 "times the expected rate (measurement slack)")
    low_priority_max: float = Field(0.0, description="services whose priority setting is at most this are "
                                    "low-priority work (scaled down first)")
    default_priority: float = Field(1.0, description="priority of a service without a priority setting")
    project_priorities: dict[str, float] = Field(default_factory=dict, description="project -> priority for "
                                                 "reallocation (default: the highest priority of its services)")
    scale_down_action: Literal["shelve", "stop"] = Field("shelve", description="how low-priority servers are "
                                                         "scaled down (never deleted: no data is lost)")
    safety_margin: float = Field(0.02, ge=0, lt=0.5, description="scale down to a forecast this share below the "
                                 "limit")
    report_every_s: float = Field(86400.0, gt=0, description="seconds between forecast reports (Notify, info)")

    @field_validator("alert_thresholds", mode="after")
    @classmethod
    def _thresholds(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v:
            raise ValueError("AlertThresholds: give at least one share of the limit, e.g. [0.8, 0.9, 1.0]")
        bad = [x for x in v if not 0 < x <= 2]
        if bad:
            raise ValueError(f"AlertThresholds: shares must be in (0, 2], got {bad}")
        return tuple(sorted(set(v)))
