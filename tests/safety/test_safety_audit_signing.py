"""Signed checkpoints: an attacker who can write the audit database but does not hold the key is caught.

Each tampering kind is made the way an attacker with file access would make it (triggers dropped, hashes
recomputed, the head rewritten) and must be found by the Python API and by ``zeroops audit verify`` (exit 1,
the file named); an honest trail verifies with the public key alone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from control.audit import (
    GENESIS,
    AuditError,
    AuditKey,
    AuditLog,
    AuditReader,
    chain_hash,
    checkpoint_path,
    verify,
)
from zeroops.cli import main


@pytest.fixture(autouse=True)
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default signing key lives in this test's own directory, never in the real ~/.config."""
    key = tmp_path / "keys" / "audit-ed25519.key"
    monkeypatch.setenv("ZEROOPS_AUDIT_KEY", str(key))
    monkeypatch.delenv("ZEROOPS_AUDIT_PUBLIC_KEY", raising=False)
    return key


def body(i: int, **kw: object) -> dict[str, object]:
    return {"at": float(i), "engine": "scaler", "kind": "create_server", "target": f"web-{i}", "decision": "allow",
            "rule": "within-limits", "outcome": "executed", "cost_per_hour": 0.05 * i, "note": f"m{i}", **kw}


def trail(path: Path, n: int = 10, batch_size: int = 2, **kw: object) -> Path:
    """``n`` records, a checkpoint after every ``batch_size`` of them, closed cleanly."""
    log = AuditLog(path, batch_size=batch_size, background=False, **kw)  # type: ignore[arg-type]
    for i in range(1, n + 1):
        log.append(body(i))
    log.close()
    return path


def sql(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Write the database as an attacker would: the append-only triggers are no obstacle to file access."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS records_no_update")
    db.execute("DROP TRIGGER IF EXISTS records_no_delete")
    for s, args in statements:
        db.execute(s, args)
    db.commit()
    db.close()


