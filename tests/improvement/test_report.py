"""The weekly improvement report and its CLI, on a hand-made run folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from zeroops.cli import main

COLS = ["seq", "at", "engine", "kind", "target", "params", "reason", "confidence", "incident", "verdict", "rule",
        "outcome", "detail", "server_ids", "error", "evidence", "alternatives"]


def _run(tmp: Path) -> Path:
    run = tmp / "releases-week" / "ci"
    run.mkdir(parents=True)
    exp = {"version": "exp1-api", "service": "api", "decision": "winner", "effect": -0.2, "ci": [-0.25, -0.15],
           "confidence": 0.95, "p": 0.001, "n": 40, "started": 3600.0, "service_cost_per_hour": 2.0}
    rows = [
        (3600, "deploy", "api", {"improvement": "experiment_start", "version": "exp1-api"}),
        (7200, "deploy", "api", {"improvement": "canary_promote", "version": "exp1-api", "to": 0.5,
                                 "experiment": exp}),
        (9000, "deploy", "api", {"improvement": "canary_promote", "version": "exp1-api", "to": 1.0,
                                 "experiment": exp}),
        (20000, "rollback_deploy", "db", {"improvement": "canary_rollback", "version": "v3", "fraction": 0.05,
                                          "detected_after_s": 240.0,
                                          "comparisons": [{"metric": "error_ratio", "regression": True}]}),
        (8 * 86400, "deploy", "db", {"improvement": "canary_promote", "version": "v4", "to": 1.0}),
        (100, "create_server", "api", {"cpu_util": 0.9}),
    ]
    with (run / "actions.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, COLS)
        w.writeheader()
        for k, (at, kind, target, ev) in enumerate(rows):
            w.writerow({"seq": k, "at": at, "engine": "continuous_improvement", "kind": kind, "target": target,
                        "outcome": "executed", "evidence": json.dumps(ev), "reason": "r"})
    (run / "result.json").write_text(json.dumps({"metrics": {"releases_shipped": 12, "bad_releases_reaching_full": 0,
                                                             "change_success_rate": 1.0}}))
    return run


def test_report_has_weeks_experiments_and_regressions(tmp_path: Path) -> None:
    from reports.improvement_report import report

    _run(tmp_path)
    text = report(tmp_path)
    assert "### Week 1" in text and "### Week 2" in text
    assert "| exp1-api | api | winner | -20.0% | [-25.0%, -15.0%] (95%)" in text
    assert "regressions caught (rolled back): 1" in text and "| v3 | db |" in text and "error_ratio" in text
    assert "estimated savings of the winners: 67.20 per week" in text  # 0.2 × 2.0/h × 168 h
    assert "rollout success rate (promoted / promoted or rolled back): 50%" in text
    assert "| bad_releases_reaching_full | 0 |" in text


def test_cli_report_and_bad_input(tmp_path: Path, capsys: object) -> None:
    run = _run(tmp_path)
    out = tmp_path / "report.md"
    assert main(["improvement", "report", str(run), "-o", str(out)]) == 0
    assert out.read_text().startswith("# Continuous improvement report")
    assert main(["improvement", "report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "nope: no such file or folder" in err
