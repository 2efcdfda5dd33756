"""The zeroops command line: outputs, tables and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.builders import scenario_dict
from zeroops.cli import main


def write(tmp_path: Path, name: str = "s.yaml", **overrides: object) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(scenario_dict(duration=600, targets={"availability": {"min": 0.9}}, **overrides)))
    return p


def test_run_writes_results_and_prints_a_table(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path)), "--out", str(out), "-q"]) == 0
    table = capsys.readouterr().out
    assert "small" in table and "static" in table and "reactive" in table
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema_version"] == 2
    assert {r["engines"] for r in summary["runs"]} == {"static", "reactive"}
    run = json.loads((out / "small" / "reactive" / "result.json").read_text())
    assert run["targets"]["availability"]["status"] == "met"
    for f in ("actions.csv", "incidents.csv", "timeseries.csv"):
        assert (out / "small" / "reactive" / f).stat().st_size > 0
    assert (out / "summary.csv").read_text().startswith("scenario,engines,seed")


def test_engines_and_seed_flags(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path)), "--engines", "static", "--seed", "9", "--out", str(out), "-q"]) == 0
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [(r["engines"], r["seed"]) for r in runs] == [("static", 9)]


def test_strict_exits_1_on_a_missed_target(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(duration=300, targets={"cost": {"max": 0}})))
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "-q"]) == 0
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "-q", "--strict"]) == 1


def test_invalid_input_exits_2_with_a_clear_message(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path, "bad.yaml", flavors="none")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "flavors" in err and "Traceback" not in err
    assert main(["run", str(write(tmp_path)), "--engines", "magic", "--out", str(tmp_path / "o"), "-q"]) == 2
    assert main(["validate", str(bad)]) == 2
    assert main(["suite", str(tmp_path / "missing")]) == 2


def test_validate_list_and_schema(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(write(tmp_path))]) == 0
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "product-launch" in listing and "az-outage" in listing
    assert main(["schema", "-o", str(tmp_path / "schema.json")]) == 0
    assert json.loads((tmp_path / "schema.json").read_text())["title"] == "zeroops scenario"


def test_results_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(duration=1800, faults=[
        {"type": "server_crash", "at": 300, "service": "db"}, {"type": "bad_deploy", "at": 600, "service": "api"}])))
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"o{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "zeroops.cli", "run", str(p), "--out", str(out), "-q"], check=True,
                       env=env, capture_output=True)
        outs.append((json.loads((out / "summary.json").read_text()),
                     (out / "small" / "reactive" / "actions.csv").read_text()))
    (a, acts_a), (b, acts_b) = outs
    assert [r["metrics"] for r in a["runs"]] == [r["metrics"] for r in b["runs"]]
    assert acts_a == acts_b
