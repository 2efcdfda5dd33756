"""The sweep's statistics: t intervals, paired differences on the same seeds, and the merged table."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scenarios.sweep_stats import summarize, t_interval


def test_t_interval_matches_the_textbook() -> None:
    mean, sd, lo, hi = t_interval([1, 2, 3, 4, 5])
    assert mean == 3 and sd == pytest.approx(math.sqrt(2.5))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4)
    assert (lo, hi) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert t_interval([7.0]) == (7.0, None, None, None)  # one seed: no interval
    assert t_interval([2.0, 2.0, 2.0])[2:] == (2.0, 2.0)


def _flat(values: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [{"scenario": "s", "engines": e, "seed": i + 1, "cost": v, "availability": None, "_targets": {}}
            for e, vs in values.items() for i, v in enumerate(vs)]


def _get(summary: list[dict[str, Any]], engines: str, vs: str, metric: str = "cost") -> dict[str, Any]:
    return next(r for r in summary if (r["engines"], r["vs"], r["metric"]) == (engines, vs, metric))


def test_paired_difference_cancels_what_each_seed_draws() -> None:
    # seeds vary a lot (traffic, faults), the set always saves exactly 1: paired, the difference is certain
    base = [10.0, 30.0, 20.0, 50.0, 40.0]
    summary = summarize(_flat({"static": base, "smart": [v - 1 for v in base]}), baselines=["static"])
    own = _get(summary, "smart", "")
    diff = _get(summary, "smart", "static")
    assert own["ci_high"] - own["ci_low"] > 30  # unpaired, the seeds' spread swamps the saving
    assert diff["mean"] == pytest.approx(-1) and diff["ci_low"] == pytest.approx(-1) and diff["n"] == 5
    # a "gaming" comparison that pairs different seeds loses that: the same values, shuffled, are not certain
    shuffled = summarize(_flat({"static": base, "smart": [v - 1 for v in reversed(base)]}), baselines=["static"])
    d = _get(shuffled, "smart", "static")
    assert d["ci_low"] < -1 < d["ci_high"] and d["ci_high"] - d["ci_low"] > 10


def test_summary_rows_skip_missing_values_and_self_comparisons() -> None:
    summary = summarize(_flat({"static": [1.0, 2.0], "reactive": [1.0, 3.0]}), baselines=["static", "reactive"])
    assert not any(r["metric"] == "availability" for r in summary)  # None everywhere: no row
    assert not any(r["engines"] == r["vs"] for r in summary)
    assert _get(summary, "static", "reactive")["mean"] == pytest.approx(-0.5)
    assert _get(summary, "reactive", "static")["mean"] == pytest.approx(0.5)
