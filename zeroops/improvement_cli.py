"""``zeroops improvement report RESULTS``: the weekly improvement report (Markdown) of runs' files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_INPUT = 0, 2


def cmd_report(a: argparse.Namespace) -> int:
    from reports.improvement_report import ReportInputError, report

    try:
        text = report(Path(a.results))
    except ReportInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if a.output:
        Path(a.output).write_text(text)
    else:
        print(text)
    return EXIT_OK


def add_improvement_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("improvement", help="continuous improvement: the weekly report of canaries and experiments",
                       description="Reports of the continuous-improvement engine's decisions (docs/improvement.md).")
    s = p.add_subparsers(dest="improvement_cmd")
    r = s.add_parser("report", help="weekly Markdown report: experiments, winners, regressions caught, savings",
                     description="Experiments run, winners with effect sizes and intervals, regressions caught, "
                                 "rollout success rate and savings, per week, for every run under RESULTS.")
    r.add_argument("results", metavar="RESULTS", help="a folder written by zeroops run or suite, or one run's folder")
    r.add_argument("-o", "--output", help="write the Markdown here instead of stdout")
    r.set_defaults(fn=cmd_report)
    p.set_defaults(fn=lambda a: (p.print_help(), EXIT_INPUT)[1])
