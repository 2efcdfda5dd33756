"""Incident-board transitions for adapters that keep the board themselves (the fake, OpenStack).

OpenStack has no incident tool, so the OpenStack adapter keeps declared
incidents in its SQLite store and the fake keeps them in memory; both apply
the same rules here: re-declaring an open incident is a :class:`Conflict`
(update it instead), an unknown id is :class:`NotFound`, a resolved incident
cannot change, and resolving twice is a no-op.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from adapters.base import Conflict, DeclareIncident, IncidentInfo, NotFound, ResolveIncident, UpdateIncident


def declare(old: IncidentInfo | None, a: DeclareIncident, now: float, actor: str) -> IncidentInfo:
    if old is not None and old.status != "resolved":
        raise Conflict(f"incident {a.incident_id} is open already; update it")
    return IncidentInfo(a.incident_id, tuple(a.components), a.severity, "open", now, actor, a.title,
                        tuple(a.root_causes), a.confidence, now)


def existing(i: IncidentInfo | None, incident_id: str) -> IncidentInfo:
    if i is None:
        raise NotFound(f"no incident {incident_id!r}")
    return i


def update(i: IncidentInfo, a: UpdateIncident, now: float) -> IncidentInfo:
    if i.status == "resolved":
        raise Conflict(f"incident {i.id} is resolved")
    changes: dict[str, Any] = {"updated_at": now}
    for f in ("severity", "components", "root_causes", "status"):
        v = getattr(a, f)
        if v is not None:
            changes[f] = tuple(v) if isinstance(v, list | tuple) else v
    return replace(i, **changes)


def resolve(i: IncidentInfo, a: ResolveIncident, now: float) -> IncidentInfo:
    if i.status == "resolved":
        return i
    return replace(i, status="resolved", resolved_at=now, updated_at=now, postmortem=a.postmortem)


def paged(i: IncidentInfo, now: float) -> IncidentInfo:
    return replace(i, pages=i.pages + 1, updated_at=now)
