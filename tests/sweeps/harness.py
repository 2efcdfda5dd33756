"""The tiny suite of these tests, its in-process reference rows, and a comparison of metric rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scenarios.loader import load_scenario
from scenarios.sweep import Job, RunKey, execute, plan

SUITE = Path(__file__).resolve().parent / "suite"
TINY = SUITE / "tiny-crash.yaml"


def tiny_jobs(seeds: list[int]) -> list[Job]:
    return plan([TINY], [load_scenario(TINY)], seeds)


def reference(seeds: list[int]) -> dict[RunKey, dict[str, Any]]:
    """Each run's row computed in this process, without Dask."""
    out = execute(tiny_jobs(seeds))
    assert not out.failed, out.failed
    return out.rows


def metric_text(row: dict[str, Any]) -> str:
    """A row's metrics as exact text (floats print their shortest round-trip repr: equal text, equal bits)."""
    return json.dumps(row["metrics"], sort_keys=True)
