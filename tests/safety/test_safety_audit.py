"""The audit trail: what a record holds, what "committed" means, tamper detection and crash survival."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from safety_fakes import FakeWorld

from adapters.base import CreateServer, Notify, Observation
from control.audit import AuditError, AuditLog, AuditReader, verify
from control.runtime import ChokePoint
from control.safety import SafetyConfig, SafetyGate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and the writer processes it starts) signs with its own key, never the real ~/.config one."""
    key = tmp_path / "keys" / "audit-ed25519.key"
    monkeypatch.setenv("ZEROOPS_AUDIT_KEY", str(key))
    monkeypatch.delenv("ZEROOPS_AUDIT_PUBLIC_KEY", raising=False)
    return key


def fill(path: Path, n: int = 10, **kw: object) -> AuditLog:
    log = AuditLog(path, **kw)  # type: ignore[arg-type]
    world = FakeWorld()
    choke = ChokePoint(world, SafetyGate(SafetyConfig(require_approval_above=0.1)), log)
    for i in range(n):
        world.t = float(i)
        action = (CreateServer(service="web", reason="cpu high", confidence=0.8, evidence={"cpu": 0.91},
                               alternatives=("wait", "resize"), incident=f"inc-{i}") if i % 2 else
                  Notify(component="web", message=f"m{i}"))
        choke.submit(float(i), "scaler", action, Observation(world, float(i)))
    return log


