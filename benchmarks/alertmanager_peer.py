"""The real-Alertmanager peer over scenarios: run them, replay each run's raw alerts into Alertmanager.

    python -m benchmarks.alertmanager_peer --out /tmp/am-peer [--engines static,reactive,ops]
        [--check-k 100] scenarios/standard/db-pool-exhaustion.yaml ...

Runs every scenario with the engine sets (``zeroops run``), then ``zeroops alerting compare`` on the
results folder, which writes ``alerting_comparison.json`` and ``.md``.  ``--check-k`` replays every run a
second time at another compression factor: the notification counts at the two factors must agree for
the compression to be trusted (docs/alerting.md, "Alertmanager peer").
"""

from __future__ import annotations

import argparse
import sys

from zeroops.cli import main as zeroops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.alertmanager_peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+", help="scenario YAML files")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--engines", default="static,reactive,ops", help="engine sets (default static,reactive,ops)")
    p.add_argument("--seed", help="override the scenarios' seed")
    p.add_argument("--budget", default="60", help="wall seconds per replay the compression aims at")
    p.add_argument("--check-k", help="replay every run again at this factor (validates the compression)")
    a = p.parse_args(argv)
    for scn in a.scenarios:
        run = ["run", scn, "--engines", a.engines, "--out", a.out, "-q"] + (["--seed", a.seed] if a.seed else [])
        rc = zeroops(run)
        if rc not in (0, 1):  # 1: a target missed, which is a result, not a failure
            return rc
    cmp_ = ["alerting", "compare", a.out, "--budget", a.budget] + (["--check-k", a.check_k] if a.check_k else [])
    return zeroops(cmp_)


if __name__ == "__main__":
    sys.exit(main())
