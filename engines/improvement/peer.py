"""The peer: Argo Rollouts / Flagger-style canary analysis with fixed thresholds.

Every ``interval_s`` during a canary step, one check: the canary servers' mean error ratio below
``max_error_ratio`` and the service's p95 latency below ``max_latency_ms`` (Flagger's request-success-rate
and request-duration checks).  ``iterations`` passing checks in a row promote to the next step weight;
``threshold`` failed checks roll back.  No statistics, no baseline comparison, no CPU, memory or cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.base import Action, Deploy, Observation, RollbackDeploy
from engines.improvement.analysis import rollout_steps, split


class FixedThresholdCanaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(60.0, gt=0, le=3600, description="seconds between checks")
    steps: tuple[float, ...] = Field((0.05, 0.25, 0.5, 1.0), description="step weights, increasing, ending at 1")
    iterations: int = Field(10, ge=1, description="passing checks in a row that promote a step")
    threshold: int = Field(2, ge=1, description="failed checks that roll back")
    max_error_ratio: float = Field(0.01, ge=0, le=1, description="highest canary error ratio that passes")
    max_latency_ms: float = Field(500.0, gt=0, description="highest service p95 latency that passes")

    _steps = field_validator("steps")(staticmethod(rollout_steps))


@dataclass
class _Canary:
    version: str
    fraction: float
    started: float
    passed: int = 0
    failed: int = 0


class FixedThresholdCanary:
    """Promote after N good intervals, roll back after ``threshold`` bad ones."""

    name = "fixed_threshold_canary"

    def __init__(self, config: FixedThresholdCanaryConfig | None = None) -> None:
        self.cfg = config or FixedThresholdCanaryConfig()
        self.cadence = self.cfg.interval_s
        self.active: dict[str, _Canary] = {}
        self._since = 0.0
        self._seen: set[tuple[float, str, str, float]] = set()
        self._own: list[tuple[str, str, float]] = []

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        for e in obs.deploys(self._since):
            key = (e.at, e.service, e.version, e.fraction)
            if key in self._seen:
                continue
            self._seen.add(key)
            if (e.service, e.version, e.fraction) in self._own:
                self._own.remove((e.service, e.version, e.fraction))
                continue
            c = self.active.get(e.service)
            if c is not None and (e.fraction >= 1.0 or e.version != c.version):
                self.active.pop(e.service)
            if e.fraction < 1.0:
                self.active[e.service] = _Canary(e.version, e.fraction, e.at)
        self._since = max(self._since, now - 3600.0)
        out: list[Action] = []
        for svc, c in list(self.active.items()):
            a = self._check(now, obs, svc, c)
            if a is not None:
                out.append(a)
        return out

    def _check(self, now: float, obs: Observation, svc: str, c: _Canary) -> Action | None:
        cfg = self.cfg
        canary, base = split(obs.servers(service=svc), c.version)
        live = len(canary) + len(base)
        if live == 0 or len(canary) < min(live, max(1, math.ceil(c.fraction * live - 1e-9))):
            return None  # the step's rollout is not done yet
        errs = [obs.window("server_error_ratio", cfg.interval_s, server=s.id).v for s in canary]
        vals = np.concatenate(errs) if errs else np.zeros(0)
        err = float(np.nanmean(vals)) if len(vals) and np.isfinite(vals).any() else 0.0
        lat = obs.window("latency_p95_ms", cfg.interval_s, service=svc).v
        p95 = float(np.nanmax(lat)) if len(lat) else 0.0
        ok = err < cfg.max_error_ratio and p95 < cfg.max_latency_ms
        evidence = {"improvement": "threshold_check", "version": c.version, "fraction": c.fraction,
                    "error_ratio": round(err, 5), "latency_p95_ms": round(p95, 1), "canary_started": c.started,
                    "detected_after_s": now - c.started}
        if not ok:
            c.failed += 1
            c.passed = 0
            if c.failed >= cfg.threshold:
                self.active.pop(svc, None)
                return RollbackDeploy(service=svc, reason=f"canary {c.version}: error ratio {err:.3%}, p95 "
                                                          f"{p95:.0f} ms over the thresholds {cfg.threshold}x",
                                      evidence={**evidence, "improvement": "canary_rollback"})
            return None
        c.passed += 1
        if c.passed < cfg.iterations:
            return None
        nxt = next((f for f in cfg.steps if f > c.fraction + 1e-9), None)
        if nxt is None:
            self.active.pop(svc, None)
            return None
        prev, c.fraction, c.passed = c.fraction, nxt, 0
        self._own.append((svc, c.version, nxt))
        if nxt >= 1.0:
            self.active.pop(svc, None)
        return Deploy(service=svc, version=c.version, fraction=nxt,
                      reason=f"canary {c.version} passed {cfg.iterations} checks at {prev:.0%}: promote to {nxt:.0%}",
                      evidence={**evidence, "improvement": "canary_promote", "from": prev, "to": nxt})
