"""``zeroops suite --jobs N`` runs scenarios in worker processes and gives the sequential path's results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "sweeps" / "suite" / "tiny-crash.yaml"


def _suite(tmp: Path, jobs: int) -> dict[str, object]:
    out = tmp / f"out-{jobs}"
    p = subprocess.run([sys.executable, "-m", "zeroops.cli", "suite", str(tmp / "suite"), "--out", str(out), "-q",
                        "--jobs", str(jobs)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return {"summary": _without_wall(summary), "table": p.stdout,
            "actions": sorted((x.relative_to(out).as_posix(), x.read_text()) for x in out.glob("*/*/actions.csv"))}


def _without_wall(x: object) -> object:
    if isinstance(x, dict):
        return {k: _without_wall(v) for k, v in x.items() if k not in ("wall_s", "realtime_factor")}
    if isinstance(x, list):
        return [_without_wall(v) for v in x]
    return x


def test_two_processes_give_the_sequential_results(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for seed, name in ((1, "tiny-a"), (2, "tiny-b")):
        text = TINY.read_text().replace("name: tiny-crash", f"name: {name}").replace("seed: 1", f"seed: {seed}")
        (suite / f"{name}.yaml").write_text(text)
    one, two = _suite(tmp_path, 1), _suite(tmp_path, 2)
    assert one["summary"] == two["summary"]
    assert one["actions"] == two["actions"] and len(one["actions"]) == 4  # 2 scenarios x static, reactive
    shutil.rmtree(tmp_path / "out-1")


def test_jobs_must_be_a_positive_whole_number(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "zeroops.cli", "suite", str(TINY.parent), "--jobs", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--jobs: must be at least 1, got 0" in p.stderr, p.stderr


def test_several_folders_and_files_make_one_suite(tmp_path: Path) -> None:
    for folder, seed, name in (("a", 1, "tiny-a"), ("b", 2, "tiny-b")):
        (tmp_path / folder).mkdir()
        text = TINY.read_text().replace("name: tiny-crash", f"name: {name}").replace("seed: 1", f"seed: {seed}")
        (tmp_path / folder / f"{name}.yaml").write_text(text)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "zeroops.cli", "suite", str(tmp_path / "a"), str(tmp_path / "b" / "tiny-b.yaml"),
                        "--out", str(out), "-q", "--jobs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    runs = [(r["scenario"], r["engines"]) for r in json.loads((out / "summary.json").read_text())["runs"]]
    assert runs == [("tiny-a", "static"), ("tiny-a", "reactive"), ("tiny-b", "static"), ("tiny-b", "reactive")]
    bad = subprocess.run([sys.executable, "-m", "zeroops.cli", "suite", str(tmp_path / "a"), str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nope: neither a folder of scenario files nor a scenario file" in bad.stderr
