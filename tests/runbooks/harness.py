"""A fake world with a tiny scraper, a runbook run driven through the real choke point, and a gate to script."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Action, ActionResult, Observation
from adapters.fake import FakeAdapter, FakeService
from control.runtime import ALLOW, ChokePoint, Runtime, Verdict
from engines.ops.types import Anomaly, Candidate, IncidentContext
from engines.runbooks import Run, RunbookLibrary


class ScriptedGate:
    """Allows everything except the kinds in ``deny`` (denied) and ``hold`` (approval needed)."""

    def __init__(self, deny: tuple[str, ...] = (), hold: tuple[str, ...] = ()) -> None:
        self.deny, self.hold = deny, hold

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        if action.kind in self.deny:
            return Verdict("deny", rule="test-deny")
        if action.kind in self.hold:
            return Verdict("approval", rule="test-hold", approvers=1)
        return ALLOW

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        return None


@dataclass
class Driver:
    """The ops center's part, as small as it gets: step the run, hand it its records."""

    run: Run
    name: str = "ops"
    cadence: float = 5.0
    issued: list[Action] = field(default_factory=list)

    def step(self, now: float, obs: Observation) -> list[Action]:
        out = self.run.step(now, obs)
        self.issued.extend(out)
        return out

    def on_result(self, rec: Any) -> None:
        self.run.on_result(rec)


class World:
    """A FakeAdapter whose metrics a scraper writes every 5 s from ``values(world) -> {(metric, labels): v}``."""

    def __init__(self, services: list[FakeService], values: Callable[[World], dict[tuple[str, tuple], float]],
                 reboot_delay: float = 20.0, gate: Any = None, **fake: Any) -> None:
        self.fake = FakeAdapter(services, reboot_delay=reboot_delay, restart_delay=5.0, **fake)
        self.values = values
        self.crashed: set[str] = set()
        self.choke = ChokePoint(self.fake, gate)
        self.statuses: list[str] = []

    def scrape(self) -> None:
        for (metric, labels), v in self.values(self).items():
            self.fake.feed(metric, dict(labels), self.fake.t, v)

    def advance(self, seconds: float) -> None:
        for _ in range(int(seconds // 5)):
            self.fake.advance(5)
            self.scrape()

    def serving(self, service: str) -> int:
        return sum(1 for s in self.fake.servers(service=service)
                   if s.status == "ACTIVE" and s.id not in self.crashed)

    def start(self, lib: RunbookLibrary, book: Any, ctx: IncidentContext) -> Driver:
        obs = Observation(self.fake, self.fake.t)
        try:
            run = lib.start(book, ctx, self.fake.t, obs)
        finally:
            obs.close()
        return Driver(run)

    def drive(self, driver: Driver, seconds: float, each: Callable[[], None] | None = None) -> None:
        rt = Runtime(self.fake, [driver], self.choke)
        for _ in range(int(seconds // 5)):
            self.advance(5)
            if each:
                each()
            rt.step(driver, self.fake.t)
            if not self.statuses or self.statuses[-1] != driver.run.status:
                self.statuses.append(driver.run.status)
            if driver.run.done:
                return


def ctx(component: str, fault_class: str | None, *, at: float, severity: str = "P2",
        components: tuple[str, ...] | None = None, metric: str = "error_ratio", source: str = "metric",
        more: tuple[Candidate, ...] = ()) -> IncidentContext:
    return IncidentContext(
        incident_id="inc-1", components=components or (component,), severity=severity,  # type: ignore[arg-type]
        declared_at=at, candidates=(Candidate(component, 0.9, fault_class, ("test",)), *more),
        anomalies=(Anomaly(component, metric, 0.9, 1.0, onset=at - 5, at=at, source=source),))  # type: ignore[arg-type]
