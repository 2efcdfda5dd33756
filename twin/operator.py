"""The human on call: part of the simulated world, not an engine.

Paged, the operator takes ``response_delay`` to get to a keyboard,
then finds the root cause (a human investigates with full knowledge) and
applies the right fix through the same control API, with the same latencies.
Every such fix is a human intervention in the ground truth.

Who pages the human is ``World.operator_route``: ``"raw_alerts"`` (the baselines: every raw firing
warning or critical alert pages, as a traditional on-call is paged) or ``"pages"`` (an engine set that
handles alerting: raw alerts reach nobody; only a ``Page`` action does, which the adapter routes to
:meth:`HumanOperator.page`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.telemetry import RawAlert

if TYPE_CHECKING:
    from twin.faults import Fault
    from twin.world import World

RETRY_S = 300.0


class HumanOperator:
    def __init__(self, world: World) -> None:
        self.w = world
        self.cfg = world.cfg.operator
        self.assigned: set[str] = set()

    def on_alerts(self, alerts: list[RawAlert]) -> None:
        """Raw alerts just emitted; they page the human only on the ``raw_alerts`` route."""
        if not self.cfg.enabled or self.w.operator_route != "raw_alerts":
            return
        for a in alerts:
            if a.state != "firing" or a.severity == "info" or (
                    self.cfg.paged_by == "critical_alerts" and a.severity != "critical"):
                continue
            self.page(a.fingerprint, {a.labels.get("service", ""), a.labels.get("server", "")})

    def page(self, reason: str, components: set[str]) -> None:
        """Page the operator about ``components``; each matching open fault gets one responder."""
        if not self.cfg.enabled:
            return
        self.w.truth.pages.append((self.w.now(), reason))
        components = self._with_dependencies(components)
        for f in self.w.faults.active:
            if f.rec.id in self.assigned or not (f.rec.components() & components):
                continue
            self.assigned.add(f.rec.id)
            self.w.later(self.cfg.response_delay, lambda f=f: self._respond(f))

    def _with_dependencies(self, components: set[str]) -> set[str]:
        """A human follows a symptom down the dependency chain to its cause."""
        deps = {s.name: [d.service for d in s.dependencies] for s in self.w.cfg.services}
        out = set(components)
        todo = [c for c in components if c in deps]
        while todo:
            for d in deps[todo.pop()]:
                if d not in out:
                    out.add(d)
                    todo.append(d)
        return out

    def _respond(self, f: Fault) -> None:
        if f not in self.w.faults.active:
            return  # fixed before the human got there
        if f.rec.human_started is None:
            f.rec.human_started = self.w.now()
        if not self.w.faults.human_fix(f):
            self.w.later(RETRY_S, lambda: self._respond(f))
