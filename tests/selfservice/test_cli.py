"""``zeroops request``: submit into a live controller's journal, list it, show a decision from an audit trail;
policy files with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.selfservice import PolicyError, load_policy
from zeroops.cli import main


def test_submit_and_list_through_a_live_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "live.yaml"
    cfg.write_text("cloud: nowhere\n")
    state = str(tmp_path / "state")
    assert main(["request", "submit", "vm_provision", "--project", "shop", "--param", "cpus=2", "--param",
                 "memory_gb=4", "--param", "count=2", "--live", str(cfg), "--state-dir", state]) == 0
    rid = capsys.readouterr().out.strip()
    assert rid.startswith("req-")
    assert main(["request", "list", "--live", str(cfg), "--state-dir", state, "--json"]) == 0
    out = capsys.readouterr().out
    assert rid in out and '"cpus": 2' in out and '"status": "open"' in out
    assert main(["request", "submit", "vm_provision", "--project", "shop", "--param", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_show_reads_the_decision_and_rule_from_an_audit_trail(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.base import Observation
    from control.compose import compose
    from engines.selfservice import SelfService
    from tests.selfservice.kit import fake_world

    w = fake_world()
    plane = compose(w, {"name": "x", "engines": []}, audit_path=tmp_path / "audit.db")
    eng = SelfService()
    rid = w.submit_request("shop", "vm_provision", {"flavor": "small", "count": 60})
    obs = Observation(w, w.now())
    for a in eng.step(w.now(), obs):
        plane.choke.submit(w.now(), eng.name, a, obs)
    plane.close()
    assert main(["request", "show", rid, "--audit", str(tmp_path / "audit.db")]) == 0
    out = capsys.readouterr().out
    assert "verdict refuse" in out and "rule hard-limit:max_vms" in out
    assert main(["request", "show", "req-none", "--audit", str(tmp_path / "audit.db")]) == 2


def test_policy_file_errors_name_file_field_and_allowed(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("auto: {max_vms: 3}\nbudget_headroom: 0.2\n")
    pol = load_policy(p)
    assert pol.auto.max_vms == 3 and pol.auto.max_vcpus == 16 and pol.budget_headroom == 0.2
    p.write_text("auto: {max_vms: 0}\nheadroom: 1\n")
    with pytest.raises(PolicyError) as e:
        load_policy(p)
    msg = str(e.value)
    assert f"{p}: auto.max_vms" in msg and "ge 1" in msg and "headroom" in msg and "budget_headroom" in msg
    p.write_text("auto: {max_vms: 80}\n")
    with pytest.raises(PolicyError, match="auto.max_vms.*at most the hard limit"):
        load_policy(p)
