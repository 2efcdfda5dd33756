"""Forecasting cost per series: one step (``update_many`` + ``forecast_many`` at 15 minutes) over 1,000 and 10,000
series, on one core.

Each case builds a forecaster, warms it up over two days of 5-minute scrapes (so the daily seasonality has been
tested and switched on, and seasonal-naive has a day of history), then times 300 consecutive steps (25 hours, so
the daily seasonality test at midnight is in the figures) of N series with a daily cycle, noise and 2 % missing
values.  The figure that matters is µs per series per step: a 15-minute forecast of every series at every scrape.

Run: ``make bench`` (or ``pytest -m benchmark_suite benchmarks/bench_forecasting.py -o addopts=''``),
or ``python -m benchmarks.bench_forecasting [N ...]`` for the figures alone.
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

from engines.forecasting import make_forecaster

pytestmark = pytest.mark.benchmark_suite

SCRAPE_S = 300.0
WARM, TIMED = 576, 300
DAY = 86400.0
START = 1767571200.0


def _scrapes(n: int, k0: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + (k0 + np.arange(k)) * SCRAPE_S
    level = 50 + 20 * rng.uniform(size=n)
    phase = rng.uniform(0, 2 * np.pi, n)
    x = level[None, :] * (1 + 0.3 * np.sin(2 * np.pi * t[:, None] / DAY + phase[None, :]))
    x += rng.normal(0, 1, (k, n))
    x[rng.uniform(size=(k, n)) < 0.02] = np.nan
    return t, x


def measure(model: str = "ensemble", n: int = 1000) -> dict[str, Any]:
    fc = make_forecaster(model, horizon_s=900.0)
    rng = np.random.default_rng(0)
    t, x = _scrapes(n, 0, WARM, rng)
    for k in range(WARM):
        fc.update_many(t[k], x[k])
    t, x = _scrapes(n, WARM, TIMED, rng)
    per = np.empty(TIMED)
    cpu0 = time.process_time()
    for k in range(TIMED):
        a = time.perf_counter()
        fc.update_many(t[k], x[k])
        fc.forecast_many()
        per[k] = time.perf_counter() - a
    cpu = time.process_time() - cpu0
    return {"model": model, "series": n, "steps": TIMED, "mean_ms": round(per.mean() * 1e3, 2),
            "p99_ms": round(float(np.quantile(per, 0.99)) * 1e3, 2), "max_ms": round(per.max() * 1e3, 1),
            "us_per_series_step": round(per.mean() / n * 1e6, 2),
            "cpu_ms_per_step": round(cpu / TIMED * 1e3, 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}


@pytest.mark.parametrize(("model", "n"), [("ensemble", 1000), ("ensemble", 10_000), ("seasonal", 10_000),
                                          ("persistence", 10_000)])
def test_forecasting_cost_per_series(benchmark: Any, model: str, n: int) -> None:
    res: dict[str, Any] = benchmark.pedantic(measure, args=(model, n), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["mean_ms"] > 0  # speed is recorded, not asserted (machines differ)


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [1000, 10_000]:
        for m in ("ensemble", "seasonal", "persistence"):
            print(json.dumps(measure(m, size)), flush=True)
