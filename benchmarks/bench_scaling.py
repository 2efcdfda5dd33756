"""Scaling decisions for 1,000 services in one step: the predictive scaler beside the reactive (HPA-style) one.

A :class:`adapters.fake.FakeAdapter` holds N services of 4 servers each; every service's request rate follows its
own daily cycle and noise and its utilisation follows its load.  Both scalers are warmed up for 20 minutes of 15-s
steps (the predictive one's forecasts get scored, so it decides predictively), then ``TIMED`` steps of each are
timed on the same observations: one ``step(now, obs)`` over every service, actions not executed (the fleet stays
put, so every step decides for all N services).  The figure that matters is ms per step and the ratio of the
two in the same run (machines differ; the ratio less so).

Run: ``make bench`` (or ``pytest -m benchmark_suite benchmarks/bench_scaling.py -o addopts=''``),
or ``python -m benchmarks.bench_scaling [N ...]`` for the figures alone.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import pytest

from adapters.base import Observation
from adapters.fake import FakeAdapter, FakeService
from engines.baselines import ReactiveScaler
from engines.scaling import PredictiveScaler

pytestmark = pytest.mark.benchmark_suite

STEP = 15.0
WARM_S = 1200.0
TIMED = 40
DAY = 86400.0


class _Metrics:
    """Per-service metrics of the whole fleet at one time, computed once per scrape (a vector per metric)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.base = 200 + 300 * rng.uniform(size=n)
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.cost = 0.002 + 0.001 * rng.uniform(size=n)  # CPU per request per second of one server
        self.rng = rng
        self.t = -1.0
        self.cur: dict[str, np.ndarray] = {}

    def at(self, t: float) -> dict[str, np.ndarray]:
        if t != self.t:
            self.t = t
            r = self.base * (1 + 0.3 * np.sin(2 * np.pi * t / DAY + self.phase)) * (1 + 0.03 * self.rng.normal(
                size=self.n))
            self.cur = {"request_rate": r, "cpu_util": np.minimum(self.cost * r / 4, 1.0),
                        "memory_util": np.full(self.n, 0.4), "disk_util": np.full(self.n, 0.3),
                        "network_mbps": r * 0.08}
        return self.cur


class FleetFake(FakeAdapter):
    """A fake whose per-service ``latest`` comes from vectors (feeding 1,000 series one by one is the slow part)."""

    def __init__(self, n: int) -> None:
        hosts = [(f"hv-{k}", f"az-{k % 2 + 1}", "r1", 1024, 1 << 22, 1 << 20) for k in range(max(2, n // 100))]
        super().__init__([FakeService(f"svc-{i:04d}", "small", 4, min_servers=1, max_servers=100, stateful=False)
                          for i in range(n)], hypervisors=hosts, scrape_interval=STEP)
        self.names = [f"svc-{i:04d}" for i in range(n)]
        self.m = _Metrics(n)

    def latest(self, metric: str) -> dict[str, float]:  # type: ignore[override]
        vals = self.m.at(self.t).get(metric)
        if vals is None:
            return super().latest(metric)
        return dict(zip(self.names, vals.tolist(), strict=True))


def _step(engine: Any, fake: FleetFake) -> tuple[float, int]:
    obs = Observation(fake, fake.t)
    try:
        a = time.perf_counter()
        acts = list(engine.step(fake.t, obs))
        return time.perf_counter() - a, len(acts)
    finally:
        obs.close()


def measure(n: int = 1000) -> dict[str, Any]:
    fake = FleetFake(n)
    pred, react = PredictiveScaler(), ReactiveScaler()
    for _ in range(int(WARM_S / STEP)):
        fake.advance(STEP)
        _step(pred, fake)
        _step(react, fake)
    p = np.empty(TIMED)
    r = np.empty(TIMED)
    cpu = {"pred": 0.0, "react": 0.0}
    acts = {"pred": 0, "react": 0}
    for k in range(TIMED):
        fake.advance(STEP)
        c0 = time.process_time()
        p[k], na = _step(pred, fake)
        c1 = time.process_time()
        r[k], nb = _step(react, fake)
        c2 = time.process_time()
        cpu["pred"] += c1 - c0
        cpu["react"] += c2 - c1
        acts["pred"] += na
        acts["react"] += nb
    modes = [d["mode"] for d in pred.last.values()]
    return {"services": n, "steps": TIMED,
            "predictive_mean_ms": round(p.mean() * 1e3, 2), "predictive_p99_ms": round(float(np.quantile(p, 0.99))
                                                                                      * 1e3, 2),
            "reactive_mean_ms": round(r.mean() * 1e3, 2), "ratio_predictive_over_reactive": round(p.mean() / r.mean(),
                                                                                                   2),
            "predictive_cpu_ms_per_step": round(cpu["pred"] / TIMED * 1e3, 2),
            "reactive_cpu_ms_per_step": round(cpu["react"] / TIMED * 1e3, 2),
            "predictive_us_per_service": round(p.mean() / n * 1e6, 2),
            "share_predictive_mode": round(modes.count("predictive") / max(len(modes), 1), 3),
            "actions_per_step": {k: round(v / TIMED, 1) for k, v in acts.items()},
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}


@pytest.mark.parametrize("n", [1000])
def test_scaling_decisions_for_many_services(benchmark: Any, n: int) -> None:
    res: dict[str, Any] = benchmark.pedantic(measure, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["predictive_mean_ms"] > 0 and res["share_predictive_mode"] > 0.5  # speed recorded, not asserted


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [1000]:
        print(json.dumps(measure(size)), flush=True)
