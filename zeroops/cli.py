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
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


_NOTICES_SEEN: set[str] = set()


def _show_notices() -> None:
    """Print each trace notice (gaps filled, ...) once per command, as one ``notice:`` line on stderr."""
    from twin.traffic import TraceNotice

    _NOTICES_SEEN.clear()
    if getattr(warnings.showwarning, "zeroops", False):
        return
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if not issubclass(category, TraceNotice):
            return original(message, category, filename, lineno, file, line)
        text = str(message)
        if text not in _NOTICES_SEEN:
            _NOTICES_SEEN.add(text)
            print(f"notice: {text}", file=sys.stderr)
        return None

    show.zeroops = True  # type: ignore[attr-defined]
    warnings.showwarning = show
    warnings.simplefilter("always", TraceNotice)


def int_arg(low: int, high: int | None = None, high_text: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``, written ``high_text``), with a clear error."""
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer of at least {low}")

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if high is not None and not low <= v <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high_text or high}, got {v}")
        if v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        return v

    return parse


_seed = int_arg(0, 2**53, "2**53")
positive_int = int_arg(1)  # --jobs, --seeds
non_negative_int = int_arg(0)  # --first-seed, --workers


def _known_sets() -> list[str]:
    """Engine sets a name on the command line may mean (the registry's, when there is one)."""
    from scenarios.schema import ENGINE_SETS

    names = list(ENGINE_SETS)
    try:
        import engines.baselines  # noqa: F401 - registers the built-in sets
        from engines.registry import REGISTRY  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return names
    return names + [n for n in REGISTRY.set_names() if n not in names]


def _engine_sets(values: list[str] | None) -> list[str] | None:
    """``--engines static,reactive`` or ``--engines static --engines reactive``: the sets in order, once each."""
    if not values:
        return None
    sets: list[str] = []
    for v in values:
        for e in (x.strip() for x in v.split(",")):
            if e and e not in sets:
                sets.append(e)
    if not sets:
        raise ValueError(f"--engines: no engine set given; allowed: {', '.join(_known_sets())}")
    return sets


def _check_engine_sets(engines: list[str], scns: list[tuple[Path, Any]]) -> None:
    """Every set named on the command line must be known, or defined by each scenario run."""
    known = _known_sets()
    for f, scn in scns:
        own = [e if isinstance(e, str) else getattr(e, "name", str(e)) for e in scn.engines]
        for e in engines:
            if e not in known and e not in own:
                allowed = ", ".join(dict.fromkeys(known + own))
                raise ValueError(f"--engines: unknown engine set {e!r} for {f}; allowed: {allowed}")


def _out_dir(out: Path) -> None:
    """The results folder must be a folder we can write: say so before running for an hour."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; give a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create the results folder ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the results folder is not writable")


def _scenario_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml"))))
        else:
            files.append(p)
    return files


def _run_many(files: list[Path], engines: list[str] | None, seed: int | None, out: Path, quiet: bool,
              strict: bool, jobs: int = 1) -> int:
    from scenarios.loader import ScenarioError, load_scenario
    from scenarios.results import write_run, write_summary
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
    first: dict[str, Path] = {}
    for f, scn in scns:
        if scn.name in first:  # both would write out/<name>/: the second would overwrite the first
            print(f"error: {f}: name: {scn.name!r} is also the name of {first[scn.name]}; scenario names must be "
                  f"unique in a suite (they name the results folders)", file=sys.stderr)
            return EXIT_INPUT
        first[scn.name] = f
    try:
        if engines:
            _check_engine_sets(engines, scns)
        _out_dir(out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if jobs > 1 and len(scns) > 1:
        return _run_parallel(scns, engines, seed, out, quiet, strict, jobs)
    results = []
    show = not quiet and sys.stderr.isatty()
    for f, scn in scns:
        for e in _sets_of(scn, engines):
            bar, update = _progress(show, f"{scn.name} · {e}")
            try:
                r = run_scenario(scn, e, seed=seed, base_dir=f.parent, progress=update,
                                 audit_path=out / scn.name / e / "audit.db")
            except ValueError as err:
                bar.close()
                print(f"error: {f}: {err}", file=sys.stderr)
                return EXIT_INPUT
            except MemoryError:
                bar.close()
                from twin.limits import estimate, human

                print(f"error: {f}: out of memory while running with {e} (estimated need "
                      f"{human(estimate(scn).total)}); shrink the scenario or set ZEROOPS_MAX_MEMORY lower so such "
                      f"runs are refused up front", file=sys.stderr)
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
    try:
        for r in results:
            check_targets(r)
            write_run(r, out)
        write_summary(results, out)
    except OSError as err:
        print(f"error: cannot write the results to {out}: {err}", file=sys.stderr)
        return EXIT_INPUT
    return _finish(results, out, strict)


def _sets_of(scn: Any, engines: list[str] | None) -> list[str]:
    """The engine sets to run on ``scn``: the ones asked for, else its own with ``static`` for comparison."""
    sets = engines or scn.engines
    return ["static", *sets] if "static" not in sets and engines is None else list(sets)


def _suite_task(f: Path, engines: list[str] | None, seed: int | None, out: Path) -> tuple[list[Any], list[str], str]:
    """One scenario with all its engine sets, in a worker process: run, compare with static, score, write.

    Returns the runs without their world and records (what the summary and table need), the run lines, and
    an error ("" when none)."""
    from dataclasses import replace

    from scenarios.loader import load_scenario
    from scenarios.results import write_run
    from scenarios.runner import check_targets, compare_to_static, run_scenario

    scn = load_scenario(f)
    results, lines = [], []
    for e in _sets_of(scn, engines):
        try:
            r = run_scenario(scn, e, seed=seed, base_dir=f.parent, audit_path=out / scn.name / e / "audit.db")
        except ValueError as err:
            return [], lines, f"error: {f}: {err}"
        except Exception:  # noqa: BLE001 - the parent reports it; the other scenarios go on
            return [], lines, f"error: internal error while running {f} with {e}:\n{traceback.format_exc()}"
        results.append(r)
        lines.append(f"  ran {scn.name} · {e}: {scn.duration / 3600:.1f} h simulated in {r.wall_s:.1f} s")
    compare_to_static(results)
    for r in results:
        check_targets(r)
        write_run(r, out)
    return [replace(r, world=None, records=[]) for r in results], lines, ""


def _run_parallel(scns: list[tuple[Path, Any]], engines: list[str] | None, seed: int | None, out: Path,
                  quiet: bool, strict: bool, jobs: int) -> int:
    """Scenarios in ``jobs`` worker processes (one scenario, all its engine sets, per task); each run is seeded
    on its own, so the results are those of the sequential path."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    from scenarios.results import write_summary

    by_file: dict[Path, list[Any]] = {}
    failed: list[str] = []
    bar = tqdm(total=len(scns), desc=f"suite ({jobs} processes)", unit="scenario", file=sys.stderr,
               disable=quiet or not sys.stderr.isatty(), leave=False)
    # the longest first (simulated steps × engine sets), so a long scenario does not start last on one core
    longest_first = sorted(scns, key=lambda fs: -fs[1].duration / fs[1].tick * len(_sets_of(fs[1], engines)))
    with ProcessPoolExecutor(max_workers=min(jobs, len(scns)), mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {ex.submit(_suite_task, f, engines, seed, out): f for f, _ in longest_first}
        for fut in as_completed(futures):
            runs, lines, error = fut.result()
            bar.update(1)
            if not quiet:
                for line in lines:
                    bar.write(line, file=sys.stderr)
            if error:
                failed.append(error)
            else:
                by_file[futures[fut]] = runs
    bar.close()
    if failed:
        for msg in failed:
            print(msg, file=sys.stderr)
        print(f"results of the other scenarios are in {out}", file=sys.stderr)
        return EXIT_INTERNAL if any("internal error" in m for m in failed) else EXIT_INPUT
    results = [r for f, _ in scns for r in by_file[f]]  # the sequential path's order
    try:
        write_summary(results, out)
    except OSError as err:
        print(f"error: cannot write the results to {out}: {err}", file=sys.stderr)
        return EXIT_INPUT
    return _finish(results, out, strict)


def _finish(results: list[Any], out: Path, strict: bool) -> int:
    from scenarios.results import table

    print(table(results))
    no_base = sorted({r.scenario.name for r in results if "cost_savings" in r.scenario.targets}
                     - {r.scenario.name for r in results if r.engines == "static"})
    if no_base:
        print(f"note: cost_savings needs the static baseline in the same command (e.g. --engines static,reactive); "
              f"not computed for {', '.join(no_base)}", file=sys.stderr)
    missed = sum(1 for r in results for t in r.targets.values() if t["status"] == "missed")
    print(f"\nresults: {out}/summary.json, {out}/summary.csv and one folder per run"
          f"{f'; {missed} target(s) missed' if missed else ''}")
    return EXIT_MISSED if strict and missed else EXIT_OK


def cmd_run(a: argparse.Namespace) -> int:
    try:
        engines = _engine_sets(a.engines)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    return _run_many([Path(a.scenario)], engines, a.seed, Path(a.out), a.quiet, a.strict)


def cmd_suite(a: argparse.Namespace) -> int:
    for d in map(Path, a.dirs):
        if not d.is_dir() and not (d.is_file() and d.suffix in (".yaml", ".yml")):
            print(f"error: {d}: neither a folder of scenario files nor a scenario file (*.yaml)", file=sys.stderr)
            return EXIT_INPUT
    try:
        engines = _engine_sets(a.engines)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    return _run_many(_scenario_files(a.dirs), engines, a.seed, Path(a.out), a.quiet, a.strict,
                     jobs=a.jobs if a.jobs is not None else (os.cpu_count() or 1))


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

    if not Path(a.dir).is_dir():
        print(f"error: {a.dir}: not a directory of scenario files", file=sys.stderr)
        return EXIT_INPUT
    files = _scenario_files([a.dir])
    if not files:
        print(f"error: no scenario files (*.yaml) in {a.dir}", file=sys.stderr)
        return EXIT_INPUT
    width = max(len(f.stem) for f in files)
    bad = 0
    for f in files:
        try:
            s = load_scenario(f)
            print(f"{s.name.ljust(width)}  {s.duration / 3600:>6.1f} h  {', '.join(s.engines):<16}  {s.description}")
        except ScenarioError as e:
            bad += 1
            print(f"{f.stem.ljust(width)}  INVALID: {str(e).splitlines()[0]}")
    return EXIT_INPUT if bad else EXIT_OK


def cmd_schema(a: argparse.Namespace) -> int:
    from scenarios.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if a.output:
        try:
            Path(a.output).write_text(text)
        except OSError as e:
            print(f"error: {a.output}: cannot write ({e.strerror})", file=sys.stderr)
            return EXIT_INPUT
        print(f"wrote {a.output}")
    else:
        sys.stdout.write(text)
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
        sp.add_argument("--engines", metavar="SET[,SET]", action="append",
                        help="engine sets to run, comma-separated or repeated: static, reactive; with static among "
                        "them cost_savings is computed against it (default: the scenario's own list, always with "
                        "static for comparison)")
        sp.add_argument("--seed", type=_seed, help="override the scenario's seed (a non-negative integer)")
        sp.add_argument("--out", default="out", help="output folder (default: out/)")
        sp.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or run lines")

    r = sub.add_parser("run", help="run one scenario", description="Run one scenario file and score it.")
    r.add_argument("scenario", help="scenario YAML file")
    common(r)
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("suite", help="run every scenario in one or more folders",
                       description="Run every *.yaml scenario in each DIR (or each scenario FILE given) and print "
                                   "one results table.",
                       epilog="suites:\n  scenarios/standard   the standard suite, hours to two days (make run)\n"
                              "  scenarios/extended   weeks and months: forecasting, budgets, self-service, release "
                              "trains\n                       (make run-full runs both)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("dirs", nargs="*", default=[str(STANDARD)], metavar="DIR",
                   help="folders of scenarios, or scenario files (default: the standard suite)")
    common(s)
    s.add_argument("-j", "--jobs", type=positive_int, default=None, metavar="N",
                   help="scenarios run at once, each in its own process (default: the machine's cores; 1: one "
                        "after the other in this process). Results are the same either way")
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
    from zeroops.report_cli import add_report_parsers  # report (html|md) and dashboard

    add_report_parsers(sub)
    for mod, fn in (("zeroops.live", "add_live_parser"), ("zeroops.safety_cli", "add_safety_parsers"),
                    ("zeroops.detect_cli", "add_detect_parser"), ("zeroops.incidents_cli", "add_incidents_parsers"),
                    ("zeroops.alerting_cli", "add_alerting_parser"),
                    ("zeroops.runbooks_cli", "add_runbooks_parser"), ("zeroops.forecast_cli", "add_forecast_parser"),
                    ("zeroops.capacity_cli", "add_capacity_parser"),
                    ("zeroops.budget_cli", "add_budget_parser"),
                    ("zeroops.improvement_cli", "add_improvement_parser"),
                    ("zeroops.serve_cli", "add_serve_parser"),
                    ("zeroops.chaos_cli", "add_chaos_parser"),
                    ("zeroops.request_cli", "add_request_parser"),
                    ("zeroops.sweep_cli", "add_sweep_parser")):
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
    _show_notices()
    try:
        return int(a.fn(a) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``zeroops decisions list | head``): stop quietly; point stdout at /dev/null so
        # the interpreter's final flush does not complain either
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
