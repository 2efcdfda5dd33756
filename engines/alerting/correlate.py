"""Stage 3: correlation — alerts related in topology and time form one incident group.

An alert that survived suppression joins the open group it is related to:
its service is a group service, or depends on one, or one depends on it, and
the group saw a new alert within ``CorrelationWindow``.  Otherwise it opens a
new group.  A group closes when none of its alerts has fired for the window.
Membership is sticky: an alert stays in the group it joined for its episode.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from engines.alerting.topology import Topology
from engines.alerting.tracks import Track


@dataclass
class Group:
    """One correlated incident group and what the notifier did about it."""

    id: str
    opened_at: float
    first_start: float  # earliest episode start of its alerts
    last_alert_at: float
    members: dict[str, Track] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    paged: set[str] = field(default_factory=set)  # priorities already paged for
    notified: str = ""  # priority last posted to the dashboard
    capped: str = ""  # priority whose page the MaxAlertsPerHour budget withheld (still owed)
    priority: str = "P4"
    closed: bool = False
    level_since: dict[str, float] = field(default_factory=dict)  # since when it has been at P0 / at P1 or worse

    def classify(self, priority: str, now: float) -> None:
        """Record the predicted priority; a level's clock restarts whenever the group falls below it."""
        self.priority = priority
        rank = ("P0", "P1", "P2", "P3", "P4").index(priority)
        for k, level in enumerate(("P0", "P1")):
            if rank <= k:
                self.level_since.setdefault(level, now)
            else:
                self.level_since.pop(level, None)

    def add(self, tr: Track, now: float) -> None:
        self.members[tr.fingerprint] = tr
        if tr.service:
            self.services.add(tr.service)
        self.first_start = min(self.first_start, tr.since)
        self.last_alert_at = max(self.last_alert_at, now)

    def firing(self) -> list[Track]:
        """Members firing now and not taken over since by automation (held or remediated)."""
        return [t for t in self.members.values() if t.firing and t.fate == "grouped"]

    def components(self) -> tuple[str, ...]:
        return tuple(sorted(set().union(*(t.components() for t in self.members.values())) if self.members else ()))

    def fingerprints(self) -> list[str]:
        return sorted(self.members)


class Correlator:
    """Open groups; :meth:`assign` puts surviving alerts into them."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.groups: list[Group] = []
        self.of: dict[str, Group] = {}  # fingerprint -> its group, for the current episode
        self._ids = itertools.count(1)  # per engine, so a run's group ids do not depend on what ran before it

    def assign(self, tracks: list[Track], topo: Topology, now: float) -> list[Group]:
        """Place each track (not yet in an open group) and return the open groups."""
        for tr in sorted(tracks, key=lambda t: (t.since, t.fingerprint)):
            g = self.of.get(tr.fingerprint)
            if g is not None and not g.closed:
                continue
            g = self._find(tr, topo, now)
            if g is None:
                g = Group(f"grp-{next(self._ids)}", now, tr.since, now)
                self.groups.append(g)
            g.add(tr, now)
            self.of[tr.fingerprint] = g
        return self.open_groups(now)

    def _find(self, tr: Track, topo: Topology, now: float) -> Group | None:
        for g in self.groups:
            if g.closed or now - g.last_alert_at > self.window:
                continue
            if any(topo.related(tr.service, s) for s in g.services) or (not tr.service and not g.services):
                return g
        return None

    def open_groups(self, now: float) -> list[Group]:
        for g in self.groups:
            if not g.closed and not g.firing() and now - max(g.last_alert_at, _last_change(g)) > self.window:
                g.closed = True
                for fp in g.members:
                    if self.of.get(fp) is g:
                        del self.of[fp]
        self.groups = [g for g in self.groups if not g.closed]
        return list(self.groups)


def _last_change(g: Group) -> float:
    return max((t.last_at for t in g.members.values()), default=g.opened_at)
