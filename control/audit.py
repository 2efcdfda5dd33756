"""The audit trail: append-only, hash-chained decision records in SQLite (WAL).

Every decision that passes the choke point (allowed, denied, proposed,
approved and executed, failed) becomes one record holding the evidence,
confidence, alternatives considered, the chosen action, the gate's verdict and
rule with its figures, who approved, the execution result and the cost impact.

Chain: ``hash_n = sha256(hash_{n-1} + "\\n" + body_n)`` where ``body_n`` is the
record's canonical JSON (which includes ``seq``); the first record links to 64
zeros.  A ``meta`` row keeps the head (last seq and hash) so a removed tail is
detected too.  Triggers refuse UPDATE and DELETE on records.

**Committed** means: the record's transaction has COMMITted to the database
file (``synchronous=FULL`` by default, so it survives a process kill and, on
honest disks, power loss).  :class:`AuditLog` groups records: a record is
committed when ``flush()`` returns, when the batch reaches ``batch_size``
(inside that ``record()`` call), or within ``flush_interval`` seconds by the
background flusher.  :attr:`AuditLog.committed_seq` is the highest committed
seq; everything at or below it survives a crash.  ``batch_size=1`` commits
each record before ``record()`` returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.runtime import ActionRecord
from control.safety.serialize import plain

GENESIS = "0" * 64
COLUMNS = ("at", "engine", "kind", "target", "decision", "rule", "outcome")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, engine TEXT NOT NULL, kind TEXT NOT NULL, target TEXT,
    decision TEXT NOT NULL, rule TEXT, outcome TEXT NOT NULL, cost REAL, body TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_at ON records(at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""


class AuditError(Exception):
    """The audit database cannot be opened or written; the message says why."""


def chain_hash(prev: str, body: str) -> str:
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def record_body(rec: ActionRecord) -> dict[str, Any]:
    """The audited content of one choke-point record (made JSON-able when it is written)."""
    v, a, res = rec.verdict, rec.action, rec.result
    detail = v.detail
    cost = detail.get("cost_per_hour")
    return {
        "at": rec.at,
        "engine": rec.engine,
        "kind": a.kind,
        "target": a.target(),
        "decision": v.decision,
        "rule": v.rule,
        "outcome": rec.outcome,
        "action": {"kind": a.kind, "params": a.params(), "reason": a.reason, "confidence": a.confidence,
                   "evidence": a.evidence, "alternatives": a.alternatives, "incident": a.incident},
        "verdict": {"decision": v.decision, "rule": v.rule, "detail": detail, "approvers_needed": v.approvers},
        "approved_by": detail.get("approved_by", []),
        "result": None if res is None else {
            "ok": res.ok, "detail": res.detail, "server_ids": res.server_ids, "attempts": res.attempts},
        "error": rec.error,
        "cost_per_hour": cost if rec.outcome == "executed" else None,
        "proposed_cost_per_hour": cost,
        "choke_seq": rec.seq,
    }


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=plain).encode


def encode(body: dict[str, Any]) -> str:
    """The stored (and hashed) JSON text of a body; odd keys or values are made plain first."""
    try:
        return _encode(body)
    except (TypeError, ValueError):
        return _encode(plain(body))


class AuditLog:
    """The durable ``ActionLog``: one writer per database file (an exclusive lock file enforces it)."""

    def __init__(self, path: str | Path, *, batch_size: int = 512, flush_interval: float = 0.05,
                 synchronous: str = "FULL", background: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL, EXTRA or OFF, got {synchronous!r}")
        self.path = str(path)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._lockfile: Any = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lockfile = open(self.path + ".writer-lock", "a+")  # noqa: SIM115 - held for the log's life
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lockfile.close()
                raise AuditError(f"{self.path}: another process is writing this audit trail") from None
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as e:
            if self._lockfile is not None:
                self._lockfile.close()
            raise AuditError(f"{self.path}: not a usable audit database: {e}") from None
        self._seq, self._head = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        self.committed_seq = self._seq
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background and flush_interval > 0 and batch_size > 1:
            self._thread = threading.Thread(target=self._flusher, name="audit-flusher", daemon=True)
            self._thread.start()

    # ---------------------------------------------------------------- writing
    def record(self, rec: ActionRecord) -> None:
        """``ActionLog`` protocol: append one choke-point record (sets ``rec.audit_id``)."""
        rec.audit_id = self.append(record_body(rec))

    def append(self, body: dict[str, Any]) -> int:
        """Append one record body; returns its seq. Committed per the module's group-commit rules."""
        with self._lock:
            seq = self._seq + 1
            body["seq"] = seq
            text = encode(body)
            h = chain_hash(self._head, text)
            self._pending.append((seq, body.get("at", 0.0), body.get("engine", ""), body.get("kind", ""),
                                  body.get("target"), body.get("decision", ""), body.get("rule"),
                                  body.get("outcome", ""), _num(body.get("cost_per_hour")), text, self._head, h))
            self._seq, self._head = seq, h
            if len(self._pending) >= self.batch_size:
                self._flush_locked()
            return seq

    def flush(self) -> int:
        """Commit everything appended so far; returns :attr:`committed_seq`."""
        with self._lock:
            self._flush_locked()
            return self.committed_seq

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        rows, last = self._pending, self._pending[-1]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('head_seq', ?), ('head_hash', ?)", (str(last[0]), last[-1]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending = []
        self.committed_seq = int(last[0])

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_interval):
            with self._lock, contextlib.suppress(sqlite3.Error):  # the owner's next flush() raises it
                self._flush_locked()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        self.db.close()
        if self._lockfile is not None:
            self._lockfile.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --------------------------------------------------------------- reading
    def reader(self) -> AuditReader:
        """A reader on the same database (call :meth:`flush` first to see pending records)."""
        return AuditReader(self.path, conn=self.db if self.path == ":memory:" else None)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored record."""

    seq: int
    hash: str
    prev: str
    body: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)
    bad_seqs: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditReader:
    """Read-only access: listing, showing and verifying the chain."""

    def __init__(self, path: str | Path, conn: sqlite3.Connection | None = None) -> None:
        self.path = str(path)
        if conn is not None:
            self.db = conn
            return
        if not Path(self.path).is_file():
            raise AuditError(f"{self.path}: no such audit database")
        try:
            self.db = sqlite3.connect(f"file:{Path(self.path).resolve()}?mode=ro", uri=True, timeout=30.0)
            self.db.execute("SELECT seq FROM records LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            raise AuditError(f"{self.path}: not an audit database: {e}") from None

    def list(self, *, since: float | None = None, engine: str | None = None, limit: int | None = None,
             outcome: str | None = None) -> list[Entry]:
        where, args = [], []
        for col, val, op in (("at", since, ">="), ("engine", engine, "="), ("outcome", outcome, "=")):
            if val is not None:
                where.append(f"{col} {op} ?")
                args.append(val)
        sql = "SELECT seq, hash, prev, body FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY seq', 'ORDER BY seq DESC')} LIMIT {int(limit)}) ORDER BY seq"
        return [Entry(r[0], r[1], r[2], json.loads(r[3])) for r in self.db.execute(sql, args)]

    def get(self, seq: int) -> Entry | None:
        r = self.db.execute("SELECT seq, hash, prev, body FROM records WHERE seq=?", (seq,)).fetchone()
        return Entry(r[0], r[1], r[2], json.loads(r[3])) if r else None

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        yield from self.db.execute(f"SELECT seq, {', '.join(COLUMNS)}, body, prev, hash FROM records ORDER BY seq")

    def verify(self) -> VerifyReport:
        """Walk the chain; name every edited, removed, inserted or reordered record."""
        rep = VerifyReport()
        prev_hash, expect = GENESIS, 1
        for row in self.rows():
            seq, cols, text, prev, h = row[0], row[1:1 + len(COLUMNS)], row[-3], row[-2], row[-1]
            rep.records += 1
            gap = seq != expect
            if seq > expect:
                span = f"record {expect}" if seq == expect + 1 else f"records {expect}..{seq - 1}"
                rep.problems.append(f"{span} missing (removed)")
            elif seq < expect:
                rep.problems.append(f"record {seq}: out of order (reordered)")
            try:
                body = json.loads(text)
            except (TypeError, ValueError):
                body = None
            bad = False
            if not isinstance(body, dict):
                rep.problems.append(f"record {seq}: body is not valid JSON (edited)")
                bad = True
            elif body.get("seq") != seq:
                rep.problems.append(f"record {seq}: holds the content of record {body.get('seq')} (reordered)")
                bad = True
            if chain_hash(prev, text if isinstance(text, str) else "") != h:
                if not bad:
                    rep.problems.append(f"record {seq}: content does not match its hash (edited)")
                bad = True
            elif prev != prev_hash and not gap:
                rep.problems.append(f"record {seq}: does not link to record {seq - 1} "
                                    f"(record {seq - 1} was rewritten, or records were inserted or reordered)")
                bad = True
            if isinstance(body, dict) and not bad:
                for name, val in zip(COLUMNS, cols, strict=True):
                    if body.get(name) != val:
                        rep.problems.append(f"record {seq}: column {name!r} is {val!r} but the hashed record says "
                                            f"{body.get(name)!r} (edited)")
                        bad = True
                        break
            if bad:
                rep.bad_seqs.append(seq)
            prev_hash, expect = h, max(expect, seq + 1)
        rep.head = prev_hash
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        head_seq = int(meta.get("head_seq", 0) or 0)
        if head_seq >= expect:
            span = f"record {head_seq}" if head_seq == expect else f"records {expect}..{head_seq}"
            rep.problems.append(f"{span} missing at the end (removed; the head says {head_seq})")
        elif head_seq and meta.get("head_hash") != prev_hash and head_seq == expect - 1:
            rep.problems.append(f"record {head_seq}: differs from the recorded head hash (edited)")
        return rep


def verify(path: str | Path) -> VerifyReport:
    """Verify the audit database at ``path``."""
    return AuditReader(path).verify()


def open_audit(path: str | Path | None = None, **kw: Any) -> AuditLog:
    """An :class:`AuditLog` at ``path`` (default ``$ZEROOPS_AUDIT_DB`` or ``.zeroops/audit.db``)."""
    return AuditLog(path or os.environ.get("ZEROOPS_AUDIT_DB", ".zeroops/audit.db"), **kw)