def rehash(path: Path) -> None:
    """Recompute every record's prev and hash, and the head, from the bodies as they now are."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS records_no_update")
    prev, seq = GENESIS, 0
    for seq, text in db.execute("SELECT seq, body FROM records ORDER BY seq").fetchall():
        h = chain_hash(prev, text)
        db.execute("UPDATE records SET prev=?, hash=? WHERE seq=?", (prev, h, seq))
        prev = h
    db.execute("INSERT OR REPLACE INTO meta VALUES ('head_seq', ?), ('head_hash', ?)", (str(seq), prev))
    db.commit()
    db.close()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["audit", "verify", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def assert_caught(path: Path, capsys: pytest.CaptureFixture[str], words: tuple[str, ...], file: Path,
                  *argv: str) -> None:
    """Both the API and the CLI report the tampering, with these words, in this file."""
    opts = dict(zip(argv[::2], argv[1::2], strict=True))
    rep = verify(path, opts.get("--public-key"), anchors=[opts["--anchor"]] if "--anchor" in opts else ())
    assert not rep.ok
    hits = [(p, f) for p, f in zip(rep.problems, rep.files, strict=True) if all(w in p for w in words)]
    assert hits, rep.problems
    assert any(f == str(file) for _, f in hits), (hits, file)
    rc, out, _ = cli(capsys, "--db", str(path), *argv)
    assert rc == 1
    assert any(all(w in line for w in words) and f"[in {file}]" in line for line in out.splitlines()), out


# ------------------------------------------------------------------ honest
def test_an_untampered_trail_verifies_with_signed_checkpoints(tmp_path: Path, key_home: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    rep = verify(p)
    assert rep.ok and rep.records == 10 and rep.signed
    assert rep.signed_seq == 10 and rep.unsigned == 0 and rep.closed
    assert rep.checkpoints == 1 + 5 + 1  # genesis, one per commit of 2, the final one at close
    assert rep.trail and len(rep.trail) == 32
    assert oct(key_home.stat().st_mode & 0o777) == "0o600"
    assert Path(f"{key_home}.pub").is_file()
    rc, out, _ = cli(capsys, "--db", str(p))
    assert rc == 0 and out.startswith("ok: 10 records, chain intact")
    assert f"signed: trail {rep.trail}" in out and "covers all 10 records, closed cleanly" in out


def test_reopened_trail_continues_and_stays_verified(tmp_path: Path) -> None:
    p = trail(tmp_path / "a.db", 4)
    log = AuditLog(p, batch_size=1)
    log.append(body(5))
    log.close()
    rep = verify(p)
    assert rep.ok and rep.records == 5 and rep.closed


def test_verify_needs_only_the_public_key(tmp_path: Path, key_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    pub = tmp_path / "auditor.pub"
    shutil.copy(f"{key_home}.pub", pub)
    key_home.unlink()
    Path(f"{key_home}.pub").unlink()  # the auditor's machine: no key of any kind at the default place
    assert verify(p, pub).ok
    rc, out, _ = cli(capsys, "--db", str(p), "--public-key", str(pub))
    assert rc == 0 and "ok: 10 records" in out
    os.environ["ZEROOPS_AUDIT_PUBLIC_KEY"] = str(pub)
    try:
        rc, _, _ = cli(capsys, "--db", str(p))
    finally:
        del os.environ["ZEROOPS_AUDIT_PUBLIC_KEY"]
    assert rc == 0
    hexkey = tmp_path / "auditor.hex"
    hexkey.write_text(AuditReader(p).db.execute("SELECT value FROM meta WHERE key='public_key'").fetchone()[0])
    assert verify(p, hexkey).ok  # the raw key as 64 hex digits works too


def test_a_wrong_public_key_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    other = AuditKey.generate()
    other.save(tmp_path / "other.key")
    assert_caught(p, capsys, ("signed by key", other.id), checkpoint_path(p), "--public-key",
                  str(tmp_path / "other.key.pub"))


# --------------------------------------------------------------- tampering
def test_a_recomputed_chain_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    db = sqlite3.connect(p)
    text = db.execute("SELECT body FROM records WHERE seq=3").fetchone()[0]
    db.close()
    sql(p, ("UPDATE records SET body=?, engine='someone' WHERE seq=3", (text.replace('"scaler"', '"someone"'),)))
    rehash(p)
    assert verify(p, signed=False).ok  # the plain chain is fooled: every hash was recomputed
    assert_caught(p, capsys, ("records 3..4 rewritten", "signed at line"), p)


def test_a_truncated_tail_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, ("DELETE FROM records WHERE seq > 7", ()))
    rehash(p)  # the head now says 7
    assert verify(p, signed=False).ok
    assert_caught(p, capsys, ("records 8..10 missing", "tail truncated"), p)


def test_a_wiped_trail_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, ("DELETE FROM records", ()), ("DELETE FROM meta WHERE key IN ('head_seq', 'head_hash')", ()))
    assert verify(p, signed=False).ok  # what 'ok: 0 records' used to mean
    assert_caught(p, capsys, ("records 1..10 missing", "wiped"), p)


def test_a_wiped_identity_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, ("DELETE FROM records", ()), ("DELETE FROM meta", ()))
    assert_caught(p, capsys, ("no trail id",), p)


@pytest.mark.parametrize(("column", "value"), [
    ("cost", 99.0), ("cost", None), ("engine", "intruder"), ("kind", "notify"), ("target", "db-1"),
    ("outcome", "denied"), ("decision", "deny"), ("rule", "rate-limit"), ("at", 1e9),
])
def test_an_edited_column_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str,
                                    value: object) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, (f"UPDATE records SET {column}=? WHERE seq=4", (value,)))
    assert_caught(p, capsys, ("record 4", f"column '{column}'", "edited"), p)


def test_a_database_swapped_for_another_keys_trail_is_caught(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    other = AuditKey.generate()
    other.save(tmp_path / "other.key")
    q = trail(tmp_path / "b.db", key=other)
    shutil.copy(q, p)  # only the database: its own checkpoint log stays
    assert_caught(p, capsys, ("was created for key", other.id), p)
    assert_caught(p, capsys, ("signs trail", "swapped"), p)
    shutil.copy(checkpoint_path(q), checkpoint_path(p))  # and its checkpoint log too
    assert_caught(p, capsys, ("signed by key", other.id), checkpoint_path(p))


def test_a_database_swapped_for_another_trail_of_the_same_key_is_caught(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    q = trail(tmp_path / "b.db", 12)
    shutil.copy(q, p)
    assert_caught(p, capsys, ("signs trail", "swapped"), p)
    assert AuditReader(p).verify(checkpoints=checkpoint_path(q)).ok  # it is a valid trail, just not this one


def test_a_missing_checkpoint_log_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    checkpoint_path(p).unlink()
    assert_caught(p, capsys, ("checkpoint log missing",), checkpoint_path(p))


def test_a_forged_checkpoint_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    log = checkpoint_path(p)
    lines = log.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"seq":6', '"seq":5')
    log.write_text("".join(lines))
    assert_caught(p, capsys, ("line 4", "signature does not verify"), log)
    lines[3] = "garbage\n"
    log.write_text("".join(lines))
    assert_caught(p, capsys, ("line 4", "not a checkpoint"), log)


# ------------------------------------------------------------- crash lag
def test_records_after_the_last_checkpoint_are_not_tampering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A writer killed between a commit and its signature leaves committed records after the last checkpoint."""
    p = trail(tmp_path / "a.db")
    log = checkpoint_path(p)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3]) + lines[3][:40])  # signed up to record 4, then a write cut short
    rep = verify(p)
    assert rep.ok, rep.problems
    assert rep.signed_seq == 4 and rep.unsigned == 6 and not rep.closed
    assert any("incomplete last line" in n for n in rep.notes)
    rc, out, _ = cli(capsys, "--db", str(p))
    assert rc == 0 and "6 records after the last signed checkpoint, verified by chain only" in out
    writer = AuditLog(p, batch_size=1)  # the restarted writer checks the unsigned tail's chain and signs it
    writer.append(body(11))
    writer.close()
    rep = verify(p)
    assert rep.ok and rep.unsigned == 0 and rep.closed and not rep.notes


