"""A small SQLite journal of in-flight actions, for reconciliation after a controller restart.

An adapter writes ``begin`` before its first API call of an action and
``finish`` after its last, in autocommit mode, so a controller killed with
SIGKILL mid-action leaves an open entry.  On restart the live runtime reads
the open entries and lets the adapter finish or abandon each one against
what the cloud shows (request ids in server metadata).

The same database holds what OpenStack has no API for and the live adapter
must remember itself: the deploys it made (``deploys``), the incident board
of the record-only decisions (``incidents``) and the self-service request
inbox (``requests``).  See docs/adapter-mapping.md.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.base import DeployEvent, IncidentInfo, Request


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
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS deploys (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, version TEXT NOT NULL,
                previous TEXT NOT NULL, fraction REAL NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL)"""
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS requests (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"""
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

    # ---------------------------------------------------------------- deploys
    def record_deploy(self, e: DeployEvent) -> None:
        self._db.execute(
            "INSERT INTO deploys(service, version, previous, fraction, at, actor) VALUES (?,?,?,?,?,?)",
            (e.service, e.version, e.previous, e.fraction, e.at, e.actor),
        )

    def deploys(self, since: float) -> list[DeployEvent]:
        cur = self._db.execute(
            "SELECT service, version, previous, fraction, at, actor FROM deploys WHERE at >= ? ORDER BY seq", (since,)
        )
        return [DeployEvent(*r) for r in cur.fetchall()]

    # ---------------------------------------------------------------- incidents
    def incident(self, incident_id: str) -> IncidentInfo | None:
        row = self._db.execute("SELECT body FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return _incident(json.loads(row[0])) if row else None

    def put_incident(self, i: IncidentInfo) -> None:
        body = {f: getattr(i, f) for f in IncidentInfo.__dataclass_fields__}
        body["root_causes"] = [dict(rc) for rc in i.root_causes]
        self._db.execute(
            "INSERT INTO incidents(id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body=excluded.body",
            (i.id, json.dumps(body, default=str, sort_keys=True)),
        )

    def incidents(self) -> list[IncidentInfo]:
        rows = self._db.execute("SELECT body FROM incidents ORDER BY rowid").fetchall()
        return [_incident(json.loads(r[0])) for r in rows]

    # ---------------------------------------------------------------- requests
    def submit_request(self, project: str, kind: str, params: dict[str, Any], requester: str, at: float) -> str:
        rid = f"req-{uuid.uuid4().hex[:12]}"  # unique across inboxes: it becomes the request id of what it creates
        body = {"id": rid, "project": project, "requester": requester, "kind": kind, "params": params,
                "submitted_at": at, "status": "open"}
        self._db.execute("INSERT INTO requests(id, body) VALUES (?, ?)", (rid, json.dumps(body, default=str)))
        return rid

    def set_request_status(self, request_id: str, status: str) -> None:
        req = self.request(request_id)
        if req is not None:
            body = {f: getattr(req, f) for f in Request.__dataclass_fields__} | {"status": status}
            body["params"] = dict(req.params)
            self._db.execute("UPDATE requests SET body=? WHERE id=?", (json.dumps(body, default=str), request_id))

    def request(self, request_id: str) -> Request | None:
        row = self._db.execute("SELECT body FROM requests WHERE id=?", (request_id,)).fetchone()
        return Request(**json.loads(row[0])) if row else None

    def requests(self) -> list[Request]:
        return [Request(**json.loads(r[0])) for r in self._db.execute("SELECT body FROM requests ORDER BY seq")]

    def close(self) -> None:
        self._db.close()
        lockfile = getattr(self, "_lockfile", None)
        if lockfile is not None:
            lockfile.close()
            self._lockfile = None


def _incident(body: dict[str, Any]) -> IncidentInfo:
    body["components"] = tuple(body["components"])
    body["root_causes"] = tuple(body["root_causes"])
    return IncidentInfo(**body)
