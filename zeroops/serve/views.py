"""The API's JSON shapes of proposals, incidents, pauses and decisions (shared by routes and events)."""

from __future__ import annotations

import json
from typing import Any

from control.safety.serialize import action_to_dict
from zeroops.serve.figures import jsonable


def proposal_item(p: Any) -> dict[str, Any]:
    return jsonable({
        "id": p.id, "created_at": p.created_at, "engine": p.engine, "kind": p.kind, "target": p.action.target(),
        "action": action_to_dict(p.action), "rule": p.verdict.rule, "detail": p.verdict.detail, "needed": p.needed,
        "status": p.status, "approvers": list(p.approvers), "deniers": list(p.deniers), "audit_id": p.audit_id,
        "exec_audit_id": p.exec_audit_id, "note": p.note,
    })


def incident_item(i: Any) -> dict[str, Any]:
    return jsonable({
        "id": i.id, "components": list(i.components), "severity": i.severity, "status": i.status,
        "declared_at": i.declared_at, "declared_by": i.declared_by, "title": i.title,
        "root_causes": list(i.root_causes), "confidence": i.confidence, "updated_at": i.updated_at,
        "resolved_at": i.resolved_at, "postmortem": i.postmortem, "pages": i.pages,
    })


def pause_item(p: Any) -> dict[str, Any]:
    return jsonable({"id": p.id, "kind": p.kind, "start": p.start, "until": p.until, "incident": p.incident,
                     "operator": p.operator, "justification": p.justification})


def entry_item(e: Any) -> dict[str, Any]:
    return jsonable({"id": e.seq, **e.body})


def _no_nan(token: str) -> None:
    return None  # NaN and infinities in a stored body: JSON has neither


def entries(reader: Any, limit: int | None = None, *, engine: str | None = None, outcome: str | None = None,
            since: float | None = None, where: str | None = None, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Audit records as API items, newest ``limit`` last, read straight from the trail's JSON (no re-walk).
    ``where``/``args``: one more SQL condition on the ``records`` table (indexed columns, ``body``)."""
    clauses, params = ([f"({where})"], list(args)) if where else ([], [])
    for col, val, op in (("at", since, ">="), ("engine", engine, "="), ("outcome", outcome, "=")):
        if val is not None:
            clauses.append(f"{col} {op} ?")
            params.append(val)
    sql = "SELECT seq, body FROM records" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = reader.db.execute(sql, params).fetchall()
    return [{"id": seq, **json.loads(body, parse_constant=_no_nan)} for seq, body in reversed(rows)]


def postmortem_markdown(inc: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """A post-mortem from the incident board and the decisions tied to the incident in the audit trail."""
    dur = (inc["resolved_at"] - inc["declared_at"]) if inc.get("resolved_at") is not None else None
    causes = ", ".join(f"{c.get('component')} ({c.get('score', 0):.2f})" for c in inc.get("root_causes") or []
                       if isinstance(c, dict)) or "-"
    lines = [
        f"# Post-mortem: {inc['id']} — {inc.get('title') or ', '.join(inc['components'])}",
        "",
        f"- Severity: {inc['severity']}; status: {inc['status']}",
        f"- Components: {', '.join(inc['components']) or '-'}",
        f"- Declared at t={inc['declared_at']:.0f} s by {inc['declared_by']}; "
        + (f"resolved after {dur:.0f} s" if dur is not None else "not resolved yet"),
        f"- Root-cause candidates: {causes}",
        f"- Pages: {inc.get('pages', 0)}",
        "",
        "## Timeline (from the audit trail)",
        "",
    ]
    for d in timeline:
        lines.append(f"- t={d.get('at', 0):.0f} s · decision {d['id']} · {d.get('engine')}: {d.get('kind')} "
                     f"{d.get('target') or ''} → {d.get('outcome')} ({d.get('rule') or '-'})"
                     + (f" — {d['action']['reason']}" if (d.get("action") or {}).get("reason") else ""))
    if not timeline:
        lines.append("- no decision in the audit trail names this incident")
    return "\n".join(lines) + "\n"
