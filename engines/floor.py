"""``min_floor_keeper``: every service keeps ``min_servers``, from zero and without metrics.

The reactive scaler needs a CPU reading and at least one server before it decides anything, so a
service at 0 of min 2, or one whose metrics are missing, was never brought to its floor.  This engine
counts servers only: with fewer than ``min_servers`` servers that are up, booting or failed (a failed one
is the restarter's to repair, not to replace), it creates the difference, one action per server, so the
safety gate's scale-up limits (``MinScaleStep`` from zero) let through as many as they allow.  With
``only_when_unmeasured`` it leaves a measured service that has servers to the scaler, which clamps to
``min_servers`` itself, so one shortfall gets one reaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import Action, AdapterError, CreateServer, Observation


class MinFloorKeeperConfig(BaseModel):
    """Settings of ``min_floor_keeper``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(30.0, gt=0, description="seconds between steps")
    only_when_unmeasured: bool = Field(
        False, description="act only for a service with no servers or no cpu_util reading (a scaler in the same "
                           "set clamps measured services to min_servers itself)")


class MinFloorKeeper:
    """Creates the servers a service lacks below its ``min_servers``."""

    name = "min-floor-keeper"

    def __init__(self, cadence: float = 30.0, only_when_unmeasured: bool = False) -> None:
        self.cadence = cadence
        self.only_when_unmeasured = only_when_unmeasured

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        cpu: dict[str, float] = {}
        if self.only_when_unmeasured:
            try:
                cpu = dict(obs.latest("cpu_util"))
            except (AdapterError, ValueError):
                cpu = {}  # no metrics at all: every service is unmeasured
        actions: list[Action] = []
        for name, svc in obs.services.items():
            have = svc.active + svc.building + svc.failed
            if have >= svc.min_servers:
                continue
            u = cpu.get(name, math.nan)
            if self.only_when_unmeasured and have > 0 and u == u:  # measured, with servers: the scaler's
                continue
            why = "no servers" if have == 0 else "no cpu_util reading" if self.only_when_unmeasured else "too few"
            missing = svc.min_servers - have
            for i in range(missing):  # one action per server: the gate's scale limits let through what they allow
                actions.append(CreateServer(
                    service=name,
                    reason=f"{have} of min_servers {svc.min_servers} ({why}): create {missing} ({i + 1} of {missing})",
                    evidence={"active": svc.active, "building": svc.building, "failed": svc.failed,
                              "min_servers": svc.min_servers}))
        return actions
