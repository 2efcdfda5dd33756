"""Reports: plots and report.md from a results folder written like `zeroops suite` does."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from reports.report import ReportError, build_report
from scenarios.results import write_run, write_summary
from scenarios.runner import check_targets, compare_to_static, run_scenario
from tests.builders import make_scenario
from zeroops.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    scn = make_scenario(duration=1200, faults=[{"type": "server_crash", "at": 300, "service": "api"}],
                        targets={"availability": {"min": 0.9}})
    runs = [run_scenario(scn, e) for e in ("static", "reactive")]
    compare_to_static(runs)
    for r in runs:
        check_targets(r)
        write_run(r, out)
    write_summary(runs, out)
    return out


def _assert_image(path: Path) -> None:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


def test_build_report_writes_plots_and_markdown(results: Path) -> None:
    report = build_report(results)
    assert report == results / "report.md"
    text = report.read_text()
    for png in (results / "plots" / "small.png", results / "plots" / "summary.png"):
        _assert_image(png)
        assert f"]({png.relative_to(results).as_posix()})" in text
    assert "| small | static |" in text and "| small | reactive |" in text
    assert "availability" in text


def test_cli_report(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(results)]) == 0
    assert "report.md" in capsys.readouterr().out


def test_report_of_a_folder_without_results_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="summary.json"):
        build_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
