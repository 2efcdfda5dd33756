"""The smart-alerting engine's configuration, in the system's own names (``MLSuppressionEnabled`` ...).

Durations are seconds or strings with a unit (``30s``, ``5m``, ``2h``, ``3d``, ``1w``); times of maintenance
windows are on the engine's clock (seconds since the start of a twin run, epoch seconds live).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Priority = Literal["P0", "P1", "P2", "P3", "P4"]
PRIORITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def _seconds(v: Any) -> Any:
    """``90``, ``"90"``, ``"5m"`` → seconds; anything else is left for pydantic to refuse."""
    if isinstance(v, str):
        m = _DUR.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a duration: use seconds or a number with a unit (ms, s, m, h, d, w)")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if isinstance(v, int | float) and not isinstance(v, bool) and not math.isfinite(v):
        raise ValueError("must be a finite number of seconds")
    return v


Seconds = Annotated[float, BeforeValidator(_seconds)]


class MaintenanceWindow(BaseModel):
    """A silence: alerts whose labels match every ``matchers`` entry are dropped between ``start`` and ``end``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Seconds = Field(ge=0)
    end: Seconds = Field(ge=0)
    matchers: dict[str, str] = Field(default_factory=dict, description="label = value, all must hold; {} matches all")
    comment: str = ""

    @model_validator(mode="after")
    def _order(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError(f"maintenance window: end ({self.end:g}) must be after start ({self.start:g})")
        return self

    def covers(self, now: float, labels: Any) -> bool:
        return self.start <= now < self.end and all(labels.get(k) == v for k, v in self.matchers.items())


def _default_channels() -> dict[str, list[str]]:
    return {"P0": ["oncall"], "P1": ["oncall"]}


class SmartAlertingConfig(BaseModel):
    """Settings of :class:`engines.alerting.engine.SmartAlerting` (see docs/alerting.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    MLSuppressionEnabled: bool = Field(True, description="suppress fingerprints whose learned actionable share is "
                                       "below FalsePositiveThreshold")
    CorrelationWindow: Seconds = Field(300.0, gt=0, description="alerts this close in time and topology form one group")
    MinAlertSeverity: Priority = Field("P1", description="the lowest priority that reaches a human")
    AutoRemediateBeforeAlert: bool = Field(True, description="hold alerts on components automation is fixing")
    AutoRemediateGrace: Seconds = Field(300.0, ge=0, description="how long automation may try before the alert goes on")
    MaxAlertsPerHour: int = Field(10, ge=0, description="pages per rolling hour, at most")
    FalsePositiveThreshold: float = Field(0.01, gt=0, lt=1, description="learned actionable share below which a "
                                          "fingerprint is suppressed as noise")
    AlertOnlyP0: bool = Field(False, description="page only P0; P1 goes to the dashboard")
    MaintenanceWindows: tuple[MaintenanceWindow, ...] = Field((), description="silences: planned work")
    EscalationChannels: dict[Priority, list[str]] = Field(
        default_factory=_default_channels, description="who is paged per priority (a Page per channel)")
    P1Delay: Seconds = Field(240.0, ge=0, description="a P1 pages when still unmitigated this long after it began "
                             "(4 min: with a step's cadence and a scrape it pages within the design's 5 minutes)")
    FlapWindow: Seconds = Field(900.0, gt=0, description="window over which state changes are counted")
    FlapThreshold: int = Field(4, ge=2, description="state changes within FlapWindow that make a fingerprint flap")
    PersistentAfter: Seconds = Field(300.0, gt=0, description="an episode lasting this long counts as actionable "
                                     "when the noise model learns")
    P0ErrorRatio: float = Field(0.25, gt=0, le=1, description="user-facing error ratio of a total failure (P0)")
    P1ErrorRatio: float = Field(0.05, gt=0, le=1, description="user-facing error ratio of a major degradation (P1)")
    cadence: Seconds = Field(5.0, gt=0, description="seconds between steps")
    name: str = Field("smart_alerting", min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SmartAlertingConfig:
        if self.P1ErrorRatio > self.P0ErrorRatio:
            raise ValueError(f"P1ErrorRatio ({self.P1ErrorRatio:g}) must not exceed P0ErrorRatio "
                             f"({self.P0ErrorRatio:g})")
        for p, chans in self.EscalationChannels.items():
            if not chans or any(not c.strip() for c in chans):
                raise ValueError(f"EscalationChannels.{p}: give at least one non-empty channel name")
        return self

    def human_levels(self) -> tuple[str, ...]:
        """Priorities that page a human: P0 and P1 at most (P2–P4 are dashboard only), cut by the settings."""
        if self.AlertOnlyP0:
            return ("P0",)
        floor = PRIORITIES.index(self.MinAlertSeverity)
        return tuple(p for p in ("P0", "P1") if PRIORITIES.index(p) <= floor)

    def channels(self, priority: str) -> list[str]:
        return self.EscalationChannels.get(priority) or self.EscalationChannels.get("P0") or ["oncall"]  # type: ignore[call-overload]
