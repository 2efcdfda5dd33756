"""``zeroops runbooks list|show|validate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.runbooks import BUILTIN
from zeroops.cli import main


def test_list_shows_every_runbook_with_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbooks", "list"]) == 0
    out = capsys.readouterr().out
    assert "server-crash-reboot" in out and "reboot_server" in out and "active_servers >= before" in out
    assert "network-partition-drain-zone" in out and "set_lb_weights -> create_server -> set_lb_weights -> notify" in out


def test_show_prints_one_runbook_and_an_unknown_name_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbooks", "show", "bad-deploy-rollback"]) == 0
    out = capsys.readouterr().out
    assert "rollback_deploy" in out and "bad-deploy.yaml" in out
    assert main(["runbooks", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no runbook 'nope'" in err and "server-crash-reboot" in err


def test_validate_the_library_and_a_users_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbooks", "validate", str(BUILTIN)]) == 0
    assert "runbook(s) valid" in capsys.readouterr().out
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nfault_classes: [oops]\nsteps:\n  - {action: reboot, params: {}}\n")
    assert main(["runbooks", "validate", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{bad}: fault_classes[0]") or lines[0].startswith(f"{bad}: fault_classes")
    assert "unknown fault class 'oops'" in lines[0] and "server_crash" in lines[0]
    assert lines[1].startswith(f"{bad}: steps[0].action") and "reboot_server" in lines[1]
    assert main(["runbooks", "validate", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_broken_user_folder_is_exit_2_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yaml").write_text("- just\n- strings\n")
    assert main(["runbooks", "list", "--dir", str(tmp_path)]) == 2
    assert "a runbook must be a mapping" in capsys.readouterr().err
