"""A small real run (three engine sets, two seeds, two faults) written like ``zeroops suite`` does, once per
test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.results import write_run, write_summary
from scenarios.runner import check_targets, compare_to_static, run_scenario
from tests.builders import make_scenario

ENGINES = ("static", "reactive", "ops")
SEEDS = (1, 2)


def build_results(out: Path) -> Path:
    scn = make_scenario(duration=1800, faults=[{"type": "server_crash", "at": 300, "service": "api"},
                                              {"type": "bad_deploy", "at": 900, "service": "api"}],
                        targets={"availability": {"min": 0.99}, "mttd_s": {"max": 10}})
    everything = []
    for seed in SEEDS:
        runs = [run_scenario(scn, e, seed=seed) for e in ENGINES]
        compare_to_static(runs)
        for r in runs:
            check_targets(r)
            write_run(r, out)  # the run folders keep the last seed, as zeroops suite does
        everything += runs
    write_summary(everything, out)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_results(tmp_path_factory.mktemp("results"))
