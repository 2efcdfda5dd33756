"""Grouping anomalies into incidents: by topology (the services they touch, neighbours in the dependency
graph) and by time (a correlation window between onsets), and the corroboration rule that decides when a
group is worth declaring.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Observation
from engines.ops.types import Anomaly, Candidate, RunbookRun

HARD_SOURCES = frozenset({"inventory", "alert"})


@dataclass
class Incident:
    """One group of anomalies: pending until corroborated, then declared, acted on and resolved."""

    id: str
    services: set[str]
    keys: set[tuple[str, str]]
    first_onset: float
    last_onset: float
    anomalies: dict[tuple[str, str], Anomaly] = field(default_factory=dict)
    declared_at: float | None = None
    severity: str = "P3"
    candidates: tuple[Candidate, ...] = ()
    run: RunbookRun | None = None
    runs_tried: list[str] = field(default_factory=list)
    run_focus: str | None = None  # the component the current run works on
    no_match: tuple[Any, ...] | None = None  # (top, class, runs tried) when no runbook matched
    status: str = "pending"  # pending, investigating, mitigating, mitigated, resolved
    last_seen: float = 0.0  # the last time one of its anomalies was present
    last_calm: float = 0.0  # the last time none was
    mitigated_at: float | None = None
    quiet_until: float = float("-inf")  # our own bounce of its components is under way until then
    paged: set[str] = field(default_factory=set)  # why it was paged (each reason once)
    alternatives: tuple[str, ...] = ()

    @property
    def components(self) -> tuple[str, ...]:
        comps = set(self.services)
        for a in self.anomalies.values():
            for k in ("server", "hypervisor"):
                if a.labels.get(k):
                    comps.add(a.labels[k])
        return tuple(sorted(comps))

    def present(self, now: float) -> list[Anomaly]:
        return [a for a in self.anomalies.values() if a.at == now]


def services_of(a: Anomaly, obs: Observation) -> set[str]:
    """The services an anomaly touches: its own, an edge's two ends, a hypervisor's or zone's tenants."""
    if "->" in a.component:
        return set(a.component.split("->", 1))
    if a.labels.get("service"):
        return {a.labels["service"]}
    if a.component in obs.services:
        return {a.component}
    hv, zone = a.labels.get("hypervisor"), a.labels.get("zone")
    if hv or zone:
        return {s.service for s in obs.servers() if s.service
                and ((hv and s.hypervisor == hv) or (not hv and zone and s.zone == zone))}
    return set()


def neighbours(obs: Observation) -> dict[str, set[str]]:
    """Each service with the services it calls and the services that call it."""
    out: dict[str, set[str]] = {s: {s} for s in obs.services}
    for s, svc in obs.services.items():
        for d in svc.dependencies:
            out.setdefault(s, {s}).add(d)
            out.setdefault(d, {d}).add(s)
    return out


class Grouper:
    """Assigns anomalies to incidents: a new anomaly joins an open incident it is related to in topology (same
    or neighbouring service) whose latest onset is within ``window_s`` of its own, or a declared, unresolved
    incident on its own service (a fault's later symptoms are not a new incident); else it opens a new
    (pending) incident."""

    def __init__(self, window_s: float = 300.0, prefix: str = "INC") -> None:
        self.window_s = window_s
        self.prefix = prefix
        self._ids = itertools.count(1)
        self.open: dict[str, Incident] = {}
        self._owner: dict[tuple[str, str], str] = {}

    def assign(self, now: float, obs: Observation, anomalies: Sequence[Anomaly]) -> None:
        near = neighbours(obs)
        for a in anomalies:
            key = (a.component, a.metric)
            inc = self.open.get(self._owner.get(key, ""))
            svcs = services_of(a, obs)
            if inc is None and a.labels.get("expected"):
                inc = next((i for i in self.open.values() if svcs & i.services), None)
                if inc is None:
                    continue  # an expected bounce (ours) opens no incident
            if inc is None:
                related = set().union(*(near.get(s, {s}) for s in svcs)) if svcs else set()
                fits = [i for i in self.open.values()
                        if (a.onset - i.last_onset <= self.window_s and (i.services & related or not svcs))
                        or (i.status != "pending" and svcs & i.services)]  # more of a declared incident
                inc = min(fits, key=lambda i: i.first_onset) if fits else None
                if inc is None:
                    inc = Incident(f"{self.prefix}-{next(self._ids):04d}", set(), set(), a.onset, a.onset)
                    self.open[inc.id] = inc
                self._owner[key] = inc.id
                inc.last_onset = max(inc.last_onset, a.onset)
            inc.keys.add(key)
            inc.services |= svcs
            inc.anomalies[key] = a
            if a.at == now:
                inc.last_seen = now

    def close(self, inc: Incident) -> None:
        self.open.pop(inc.id, None)
        for k in inc.keys:
            if self._owner.get(k) == inc.id:
                del self._owner[k]

    def drop_stale(self, now: float, current: Iterable[Anomaly]) -> None:
        """Forget anomalies whose episode ended; pending incidents left with none are dropped."""
        alive = {(a.component, a.metric) for a in current}
        for inc in list(self.open.values()):
            for k in [k for k in inc.anomalies if k not in alive]:
                del inc.anomalies[k]
                if self._owner.get(k) == inc.id:
                    del self._owner[k]
            if inc.status == "pending" and not inc.anomalies:
                self.close(inc)


def corroborated(inc: Incident, hits: Mapping[tuple[str, str], int], min_hits: int = 2,
                 load_hold_s: float = 300.0) -> tuple[bool, str]:
    """Whether a pending incident is worth declaring, and why: a hard signal (inventory, a firing critical
    alert), two distinct anomalous series at once, or one series anomalous at ``min_hits`` observations in a row.
    Our own bounces (``expected``) never count; saturation under a load rise (``load``) counts only once it has
    lasted ``load_hold_s`` (scaling had its chance)."""
    present = [a for a in inc.anomalies.values() if not a.labels.get("expected")
               and (not a.labels.get("load") or a.at - a.onset >= load_hold_s)]
    hard = [a for a in present if a.source in HARD_SOURCES]
    if hard:
        return True, f"hard signal: {hard[0].metric} on {hard[0].component}"
    symptoms = {(a.component, a.metric) for a in present if a.score > 0}
    if len(symptoms) >= 2:
        return True, "two signals: " + ", ".join(f"{c}/{m}" for c, m in sorted(symptoms)[:3])
    for k in symptoms:
        if hits.get(k, 0) >= min_hits:
            return True, f"sustained: {k[0]}/{k[1]} for {hits[k]} observations"
    return False, ""


def summary(anomalies: Iterable[Anomaly]) -> list[dict[str, Any]]:
    """Anomalies as plain evidence rows (for actions' evidence and post-mortems)."""
    return [{"component": a.component, "metric": a.metric, "source": a.source, "value": round(a.value, 4),
             "score": round(a.score, 3), "onset": a.onset, **({"eta_s": round(a.eta_s)} if a.eta_s else {})}
            for a in sorted(anomalies, key=lambda a: (a.onset, a.component, a.metric))]
