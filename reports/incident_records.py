"""The records post-mortems and ``zeroops incidents`` read: a run's results folder, or the live audit trail.

A simulated run is read from the files ``write_run`` leaves (docs/results.md):
``result.json`` (ground-truth incidents, declarations, SLO breaches, topology),
``actions.csv`` (every decision at the choke point) and ``timeseries.csv``.
A live controller leaves its decisions in the hash-chained audit trail
(``control.audit``) and its incident board in the adapter's journal
(``adapters.journal``): both are read here read-only, and carry no ground truth.
Decisions from either source become the same plain dicts (the columns of
``actions.csv`` with JSON fields decoded).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


class RecordsError(ValueError):
    """A folder, database or id that cannot be read; the message names it and what is allowed."""


@dataclass
class RunRecords:
    """What one run left behind. ``result`` is empty and ``live`` true for a live audit trail."""

    name: str  # "<scenario>/<engines>", or the audit database's path
    result: dict[str, Any]
    actions: list[dict[str, Any]]
    timeseries: pd.DataFrame | None = None
    board: dict[str, dict[str, Any]] = field(default_factory=dict)  # live incident board, by id
    live: bool = False
    folder: Path | None = None

    @property
    def run_end(self) -> float:
        if self.live:
            return max((a["at"] for a in self.actions), default=0.0)
        return float(self.result.get("duration_s") or 0.0)


def _json(text: Any, default: Any) -> Any:
    if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _str(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _float(v: Any, default: float | None = None) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(x) else x


def read_actions_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of ``actions.csv`` as dicts, JSON fields decoded, empty cells as ``""`` or None."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    out = []
    for row in df.to_dict("records"):
        out.append({
            "seq": int(row["seq"]), "at": float(row["at"]), "engine": row["engine"], "kind": row["kind"],
            "target": row["target"], "params": _json(row.get("params"), {}), "reason": row.get("reason", ""),
            "confidence": _float(row.get("confidence"), 1.0), "incident": row.get("incident") or None,
            "verdict": row["verdict"], "rule": row.get("rule", ""), "outcome": row["outcome"],
            "detail": row.get("detail", ""), "server_ids": (row.get("server_ids") or "").split(),
            "error": row.get("error") or None, "evidence": _json(row.get("evidence"), {}),
            "alternatives": _json(row.get("alternatives"), []), "approved_by": [],
        })
    return out


def load_run(folder: Path) -> RunRecords:
    """One run folder (``<out>/<scenario>/<engines>``) with ``result.json`` and ``actions.csv``."""
    res_path = folder / "result.json"
    try:
        result = json.loads(res_path.read_text())
    except FileNotFoundError:
        raise RecordsError(f"{folder}: no result.json; not a run folder written by zeroops run/suite") from None
    except (OSError, ValueError) as e:
        raise RecordsError(f"{res_path}: unreadable ({e})") from None
    if not isinstance(result, dict) or "incidents" not in result:
        raise RecordsError(f"{res_path}: field 'incidents' missing; not a result.json written by zeroops run/suite")
    acts = folder / "actions.csv"
    actions = read_actions_csv(acts) if acts.is_file() else []
    ts_path = folder / "timeseries.csv"
    ts = pd.read_csv(ts_path, index_col=0) if ts_path.is_file() else None
    name = f"{result.get('scenario', folder.parent.name)}/{result.get('engines', folder.name)}"
    return RunRecords(name, result, actions, ts, folder=folder)


def find_runs(results_dir: Path, scenario: str | None = None, engines: str | None = None) -> list[Path]:
    """Run folders under a results folder (or the folder itself when it is one), filtered by scenario and engines."""
    if not results_dir.is_dir():
        raise RecordsError(f"{results_dir}: no such results folder (write one with zeroops run or zeroops suite, "
                           f"or give RESULTS_DIR)")
    if (results_dir / "result.json").is_file():
        runs = [results_dir]
    else:
        runs = sorted(p.parent for p in results_dir.glob("*/*/result.json"))
    if not runs:
        raise RecordsError(f"{results_dir}: no runs in it (no <scenario>/<engines>/result.json)")
    picked = [p for p in runs if (scenario is None or p.parent.name == scenario)
              and (engines is None or p.name == engines)]
    if not picked:
        have = ", ".join(f"{p.parent.name}/{p.name}" for p in runs)
        raise RecordsError(f"{results_dir}: no run for --scenario {scenario or '*'} --engines {engines or '*'}; "
                           f"it holds: {have}")
    return picked


# ----------------------------------------------------------------------- live
def _ro(path: Path, what: str, table: str) -> sqlite3.Connection:
    if not path.is_file():
        raise RecordsError(f"{path}: no such {what}")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=30.0)
        db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
    except sqlite3.DatabaseError as e:
        raise RecordsError(f"{path}: not a {what}: {e}") from None
    return db


def audit_actions(db_path: Path) -> list[dict[str, Any]]:
    """Every decision in an audit trail as an ``actions.csv``-style dict (``seq`` is the audit id)."""
    db = _ro(db_path, "audit database", "records")
    try:
        rows = db.execute("SELECT seq, body FROM records ORDER BY seq").fetchall()
    finally:
        db.close()
    out = []
    for seq, text in rows:
        b = json.loads(text)
        a, res = b.get("action") or {}, b.get("result") or {}
        out.append({
            "seq": int(seq), "at": float(b["at"]), "engine": b.get("engine", ""), "kind": b.get("kind", ""),
            "target": _str(b.get("target")), "params": a.get("params") or {}, "reason": a.get("reason") or "",
            "confidence": _float(a.get("confidence"), 1.0), "incident": a.get("incident") or None,
            "verdict": b.get("decision", ""), "rule": b.get("rule") or "", "outcome": b.get("outcome", ""),
            "detail": res.get("detail") or "", "server_ids": list(res.get("server_ids") or []),
            "error": b.get("error"), "evidence": a.get("evidence") or {}, "alternatives": list(a.get("alternatives")
                                                                                                 or []),
            "approved_by": list(b.get("approved_by") or []),
        })
    return out


def incident_board(journal: Path) -> dict[str, dict[str, Any]]:
    """The live adapter's incident board (``IncidentInfo`` bodies by id) from its journal, read-only."""
    db = _ro(journal, "journal database (the live adapter's incident board)", "incidents")
    try:
        rows = db.execute("SELECT id, body FROM incidents ORDER BY rowid").fetchall()
    finally:
        db.close()
    return {str(i): json.loads(body) for i, body in rows}


def load_live(audit_db: Path, journal: Path | None = None) -> RunRecords:
    """A live controller's records: decisions from the audit trail, incidents' status from the board if given."""
    board = incident_board(journal) if journal is not None else {}
    return RunRecords(str(audit_db), {}, audit_actions(audit_db), None, board, live=True)
