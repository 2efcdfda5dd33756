"""A fake world (``adapters.fake.FakeAdapter``) driving one SmartAlerting engine step by step."""

from __future__ import annotations

from typing import Any

from adapters.base import Action, Notify, Observation, Page
from adapters.fake import FakeAdapter, FakeService
from engines.alerting import SmartAlerting, SmartAlertingConfig

# api -> cache -> db, plus an unrelated batch service
SERVICES = [FakeService("api", dependencies=("cache",)), FakeService("cache", dependencies=("db",)),
            FakeService("db"), FakeService("batch")]


class Harness:
    def __init__(self, services: list[FakeService] | None = None, **settings: Any) -> None:
        services = services or SERVICES
        self.fake = FakeAdapter(services)
        self.engine = SmartAlerting(SmartAlertingConfig(**settings))
        self.actions: list[tuple[float, Action]] = []
        for s in services:
            self.errors(s.name, 0.0)

    def errors(self, service: str, ratio: float) -> None:
        self.fake.feed("error_ratio", {"service": service}, fn=lambda t, r=ratio: r)

    def fire(self, name: str, service: str, severity: str = "warning", **labels: str) -> None:
        self.fake.push_alert(name, {"service": service, **labels}, severity=severity)

    def resolve(self, name: str, service: str, severity: str = "warning", **labels: str) -> None:
        self.fake.push_alert(name, {"service": service, **labels}, severity=severity, state="resolved")

    def step(self, seconds: float = 5.0) -> list[Action]:
        """Advance the fake's clock, then run one engine step; its actions are executed on the fake."""
        self.fake.advance(seconds)
        obs = Observation(self.fake, self.fake.now())
        try:
            out = list(self.engine.step(self.fake.now(), obs))
        finally:
            obs.close()
        for a in out:
            self.fake.execute(a)
            self.actions.append((self.fake.now(), a))
        return out

    def run(self, seconds: float, every: float = 5.0) -> None:
        for _ in range(int(seconds // every)):
            self.step(every)

    def pages(self) -> list[tuple[float, Page]]:
        return [(t, a) for t, a in self.actions if isinstance(a, Page)]

    def notifies(self) -> list[tuple[float, Notify]]:
        return [(t, a) for t, a in self.actions if isinstance(a, Notify)]
