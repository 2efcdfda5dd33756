"""Baseline engine sets every later engine is compared against.

``static``: nothing automated.  The fleet is provisioned for peak by the
scenario, and each incident waits for the human operator (part of the world).

``reactive``: threshold autoscaling like Kubernetes' HPA
(``desired = ceil(current × metric / target)``, 10 % tolerance, 5-minute
scale-down stabilisation) plus a restarter of crashed servers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Action,
    Conflict,
    CreateServer,
    DeleteServer,
    NoValidHost,
    Observation,
    RebootServer,
    Server,
    StartServer,
)
from control.runtime import ActionRecord, Engine
from engines.maintenance import under_maintenance


class ReactiveScalerConfig(BaseModel):
    """Settings of ``reactive_scaler`` (engines.registry validates them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: float = Field(0.6, gt=0, le=1, description="target mean CPU utilisation, (0, 1]")
    tolerance: float = Field(0.1, ge=0, lt=1, description="no change while |util / target - 1| <= this")
    stabilisation_s: float = Field(300.0, ge=0, description="scale down only to the highest recommendation of this "
                                                             "many seconds")
    cadence: float = Field(15.0, gt=0, description="seconds between steps")
    min_floor: int = Field(1, ge=0, description="never fewer servers than this (an HPA keeps one replica)")


class CrashRestarterConfig(BaseModel):
    """Settings of ``crash_restarter``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(30.0, gt=0, description="seconds between steps")
    retry_s: float = Field(120.0, ge=0, description="seconds before the same server is tried again")


class ReactiveScaler:
    """HPA's algorithm over every service, on mean CPU utilisation."""

    name = "reactive-scaler"

    def __init__(self, target: float = 0.6, tolerance: float = 0.1, stabilisation_s: float = 300.0,
                 cadence: float = 15.0, min_floor: int = 1) -> None:
        if not 0 < target <= 1:
            raise ValueError(f"target utilisation must be in (0, 1], got {target}")
        self.cadence = cadence
        self.target = target
        self.tolerance = tolerance
        self.stabilisation = stabilisation_s
        self.min_floor = min_floor  # an HPA never scales below one replica
        self.history: dict[str, deque[tuple[float, int]]] = {}
        self._peaks: dict[str, deque[tuple[float, int]]] = {}  # per service: decreasing maxima of history

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        cpu = obs.latest("cpu_util")
        actions: list[Action] = []
        target, tolerance, floor = self.target, self.tolerance, self.min_floor
        cutoff = now - self.stabilisation
        history, peaks = self.history, self._peaks
        nan = math.nan
        for name, svc in obs.services.items():
            u = cpu.get(name, nan)
            current = svc.active
            if u != u or current + svc.building == 0:  # u is NaN
                continue
            ratio = u / target
            desired = current if abs(ratio - 1.0) <= tolerance else math.ceil(current * ratio)
            lo, hi = max(svc.min_servers, floor), svc.max_servers
            if desired < lo:  # desired = min(max(desired, lo), hi)
                desired = lo
            if desired > hi:
                desired = hi
            hist = history.get(name)
            if hist is None:
                hist = history[name] = deque()
                peak = peaks[name] = deque()
            else:
                peak = peaks[name]
            hist.append((now, desired))
            # the window's running maximum: recommendations not dominated by a later, higher one
            while peak and peak[-1][1] <= desired:
                peak.pop()
            peak.append((now, desired))
            while len(hist) > 1 and hist[1][0] <= cutoff:
                if hist.popleft()[0] == peak[0][0]:
                    peak.popleft()
            have = current + svc.building
            if desired > have:
                actions.append(CreateServer(
                    service=name, count=desired - have,
                    reason=f"cpu_util {u:.2f} vs target {self.target:.2f}: {current} -> {desired} servers",
                    evidence={"cpu_util": u, "active": current, "building": svc.building, "desired": desired}))
            elif desired < current and svc.building == 0:  # else stable >= desired >= current: no scale-down
                # scale down only to the highest recommendation of the stabilisation window
                stable = peak[0][1]  # == max(d for _, d in hist)
                full = hist[0][0] <= now - self.stabilisation + self.cadence
                if full and stable < current:
                    newest = sorted(obs.servers(service=name, status="ACTIVE"), key=lambda s: -s.created_at)
                    for s in newest[: current - stable]:
                        actions.append(DeleteServer(
                            server_id=s.id, reason=f"cpu_util {u:.2f} below target for "
                            f"{self.stabilisation:.0f} s: {current} -> {stable} servers",
                            evidence={"cpu_util": u, "active": current, "desired": stable}))
        return actions


class CrashRestarter:
    """Restarts crashed servers: start SHUTOFF, hard-reboot ERROR, replace those on a dead host."""

    name = "crash-restarter"

    def __init__(self, cadence: float = 30.0, retry_s: float = 120.0) -> None:
        self.cadence = cadence
        self.retry = retry_s
        self.tried: dict[str, float] = {}
        self.replace: dict[str, str] = {}  # server id -> its service, after a reboot conflict
        self.service_of: dict[str, str] = {}
        self.replaced: set[str] = set()  # servers on a dead host already replaced

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        actions: list[Action] = []
        down_hosts = [h for h in obs.hypervisors if h.state == "down"]
        if down_hosts:  # the API still shows their servers ACTIVE (Nova cannot reach the host): replace them
            down = {h.id for h in down_hosts} | {h.name for h in down_hosts}
            for s in obs.servers():
                if s.hypervisor in down and s.service and s.id not in self.replaced and s.status != "DELETED":
                    self.replaced.add(s.id)
                    self.replace[s.id] = s.service
        for sid, service in list(self.replace.items()):
            del self.replace[sid]
            self.replaced.add(sid)
            actions.append(DeleteServer(server_id=sid, reason="server on a dead host: replace it"))
            actions.append(CreateServer(service=service, reason=f"replacement for {sid}"))
        for status in ("ERROR", "SHUTOFF"):
            for s in obs.servers(status=status):
                if now - self.tried.get(s.id, -math.inf) < self.retry:
                    continue
                if status == "SHUTOFF" and _stopped_on_purpose(s, now):
                    continue  # planned maintenance, a warm pool, a budget shelve: not a crash
                self.tried[s.id] = now
                if s.service:
                    self.service_of[s.id] = s.service
                if status == "ERROR":
                    actions.append(RebootServer(server_id=s.id, hard=True, reason="server in ERROR",
                                                evidence={"status": s.status}))
                else:
                    actions.append(StartServer(server_id=s.id, reason="server stopped unexpectedly"))
        return actions

    def on_result(self, rec: ActionRecord) -> None:
        a = rec.action
        detail = rec.result.detail if rec.result else ""
        if isinstance(a, RebootServer) and rec.error == Conflict.__name__ and "down" in detail:
            service = self.service_of.get(a.server_id)
            if service:
                self.replace[a.server_id] = service
        if isinstance(a, CreateServer) and rec.error == NoValidHost.__name__:
            self.tried.clear()


WARM_POOL_KEY = "zeroops_warm_pool"  # engines.scaling marks the stopped servers it keeps warm


def _stopped_on_purpose(s: Server, now: float) -> bool:
    """A server someone stopped on purpose says so in its metadata (docs/ops-center.md: planned work)."""
    return under_maintenance(s, now) or bool(s.metadata.get(WARM_POOL_KEY))


def engine_set(name: str) -> list[Engine]:
    """Fresh engines of a registered set (kept for callers of the old API; see :mod:`engines.registry`)."""
    from engines.registry import REGISTRY

    return REGISTRY.build(name)
