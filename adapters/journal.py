"""A small SQLite journal of in-flight actions, for reconciliation after a controller restart.

An adapter writes ``begin`` before its first API call of an action and
``finish`` after its last, in autocommit mode, so a controller killed with
SIGKILL mid-action leaves an open entry.  On restart the live runtime reads
the open entries and lets the adapter finish or abandon each one against
what the cloud shows (request ids in server metadata).
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class JournalEntry:
    request_id: str
    kind: str
    target: str
    params: dict[str, Any]
    started_at: float
    state: str  # open | done | failed | adopted | finished | abandoned
    detail: str


class JournalLocked(RuntimeError):
    """Another controller holds this journal: two acting controllers would fight over the same cloud."""


class Journal:
    """Append-mostly table ``actions`` keyed by request id."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS actions (
                request_id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
                params TEXT NOT NULL, started_at REAL NOT NULL, state TEXT NOT NULL,
                detail TEXT NOT NULL DEFAULT '', finished_at REAL)"""
        )

    def lock(self) -> None:
        """Take the journal for this process (held until :meth:`close`); raise :class:`JournalLocked` if taken."""
        if self.path == ":memory:" or getattr(self, "_lockfile", None) is not None:
            return
        f = open(self.path + ".lock", "a+")  # noqa: SIM115 - held for the journal's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise JournalLocked(f"{self.path}: another zeroops live controller is acting with this journal") from None
        self._lockfile = f

    def begin(self, request_id: str, kind: str, target: str, params: dict[str, Any]) -> None:
        """Record an action about to touch the cloud (re-beginning an open id keeps its start time)."""
        self._db.execute(
            "INSERT INTO actions(request_id, kind, target, params, started_at, state) VALUES (?,?,?,?,?, 'open') "
            "ON CONFLICT(request_id) DO UPDATE SET state='open'",
            (request_id, kind, target, json.dumps(params, default=str, sort_keys=True), time.time()),
        )

    def finish(self, request_id: str, state: str, detail: str = "") -> None:
        self._db.execute(
            "UPDATE actions SET state=?, detail=?, finished_at=? WHERE request_id=?",
            (state, detail[:2000], time.time(), request_id),
        )

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[JournalEntry]:
        cur = self._db.execute(
            "SELECT request_id, kind, target, params, started_at, state, detail FROM actions " + where + " ORDER BY started_at",
            args,
        )
        return [JournalEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in cur.fetchall()]

    def open_entries(self) -> list[JournalEntry]:
        """Actions begun and never finished (the controller died or was killed mid-action)."""
        return self._rows("WHERE state='open'")

    def get(self, request_id: str) -> JournalEntry | None:
        rows = self._rows("WHERE request_id=?", (request_id,))
        return rows[0] if rows else None

    def all(self) -> list[JournalEntry]:
        return self._rows()

    def close(self) -> None:
        self._db.close()
        lockfile = getattr(self, "_lockfile", None)
        if lockfile is not None:
            lockfile.close()
            self._lockfile = None
