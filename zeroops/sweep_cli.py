"""``zeroops sweep``: every scenario x engine set x seed on Dask, merged into means with 95 % intervals.

    zeroops sweep [SUITE_DIR] --seeds 20 [--engines SET,..] [--scenarios NAME,..] [--out DIR]
                  [--scheduler tcp://host:8786 | --workers N]

Without ``--scheduler`` the runs go to a ``dask.distributed.LocalCluster`` of worker processes (one thread
each) sized to this machine; with it, to the workers of an existing Dask cluster, which must have the same
zeroops installed and see the scenario's trace files at the same paths.  ``--workers 0`` runs in this
process, without Dask.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zeroops.cli import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    STANDARD,
    _check_engine_sets,
    _engine_sets,
    _out_dir,
    non_negative_int,
    positive_int,
)

CONNECT_TIMEOUT_S = 10.0
WORKERS_TIMEOUT_S = 60.0


def machine_workers() -> int:
    """One worker process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler``, or of a fresh LocalCluster of ``workers`` processes; None
    (run in this process) when ``workers`` is 0 and no scheduler is given.  Raises SweepError on failure."""
    from scenarios.sweep import SweepError

    if scheduler is None and workers == 0:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("dask.distributed is not installed: pip install 'dask[distributed]' "
                         "(or run in this process with --workers 0)") from None
    if scheduler is not None:
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # one error line below, not the retries' log lines
        try:
            client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise SweepError(f"--scheduler {scheduler}: cannot reach the Dask scheduler within "
                             f"{connect_timeout:g} s ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                             ) from None
        finally:
            quiet.setLevel(level)
        try:
            try:
                client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
            except TimeoutError:
                raise SweepError(f"--scheduler {scheduler}: no worker joined the scheduler within "
                                 f"{WORKERS_TIMEOUT_S:g} s (start some with: dask worker {scheduler})") from None
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def cmd_sweep(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from scenarios import sweep_stats
    from scenarios.loader import ScenarioError, load_scenario
    from scenarios.sweep import SweepError, execute, plan
    from zeroops.cli import _scenario_files

    d = Path(a.suite_dir)
    if not d.is_dir():
        print(f"error: {d}: not a directory of scenario files", file=sys.stderr)
        return EXIT_INPUT
    files = _scenario_files([str(d)])
    try:
        engines = _engine_sets(a.engines)
        scns = [(f, load_scenario(f)) for f in files]
        if a.scenarios:
            wanted = [n.strip() for v in a.scenarios for n in v.split(",") if n.strip()]
            names = [s.name for _, s in scns]
            unknown = [n for n in wanted if n not in names]
            if unknown:
                raise ValueError(f"--scenarios: no scenario named {', '.join(map(repr, unknown))} in {d}; "
                                 f"allowed: {', '.join(names)}")
            scns = [(f, s) for f, s in scns if s.name in wanted]
        if not scns:
            raise ValueError(f"{d}: no scenario files (*.yaml)")
        names = [s.name for _, s in scns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{d}: scenario name {dup[0]!r} is used by two files; names must be unique in a suite")
        if engines:
            _check_engine_sets(engines, scns)
        out = Path(a.out)
        _out_dir(out)
    except (ScenarioError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    jobs = plan([f for f, _ in scns], [s for _, s in scns], seeds, engines)
    baselines = [b.strip() for v in (a.baselines or ["static,reactive"]) for b in v.split(",") if b.strip()]
    where = a.scheduler or ("this process" if a.workers == 0 else f"a LocalCluster of {a.workers} processes")
    if not a.quiet:
        print(f"sweep: {len(scns)} scenario(s) x engine sets x {len(seeds)} seed(s) = {len(jobs)} runs on {where}",
              file=sys.stderr)
    tty = sys.stderr.isatty()
    bar = tqdm(total=len(jobs), desc="runs", unit="run", file=sys.stderr, disable=a.quiet or not tty,
               dynamic_ncols=True)
    step, done = max(1, len(jobs) // 10), [0]

    def progress(_key: object) -> None:  # a bar on a terminal, else a line every tenth of the runs (logs)
        bar.update(1)
        done[0] += 1
        if not tty and not a.quiet and (done[0] % step == 0 or done[0] == len(jobs)):
            print(f"sweep: {done[0]}/{len(jobs)} runs done", file=sys.stderr, flush=True)

    try:
        with dask_client(a.scheduler, a.workers, a.connect_timeout) as client:
            outcome = execute(jobs, client, progress=progress)
    except SweepError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    bar.close()
    flat = sweep_stats.finalize(outcome.rows, [s for _, s in scns], [j.key for j in jobs])
    summary = sweep_stats.summarize(flat, baselines)
    meta = {"suite": str(d.resolve()), "scenarios": [s.name for _, s in scns], "seeds": seeds,
            "engines": sorted({j.key.engines for j in jobs}), "baselines": baselines, "where": where,
            "runs_planned": len(jobs), "runs_done": len(outcome.rows),
            "failed": {f"{k.scenario}/{k.engines}/{k.seed}": v for k, v in sorted(outcome.failed.items())}}
    try:
        paths = sweep_stats.write(out, flat, summary, meta)
    except OSError as e:
        print(f"error: cannot write the results to {out}: {e}", file=sys.stderr)
        return EXIT_INPUT
    print(sweep_stats.table(summary, baselines[0] if baselines else None))
    print(f"\n{len(outcome.rows)}/{len(jobs)} runs; mean ±half-width of the 95 % t interval over seeds; "
          f"Δ: paired difference on the same seeds\nresults: {', '.join(map(str, paths))}")
    for k, err in sorted(outcome.failed.items()):
        print(f"error: run {k.scenario} · {k.engines} · seed {k.seed} failed: {err}", file=sys.stderr)
    return EXIT_INTERNAL if outcome.failed else EXIT_OK


def add_sweep_parser(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep", help="every scenario x engine set x seed on Dask: means and 95 %% intervals",
        description="Run every scenario of SUITE_DIR with each engine set at each seed, on a Dask LocalCluster "
        "(default) or an existing Dask cluster (--scheduler), and merge the runs into one table: per metric the "
        "mean over seeds with its 95 % Student-t interval, and the paired difference to each baseline set on "
        "the same seeds.  Writes OUT/sweep.csv (one row per run), OUT/sweep-summary.csv and OUT/sweep.json.",
        epilog="examples:\n  zeroops sweep scenarios/standard --scenarios az-outage,hypervisor-failure --seeds 5\n"
        "  zeroops sweep my-suite/ --seeds 20 --scheduler tcp://10.0.0.5:8786\n\n"
        "exit codes: 0 ok, 2 bad input or unreachable scheduler, 3 a run failed (the others are written)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("suite_dir", metavar="SUITE_DIR", nargs="?", default=str(STANDARD),
                    help="folder of scenarios (default: the standard suite)")
    sw.add_argument("--seeds", type=positive_int, default=20, help="how many seeds per scenario and set (default 20)")
    sw.add_argument("--first-seed", type=non_negative_int, default=1, help="seeds run FIRST..FIRST+SEEDS-1 (default 1)")
    sw.add_argument("--engines", metavar="SET[,SET]", action="append",
                    help="engine sets (default: each scenario's own list, with static)")
    sw.add_argument("--scenarios", metavar="NAME[,NAME]", action="append",
                    help="only these scenarios of SUITE_DIR (default: all)")
    sw.add_argument("--baselines", metavar="SET[,SET]", action="append",
                    help="sets every other set is compared with, seed by seed (default: static,reactive)")
    sw.add_argument("--out", default="out/sweep", help="output folder (default: out/sweep/)")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    sw.add_argument("--workers", type=non_negative_int, default=machine_workers(),
                    help="LocalCluster worker processes (default: one per core, here %(default)s); "
                    "0: run in this process without Dask; ignored with --scheduler")
    sw.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S,
                    help="seconds to reach --scheduler (default %(default)g)")
    sw.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(fn=cmd_sweep)
