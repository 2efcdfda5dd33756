"""The ``zeroops`` command line.

Exit codes scripts can rely on:
  0  success (with --strict: and every target met)
  1  --strict and at least one target missed
  2  bad input: unreadable or invalid scenario, unknown engine set, bad arguments
  3  a run failed with an internal error (a bug: please report it)
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_MISSED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
STANDARD = Path(__file__).resolve().parent.parent / "scenarios" / "standard"


def _progress(enabled: bool, desc: str):  # type: ignore[no-untyped-def]
    """A tqdm bar over simulated time, on stderr; silent when disabled or not a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", disable=not enabled, leave=False, file=sys.stderr,
               bar_format="{desc:<34} {bar} {percentage:3.0f}% [{elapsed}<{remaining}]")

    def update(done: float, total: float) -> None:
        bar.update(round(100 * done / total) - bar.n)

    return bar, update


def _scenario_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml"))))
        else:
            files.append(p)
    return files


def _run_many(files: list[Path], engines: list[str] | None, seed: int | None, out: Path, quiet: bool,
              strict: bool) -> int:
    from scenarios.loader import ScenarioError, load_scenario
    from scenarios.results import table, write_run, write_summary
    from scenarios.runner import check_targets, compare_to_static, run_scenario

    scns = []
    for f in files:
        try:
            scns.append((f, load_scenario(f)))
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INPUT
    if not scns:
        print("error: no scenario files (*.yaml) found", file=sys.stderr)
        return EXIT_INPUT
    results = []
    show = not quiet and sys.stderr.isatty()
    for f, scn in scns:
        sets = engines or scn.engines
        if "static" not in sets and engines is None:
            sets = ["static", *sets]
        for e in sets:
            bar, update = _progress(show, f"{scn.name} · {e}")
            try:
                r = run_scenario(scn, e, seed=seed, base_dir=f.parent, progress=update,
                                 audit_path=out / scn.name / e / "audit.db")
            except ValueError as err:
                bar.close()
                print(f"error: {f}: {err}", file=sys.stderr)
                return EXIT_INPUT
            except Exception:  # noqa: BLE001 - report, keep what was written
                bar.close()
                traceback.print_exc()
                print(f"error: internal error while running {f} with {e}; results so far are in {out}",
                      file=sys.stderr)
                return EXIT_INTERNAL
            bar.close()
            results.append(r)
            if not quiet:
                print(f"  ran {scn.name} · {e}: {scn.duration / 3600:.1f} h simulated in {r.wall_s:.1f} s",
                      file=sys.stderr)
    compare_to_static(results)
    for r in results:
        check_targets(r)
        write_run(r, out)
    write_summary(results, out)
    print(table(results))
    missed = sum(1 for r in results for t in r.targets.values() if t["status"] == "missed")
    print(f"\nresults: {out}/summary.json, {out}/summary.csv and one folder per run"
          f"{f'; {missed} target(s) missed' if missed else ''}")
    return EXIT_MISSED if strict and missed else EXIT_OK


def cmd_run(a: argparse.Namespace) -> int:
    engines = [a.engines] if a.engines else None
    return _run_many([Path(a.scenario)], engines, a.seed, Path(a.out), a.quiet, a.strict)


def cmd_suite(a: argparse.Namespace) -> int:
    d = Path(a.dir)
    if not d.is_dir():
        print(f"error: {d}: not a directory of scenario files", file=sys.stderr)
        return EXIT_INPUT
    engines = [a.engines] if a.engines else None
    return _run_many(_scenario_files([str(d)]), engines, a.seed, Path(a.out), a.quiet, a.strict)


def cmd_validate(a: argparse.Namespace) -> int:
    from scenarios.loader import ScenarioError, load_scenario

    bad = 0
    files = _scenario_files(a.files)
    if not files:
        print("error: no scenario files given", file=sys.stderr)
        return EXIT_INPUT
    for f in files:
        try:
            s = load_scenario(f)
            print(f"ok: {f} ({s.name}: {s.duration / 3600:g} h, {len(s.services)} services, {len(s.faults)} faults)")
        except ScenarioError as e:
            bad += 1
            print(f"invalid: {e}", file=sys.stderr)
    return EXIT_INPUT if bad else EXIT_OK


