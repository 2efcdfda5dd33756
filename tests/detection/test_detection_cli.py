"""``zeroops detect``: every row written, clear one-line errors (exit 2) for bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from zeroops.cli import main as zeroops


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_writes_every_row_with_score_and_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    rows = ["timestamp,value"]
    for i in range(400):
        v = 10 + rng.normal(0, 0.5)
        if i == 300:
            v += 10
        ts = f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z" if i < 200 else f"{1767571200 + i * 60}"
        rows.append(f"{ts},{'' if i % 50 == 7 else ('nan' if i == 100 else f'{v:.3f}')}")
    src = write(tmp_path / "cpu.csv", "\n".join(rows) + "\n")
    out = tmp_path / "scored.csv"
    assert zeroops(["detect", str(src), "--out", str(out)]) == 0
    got = list(csv.DictReader(out.open()))
    assert len(got) == 400
    assert list(got[0]) == ["timestamp", "value", "score", "detected"]
    assert got[7]["value"] == "" and got[7]["score"] == "0.0000" and got[100]["score"] == "0.0000"
    assert got[300]["detected"] == "1"
    assert sum(int(r["detected"]) for r in got) <= 3
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "400 rows" in line and "alarms" in line


def test_stdout_output_and_method_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "e.csv", "timestamp,value\n" + "".join(f"{i * 60},0.0\n" for i in range(100)))
    assert zeroops(["detect", str(src), "--method", "burnrate", "--slo", "0.99", "--threshold", "0.7"]) == 0
    cap = capsys.readouterr()
    assert cap.out.count("\n") == 101 and "method burnrate" in cap.err


@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty file"),
    ("time,val\n1,2\n", "missing columns timestamp, value"),
    ("timestamp,reading\n1,2\n", "missing column value"),
    ("timestamp,value\n", "no data rows"),
    ("timestamp,value\n1,2\nyesterday,3\n", "line 3: unparsable timestamp 'yesterday'"),
    ("timestamp,value\n100,2\n200,3\n150,4\n", "line 4: timestamp '150' is earlier than the previous row's '200'"),
    ("timestamp,value\n100,2\n200,abc\n", "line 3: value 'abc' is not a number"),
])
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                 needle: str) -> None:
    src = write(tmp_path / "bad.csv", text)
    assert zeroops(["detect", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(src) in err and needle in err, err


def test_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert zeroops(["detect", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unwritable_output_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "ok.csv", "timestamp,value\n1,2\n2,3\n")
    assert zeroops(["detect", str(src), "--out", str(tmp_path / "no" / "such" / "dir.csv")]) == 2
    assert "cannot write the output" in capsys.readouterr().err
