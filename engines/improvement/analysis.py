"""Canary against baseline: the per-server samples of one comparison and the judge's verdict.

Canary servers are those whose ``zeroops_version`` metadata (:data:`adapters.base.VERSION_KEY`) is the
candidate; baseline servers run the service's other version.  Per metric, the samples are every scrape of
every server in the window; the judge runs a one-sided Mann-Whitney U test (canary worse than baseline) and
calls a regression only when the test is significant at ``alpha / metrics`` (Bonferroni over the metrics)
*and* the effect exceeds the metric's tolerance (Kayenta's "allowed increase").  Latency has no per-server
series, so its comparison is the service's p95 since the canary step began against the same span before the
rollout.  A slow leak is judged on its growth: the slope over time of the
canary's mean memory minus the baseline's (paired by scrape time), by ordinary least squares with a one-sided
z test on the slope; its tolerance is far below the slope's noise on a short window, so it gives no guard
against repeated looks: its alpha is split over ``growth_looks`` looks per release too (Bonferroni).  Cost per
request is CPU per request times the server's price (what the fleet pays per request at
a fixed target utilisation): cost drift is a regression like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.base import VERSION_KEY, Observation, Server
from engines.improvement.stats import mann_whitney, norm_sf

METRICS = ("error_ratio", "cpu_per_request", "cost_per_request", "memory", "memory_growth", "availability",
           "latency")


@dataclass(frozen=True)
class Tolerances:
    """How much worse a canary may look before a significant difference counts as a regression."""

    error_ratio_abs: float = 0.005  # canary mean − baseline mean, share of requests
    cpu_rel: float = 0.10  # CPU per request, canary / baseline − 1
    cost_rel: float = 0.10  # cost per request, canary / baseline − 1
    memory_abs: float = 0.02  # memory utilisation, canary − baseline
    down_abs: float = 0.05  # share of scrapes a server is down, canary − baseline
    latency_rel: float = 0.15  # service p95 during the canary / before − 1
    leak_per_day: float = 0.10  # memory growth of the canary over the baseline's, utilisation per day
    growth_looks: int = 40  # looks per release the growth test's alpha is split over (its tolerance is no guard)


@dataclass
class Comparison:
    """One metric's comparison: sample sizes, means, effect, p-value and whether it is a regression."""

    metric: str
    n_canary: int
    n_baseline: int
    canary: float
    baseline: float
    effect: float  # relative or absolute, as the tolerance
    p: float
    regression: bool

    def row(self) -> dict[str, Any]:
        return {"metric": self.metric, "n": [self.n_canary, self.n_baseline], "canary": _r(self.canary),
                "baseline": _r(self.baseline), "effect": _r(self.effect), "p": _r(self.p),
                "regression": self.regression}


def _r(x: float) -> float:
    return round(float(x), 5) if np.isfinite(x) else float("nan")


@dataclass
class Verdict:
    comparisons: list[Comparison] = field(default_factory=list)
    enough: bool = False  # every per-server metric had its minimum samples

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regression]

    def evidence(self) -> dict[str, Any]:
        return {"comparisons": [c.row() for c in self.comparisons]}


def split(servers: Sequence[Server], version: str) -> tuple[list[Server], list[Server]]:
    """(canary, baseline) among a service's ACTIVE servers by their version metadata."""
    live = [s for s in servers if s.status == "ACTIVE"]
    return ([s for s in live if s.metadata.get(VERSION_KEY) == version],
            [s for s in live if s.metadata.get(VERSION_KEY) not in (None, version)])


def _samples(obs: Observation, metric: str, servers: Sequence[Server], seconds: float) -> list[np.ndarray]:
    return [np.asarray(obs.window(metric, seconds, server=s.id).v, float) for s in servers]