# ------------------------------------------------------- the writer's side
@pytest.mark.parametrize("attack", ["truncate", "rehash", "log-missing", "other-key"])
def test_the_writer_refuses_to_extend_a_tampered_trail(tmp_path: Path, attack: str) -> None:
    p = trail(tmp_path / "a.db")
    if attack == "truncate":
        sql(p, ("DELETE FROM records WHERE seq > 7", ()))
        rehash(p)
    elif attack == "rehash":
        sql(p, ("UPDATE records SET body=replace(body, '\"m9\"', '\"mX\"') WHERE seq=9", ()))
        rehash(p)
    elif attack == "log-missing":
        checkpoint_path(p).unlink()
    with pytest.raises(AuditError, match="refusing to extend|signed by key"):
        AuditLog(p, key=AuditKey.generate() if attack == "other-key" else None)


def test_a_new_trail_at_the_same_path_keeps_the_old_log(tmp_path: Path) -> None:
    p = trail(tmp_path / "a.db")
    old_trail = verify(p).trail
    for suffix in ("", "-wal", "-shm"):
        Path(f"{p}{suffix}").unlink(missing_ok=True)
    trail(p, 3)
    rep = verify(p)
    assert rep.ok and rep.records == 3 and rep.trail != old_trail
    kept = list(tmp_path.glob("a.db.checkpoints.replaced-*"))
    assert len(kept) == 1 and old_trail in kept[0].read_text()


def test_a_database_without_identity_is_not_extended(tmp_path: Path) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, ("DELETE FROM meta WHERE key='trail_id'", ()))
    with pytest.raises(AuditError, match="no trail id"):
        AuditLog(p)


# ------------------------------------------------------------ clear errors
def test_missing_database_or_key_is_a_clear_input_error(tmp_path: Path, key_home: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "--db", str(tmp_path / "nope.db"))
    assert rc == 2 and err.count("\n") == 1 and "nope.db: no such audit database" in err
    p = trail(tmp_path / "a.db")
    key_home.unlink()
    Path(f"{key_home}.pub").unlink()
    rc, _, err = cli(capsys, "--db", str(p))
    assert rc == 2 and err.count("\n") == 1 and "no public key" in err and "--public-key" in err
    rc, _, err = cli(capsys, "--db", str(p), "--public-key", str(tmp_path / "nope.pub"))
    assert rc == 2 and "nope.pub: no such public key file" in err
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    rc, _, err = cli(capsys, "--db", str(p), "--public-key", str(junk))
    assert rc == 2 and "junk.pub: not an Ed25519 public key" in err


def test_a_key_readable_by_others_is_refused(tmp_path: Path, key_home: Path) -> None:
    trail(tmp_path / "a.db", 1)
    key_home.chmod(0o644)
    with pytest.raises(AuditError, match="chmod 600"):
        AuditLog(tmp_path / "b.db")


def test_audit_key_command_shows_the_key(key_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "key"]) == 0
    out = capsys.readouterr().out
    assert str(key_home) in out and "key id:      ed25519:" in out and key_home.is_file()


def test_chain_only_checks_trails_made_before_signing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    sql(p, ("DELETE FROM meta WHERE key IN ('trail_id', 'key_id', 'public_key')", ()))
    checkpoint_path(p).unlink()  # what a trail written before signed checkpoints looks like
    rc, out, _ = cli(capsys, "--db", str(p))
    assert rc == 1 and "no trail id" in out
    rc, out, _ = cli(capsys, "--db", str(p), "--chain-only")
    assert rc == 0 and "ok: 10 records" in out and "signed checkpoints NOT checked" in out


def test_first_use_by_many_writers_at_once_makes_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "race" / "k"
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: AuditKey.load(path).id, range(16)))
    assert len(ids) == 1 and not [f for f in path.parent.iterdir() if f.name.endswith(".tmp")]


