"""The safety state shared between a running system and the CLI: one SQLite file.

It holds the approval queue, pauses (automation disabled, emergency overrides),
enrolled operators (TOTP secrets) and proposed safety-limit changes with their
votes.  Rows are only inserted or moved forward in status, so the history stays.
Times are whatever ``now`` the caller uses (sim seconds in the twin, POSIX
seconds live).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS pauses (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, start REAL NOT NULL, until REAL NOT NULL,
    incident TEXT, operator TEXT, justification TEXT, ended_at REAL, ended_by TEXT);
CREATE TABLE IF NOT EXISTS operators (
    id TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at REAL NOT NULL, last_step INTEGER NOT NULL DEFAULT -1);
CREATE TABLE IF NOT EXISTS config_changes (
    id INTEGER PRIMARY KEY, proposed_at REAL NOT NULL, proposed_by TEXT NOT NULL, justification TEXT,
    config_json TEXT NOT NULL, needed INTEGER NOT NULL, status TEXT NOT NULL, applied_at REAL);
CREATE TABLE IF NOT EXISTS config_votes (
    change_id INTEGER NOT NULL, approver TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (change_id, approver));
CREATE TABLE IF NOT EXISTS proposals (
    id INTEGER PRIMARY KEY, created_at REAL NOT NULL, engine TEXT NOT NULL, kind TEXT NOT NULL, target TEXT,
    action_json TEXT NOT NULL, verdict_json TEXT NOT NULL, needed INTEGER NOT NULL, status TEXT NOT NULL,
    audit_id INTEGER, decided_at REAL, executed_at REAL, exec_audit_id INTEGER, note TEXT, sig TEXT);
CREATE INDEX IF NOT EXISTS proposals_status ON proposals(status, created_at);
CREATE INDEX IF NOT EXISTS proposals_sig ON proposals(sig, status);
CREATE TABLE IF NOT EXISTS votes (
    proposal_id INTEGER NOT NULL, approver TEXT NOT NULL, decision TEXT NOT NULL, at REAL NOT NULL, comment TEXT,
    PRIMARY KEY (proposal_id, approver));
CREATE TABLE IF NOT EXISTS gate_counters (
    name TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, amount REAL NOT NULL);
CREATE INDEX IF NOT EXISTS gate_counters_at ON gate_counters(at);
"""


@dataclass(frozen=True, slots=True)
class Pause:
    """Automation paused from ``start`` until ``until`` (or ``ended_at`` if ended early)."""

    id: int
    kind: str  # "disable" | "override"
    start: float
    until: float
    incident: str | None
    operator: str | None
    justification: str | None
    ended_at: float | None = None

    def active(self, now: float) -> bool:
        end = self.until if self.ended_at is None else min(self.until, self.ended_at)
        return self.start <= now < end


class SafetyStore:
    """A thread-safe handle on the safety state file (``":memory:"`` for the twin)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self.db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._writes = 0

    def local_version(self) -> int:
        """Writes made through this handle so far."""
        return self._writes

    def version(self) -> tuple[int, int]:
        """Changes so far: (writes through this handle, SQLite data_version for other connections' commits)."""
        with self._lock:
            return self._writes, int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            if not sql.lstrip().upper().startswith("SELECT"):
                self._writes += 1
            return self.db.execute(sql, args)

    def transaction(self) -> _Tx:
        """``with store.transaction() as db:`` — one IMMEDIATE transaction (serialises writers)."""
        return _Tx(self)

    # ------------------------------------------------------------ gate windows
    def add_counter(self, name: str, key: str, at: float, amount: float) -> None:
        """Record an amount the gate admitted into one of its sliding windows (so a restart resumes them)."""
        with self._lock:
            self.db.execute("INSERT INTO gate_counters(name, key, at, amount) VALUES (?, ?, ?, ?)",
                            (name, key, at, amount))

    def counters(self, since: float) -> list[tuple[str, str, float, float]]:
        """Window entries after ``since``, oldest first; older ones are dropped from the file."""
        with self._lock:
            self.db.execute("DELETE FROM gate_counters WHERE at <= ?", (since,))
            rows = self.db.execute("SELECT name, key, at, amount FROM gate_counters WHERE at > ? ORDER BY at, rowid",
                                   (since,)).fetchall()
        return [(r[0], r[1], float(r[2]), float(r[3])) for r in rows]

    # ------------------------------------------------------------------ pauses
    def add_pause(self, kind: str, start: float, until: float, *, incident: str | None = None,
                  operator: str | None = None, justification: str | None = None) -> Pause:
        cur = self.execute(
            "INSERT INTO pauses(kind, start, until, incident, operator, justification) VALUES (?,?,?,?,?,?)",
            (kind, start, until, incident, operator, justification),
        )
        return Pause(int(cur.lastrowid or 0), kind, start, until, incident, operator, justification)

    def end_pauses(self, now: float, by: str) -> int:
        cur = self.execute(
            "UPDATE pauses SET ended_at=?, ended_by=? WHERE ended_at IS NULL AND start<=? AND until>?",
            (now, by, now, now),
        )
        return cur.rowcount

    def pauses(self, *, since: float | None = None) -> list[Pause]:
        rows = self.execute(
            "SELECT id, kind, start, until, incident, operator, justification, ended_at FROM pauses"
            + (" WHERE until > ?" if since is not None else "") + " ORDER BY id",
            (since,) if since is not None else (),
        ).fetchall()
        return [Pause(*tuple(r)) for r in rows]

    # --------------------------------------------------------- config changes
    def latest_applied_config(self) -> tuple[int, dict[str, Any]] | None:
        row = self.execute(
            "SELECT id, config_json FROM config_changes WHERE status='applied'"
            " ORDER BY applied_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None


class _Tx:
    def __init__(self, store: SafetyStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise
        return self.store.db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
            self.store._writes += 1
        finally:
            self.store._lock.release()
