"""``zeroops forecast``: every row written with its causal forecast and interval, accuracy printed, one-line errors
(exit 2) for bad input."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pytest

from zeroops.cli import main as zeroops
from zeroops.forecast_cli import parse_duration


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def series_csv(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    rows = ["timestamp,value"]
    for i in range(n):
        ts = f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z" if i < 100 else f"{1767571200 + i * 60}"
        v = "" if i % 40 == 13 else f"{100 + 20 * np.sin(i / 30) + rng.normal(0, 2):.3f}"
        rows.append(f"{ts},{v}")
    return write(path, "\n".join(rows) + "\n")


def test_writes_every_row_with_forecast_interval_and_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = series_csv(tmp_path / "rps.csv")
    out = tmp_path / "fc.csv"
    assert zeroops(["forecast", str(src), "--horizon", "15m", "--out", str(out)]) == 0
    got = list(csv.DictReader(out.open()))
    assert len(got) == 300 and list(got[0]) == ["timestamp", "value", "forecast", "lo", "hi", "target"]
    assert got[0]["timestamp"] == "2026-01-05T00:00:00Z" and got[13]["value"] == ""
    f = np.array([float(r["forecast"]) for r in got])
    lo, hi = np.array([float(r["lo"]) for r in got]), np.array([float(r["hi"]) for r in got])
    assert np.all(lo <= f) and np.all(f <= hi)
    assert got[-15]["target"] == "" and got[-16]["target"] != ""  # the window 15 minutes on must be in the file
    y = np.array([float(r["target"]) for r in got[50:-20]])
    assert np.mean(np.abs(f[50:-20] - y) <= 0.1 * y) > 0.8
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "300 rows" in line and "MAPE" in line and "MASE" in line and "coverage" in line


def test_the_forecast_of_a_row_does_not_depend_on_later_rows(tmp_path: Path) -> None:
    full = series_csv(tmp_path / "full.csv", 300)
    head = write(tmp_path / "head.csv", "\n".join(full.read_text().splitlines()[:201]) + "\n")
    for src, out in ((full, tmp_path / "a.csv"), (head, tmp_path / "b.csv")):
        assert zeroops(["forecast", str(src), "--model", "seasonal", "--out", str(out)]) == 0
    a = [(r["forecast"], r["lo"], r["hi"]) for r in csv.DictReader((tmp_path / "a.csv").open())][:200]
    b = [(r["forecast"], r["lo"], r["hi"]) for r in csv.DictReader((tmp_path / "b.csv").open())]
    assert a == b


@pytest.mark.parametrize("model", ["persistence", "snaive", "seasonal", "ensemble"])
def test_every_model_runs_to_stdout(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = series_csv(tmp_path / "s.csv", 120)
    assert zeroops(["forecast", str(src), "--model", model, "--horizon", "900"]) == 0
    cap = capsys.readouterr()
    assert cap.out.count("\n") == 121 and f"model {model}" in cap.err


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("time,v\n1,2\n", "missing columns timestamp, value"),
    ("timestamp,value\n", "no data rows"),
    ("timestamp,value\n1767571200,1\nyesterday,2\n", "line 3: unparsable timestamp 'yesterday'"),
    ("timestamp,value\n1767571200,1\n1767571260,lots\n", "line 3: value 'lots' is not a number"),
    ("timestamp,value\n1767571260,1\n1767571200,2\n", "line 3: timestamp '1767571200' is earlier"),
])
def test_bad_input_exits_2_with_one_line_naming_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               text: str, message: str) -> None:
    src = write(tmp_path / "bad.csv", text)
    assert zeroops(["forecast", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(src) in err and message in err


def test_a_missing_file_and_a_bad_horizon_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert zeroops(["forecast", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        zeroops(["forecast", str(series_csv(tmp_path / "s.csv", 10)), "--horizon", "soon"])
    assert e.value.code == 2
    assert "'soon' is not a positive duration" in capsys.readouterr().err


def test_durations() -> None:
    assert parse_duration("900") == 900 and parse_duration("15m") == 900 and parse_duration("1h") == 3600
    assert parse_duration("1.5h") == 5400 and parse_duration("2d") == 172800
    for bad in ("0", "-5m", "15 minutes", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)