def tamper(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS records_no_update")
    db.execute("DROP TRIGGER IF EXISTS records_no_delete")
    db.execute(sql, args)
    db.commit()
    db.close()


def test_record_holds_the_decision(tmp_path: Path) -> None:
    log = fill(tmp_path / "a.db", 4)
    log.close()
    r = AuditReader(tmp_path / "a.db")
    e = r.get(2)
    assert e is not None
    b = e.body
    assert b["engine"] == "scaler" and b["kind"] == "create_server" and b["outcome"] == "executed"
    assert b["action"]["evidence"] == {"cpu": 0.91} and b["action"]["confidence"] == 0.8
    assert b["action"]["alternatives"] == ["wait", "resize"] and b["action"]["incident"] == "inc-1"
    assert b["verdict"]["rule"] == "within-limits" and b["cost_per_hour"] == pytest.approx(0.05)
    assert b["result"]["ok"] and len(b["result"]["server_ids"]) == 1
    assert verify(tmp_path / "a.db").ok


def test_verdict_rule_and_figures_are_audited(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db", batch_size=1)
    world = FakeWorld()
    choke = ChokePoint(world, SafetyGate(SafetyConfig(require_approval_above=0.1)), log)
    rec = choke.submit(0.0, "e", CreateServer(service="web", flavor="large"), Observation(world, 0.0))
    assert rec.audit_id == 1 and rec.outcome == "proposed"
    b = log.reader().get(1).body  # type: ignore[union-attr]
    assert b["verdict"]["rule"] == "require-approval-above" and b["verdict"]["detail"]["limit"] == 0.1
    assert b["cost_per_hour"] is None and b["proposed_cost_per_hour"] == pytest.approx(1.6)
    log.close()


def test_committed_means_flushed_or_batch_full(tmp_path: Path) -> None:
    p = tmp_path / "a.db"
    log = AuditLog(p, batch_size=5, background=False)
    for i in range(4):
        log.append({"at": float(i), "engine": "e", "kind": "notify", "decision": "allow", "outcome": "executed"})
    assert log.committed_seq == 0 and AuditReader(p).count() == 0
    log.append({"at": 4.0, "engine": "e", "kind": "notify", "decision": "allow", "outcome": "executed"})
    assert log.committed_seq == 5 and AuditReader(p).count() == 5  # the batch filled inside append()
    log.append({"at": 5.0, "engine": "e", "kind": "notify", "decision": "allow", "outcome": "executed"})
    assert AuditReader(p).count() == 5
    assert log.flush() == 6 and AuditReader(p).count() == 6
    log.close()


def test_background_flusher_commits_within_the_interval(tmp_path: Path) -> None:
    p = tmp_path / "a.db"
    log = AuditLog(p, batch_size=1000, flush_interval=0.02)
    log.append({"at": 0.0, "engine": "e", "kind": "notify", "decision": "allow", "outcome": "executed"})
    deadline = time.monotonic() + 2.0
    while log.committed_seq < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.committed_seq == 1 and AuditReader(p).count() == 1
    log.close()


def test_one_writer_per_file_and_reopen_continues_the_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.db"
    log = fill(p, 5)
    with pytest.raises(AuditError, match="another process"):
        AuditLog(p)
    log.close()
    log2 = fill(p, 5)
    log2.close()
    rep = verify(p)
    assert rep.ok and rep.records == 10


def test_records_refuse_update_and_delete(tmp_path: Path) -> None:
    fill(tmp_path / "a.db", 3).close()
    db = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE records SET engine='x' WHERE seq=1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM records WHERE seq=1")


@pytest.mark.parametrize(
    ("sql", "args", "seq", "word"),
    [
        ("UPDATE records SET body=replace(body, '\"m4\"', '\"m5\"') WHERE seq=5", (), 5, "edited"),
        ("UPDATE records SET engine='intruder' WHERE seq=3", (), 3, "edited"),
        ("DELETE FROM records WHERE seq=4", (), 4, "removed"),
        ("DELETE FROM records WHERE seq IN (9, 10)", (), 9, "removed"),
    ],
)
def test_verify_names_the_tampered_record(tmp_path: Path, sql: str, args: tuple, seq: int, word: str) -> None:
    p = tmp_path / "a.db"
    fill(p, 10).close()
    assert verify(p).ok
    tamper(p, sql, *args)
    rep = verify(p)
    assert not rep.ok
    assert any(f"{seq}" in m and word in m for m in rep.problems), rep.problems


def test_verify_detects_reordering(tmp_path: Path) -> None:
    p = tmp_path / "a.db"
    fill(p, 10).close()
    db = sqlite3.connect(p)
    rows = {r[0]: r[1:] for r in db.execute("SELECT seq, body, prev, hash FROM records WHERE seq IN (3, 4)")}
    db.close()
    tamper(p, "UPDATE records SET body=?, prev=?, hash=? WHERE seq=3", *rows[4])
    tamper(p, "UPDATE records SET body=?, prev=?, hash=? WHERE seq=4", *rows[3])
    rep = verify(p)
    assert any("record 3" in m and "reordered" in m for m in rep.problems), rep.problems
    assert any("record 4" in m and "reordered" in m for m in rep.problems), rep.problems


def test_verify_detects_a_rehashed_edit(tmp_path: Path) -> None:
    """An attacker who edits a record and recomputes its hash breaks the next link."""
    from control.audit import chain_hash

    p = tmp_path / "a.db"
    fill(p, 6).close()
    db = sqlite3.connect(p)
    body, prev = db.execute("SELECT body, prev FROM records WHERE seq=2").fetchone()
    db.close()
    body = body.replace('"scaler"', '"someone"')
    tamper(p, "UPDATE records SET body=?, engine='someone', hash=? WHERE seq=2", body, chain_hash(prev, body))
    rep = verify(p)
    assert any("record 3" in m and "record 2 was rewritten" in m for m in rep.problems), rep.problems


WRITER = textwrap.dedent("""
    import sys
    from control.audit import AuditLog
    log = AuditLog(sys.argv[1], batch_size=int(sys.argv[2]), background=False)
    i = 0
    while True:
        i += 1
        log.append({"at": float(i), "engine": "w", "kind": "notify", "decision": "allow",
                    "outcome": "executed", "pad": "x" * 200})
        if i % 37 == 0:
            print(log.flush(), flush=True)   # committed up to here
""")


@pytest.mark.parametrize("batch", [1, 64])
def test_committed_records_survive_sigkill(tmp_path: Path, batch: int) -> None:
    p = tmp_path / "crash.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(p), str(batch)], stdout=subprocess.PIPE, env=env,
                            text=True)
    committed = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        committed = int(line)
        if committed >= 1500:
            break
    proc.send_signal(signal.SIGKILL)  # mid-stream: records after the last flush are in flight
    proc.wait()
    rep = verify(p)
    assert rep.ok, rep.problems  # a checkpoint lagging the committed records is not tampering
    assert rep.records >= committed  # nothing committed is missing
    assert rep.signed and rep.signed_seq >= committed and not rep.closed  # flush() signs before it returns
    assert rep.unsigned == rep.records - rep.signed_seq
    seqs = [e.seq for e in AuditReader(p).list()]
    assert seqs == list(range(1, rep.records + 1))
    log = AuditLog(p)  # restart: the lock died with the process, the chain continues
    log.append({"at": 0.0, "engine": "w", "kind": "notify", "decision": "allow", "outcome": "executed"})
    log.close()
    rep2 = verify(p)
    assert rep2.ok and rep2.records == rep.records + 1 and rep2.unsigned == 0 and rep2.closed


def test_reader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no such audit database"):
        AuditReader(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(AuditError, match="junk.db"):
        AuditReader(junk)
    with pytest.raises(AuditError, match="junk.db"):
        AuditLog(junk)


def test_json_values_are_plain(tmp_path: Path) -> None:
    import numpy as np

    log = AuditLog(tmp_path / "a.db", batch_size=1)
    log.append({"at": 1.0, "engine": "e", "kind": "notify", "decision": "allow", "outcome": "executed",
                "x": np.float64(2.5), "arr": np.arange(3)})
    body = log.reader().get(1).body  # type: ignore[union-attr]
    assert body["x"] == 2.5 and body["arr"] == [0, 1, 2]
    assert json.loads(json.dumps(body)) == body
    log.close()