def _per_request(obs: Observation, servers: Sequence[Server], seconds: float,
                 prices: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per scrape of each server: CPU per unit of traffic (network as the request count), and that × price."""
    cpu, cost = [], []
    for s in servers:
        c = np.asarray(obs.window("server_cpu_util", seconds, server=s.id).v, float)
        r = np.asarray(obs.window("server_network_mbps", seconds, server=s.id).v, float)
        k = min(len(c), len(r))
        c, r = c[-k:], r[-k:]
        ok = np.isfinite(c) & np.isfinite(r) & (r > 1e-9)
        v = c[ok] / r[ok]
        cpu.append(v)
        cost.append(v * prices.get(s.flavor, 1.0))
    return (np.concatenate(cpu) if cpu else np.zeros(0)), (np.concatenate(cost) if cost else np.zeros(0))


def _compare(metric: str, x: np.ndarray, y: np.ndarray, alpha: float, tol: float, relative: bool,
             min_samples: int) -> Comparison:
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    mx = float(x.mean()) if len(x) else float("nan")
    my = float(y.mean()) if len(y) else float("nan")
    if relative:
        effect = mx / my - 1.0 if my > 0 else (0.0 if mx <= 0 else float("inf"))
    else:
        effect = mx - my
    if len(x) < min_samples or len(y) < min_samples:
        return Comparison(metric, len(x), len(y), mx, my, effect, 1.0, False)
    _, p = mann_whitney(x, y)
    return Comparison(metric, len(x), len(y), mx, my, effect, p, bool(p < alpha and effect > tol))


def judge(obs: Observation, canary: Sequence[Server], baseline: Sequence[Server], seconds: float, *,
          service: str, latency_before: np.ndarray | None, alpha: float, tol: Tolerances, min_samples: int,
          max_baseline: int = 8) -> Verdict:
    """Compare ``canary`` with (up to ``max_baseline`` of) ``baseline`` over the last ``seconds``."""
    base = list(baseline)[:max_baseline]
    a = alpha / len(METRICS)
    prices = {p.flavor: p.per_hour for p in obs.prices if p.pricing == "on_demand"}

    def pooled(metric: str, group: Sequence[Server]) -> np.ndarray:
        s = _samples(obs, metric, group, seconds)
        return np.concatenate(s) if s else np.zeros(0)

    v = Verdict()
    v.comparisons.append(_compare("error_ratio", pooled("server_error_ratio", canary),
                                  pooled("server_error_ratio", base), a, tol.error_ratio_abs, False, min_samples))
    cpu_c, cost_c = _per_request(obs, canary, seconds, prices)
    cpu_b, cost_b = _per_request(obs, base, seconds, prices)
    v.comparisons.append(_compare("cpu_per_request", cpu_c, cpu_b, a, tol.cpu_rel, True, min_samples))
    v.comparisons.append(_compare("cost_per_request", cost_c, cost_b, a, tol.cost_rel, True, min_samples))
    v.comparisons.append(_compare("memory", pooled("server_memory_util", canary),
                                  pooled("server_memory_util", base), a, tol.memory_abs, False, min_samples))
    v.comparisons.append(_growth(obs, canary, base, seconds, a / tol.growth_looks, tol.leak_per_day, min_samples))
    v.comparisons.append(_compare("availability", 1.0 - pooled("server_up", canary), 1.0 - pooled("server_up", base),
                                  a, tol.down_abs, False, min_samples))
    if latency_before is not None:
        during = np.asarray(obs.window("latency_p95_ms", seconds, service=service).v, float)
        v.comparisons.append(_compare("latency", during, np.asarray(latency_before, float), a, tol.latency_rel, True,
                                      min_samples))
    v.enough = all(c.n_canary >= min_samples and c.n_baseline >= min_samples for c in v.comparisons[:6])
    return v


def _by_time(obs: Observation, metric: str, group: Sequence[Server], seconds: float) -> dict[float, float]:
    """Mean over ``group`` of ``metric`` at each scrape time."""
    acc: dict[float, list[float]] = {}
    for s in group:
        w = obs.window(metric, seconds, server=s.id)
        for t, x in zip(w.t.tolist(), w.v.tolist(), strict=False):
            if np.isfinite(x):
                acc.setdefault(t, []).append(x)
    return {t: float(np.mean(v)) for t, v in acc.items()}


def _growth(obs: Observation, canary: Sequence[Server], base: Sequence[Server], seconds: float, alpha: float,
            tol_per_day: float, min_samples: int) -> Comparison:
    """Does the canary's memory grow faster than the baseline's?  Slope per day of the paired difference."""
    c, b = _by_time(obs, "server_memory_util", canary, seconds), _by_time(obs, "server_memory_util", base, seconds)
    ts = sorted(set(c) & set(b))
    n = len(ts)
    if n < max(min_samples, 3):
        return Comparison("memory_growth", n, n, float("nan"), float("nan"), 0.0, 1.0, False)
    t = np.array(ts) / 86400.0
    d = np.array([c[x] - b[x] for x in ts])
    tc = t - t.mean()
    sxx = float((tc**2).sum())
    if sxx <= 0:
        return Comparison("memory_growth", n, n, float("nan"), float("nan"), 0.0, 1.0, False)
    slope = float((tc * (d - d.mean())).sum() / sxx)
    resid = d - d.mean() - slope * tc
    se = float(np.sqrt(max((resid**2).sum() / (n - 2), 1e-12) / sxx))
    p = norm_sf(slope / se)
    return Comparison("memory_growth", n, n, float(d[-1]), 0.0, slope, p, bool(p < alpha and slope > tol_per_day))


def rollout_steps(v: tuple[float, ...]) -> tuple[float, ...]:
    """A rollout's steps (traffic fractions) as both canary engines take them: increasing, in (0, 1], ending at 1."""
    if not v or list(v) != sorted(set(v)) or v[-1] != 1.0 or v[0] <= 0:
        raise ValueError("steps must be increasing fractions in (0, 1] ending at 1.0, e.g. [0.05, 0.25, 0.5, 1]")
    return v
