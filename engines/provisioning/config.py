"""Settings of the ``provisioner`` engine (engines.registry validates them; docs/provisioning.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY = 86400.0


class ProvisionerConfig(BaseModel):
    """Idle deprovisioning, rightsizing, retry-elsewhere, spot fallback, reservations and capacity planning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(30.0, gt=0, le=60, description="seconds between steps (idle detection lags by at most this)")
    services: tuple[str, ...] | None = Field(None, description="services it manages (default: all)")
    # idle deprovisioning
    idle: bool = Field(True, description="pause or delete servers idle for longer than idle_s")
    idle_s: float = Field(3600.0, gt=0, description="a server idle this long is deprovisioned")
    planned_mark_s: float = Field(900.0, gt=0, description="a server it resizes carries a planned-work mark this "
                                                          "long (zeroops_maintenance), so monitors do not take the "
                                                          "resize's downtime for a crash")
    idle_keep_last: bool = Field(True, description="never take a service's last server: going to zero (with a warm "
                                                   "pool to come back fast) is the scaler's decision, not a second "
                                                   "engine's")
    idle_cpu: float = Field(0.02, ge=0, lt=1, description="server_cpu_util at or below this is idle")
    idle_pause: Literal["shelve", "stop"] = Field(
        "shelve", description="how a stateful service's idle server is paused (its disk kept): shelve frees its "
                              "host and costs nothing; stop keeps the host (a crash restarter may start it again)")
    wake: bool = Field(True, description="a managed service with traffic and no serving server gets one back "
                                         "(a paused one started, else a new one)")
    # rightsizing
    rightsize: bool = Field(True, description="resize servers to the cheapest flavor fitting their p95 use")
    rightsize_target_cpu: float = Field(0.5, gt=0, le=1, description="CPU utilisation the p95 may reach on the new "
                                                                     "flavor")
    rightsize_target_mem: float = Field(0.85, gt=0, le=1, description="memory utilisation the p95 may reach")
    rightsize_history_s: float = Field(DAY, gt=0, description="history the percentiles are taken over")
    rightsize_min_history_s: float = Field(6 * 3600.0, ge=0, description="no decision on less history than this")
    rightsize_settle_s: float = Field(600.0, ge=0, description="after one resize, wait this long before the next "
                                                               "server of the service")
    rightsize_max_util: float = Field(0.75, gt=0, le=1, description="abort a service's resize plan when a resized "
                                                                    "server runs above this CPU utilisation")
    rightsize_min_saving: float = Field(0.2, ge=0, lt=1, description="resize only for at least this share of the "
                                                                     "server's price saved")
    disrupt_max_util: float = Field(0.6, gt=0, le=1, description="a resize or a reserved swap takes a server out "
                                                                  "only while the others stay at or below this CPU")
    # retries
    retry_max: int = Field(3, ge=0, le=10, description="retries of a create that failed with NoValidHost or "
                                                       "QuotaExceeded (another zone, then another flavor)")
    # spot
    spot_services: tuple[str, ...] = Field((), description="services run on spot (also: any service whose servers "
                                                            "are all spot)")
    spot_flavors: tuple[str, ...] = Field((), description="flavors spot replacements are spread over (default: the "
                                                          "service's flavor and flavors of the same vCPUs)")
    spot_fallback_hold_s: float = Field(1800.0, ge=0, description="on-demand fallbacks are kept this long after the "
                                                                  "last preemption, then removed when spot holds")
    # reservations
    reserve: bool = Field(True, description="buy commitments for the steady baseline when they pay")
    reserve_term_s: float = Field(30 * DAY, gt=0, description="term of a purchased commitment")
    reserve_history_s: float = Field(7 * DAY, gt=0, description="history of server counts the baseline is read from")
    reserve_min_history_s: float = Field(DAY, ge=0, description="no purchase on less history than this")
    reserve_margin: float = Field(0.05, ge=0, le=1, description="a slot is committed only when its utilisation "
                                                                "exceeds the break-even by this")
    reserve_convert: bool = Field(True, description="replace a stateless service's on-demand servers by "
                                                    "reserved-priced ones (create first, delete after) up to the "
                                                    "commitments held")
    # capacity planning
    capacity: bool = Field(True, description="forecast each zone's vCPU use and flag the day it runs out")
    capacity_sample_s: float = Field(300.0, gt=0, description="seconds between samples of allocated vCPUs")
    capacity_fit_s: float = Field(2 * DAY, gt=0, description="samples the trend is fitted over")
    capacity_min_history_s: float = Field(DAY, ge=0, description="no forecast on less history than this (a daily "
                                                                 "cycle at least)")
    capacity_horizon_s: float = Field(7 * DAY, gt=0, description="how far ahead a run-out is flagged")
    every_s: float = Field(300.0, gt=0, description="seconds between the slow levers (rightsizing, reservations, "
                                                    "capacity)")

    @model_validator(mode="after")
    def _history(self) -> ProvisionerConfig:
        if self.rightsize_min_history_s > self.rightsize_history_s:
            raise ValueError(f"rightsize_min_history_s ({self.rightsize_min_history_s:g}) must be at most "
                             f"rightsize_history_s ({self.rightsize_history_s:g})")
        if self.reserve_min_history_s > self.reserve_history_s:
            raise ValueError(f"reserve_min_history_s ({self.reserve_min_history_s:g}) must be at most "
                             f"reserve_history_s ({self.reserve_history_s:g})")
        return self
