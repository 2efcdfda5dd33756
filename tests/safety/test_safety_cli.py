"""The safety and audit commands through ``zeroops.cli.main``: output, exit codes, no tracebacks."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pyotp
import pytest
from safety_fakes import FakeWorld

from adapters.base import CreateServer, Notify, Observation
from control.audit import AuditLog
from control.safety import SafetyConfig, SafetyKit
from zeroops.cli import main

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Path, Path]:
    """An audit trail with allowed, proposed and executed-after-approval decisions, and its safety state."""
    audit, state = tmp_path / "audit.db", tmp_path / "safety.db"
    world = FakeWorld()
    kit = SafetyKit.build(world, SafetyConfig(require_approval_above=0.1), state_path=state,
                          log=AuditLog(audit, batch_size=1))
    obs = Observation(world, 10.0)
    kit.choke.submit(10.0, "scaler", CreateServer(service="web", reason="cpu 91%", confidence=0.82,
                                                  evidence={"cpu_util": 0.91}, alternatives=("wait", "resize"),
                                                  incident="inc-7"), obs)
    kit.choke.submit(11.0, "scaler", CreateServer(service="web", flavor="large", reason="big"), obs)
    kit.choke.submit(12.0, "healer", Notify(component="db", message="slow"), obs)
    kit.close()
    return audit, state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_decisions_list_and_filters(dbs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    audit, _ = dbs
    rc, out, _ = run(capsys, "decisions", "list", "--db", str(audit))
    assert rc == 0 and "3 decision(s)" in out and "require-approval-above" in out
    rc, out, _ = run(capsys, "decisions", "list", "--db", str(audit), "--engine", "healer")
    assert rc == 0 and "1 decision(s)" in out and "notify" in out
    rc, out, _ = run(capsys, "decisions", "list", "--db", str(audit), "--since", "11")
    assert "2 decision(s)" in out
    rc, _, err = run(capsys, "decisions", "list", "--db", str(audit), "--since", "yesterday")
    assert rc == 2 and "--since: expected seconds or an ISO time" in err


def test_decisions_show_is_the_review_runbook(dbs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    audit, _ = dbs
    rc, out, _ = run(capsys, "decisions", "show", "1", "--db", str(audit))
    assert rc == 0
    for needle in ("incident:      inc-7", "confidence:    0.82", "alternatives:  wait, resize",
                   "verdict:       allow by rule within-limits", "outcome:       executed", "cost impact:   +0.05",
                   "evidence:      cpu_util=0.91"):
        assert needle in out, (needle, out)
    rc, out, _ = run(capsys, "decisions", "show", "2", "--db", str(audit))
    assert "needs 1 approver(s)" in out and "none executed (estimated +1.6 per hour)" in out
    rc, _, err = run(capsys, "decisions", "show", "99", "--db", str(audit))
    assert rc == 2 and "no decision 99" in err


def test_audit_verify_exit_codes(dbs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    audit, _ = dbs
    rc, out, _ = run(capsys, "audit", "verify", "--db", str(audit))
    assert rc == 0 and out.startswith("ok: 3 records")
    db = sqlite3.connect(audit)
    db.execute("DROP TRIGGER records_no_update")
    db.execute("UPDATE records SET body=replace(body, 'cpu 91%', 'cpu 19%') WHERE seq=1")
    db.commit()
    db.close()
    rc, out, _ = run(capsys, "audit", "verify", "--db", str(audit))
    assert rc == 1 and "TAMPERED: record 1: content does not match its hash (edited)" in out
    rc, _, err = run(capsys, "audit", "verify", "--db", str(audit.parent / "nope.db"))
    assert rc == 2 and "no such audit database" in err


def test_approvals_from_the_cli(dbs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, state = dbs
    rc, out, _ = run(capsys, "approvals", "list", "--state", str(state))
    assert rc == 0 and "1 proposal(s)" in out and "require-approval-above" in out
    rc, out, _ = run(capsys, "approvals", "approve", "1", "--by", "alice", "--state", str(state))
    assert rc == 0 and "proposal 1: approved (1/1 approvals)" in out
    rc, _, err = run(capsys, "approvals", "deny", "1", "--by", "bob", "--state", str(state))
    assert rc == 2 and "not pending" in err
    rc, _, err = run(capsys, "approvals", "approve", "7", "--by", "bob", "--state", str(state))
    assert rc == 2 and "no proposal #7" in err


def test_override_and_automation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "s.db")
    rc, out, _ = run(capsys, "override", "enroll", "--operator", "alice", "--state", state)
    assert rc == 0 and "otpauth://" in out
    secret = out.split("(shown once): ")[1].split()[0]
    rc, _, err = run(capsys, "override", "start", "--incident", "inc-1", "--operator", "alice",
                     "--justification", "runaway", "--code", "000000", "--state", state)
    assert rc == 2 and "MFA code rejected" in err
    code = pyotp.TOTP(secret).at(time.time())
    rc, out, _ = run(capsys, "override", "start", "--incident", "inc-1", "--operator", "alice",
                     "--justification", "runaway", "--code", code, "--for", "30m", "--state", state)
    assert rc == 0 and "EMERGENCY OVERRIDE" in out
    rc, out, _ = run(capsys, "automation", "status", "--state", state)
    assert "PAUSED (emergency override, incident inc-1)" in out
    rc, _, err = run(capsys, "automation", "disable", "--for", "soon", "--state", state)
    assert rc == 2 and "--for: invalid duration" in err
    rc, out, _ = run(capsys, "automation", "disable", "--for", "30m", "--state", state)
    assert rc == 0 and "automation disabled until" in out


def test_limits_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "s.db")
    f = tmp_path / "limits.yaml"
    f.write_text("profile: week3\nRequireApprovalAbove: 500\n")
    rc, out, _ = run(capsys, "limits", "check", str(f))
    assert rc == 0 and "RequireApprovalAbove: 500.0" in out and "MaxVMsAutoProvisioned: 100" in out
    rc, out, _ = run(capsys, "limits", "propose", str(f), "--by", "alice", "--justification", "tighten",
                     "--state", state)
    assert rc == 0 and "limit change #1 proposed" in out
    rc, out, _ = run(capsys, "limits", "approve", "1", "--by", "bob", "--state", state)
    assert "pending (1/2" in out
    rc, out, _ = run(capsys, "limits", "approve", "1", "--by", "carol", "--state", state)
    assert "applied (2/2" in out
    f.write_text("RequireApprovalAbove: cheap\n")
    rc, _, err = run(capsys, "limits", "check", str(f))
    assert rc == 2 and f"error: {f}: RequireApprovalAbove: Input should be a valid number" in err
