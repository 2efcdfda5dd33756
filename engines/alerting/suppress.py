"""Stage 2: suppression — maintenance windows (configured, or servers marked as under planned maintenance),
flapping, learned noise and inhibition of symptoms by causes.

(Deduplication by fingerprint happens as alerts are folded into tracks: see
:mod:`engines.alerting.tracks`.)  Each check is a small pure function so the
order of the pipeline is visible in :mod:`engines.alerting.engine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engines.alerting.config import MaintenanceWindow
from engines.alerting.topology import Topology
from engines.alerting.tracks import Track
from engines.maintenance import PlannedWork


def silenced(track: Track, windows: Sequence[MaintenanceWindow], now: float,
             planned: PlannedWork | None = None) -> bool:
    """Inside a maintenance window whose matchers all hold for the alert's labels, or about planned work the
    servers' metadata shows (:mod:`engines.maintenance`): a marked server, or a symptom of its service that
    the maintenance explains (the service is not in breach)."""
    return any(w.covers(now, track.labels) for w in windows) or (planned is not None
                                                                 and planned.silences(track.labels))


def flapping(track: Track, threshold: int) -> bool:
    """At least ``threshold`` firing/resolved changes within the flap window (kept pruned by the tracks)."""
    return len(track.changes) >= threshold


def inhibited_by(track: Track, sources: Iterable[Track], topo: Topology) -> Track | None:
    """The firing alert that explains this one, if any.

    A source inhibits a target when it sits on a service the target's service depends on (its cause, down the
    dependency graph) with at least the target's severity, or on the same service with a higher severity (the
    classic critical → warning rule).  Ties between mutual candidates are impossible: dependencies are acyclic
    for the rule and severity must be strictly higher on one service.
    """
    if not track.service:
        return None
    below = topo.below(track.service)
    for s in sources:
        if s is track or not s.firing or not s.service:
            continue
        if s.service in below and s.rank >= track.rank:
            return s
        if s.service == track.service and s.rank > track.rank:
            return s
    return None