def cmd_list(a: argparse.Namespace) -> int:
    from scenarios.loader import ScenarioError, load_scenario

    files = _scenario_files([a.dir])
    if not files:
        print(f"error: no scenario files in {a.dir}", file=sys.stderr)
        return EXIT_INPUT
    width = max(len(f.stem) for f in files)
    for f in files:
        try:
            s = load_scenario(f)
            print(f"{s.name.ljust(width)}  {s.duration / 3600:>6.1f} h  {', '.join(s.engines):<16}  {s.description}")
        except ScenarioError as e:
            print(f"{f.stem.ljust(width)}  INVALID: {str(e).splitlines()[0]}")
    return EXIT_OK


def cmd_schema(a: argparse.Namespace) -> int:
    from scenarios.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if a.output:
        Path(a.output).write_text(text)
        print(f"wrote {a.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    from reports.report import ReportError, build_report

    try:
        path = build_report(Path(a.out_dir))
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    print(f"wrote {path} and its plots in {path.parent / 'plots'}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zeroops",
        description="Simulation-first digital twin for autonomous operations: run scenario suites, compare engine "
        "sets against baselines, and run the same engines live.",
        epilog="examples:\n"
        "  zeroops suite                                  the standard suite, results in out/\n"
        "  zeroops run scenarios/standard/az-outage.yaml --engines reactive --seed 3\n"
        "  zeroops validate my-scenarios/                 check files before running them\n"
        "  zeroops live --cloud mycloud --mode observe    propose, never act, against a real cloud\n\n"
        "exit codes: 0 ok, 1 target missed (with --strict), 2 bad input, 3 internal error",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--engines", metavar="SET", help="engine set to run: static or reactive "
                        "(default: the scenario's own list, always with static for comparison)")
        sp.add_argument("--seed", type=int, help="override the scenario's seed")
        sp.add_argument("--out", default="out", help="output folder (default: out/)")
        sp.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or run lines")

    r = sub.add_parser("run", help="run one scenario", description="Run one scenario file and score it.")
    r.add_argument("scenario", help="scenario YAML file")
    common(r)
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("suite", help="run every scenario in a folder",
                       description="Run every *.yaml scenario in DIR and print a results table.")
    s.add_argument("dir", nargs="?", default=str(STANDARD), help="folder of scenarios (default: the standard suite)")
    common(s)
    s.set_defaults(fn=cmd_suite)
    v = sub.add_parser("validate", help="check scenario files", description="Validate scenario files; "
                       "errors name the file, the field and what is allowed.")
    v.add_argument("files", nargs="+", help="scenario files or folders")
    v.set_defaults(fn=cmd_validate)
    ls = sub.add_parser("list", help="list the scenarios of a suite")
    ls.add_argument("dir", nargs="?", default=str(STANDARD), help="folder (default: the standard suite)")
    ls.set_defaults(fn=cmd_list)
    sc = sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")
    sc.add_argument("-o", "--output", help="write to this file instead of stdout")
    sc.set_defaults(fn=cmd_schema)
    rp = sub.add_parser("report", help="plots and a markdown report of a results folder",
                        description="Render PNG plots and OUT_DIR/report.md from a folder written by run or suite.")
    rp.add_argument("out_dir", metavar="OUT_DIR", help="results folder (with summary.json)")
    rp.set_defaults(fn=cmd_report)
    for mod, fn in (("zeroops.live", "add_live_parser"), ("zeroops.safety_cli", "add_safety_parsers")):
        try:
            module = __import__(mod, fromlist=[fn])
        except ImportError:
            continue
        getattr(module, fn)(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "fn", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(a.fn(a) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
