"""A run is deterministic for its seed whatever Python's string-hash seed: worker processes (``zeroops suite
--jobs``, Dask) each get their own ``PYTHONHASHSEED``, so a decision that depends on iterating a set of names
would differ between a sequential and a parallel run.  (A zone tie broken by set order did, in
``spot-preemption`` with ``ops``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_suite_jobs import _without_wall

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scenario", ["incident-mix"])
def test_the_ops_set_decides_the_same_under_any_hash_seed(tmp_path: Path, scenario: str) -> None:
    procs = {}
    for h in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": h}
        procs[h] = subprocess.Popen([sys.executable, "-m", "zeroops.cli", "run", f"scenarios/standard/{scenario}.yaml",
                                     "--engines", "ops", "--out", str(tmp_path / h), "-q"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for p in procs.values():
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    a, b = (tmp_path / h / scenario / "ops" for h in ("1", "2"))
    assert (a / "actions.csv").read_text() == (b / "actions.csv").read_text()

    ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert _without_wall(ra) == _without_wall(rb)


def test_a_second_run_in_the_same_process_decides_the_same() -> None:
    """No engine keeps state between runs at module level (a suite's worker runs scenario after scenario;
    smart alerting's group ids once counted on from the previous run)."""
    from scenarios.loader import load_scenario
    from scenarios.runner import run_scenario

    scn = load_scenario(ROOT / "scenarios" / "standard" / "memory-leak-oom.yaml")
    first, second = (run_scenario(scn, "ops") for _ in range(2))
    assert [(r.at, r.engine, r.action, r.outcome) for r in first.records] == \
        [(r.at, r.engine, r.action, r.outcome) for r in second.records]
