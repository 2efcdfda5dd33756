"""Sweeps through real Dask: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 started here,
and a LocalCluster.  Rows must equal the in-process ones bit for bit; a worker killed mid-sweep loses nothing
and counts nothing twice."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.sweeps.harness import SUITE, metric_text, reference, tiny_jobs

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                  "(pip install 'dask[distributed]'): zeroops sweep needs it")
ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"
SEEDS = [1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):  # workers first, then the scheduler; each in its own process group
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` of a scheduler with two single-thread workers (with nannies: a killed worker is
    restarted), all torn down at the end."""
    if not DASK.exists() and shutil.which("dask") is None:
        pytest.skip("the dask command is not installed (pip install 'dask[distributed]')")
    exe = str(DASK) if DASK.exists() else "dask"
    address = f"tcp://127.0.0.1:{_free_port()}"
    logs = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers import zeroops and tests.sweeps.faulty
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen([exe, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard", "--no-show")
        for i in (1, 2):
            start(f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--memory-limit", "2GiB", "--name", f"w{i}")
        with distributed.Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop(procs)


def _rows(csv: Path) -> dict[tuple[str, str, int], str]:
    """Each run's metric columns as exact text (wall time and worker differ by nature)."""
    df = pd.read_csv(csv, dtype=str, keep_default_na=False).drop(columns=["wall_s", "worker"])
    return {(r["scenario"], r["engines"], int(r["seed"])): r for r in df.to_dict("records")}


def test_sweep_through_a_scheduler_and_two_workers_equals_in_process(scheduler: str, tmp_path: Path) -> None:
    from zeroops.cli import main

    common = ["sweep", str(SUITE), "--seeds", str(len(SEEDS)), "-q"]
    assert main([*common, "--workers", "0", "--out", str(tmp_path / "here")]) == 0
    t0 = time.perf_counter()
    assert main([*common, "--scheduler", scheduler, "--out", str(tmp_path / "remote")]) == 0
    assert time.perf_counter() - t0 < 60
    here, remote = _rows(tmp_path / "here" / "sweep.csv"), _rows(tmp_path / "remote" / "sweep.csv")
    assert len(here) == 2 * len(SEEDS) and here == remote
    assert (tmp_path / "here" / "sweep-summary.csv").read_text() == (tmp_path / "remote" / "sweep-summary.csv").read_text()
    workers = pd.read_csv(tmp_path / "remote" / "sweep.csv")["worker"]
    assert str(os.getpid()) not in {w.rsplit(":", 1)[1] for w in workers}  # it really ran elsewhere


def test_a_worker_killed_mid_sweep_loses_no_run_and_counts_none_twice(scheduler: str, tmp_path: Path) -> None:
    from scenarios.sweep import execute
    from tests.sweeps.faulty import kill_once

    jobs = tiny_jobs(SEEDS)
    victim = jobs[1].key
    marker = tmp_path / "killed"
    done: list[object] = []
    with distributed.Client(scheduler, timeout=30, set_as_default=False) as client:
        out = execute(jobs, client, task=functools.partial(kill_once, str(marker), victim), progress=done.append)
    assert marker.exists(), "the victim's worker was never killed"
    assert not out.failed and sorted(out.rows) == sorted(j.key for j in jobs) and len(done) == len(jobs)
    assert out.rows[victim]["worker"].rsplit(":", 1)[1] != marker.read_text()  # rerun by another process
    ref = reference(SEEDS)
    assert {k: metric_text(v) for k, v in out.rows.items()} == {k: metric_text(v) for k, v in ref.items()}


def test_a_local_cluster_gives_the_same_rows(tmp_path: Path) -> None:
    from zeroops.cli import main

    common = ["sweep", str(SUITE), "--seeds", "1", "--first-seed", "3", "-q"]
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "lc")]) == 0
    assert main([*common, "--workers", "0", "--out", str(tmp_path / "here")]) == 0
    lc, here = _rows(tmp_path / "lc" / "sweep.csv"), _rows(tmp_path / "here" / "sweep.csv")
    assert len(lc) == 2 and lc == here
