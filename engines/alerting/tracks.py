"""Raw alerts folded into one track per fingerprint: the dedupe stage's state.

A rule re-sends a firing alert every ``repeat_interval``; those repeats are
duplicates of one *episode* (firing → resolved) and never reach the later
stages.  A track also remembers its state changes, for flap detection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from adapters.base import Alert

SEVERITY_RANK = {"critical": 2, "warning": 1, "info": 0}


@dataclass
class Track:
    """One fingerprint: its labels, whether it fires now, the current episode and its recent state changes."""

    fingerprint: str
    name: str
    severity: str
    labels: Mapping[str, str]
    firing: bool = False
    since: float = 0.0  # start of the current (or last) episode
    last_at: float = 0.0
    value: float = float("nan")
    notifications: int = 0  # raw firing notifications of this episode (first + repeats)
    changes: deque[float] = field(default_factory=deque)  # times of firing <-> resolved transitions
    fate: str = ""  # the stage that stopped the current episode (or "grouped")

    @property
    def service(self) -> str:
        return self.labels.get("service", "")

    @property
    def server(self) -> str:
        return self.labels.get("server", "")

    @property
    def rank(self) -> int:
        return SEVERITY_RANK.get(self.severity, 0)

    def components(self) -> set[str]:
        return {v for k in ("service", "server", "hypervisor", "zone") if (v := self.labels.get(k, ""))}


@dataclass(frozen=True, slots=True)
class Ended:
    """An episode that just resolved: what the noise model learns from."""

    track: Track
    start: float
    end: float
    fate: str


class Tracks:
    """Every fingerprint seen; :meth:`ingest` applies a batch of raw alerts (duplicates counted, not repeated)."""

    def __init__(self, flap_window: float) -> None:
        self.by_fp: dict[str, Track] = {}
        self.flap_window = flap_window
        self._seen: dict[tuple[str, str, float], float] = {}  # (fingerprint, state, at) -> at: re-reads are ignored
        self.raw_firing = 0
        self.duplicates = 0

    def ingest(self, alerts: Iterable[Alert], now: float) -> list[Ended]:
        """Apply new alerts in time order; returns the episodes that ended."""
        ended: list[Ended] = []
        for a in sorted(alerts, key=lambda a: a.at):
            key = (a.fingerprint, a.state, a.at)
            if key in self._seen:
                continue
            self._seen[key] = a.at
            tr = self.by_fp.get(a.fingerprint)
            if tr is None:
                tr = self.by_fp[a.fingerprint] = Track(a.fingerprint, a.name, a.severity, a.labels)
            tr.last_at = a.at
            if a.state == "firing":
                self.raw_firing += 1
                tr.value = a.value
                if tr.firing:
                    tr.notifications += 1
                    self.duplicates += 1
                    continue
                tr.firing, tr.since, tr.notifications, tr.fate = True, a.starts_at, 1, ""
                tr.changes.append(a.at)
            elif tr.firing:
                tr.firing = False
                tr.changes.append(a.at)
                ended.append(Ended(tr, tr.since, a.at, tr.fate))
        horizon = now - self.flap_window
        for tr in self.by_fp.values():
            while tr.changes and tr.changes[0] < horizon:
                tr.changes.popleft()
        if len(self._seen) > 4096:
            keep = now - 2 * self.flap_window
            self._seen = {k: t for k, t in self._seen.items() if t >= keep}
        return ended

    def firing(self) -> list[Track]:
        return [t for t in self.by_fp.values() if t.firing]
