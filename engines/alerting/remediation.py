"""Stage 1: auto-remediation before alerting.

An alert about a component that an open incident covers — declared through
the choke point by automation and not yet mitigated — is *held*: automation
is already on it.  It is *remediated* (dropped) once that incident is
mitigated, and released to the next stages when the incident is older than
the grace (automation had its chance).  A P0 incident holds nothing: a
catastrophic failure pages at once.  An alert on a service that depends on
the incident's service is covered too (its symptom).
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import IncidentInfo
from engines.alerting.topology import Topology
from engines.alerting.tracks import Track

WORKING = ("open", "investigating", "mitigating")


def covering(track: Track, incidents: Mapping[str, IncidentInfo], topo: Topology) -> list[IncidentInfo]:
    """Open incidents declared by automation whose components include the alert's, or a dependency of its service."""
    comps = track.components()
    below = topo.below(track.service) if track.service else frozenset()
    return [i for i in incidents.values() if i.declared_by != "human" and i.status != "resolved"
            and (comps & set(i.components) or below & set(i.components))]


def remediation_fate(track: Track, incidents: Mapping[str, IncidentInfo], topo: Topology, now: float,
                     grace: float) -> str:
    """``"remediated"``, ``"held"`` or ``""`` (goes on to suppression)."""
    cover = covering(track, incidents, topo)
    if not cover or any(i.severity == "P0" for i in cover):
        return ""
    if all(i.status == "mitigated" for i in cover):
        return "remediated"
    if any(i.status in WORKING and now - i.declared_at < grace for i in cover):
        return "held"
    return ""
