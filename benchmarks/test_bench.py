"""Performance cases (``make bench``): each runs in its own process and records its figures.

Targets are recorded as met/missed in ``benchmarks/results.json`` and in the
benchmark's ``extra_info``; nothing here fails on speed (machines differ).
Print the table with ``python -m benchmarks.report``.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.measure import CASES, measure

pytestmark = pytest.mark.benchmark_suite


def _run(benchmark: Any, name: str) -> dict[str, Any]:
    res: dict[str, Any] = benchmark.pedantic(measure, args=(name,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    return res


@pytest.mark.parametrize("name", ["fleet-1k-week", "fleet-10k-day"])
def test_fleet(benchmark: Any, name: str) -> None:
    res = _run(benchmark, name)
    assert res["simulated_s"] == CASES[name].days * 86400.0
    assert res["availability"] > 0.9


@pytest.mark.parametrize("size", ["100-day", "1k-6h"])
def test_naive_vs_twin(benchmark: Any, size: str) -> None:
    """The naive per-server-process model and the vectorised twin on the same static fleet."""
    naive = measure(f"naive-{size}-static")
    twin = _run(benchmark, f"twin-{size}-static")
    benchmark.extra_info["naive_wall_s"] = naive["wall_s"]
    benchmark.extra_info["speedup"] = round(naive["wall_s"] / twin["wall_s"], 1)
    # same world, same physics: the two models agree
    assert twin["availability"] == pytest.approx(naive["availability"], abs=1e-9)
    assert twin["cost"] == pytest.approx(naive["cost"], rel=1e-9)
