"""The learned part of suppression (``MLSuppressionEnabled``): how often a fingerprint's episodes were actionable.

Every ended episode is labelled from what the engine itself saw: *actionable*
when it lasted at least ``PersistentAfter`` seconds or an incident covered its
component while it fired, *transient* otherwise.  The share of actionable
episodes is estimated with a Beta(1, 1) prior (Laplace's rule); a fingerprint
whose estimate falls below ``FalsePositiveThreshold`` is known noise and is
suppressed.  With the default threshold of 1 % that takes at least 99
transient episodes and no actionable one, so a rule is never silenced on
little evidence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counts:
    actionable: int = 0
    transient: int = 0

    @property
    def actionable_share(self) -> float:
        return (self.actionable + 1) / (self.actionable + self.transient + 2)


class NoiseModel:
    """Per-fingerprint actionable counts; :meth:`noisy` says whether to suppress."""

    def __init__(self, threshold: float, persistent_after: float) -> None:
        self.threshold = threshold
        self.persistent_after = persistent_after
        self.counts: dict[str, Counts] = {}

    def learn(self, fingerprint: str, duration: float, covered_by_incident: bool) -> None:
        c = self.counts.setdefault(fingerprint, Counts())
        if duration >= self.persistent_after or covered_by_incident:
            c.actionable += 1
        else:
            c.transient += 1

    def share(self, fingerprint: str) -> float:
        c = self.counts.get(fingerprint)
        return c.actionable_share if c is not None else 0.5

    def noisy(self, fingerprint: str) -> bool:
        return self.share(fingerprint) < self.threshold
