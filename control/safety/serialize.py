"""Actions and verdicts to and from plain JSON, for the approval queue and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.base import ACTION_TYPES, Action
from control.runtime import Verdict

_META = ("reason", "confidence", "evidence", "alternatives", "incident")


def plain(v: Any) -> Any:
    """A JSON-able copy of ``v`` (mappings, sequences, numpy scalars and arrays)."""
    if v is None or isinstance(v, str | bool | int | float):
        return v
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        items = [plain(x) for x in v]
        return sorted(items, key=repr) if isinstance(v, set | frozenset) else items
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return plain(v.tolist())
    return str(v)


def dumps(v: Any) -> str:
    """Canonical JSON: sorted keys, no spaces; what the audit chain hashes."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=plain, allow_nan=True)


def action_to_dict(a: Action) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "params": plain(a.params()),
        "reason": a.reason,
        "confidence": plain(a.confidence),
        "evidence": plain(a.evidence),
        "alternatives": list(a.alternatives),
        "incident": a.incident,
    }


def action_from_dict(d: Mapping[str, Any]) -> Action:
    """Rebuild an action; raises ``ValueError`` for an unknown kind or bad parameters."""
    kind = d.get("kind")
    cls = ACTION_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown action kind {kind!r}; allowed: {', '.join(ACTION_TYPES)}")
    kw: dict[str, Any] = dict(d.get("params") or {})
    kw.update(
        reason=d.get("reason", ""),
        confidence=float(d.get("confidence", 1.0)),
        evidence=dict(d.get("evidence") or {}),
        alternatives=tuple(d.get("alternatives") or ()),
        incident=d.get("incident"),
    )
    try:
        return cls(**kw)
    except TypeError as e:
        raise ValueError(f"bad parameters for {kind}: {e}") from None


def verdict_to_dict(v: Verdict) -> dict[str, Any]:
    return {"decision": v.decision, "rule": v.rule, "detail": plain(v.detail), "approvers": v.approvers}


def verdict_from_dict(d: Mapping[str, Any]) -> Verdict:
    return Verdict(d["decision"], d.get("rule", ""), dict(d.get("detail") or {}), int(d.get("approvers", 0)))
