"""Sweeps: every scenario x engine set x seed, one run per Dask task, merged by key.

A run is keyed by (scenario, engine set, seed) and is a pure function of that key and the scenario's file:
the same key gives the same metric row, bit for bit, in this process, in a ``LocalCluster`` or on a remote
worker (the twin draws every random number from the scenario's seed).  So the Dask scheduler may run a task
again when its worker dies (``distributed.scheduler.allowed-failures``, 3 by default) and :func:`execute`
keeps exactly one row per key: nothing is lost, nothing is counted twice.

Statistics over the rows (means, intervals, paired differences) are in :mod:`scenarios.sweep_stats`.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios.schema import Scenario

Task = Callable[["Job"], dict[str, Any]]


class SweepError(Exception):
    """Bad input or an unreachable cluster: one line for the user, no traceback."""


@dataclass(frozen=True, order=True)
class RunKey:
    scenario: str
    engines: str
    seed: int


@dataclass(frozen=True)
class Job:
    """One run: its key, the parsed scenario (shipped to the worker) and the folder its trace files are in."""

    key: RunKey
    scenario: Scenario
    base_dir: str
    digest: str  # of the scenario file: a key names one version of the scenario, not only its name

    @property
    def task_key(self) -> str:
        """The Dask key: equal keys are one task on the scheduler, so a run cannot be submitted twice."""
        k = self.key
        return f"zeroops-run-{k.scenario}-{k.engines}-{k.seed}-{self.digest[:12]}"


def _plain(v: Any) -> Any:
    """A metric as a plain Python value (numpy scalars unwrapped, bits kept); NaN and inf as None."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def run_job(job: Job) -> dict[str, Any]:
    """Run one job and return its row: the key, every scorer metric, and where and how fast it ran."""
    from scenarios.runner import run_scenario
    from scenarios.scoring import METRICS

    k = job.key
    r = run_scenario(job.scenario, k.engines, seed=k.seed, base_dir=Path(job.base_dir))
    return {"scenario": k.scenario, "engines": k.engines, "seed": k.seed,
            "metrics": {m: _plain(r.score.metrics.get(m)) for m in METRICS},
            "wall_s": r.wall_s, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def plan(files: Sequence[Path], scenarios: Sequence[Scenario], seeds: Sequence[int],
         engines: Sequence[str] | None = None) -> list[Job]:
    """Every scenario x engine set x seed, in a stable order.

    ``engines`` None: each scenario's own sets, with ``static`` first when the scenario does not list it (the
    baseline that cost savings are measured against), as ``zeroops suite`` does.
    """
    jobs: list[Job] = []
    for f, scn in zip(files, scenarios, strict=True):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        sets = list(engines) if engines else list(scn.engines)
        if not engines and "static" not in sets:
            sets = ["static", *sets]
        for e in sets:
            for s in seeds:
                jobs.append(Job(RunKey(scn.name, e, s), scn, str(f.parent.resolve()), digest))
    return jobs


@dataclass
class Outcome:
    """What a sweep produced: one row per key that finished, and an error line per key that did not."""

    rows: dict[RunKey, dict[str, Any]]
    failed: dict[RunKey, str]


def _store(out: Outcome, key: RunKey, row: dict[str, Any]) -> None:
    if key in out.rows:  # cannot happen with Dask keys; a guard so a double count can never pass silently
        raise RuntimeError(f"run {key} returned twice")
    out.rows[key] = row


def execute(jobs: Iterable[Job], client: Any | None = None, *, task: Task = run_job,
            progress: Callable[[RunKey], None] | None = None) -> Outcome:
    """Run ``jobs``: in this process when ``client`` is None, else one task per job on the Dask ``client``.

    ``task`` replaces :func:`run_job` (tests: a task that kills its worker once).  ``progress`` is called once
    per finished or failed run.  A run that raises is reported in ``Outcome.failed`` with its error; the
    others go on.
    """
    jobs = list(jobs)
    if len({j.key for j in jobs}) != len(jobs):
        raise SweepError("the sweep lists a run twice (scenario names must be unique in a suite)")
    out = Outcome({}, {})
    if client is None:
        for j in jobs:
            try:
                _store(out, j.key, task(j))
            except Exception as e:  # noqa: BLE001 - one failed run must not cost the others
                out.failed[j.key] = f"{type(e).__name__}: {e}"
            if progress:
                progress(j.key)
        return out
    from distributed import as_completed

    futures = {client.submit(task, j, key=j.task_key, pure=False, retries=0): j.key for j in jobs}
    try:
        for fut in as_completed(futures, loop=client.loop):
            key = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # noqa: BLE001 - the run's error (or KilledWorker), reported with its key
                out.failed[key] = _failure(e)
            else:
                _store(out, key, row)
            if progress:
                progress(key)
    finally:
        for fut in futures:
            fut.release()
    return out


def _failure(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    if type(e).__name__ == "KilledWorker":
        return (f"{text} (its worker died each time it ran; out of memory? the limit is "
                "distributed.scheduler.allowed-failures)")
    if isinstance(e, ModuleNotFoundError):
        return f"{text} (install the same zeroops on every worker)"
    return text
