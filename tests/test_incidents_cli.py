"""``zeroops incidents list|show``, ``zeroops postmortem`` and ``decisions show`` on real run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_postmortem import out  # noqa: F401 - the module fixture: two short runs written to a folder
from zeroops.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    o = capsys.readouterr()
    return rc, o.out, o.err


def test_list_shows_every_incident_with_its_figures(out: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    rc, text, _ = run(capsys, "incidents", "list", str(out))
    assert rc == 0
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "TYPE"]
    for engines in ("reactive", "responder"):
        res = json.loads((out / "pm" / engines / "result.json").read_text())
        for i in res["incidents"]:
            row = next(x.split() for x in lines if x.startswith(f"pm/{engines} ") and f" {i['id']} " in x)
            assert row[3] == f"{i['true_severity']}/{i['declared_severity'] or '-'}"
            assert float(row[4]) == pytest.approx(i["start"], abs=0.05) and row[7] == i["resolved_by"]
            assert float(row[6]) == pytest.approx(i["ttr_s"], abs=0.05)
            assert row[8] == (str(i["root_cause_rank"]) if i["root_cause_rank"] else "-")
    assert any("fp-1" in x and "false declaration" in x for x in lines)
    rc, text, _ = run(capsys, "incidents", "list", str(out), "--engines", "reactive")
    assert rc == 0 and "pm/responder" not in text and "2 incident(s) in 1 run(s)" in text


def test_show_and_postmortem(out: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # noqa: F811
    rc, text, _ = run(capsys, "incidents", "show", "inc-1", str(out))  # a declared id finds its incident
    assert rc == 0 and text.startswith("Incident F001-server_crash  (pm/responder)")
    assert "root_cause_rank:      1" in text and "Timeline:" in text and "Onset" in text
    dest = tmp_path / "pm.md"
    rc, text, _ = run(capsys, "postmortem", "F001-server_crash", str(out), "--engines", "reactive", "--out", str(dest))
    assert rc == 0 and dest.read_text() == (out / "pm/reactive/postmortems/F001-server_crash.md").read_text()
    rc, text, _ = run(capsys, "postmortem", "pm/responder/fp-1", str(out))
    assert rc == 0 and text.startswith("# Post-mortem fp-1: false incident")


def test_errors_are_one_line_exit_2(out: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # noqa: F811
    rc, _, err = run(capsys, "incidents", "list", str(tmp_path / "nope"))
    assert rc == 2 and err.startswith("error: ") and "no such results folder" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "incidents", "show", "F001-server-crash", str(out))
    assert rc == 2 and "close ids: F001-server_crash" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "postmortem", "F001-server_crash", str(out))
    assert rc == 2 and "is in 2 runs" in err and "pm/reactive/F001-server_crash" in err
    rc, _, err = run(capsys, "incidents", "list", str(out), "--scenario", "other")
    assert rc == 2 and "it holds: pm/reactive, pm/responder" in err
    rc, _, err = run(capsys, "incidents", "list", "--db", str(tmp_path / "audit.db"))
    assert rc == 2 and "no such audit database" in err


def test_live_mode_and_decisions_show(out: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # noqa: F811
    from control.audit import AuditReader

    db = out / "pm" / "responder" / "audit.db"
    rc, text, _ = run(capsys, "incidents", "list", "--db", str(db), "--journal", str(tmp_path / "missing.sqlite"))
    assert rc == 2
    rc, text, _ = run(capsys, "incidents", "list", "--db", str(db))
    assert rc == 0 and {"fp-1", "inc-1", "inc-2"} <= {x.split()[0] for x in text.splitlines()[1:-1]}
    rc, text, _ = run(capsys, "postmortem", "inc-1", "--db", str(db))
    assert rc == 0 and "unknown (live: no ground truth)" in text
    reboot = next(e for e in AuditReader(db).list() if e.body["kind"] == "reboot_server"
                  and e.body["engine"] == "test-responder")
    rc, text, _ = run(capsys, "decisions", "show", str(reboot.seq), "--db", str(db))
    assert rc == 0
    assert "  expected:      restores one api server" in text
    assert "alternatives:  migrate_server, create_server" in text and "confidence:    0.8" in text
    assert "expected_impact" not in text.split("evidence:")[1].splitlines()[0]
