"""``zeroops report`` (HTML or Markdown report of a results folder) and ``zeroops dashboard`` (its front page
as text in the terminal)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_INPUT = 0, 2


def cmd_report(a: argparse.Namespace) -> int:
    from reports.report import ReportError, build_reports, parse_formats

    try:
        paths = build_reports(Path(a.out_dir), parse_formats(a.format), Path(a.out) if a.out else None,
                              Path(a.bench) if a.bench else None)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    extra = f" and its plots in {Path(a.out_dir) / 'plots'}" if any(p.suffix == ".md" for p in paths) else ""
    print(f"wrote {' and '.join(str(p) for p in paths)}{extra}")
    return EXIT_OK


def cmd_dashboard(a: argparse.Namespace) -> int:
    from reports.dashboard import build_dashboard, to_text
    from reports.results_model import ReportError, load_results

    try:
        text = to_text(build_dashboard(load_results(Path(a.results_dir))))
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    sys.stdout.write(text)
    return EXIT_OK


def add_report_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rp = sub.add_parser("report", help="HTML or Markdown report of a results folder",
                        description="Render the report of a folder written by run or suite: the automation "
                        "dashboard, per-scenario plots and incident timelines, benchmarks. Markdown (default) "
                        "writes OUT_DIR/report.md with PNGs in OUT_DIR/plots/; html writes one self-contained "
                        "file (images embedded, opens with no network). docs/reports.md")
    rp.add_argument("out_dir", metavar="RESULTS_DIR", help="results folder (with summary.json)")
    rp.add_argument("--format", default="md", metavar="md|html|md,html",
                    help="md (default), html, or md,html for both (the plots are drawn once)")
    rp.add_argument("--out", metavar="FILE", help="write the report here (default: RESULTS_DIR/report.FORMAT)")
    rp.add_argument("--bench", metavar="FILE.json", help="add a benchmarks section from a pytest-benchmark JSON "
                    "(pytest --benchmark-json=FILE.json)")
    rp.set_defaults(fn=cmd_report)
    dp = sub.add_parser("dashboard", help="the automation dashboard of a results folder, in the terminal",
                        description="Print the report's front page as text: automation coverage, performance, "
                        "cost, alerting (and improvement, chaos when the results have them), each figure beside "
                        "its target and the baselines.")
    dp.add_argument("results_dir", metavar="RESULTS_DIR", help="results folder (with summary.json)")
    dp.set_defaults(fn=cmd_dashboard)
