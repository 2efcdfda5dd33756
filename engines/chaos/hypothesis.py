"""The steady-state hypothesis: probes on observed service metrics, each with a tolerance.

A probe reads one metric of one service from the observation (``obs.window``), sample by sample, so a
violation is caught at the first scrape that shows it, whatever the engine's cadence.  A tolerance is an
absolute bound (``max``/``min``) or a ``factor`` of the value measured before the fault (the baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adapters.base import Observation


@dataclass(frozen=True)
class Probe:
    """One metric of one service and its tolerance."""

    metric: str
    service: str
    max: float | None = None
    min: float | None = None
    factor: float | None = None  # at most factor x the baseline (the mean before the fault)
    floor: float = 0.0  # a factor bound is never tighter than this absolute value (an idle metric near 0)

    @property
    def name(self) -> str:
        return f"{self.metric}{{service={self.service}}}"

    def bound(self, baseline: float | None) -> tuple[float, float]:
        """(low, high) allowed for this probe, given the baseline."""
        hi = self.max if self.max is not None else math.inf
        if self.factor is not None and baseline is not None and math.isfinite(baseline):
            hi = min(hi, max(self.factor * baseline, self.floor))
        lo = self.min if self.min is not None else -math.inf
        return lo, hi

    def describe(self, baseline: float | None = None) -> str:
        lo, hi = self.bound(baseline)
        parts = [f">= {lo:g}" if math.isfinite(lo) else "", f"<= {hi:g}" if math.isfinite(hi) else ""]
        return f"{self.name} " + " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class Violation:
    probe: Probe
    at: float  # the time of the scrape sample that broke the tolerance
    value: float
    bound: tuple[float, float]

    def as_dict(self) -> dict[str, object]:
        return {"probe": self.probe.name, "sample_at": self.at, "value": self.value,
                "low": self.bound[0], "high": self.bound[1]}


@dataclass
class SteadyState:
    """Probes plus their baselines; :meth:`check` returns the first violation in samples newer than ``since``."""

    probes: tuple[Probe, ...]
    baseline: dict[str, float] = field(default_factory=dict)

    def measure_baseline(self, obs: Observation, seconds: float = 600.0) -> None:
        for p in self.probes:
            w = obs.window(p.metric, seconds, service=p.service)
            vals = [v for v in w.v.tolist() if math.isfinite(v)]
            self.baseline[p.name] = sum(vals) / len(vals) if vals else math.nan

    def check(self, obs: Observation, since: float, seconds: float) -> Violation | None:
        """The earliest sample after ``since`` (within the last ``seconds``) outside a probe's tolerance."""
        found: Violation | None = None
        for p in self.probes:
            w = obs.window(p.metric, seconds, service=p.service)
            lo, hi = p.bound(self.baseline.get(p.name))
            for t, v in zip(w.t.tolist(), w.v.tolist(), strict=True):
                if t <= since or not math.isfinite(v):
                    continue
                if v < lo or v > hi:
                    if found is None or t < found.at:
                        found = Violation(p, t, v, (lo, hi))
                    break
        return found

    def holds(self, obs: Observation, seconds: float = 120.0) -> Violation | None:
        """A violation among the latest samples (before a start: the system must be steady to begin)."""
        return self.check(obs, obs.now - seconds, seconds)
