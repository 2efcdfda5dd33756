"""Throughput of streaming detection: one scrape of 10,000 series scored in at most 50 ms (≥ 100× real time
at a 5-second scrape), on one core.

Each case builds a detector, warms it up for 240 scrapes (20 minutes of data), then
times ``update_many`` over 1,000 consecutive scrapes (83 minutes of data) of
10,000 series with a daily cycle, noise and 2 % missing values.  The run crosses
an hour boundary (the seasonality buckets close) and midnight (the daily
seasonality test runs for every series), so the worst scrape is in the figures.

Run: ``make bench`` (or ``pytest -m benchmark_suite benchmarks/bench_detection.py -o addopts=''``),
or ``python -m benchmarks.bench_detection`` for the figures alone.
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

from engines.detection import EnsembleDetector, make_detector

pytestmark = pytest.mark.benchmark_suite

N = 10_000
SCRAPE_S = 5.0
WARM, TIMED = 240, 1000
TARGET_MS = 50.0
DAY = 86400.0
START = 1767571200.0 + 3 * DAY - 30 * 60  # 23:30 UTC: the timed span crosses midnight


def _scrapes(n: int, k0: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = START + (k0 + np.arange(k)) * SCRAPE_S
    level = 50 + 20 * rng.uniform(size=n)
    phase = rng.uniform(0, 2 * np.pi, n)
    x = level[None, :] * (1 + 0.3 * np.sin(2 * np.pi * t[:, None] / DAY + phase[None, :]))
    x += rng.normal(0, 1, (k, n))
    x[rng.uniform(size=(k, n)) < 0.02] = np.nan
    return t, x


CASES: dict[str, dict[str, Any]] = {
    "ensemble": {},
    "ensemble+limit+slo": {"limit": 1000.0, "slo": 0.5},
    "seasonal": {"method": "seasonal"},
    "gaussian": {"method": "gaussian"},
}


def measure(case: str, n: int = N) -> dict[str, Any]:
    opts = dict(CASES[case])
    method = opts.pop("method", None)
    det = make_detector(method, **opts) if method else EnsembleDetector(**opts)
    rng = np.random.default_rng(0)
    t, x = _scrapes(n, 0, WARM, rng)
    for k in range(WARM):
        det.update_many(t[k], x[k])
    t, x = _scrapes(n, WARM, TIMED, rng)
    per = np.empty(TIMED)
    cpu0 = time.process_time()
    for k in range(TIMED):
        a = time.perf_counter()
        det.update_many(t[k], x[k])
        per[k] = time.perf_counter() - a
    cpu = time.process_time() - cpu0
    mean_ms = per.mean() * 1e3
    return {"case": case, "series": n, "scrape_s": SCRAPE_S, "scrapes": TIMED,
            "mean_ms": round(mean_ms, 2), "p50_ms": round(float(np.median(per)) * 1e3, 2),
            "p99_ms": round(float(np.quantile(per, 0.99)) * 1e3, 2), "max_ms": round(per.max() * 1e3, 1),
            "cpu_ms_per_scrape": round(cpu / TIMED * 1e3, 2),
            "realtime_factor": round(SCRAPE_S / per.mean()), "target_ms": TARGET_MS,
            "targets": "met" if mean_ms <= TARGET_MS else "missed",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}


@pytest.mark.parametrize("case", ["ensemble", "ensemble+limit+slo"])
def test_detection_throughput(benchmark: Any, case: str) -> None:
    res: dict[str, Any] = benchmark.pedantic(measure, args=(case,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["mean_ms"] > 0  # speed is recorded, not asserted (machines differ)


if __name__ == "__main__":
    for c in sys.argv[1:] or list(CASES):
        print(json.dumps(measure(c)))
