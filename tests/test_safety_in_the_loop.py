"""The safety gate sits at the choke point of every engine set the runner builds."""

from __future__ import annotations

from pathlib import Path

from control.audit import verify
from control.safety import SafetyGate
from scenarios.runner import run_scenario
from tests.builders import make_scenario


def test_every_engine_set_acts_through_the_safety_gate_and_the_audit_trail(tmp_path: Path) -> None:
    scn = make_scenario(duration=1800, faults=[{"type": "server_crash", "at": 300, "service": "api"}])
    for engines in ("static", "reactive"):
        db = tmp_path / engines / "audit.db"
        r = run_scenario(scn, engines, audit_path=db)
        assert all(rec.verdict.rule for rec in r.records), "every record carries the gate's rule"
        report = verify(db)
        assert report.ok and report.records == len(r.records)
    assert any(rec.outcome == "executed" for rec in r.records)


def test_stateless_replicas_are_not_data_but_stateful_servers_are() -> None:
    # 1 GiB of data may be deleted automatically: deleting api replicas (stateless) is fine,
    # deleting a db server (stateful, 160 GB disk) needs approval
    scn = make_scenario(duration=900, safety={"MaxDataDeleted": "1GB"}, approvers={"count": 0}, services=[
        {"name": "api", "project": "p", "flavor": "small", "servers": 8, "capacity_per_vcpu": 50,
         "traffic": {"base": 50}},
        {"name": "db", "project": "p", "flavor": "large", "servers": 4, "stateful": True,
         "traffic": {"base": 10}}])
    r = run_scenario(scn, "reactive")
    deletes = [rec for rec in r.records if rec.kind == "delete_server"]
    api = [rec for rec in deletes if r.world.svc_names[r.world.svc[int(rec.target[4:])]] == "api"]
    db = [rec for rec in deletes if r.world.svc_names[r.world.svc[int(rec.target[4:])]] == "db"]
    assert any(rec.outcome == "executed" for rec in api)
    assert not any(rec.verdict.rule == "max-data-deleted" for rec in api)
    assert db and not any(rec.outcome == "executed" for rec in db)
    assert any(rec.outcome == "proposed" and rec.verdict.rule == "max-data-deleted" for rec in db)


def test_a_gate_can_be_swapped_in_for_tests() -> None:
    class DenyAll:
        def review(self, now, engine, action, obs):  # type: ignore[no-untyped-def]
            from control.runtime import Verdict

            return Verdict("deny", rule="deny-all")

        def executed(self, now, engine, action, result):  # type: ignore[no-untyped-def]
            return None

    scn = make_scenario(duration=900, faults=[{"type": "server_crash", "at": 100, "service": "api"}])
    r = run_scenario(scn, "reactive", gate=DenyAll())
    assert r.records and all(rec.outcome == "denied" for rec in r.records)
    assert isinstance(SafetyGate(), SafetyGate)