def test_checkpoints_of_another_trail_spliced_into_the_log_are_caught(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db")
    q = trail(tmp_path / "b.db", 12)
    with open(checkpoint_path(p), "a") as f:
        f.write(checkpoint_path(q).read_text().splitlines(keepends=True)[-1])  # b's seq-12 checkpoint
    assert_caught(p, capsys, ("sign trail", "spliced in"), checkpoint_path(p))


def test_an_anchor_catches_the_database_and_its_log_rolled_back_together(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = trail(tmp_path / "a.db", 6)
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(p, backup / "a.db")
    shutil.copy(checkpoint_path(p), backup / "a.db.checkpoints")
    log = AuditLog(p, batch_size=2, background=False)
    for i in range(7, 11):
        log.append(body(i))
    log.close()
    anchor = tmp_path / "safe" / "anchor"
    anchor.parent.mkdir()
    anchor.write_text(checkpoint_path(p).read_text().splitlines(keepends=True)[-1])  # what an auditor saved
    assert verify(p, anchors=[anchor]).ok
    shutil.copy(backup / "a.db", p)  # the attacker puts both back as they were at record 6
    shutil.copy(backup / "a.db.checkpoints", checkpoint_path(p))
    assert verify(p).ok  # consistent and signed: without the anchor, nothing shows
    assert_caught(p, capsys, ("records 7..10 missing", f"of {anchor}"), p, "--anchor", str(anchor))
    assert_caught(p, capsys, ("cut back",), checkpoint_path(p), "--anchor", str(anchor))
    q = trail(tmp_path / "b.db", 12)  # or both swapped for another valid pair of the same key
    shutil.copy(q, p)
    shutil.copy(checkpoint_path(q), checkpoint_path(p))
    assert verify(p).ok
    assert_caught(p, capsys, ("signs trail", "swapped"), anchor, "--anchor", str(anchor))
    rc, _, err = cli(capsys, "--db", str(p), "--anchor", str(tmp_path / "nope"))
    assert rc == 2 and "no such anchor file" in err


def test_the_background_flusher_signs_and_syncs_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import control.audit as audit

    synced: list[float] = []
    monkeypatch.setattr(audit, "CHECKPOINT_FSYNC_SECONDS", 0.0)
    monkeypatch.setattr(audit.AuditLog, "_sync_checkpoints",
                        lambda self: (synced.append(time.monotonic()), os.fsync(self._cp_fd)))
    log = AuditLog(tmp_path / "a.db", batch_size=1000, flush_interval=0.01)
    log.append(body(1))
    deadline = time.monotonic() + 2.0
    while (log._signed_seq < 1 or len(synced) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log._signed_seq == 1 and len(synced) >= 2  # genesis, then the flusher's own sync
    log.close()
    rep = verify(tmp_path / "a.db")
    assert rep.ok and rep.closed


def test_an_unwritable_checkpoint_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="nowhere/a.log: cannot write the checkpoint log"):
        AuditLog(tmp_path / "a.db", checkpoints=tmp_path / "nowhere" / "a.log")
    log = AuditLog(tmp_path / "a.db")  # nothing was left half-made: the lock is free, the trail starts clean
    log.close()
    assert verify(tmp_path / "a.db").ok


KILLED_BEFORE_SIGNING = """
import os, signal, sys
from control import audit
sign = audit.AuditLog._write_checkpoint
def die_before_signing(self, trail, seq, head, **kw):
    if seq >= 50 and not kw.get("fsync"):
        os.kill(os.getpid(), signal.SIGKILL)  # records 41..50 are COMMITted, their checkpoint never written
    sign(self, trail, seq, head, **kw)
audit.AuditLog._write_checkpoint = die_before_signing
log = audit.AuditLog(sys.argv[1], batch_size=10, background=False)
for i in range(1, 100):
    log.append({"at": float(i), "engine": "w", "kind": "notify", "decision": "allow", "outcome": "executed"})
"""


def test_a_writer_killed_between_commit_and_signature_loses_nothing_and_is_not_tampering(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    p = tmp_path / "a.db"
    proc = subprocess.run([sys.executable, "-c", KILLED_BEFORE_SIGNING, str(p)],
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=60)
    assert proc.returncode == -9
    rep = verify(p)
    assert rep.ok, rep.problems
    assert rep.records == 50 and rep.signed_seq == 40 and rep.unsigned == 10 and not rep.closed
    rc, out, _ = cli(capsys, "--db", str(p))
    assert rc == 0 and "10 records after the last signed checkpoint" in out
    AuditLog(p, batch_size=1).close()  # the restarted writer signs them
    rep = verify(p)
    assert rep.ok and rep.signed_seq == 50 and rep.unsigned == 0 and rep.closed
