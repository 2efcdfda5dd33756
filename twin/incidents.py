"""The world's incident-management tool: the board that DeclareIncident, UpdateIncident and ResolveIncident write.

It is what engines (and people) see of incidents — the declared ones, with
their severity, ranked root-cause candidates, status and pages — and it is
*not* ground truth: a declaration may name the wrong component, the wrong
severity, or nothing real at all.  The scorer matches declarations to the
ground-truth faults (``scenarios/scoring.py``); this board only keeps what was
said.  Actions reach it only through the choke point, so every change is gated
and audited.

Errors mirror an incident tool's API: declaring an id that exists (open or
resolved) is a :class:`Conflict`; updating or resolving an unknown id is
:class:`NotFound`; changing a resolved incident is a :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twin.errors import Conflict, NotFound

SEVERITIES = ("P0", "P1", "P2", "P3", "P4")
STATUSES = ("open", "investigating", "mitigating", "mitigated", "resolved")


@dataclass
class BoardIncident:
    id: str
    components: tuple[str, ...]
    severity: str
    status: str
    declared_at: float
    declared_by: str
    title: str = ""
    root_causes: tuple[Mapping[str, Any], ...] = ()
    updated_at: float = 0.0
    resolved_at: float | None = None
    resolved_by: str | None = None
    postmortem: str = ""
    pages: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # every change: {"at", "by", "what", ...}

    @property
    def confidence(self) -> float:
        """The best candidate's score (1.0 when no candidate gives one)."""
        if not self.root_causes:
            return 1.0
        try:
            return float(self.root_causes[0].get("score", 1.0))
        except (TypeError, ValueError):
            return 1.0


def _severity(s: str) -> str:
    if s not in SEVERITIES:
        raise Conflict(f"severity must be one of {', '.join(SEVERITIES)}, got {s!r}")
    return s


def _candidates(rcs: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    out = []
    for rc in rcs:
        if not isinstance(rc, Mapping) or not rc.get("component"):
            raise Conflict(f"a root-cause candidate needs a 'component', got {rc!r}")
        out.append(dict(rc))
    return tuple(out)


class IncidentBoard:
    """Declared incidents by id, in declaration order."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.incidents: dict[str, BoardIncident] = {}

    def declare(self, incident_id: str, components: Iterable[str], severity: str = "P3", title: str = "",
                root_causes: Iterable[Mapping[str, Any]] = (), by: str = "automation") -> BoardIncident:
        if not incident_id:
            raise Conflict("an incident needs an id")
        if incident_id in self.incidents:
            raise Conflict(f"incident {incident_id} already exists ({self.incidents[incident_id].status})")
        comps = tuple(components)
        if not comps:
            raise Conflict(f"incident {incident_id}: declare at least one component")
        t = self._now()
        inc = BoardIncident(incident_id, comps, _severity(severity), "open", t, by, title, _candidates(root_causes),
                            updated_at=t)
        inc.history.append({"at": t, "by": by, "what": "declared", "severity": inc.severity, "components": comps})
        self.incidents[incident_id] = inc
        return inc

    def _open(self, incident_id: str | None) -> BoardIncident:
        inc = self.incidents.get(incident_id or "")
        if inc is None:
            raise NotFound(f"no incident {incident_id!r}")
        if inc.status == "resolved":
            raise Conflict(f"incident {incident_id} is resolved")
        return inc

    def update(self, incident_id: str, *, severity: str | None = None, components: Iterable[str] | None = None,
               root_causes: Iterable[Mapping[str, Any]] | None = None, status: str | None = None, note: str = "",
               by: str = "automation") -> BoardIncident:
        inc = self._open(incident_id)
        change: dict[str, Any] = {"at": self._now(), "by": by, "what": "updated"}
        if severity is not None:
            inc.severity = change["severity"] = _severity(severity)
        if components is not None:
            comps = tuple(components)
            if not comps:
                raise Conflict(f"incident {incident_id}: an incident keeps at least one component")
            inc.components = change["components"] = comps
        if root_causes is not None:
            inc.root_causes = _candidates(root_causes)
            change["root_causes"] = [rc.get("component") for rc in inc.root_causes]
        if status is not None:
            if status not in STATUSES or status == "resolved":
                raise Conflict(f"status must be one of investigating, mitigating, mitigated, got {status!r}")
            inc.status = change["status"] = status
        if note:
            change["note"] = note
        inc.updated_at = change["at"]
        inc.history.append(change)
        return inc

    def resolve(self, incident_id: str, postmortem: str = "", by: str = "automation") -> BoardIncident:
        inc = self._open(incident_id)
        t = self._now()
        inc.status, inc.resolved_at, inc.resolved_by, inc.postmortem, inc.updated_at = "resolved", t, by, postmortem, t
        inc.history.append({"at": t, "by": by, "what": "resolved", "postmortem": postmortem})
        return inc

    def page(self, incident_id: str | None, by: str = "automation") -> None:
        """Count a page against a known incident (a page about no or an unknown incident is not counted here)."""
        inc = self.incidents.get(incident_id or "")
        if inc is not None:
            inc.pages += 1
            inc.history.append({"at": self._now(), "by": by, "what": "paged"})

    def all(self) -> list[BoardIncident]:
        return list(self.incidents.values())
