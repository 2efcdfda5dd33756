"""``zeroops alerting compare RESULTS_DIR``: the real Alertmanager beside the run's own alerting, per run.

Each run folder's raw alert stream (``alerts.csv``) is replayed, time-compressed, into a real Alertmanager
with the production configuration (:mod:`zeroops.alertmanager`); its notifications and the run's own
(executed ``page``/``notify`` actions, and raw alerts that paged the twin's human) are mapped to the
run's ground-truth incidents.  Writes ``alerting_comparison.json`` and ``.md`` into RESULTS_DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INPUT, EXIT_UNAVAILABLE = 0, 2, 4


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def add_alerting_parser(sub: Any) -> None:
    a = sub.add_parser("alerting", help="alerting peers: compare with a real Prometheus Alertmanager")
    asub = a.add_subparsers(dest="alerting_cmd", required=True)
    c = asub.add_parser("compare", help="replay each run's raw alerts into a real Alertmanager",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("results", metavar="RESULTS_DIR", help="a folder written by zeroops run/suite")
    c.add_argument("--budget", type=_positive, default=60.0,
                   help="wall seconds per run the time compression aims at (default 60)")
    c.add_argument("--k", type=_positive, default=None, help="fixed time-compression factor (default: from --budget)")
    c.add_argument("--k-min", type=_positive, default=20.0, help="smallest factor chosen (default 20)")
    c.add_argument("--k-max", type=_positive, default=200.0,
                   help="largest factor chosen: group_wait 30 s becomes 30/k s (default 200)")
    c.add_argument("--check-k", type=_positive, default=None,
                   help="replay every run again at this factor and report both counts (validates the compression)")
    c.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    c.add_argument("--engines", action="append", help="only these engine sets (repeatable)")
    c.set_defaults(fn=cmd_compare)


def cmd_compare(a: argparse.Namespace) -> int:
    from zeroops.alerting_peer import compare_run, markdown, run_dirs
    from zeroops.alerting_replay import PeerInputError
    from zeroops.alertmanager import AlertmanagerError, find_binary

    if find_binary() is None:
        print("error: alertmanager not found: apt-get install prometheus-alertmanager "
              "(or set ZEROOPS_ALERTMANAGER to the binary)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    out = Path(a.results)
    try:
        dirs = [d for d in run_dirs(out) if (not a.scenario or d.parent.name in a.scenario)
                and (not a.engines or d.name in a.engines)]
        rows = []
        for d in dirs:
            print(f"replaying {d.parent.name}/{d.name} ...", file=sys.stderr)
            row = compare_run(d, a.budget, a.k_min, a.k_max, a.k)
            if a.check_k:
                again = compare_run(d, k=a.check_k)
                row["check"] = {key: again[key] for key in ("k", "am_notifications", "am_notifications_firing",
                                                            "am_incidents_missed", "wall_s", "max_lag_s")}
            rows.append(row)
    except PeerInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except AlertmanagerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    doc = {"generated_by": "zeroops alerting compare", "config": _config(), "runs": rows}
    (out / "alerting_comparison.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = markdown(rows)
    checks = [r for r in rows if "check" in r]
    if checks:
        text += ("\n\nCompression check (the same stream at two factors):\n\n"
                 "| run | k | AM notifications | k | AM notifications |\n|---|---|---|---|---|\n")
        text += "\n".join(f"| {r['scenario']}/{r['engines']} | {r['k']:g} | {r['am_notifications']} | "
                          f"{r['check']['k']:g} | {r['check']['am_notifications']} |" for r in checks)
    (out / "alerting_comparison.md").write_text(text + "\n")
    print(text)
    return EXIT_OK


def _config() -> dict[str, Any]:
    from zeroops import alertmanager as am
    from zeroops.alerting_peer import GRACE_S
    from zeroops.alerting_replay import HOLD_S, RESEND_S

    return {"group_by": list(am.GROUP_BY), "group_wait_s": am.GROUP_WAIT_S, "group_interval_s": am.GROUP_INTERVAL_S,
            "repeat_interval_s": am.REPEAT_INTERVAL_S, "resolve_timeout_s": am.RESOLVE_TIMEOUT_S,
            "inhibit": {"source": "severity=critical", "target": "severity=warning", "equal": list(am.INHIBIT_EQUAL)},
            "resend_s": RESEND_S, "hold_s": HOLD_S, "grace_s": GRACE_S}
