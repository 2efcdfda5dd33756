"""``zeroops sweep`` in this process (--workers 0): the merged files, and one-line errors for bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest

from tests.sweeps.harness import SUITE, metric_text, reference
from zeroops.cli import main


def test_sweep_writes_one_row_per_run_and_the_merged_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["sweep", str(SUITE), "--seeds", "3", "--workers", "0", "--out", str(out), "-q"]) == 0
    runs = pd.read_csv(out / "sweep.csv")
    assert len(runs) == 6 and not runs.duplicated(["scenario", "engines", "seed"]).any()
    assert sorted(runs["seed"].unique()) == [1, 2, 3] and set(runs["engines"]) == {"static", "reactive"}
    doc = json.loads((out / "sweep.json").read_text())
    ref = reference([1, 2, 3])
    for r in doc["runs"]:  # the merged rows are the runs' own metrics, savings against static added
        key = next(k for k in ref if (k.scenario, k.engines, k.seed) == (r["scenario"], r["engines"], r["seed"]))
        assert r["mttr_s"] == ref[key]["metrics"]["mttr_s"] and r["cost"] == ref[key]["metrics"]["cost"]
    assert {r["cost_savings_raw"] is not None for r in doc["runs"] if r["engines"] == "reactive"} == {True}
    summary = pd.read_csv(out / "sweep-summary.csv", keep_default_na=False)
    cost = summary[(summary.metric == "cost") & (summary.engines == "reactive") & (summary.vs == "")].iloc[0]
    costs = runs[runs.engines == "reactive"]["cost"]
    assert cost["n"] == 3 and cost["mean"] == pytest.approx(costs.mean())
    assert float(cost["ci_low"]) < cost["mean"] < float(cost["ci_high"])
    diff = summary[(summary.metric == "cost") & (summary.engines == "reactive") & (summary.vs == "static")].iloc[0]
    static = runs[runs.engines == "static"].set_index("seed")["cost"]
    reactive = runs[runs.engines == "reactive"].set_index("seed")["cost"]
    assert diff["mean"] == pytest.approx((reactive - static).mean())
    avail = summary[(summary.metric == "availability") & (summary.vs == "")]
    assert set(avail["target"]) == {">= 0.99"}
    assert (avail["runs_met"].astype(int) + avail["runs_missed"].astype(int) == 3).all()
    text = capsys.readouterr().out
    assert "Δ vs static" in text and "6/6 runs" in text
    assert doc["sweep"]["interval"] == {"method": "student-t", "level": 0.95}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("args, expected", [
    (["sweep", "/nonexistent-suite"], "/nonexistent-suite: not a directory"),
    (["sweep", str(SUITE), "--scenarios", "nope"], "no scenario named 'nope'"),
    (["sweep", str(SUITE), "--engines", "nosuchset"], "unknown engine set 'nosuchset'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    code = main(["sweep", str(SUITE), "--seeds", "1", "--scheduler", address, "--connect-timeout", "1",
                 "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: --scheduler {address}: cannot reach the Dask scheduler")


def test_reference_rows_are_deterministic() -> None:
    a, b = reference([2]), reference([2])
    assert [metric_text(a[k]) for k in sorted(a)] == [metric_text(b[k]) for k in sorted(b)]


def test_a_failed_run_is_reported_with_its_key_and_the_others_kept() -> None:
    from scenarios.sweep import SweepError, execute, run_job
    from tests.sweeps.harness import tiny_jobs

    jobs = tiny_jobs([1, 2])

    def task(job):  # type: ignore[no-untyped-def]
        if job.key == jobs[0].key:
            raise RuntimeError("boom")
        return run_job(job)

    seen: list[object] = []
    out = execute(jobs, task=task, progress=seen.append)
    assert out.failed == {jobs[0].key: "RuntimeError: boom"}
    assert sorted(out.rows) == sorted(j.key for j in jobs[1:]) and len(seen) == len(jobs)
    with pytest.raises(SweepError, match="lists a run twice"):
        execute([jobs[0], jobs[0]])


def test_progress_lines_count_the_runs_when_stderr_is_not_a_terminal(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(SUITE), "--seeds", "1", "--workers", "0", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "2 runs on this process" in err
    assert [ln for ln in err.splitlines() if "runs done" in ln] == ["sweep: 1/2 runs done", "sweep: 2/2 runs done"]
