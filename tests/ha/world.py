"""A world several controller processes share: one service in a SQLite file, creates that take time.

:class:`FileWorld` is just enough of an adapter for ``min_floor_keeper`` behind a live controller: the
service ``web`` (``min_servers`` from the file) and its servers; a ``CreateServer`` sleeps ``pre`` seconds
(the call on its way), inserts a BUILD server under the action's request id (Nova accepted it), sleeps
``post`` seconds (waiting for ACTIVE) and marks it ACTIVE.  Every phase is a row of ``calls`` with the pid
and the wall time, so a test sees who did what, when, and where a ``kill -9`` cut it.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.base import Action, ActionResult, AdapterError, CreateServer, Server, ServiceState

SERVICE = "web"


class FileWorld:
    def __init__(self, path: str | Path, *, pre: float = 0.0, post: float = 0.0) -> None:
        self.path = str(path)
        self.pre, self.post = pre, post
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS servers (id TEXT PRIMARY KEY, status TEXT, request_id TEXT, at REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS calls (pid INTEGER, phase TEXT, request_id TEXT, at REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS config (k TEXT PRIMARY KEY, v TEXT)")

    # ------------------------------------------------------------------ test side
    def set_min(self, n: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO config VALUES ('min', ?)", (str(n),))

    def calls(self) -> list[tuple[int, str, str, float]]:
        return list(self.db.execute("SELECT pid, phase, request_id, at FROM calls ORDER BY rowid"))

    def rows(self) -> list[tuple[str, str, str]]:
        return list(self.db.execute("SELECT id, status, request_id FROM servers ORDER BY at"))

    # ------------------------------------------------------------------ adapter side
    def _call(self, phase: str, rid: str) -> None:
        self.db.execute("INSERT INTO calls VALUES (?,?,?,?)", (os.getpid(), phase, rid, time.time()))

    def now(self) -> float:
        return time.time()

    def describe(self) -> dict[str, Any]:
        return {"cloud": "file-world", "project": "p", "region": "r", "auth_url": self.path, "prometheus": None}

    def _min(self) -> int:
        row = self.db.execute("SELECT v FROM config WHERE k='min'").fetchone()
        return int(row[0]) if row else 0

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        out = [Server(sid, sid, "small", "p", st, "az", "hv", SERVICE, metadata={"zeroops_service": SERVICE,
                                                                                  "zeroops_request_id": rid})
               for sid, st, rid in self.rows()]
        return [s for s in out if (service in (None, SERVICE)) and (status is None or s.status == status)]

    def server(self, server_id: str) -> Server | None:
        return next((s for s in self.servers() if s.id == server_id), None)

    def services(self) -> Sequence[ServiceState]:
        rows = self.rows()
        active = sum(1 for _, st, _ in rows if st == "ACTIVE")
        building = sum(1 for _, st, _ in rows if st == "BUILD")
        return [ServiceState(SERVICE, "p", "small", (), active, building, 0, 1, {}, min_servers=self._min())]

    def execute(self, action: Action) -> ActionResult:
        if not isinstance(action, CreateServer):
            raise AdapterError(f"the file world only creates servers, not {action.kind}")
        rid = action.request_id or uuid.uuid4().hex
        self._call("begin", rid)
        time.sleep(self.pre)
        sid = f"srv-{uuid.uuid4().hex[:8]}"
        self.db.execute("INSERT INTO servers VALUES (?, 'BUILD', ?, ?)", (sid, rid, time.time()))
        self._call("accepted", rid)
        time.sleep(self.post)
        self.db.execute("UPDATE servers SET status='ACTIVE' WHERE id=?", (sid,))
        self._call("active", rid)
        return ActionResult(True, f"created {sid}", server_ids=(sid,))
