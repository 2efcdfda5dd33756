"""Engines that try to game the score, for tests only.

Each one aims at one figure: the spammer at detection (declare everything,
page everyone), the do-nothing engine at not being blamed, the always-rollback
engine at automation credit, the scale-everything engine at availability.  The
tests in ``tests/test_scoring_honest.py`` assert each one scores badly on
exactly the figure it tries to game.

They are plugged into the runner through :func:`run_engines`: registered in
the engine registry (``engines.registry.register`` / ``register_set``) and, while
the runner still resolves sets through ``engine_set``, wrapped into that too,
for the duration of the run only.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from adapters.base import Action, CreateServer, DeclareIncident, Notify, Observation, Page, RollbackDeploy
from control.runtime import AllowAll, Engine


class Spammer:
    """Declares a P0 incident on every service every 5 s and pages the on-call human each time."""

    name = "spammer"
    cadence = 5.0

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        out: list[Action] = []
        for svc in obs.services:
            iid = f"spam-{next(self._ids)}"
            out.append(DeclareIncident(incident_id=iid, components=(svc,), severity="P0", title=f"{svc} is bad",
                                       root_causes=({"component": svc, "score": 1.0},)))
            out.append(Page(who="oncall", why="spam", incident_id=iid, severity="P0", components=(svc,)))
        return out


class DoNothing:
    name = "do-nothing"
    cadence = 15.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return ()


class AlwaysRollback:
    """Rolls back every service every minute, whatever happened."""

    name = "always-rollback"
    cadence = 60.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [RollbackDeploy(service=s, reason="roll back everything") for s in obs.services]


class ScaleEverything:
    """Creates a server for every service on every step (until the cloud or the service's maximum says no)."""

    name = "scale-everything"
    cadence = 15.0

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [CreateServer(service=s.name) for s in obs.services.values() if s.active + s.building < s.max_servers]


class SimpleDetector:
    """An honest, naive detector: declares an incident on a service whose error ratio or p95 latency is high."""

    name = "simple-detector"

    def __init__(self, cadence: float = 15.0, max_error: float = 0.05, max_latency_ms: float = 500.0) -> None:
        self.cadence = cadence
        self.max_error = max_error
        self.max_latency = max_latency_ms
        self._ids = itertools.count(1)

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        err, lat = obs.latest("error_ratio"), obs.latest("latency_p95_ms")
        open_on = {c for i in obs.incidents.values() for c in i.components}
        out: list[Action] = []
        for svc in obs.services:
            bad = err.get(svc, 0.0) > self.max_error or lat.get(svc, 0.0) > self.max_latency
            if bad and svc not in open_on:
                out.append(DeclareIncident(incident_id=f"det-{next(self._ids)}", components=(svc,), severity="P2",
                                           root_causes=({"component": svc, "score": 0.5},)))
        return out


class _FreshAlerts:
    """Reads each raw firing notification once: those at or after the last one seen."""

    def __init__(self) -> None:
        self._last = -1.0

    def fresh(self, obs: Observation) -> list[Any]:
        new = [a for a in obs.alerts(self._last) if a.state == "firing"]
        self._last = max([self._last, *(a.at for a in new)])
        return new


class PageEveryAlert(_FreshAlerts):
    """Handles alerting by paging the on-call human for every raw firing notification (repeats included)."""

    name = "page-every-alert"
    cadence = 5.0
    handles_alerting = True

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        new = self.fresh(obs)
        return [Page(who="oncall", why=a.name, severity="P1", evidence={"fingerprints": [a.fingerprint]},
                     components=tuple(v for k, v in a.labels.items() if k in ("service", "server") and v))
                for a in new]


class PageNothing:
    """Takes over alerting (raw alerts reach nobody) and pages nobody: perfect suppression, by missing everything."""

    name = "page-nothing"
    cadence = 15.0
    handles_alerting = True

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return ()


class NotifyEverything(_FreshAlerts):
    """Takes over alerting and posts every raw alert to the dashboard: a Notify pages nobody."""

    name = "notify-everything"
    cadence = 5.0
    handles_alerting = True

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        return [Notify(component=a.labels.get("service", a.name), severity=a.severity, message=a.name)
                for a in self.fresh(obs)]


GAMING: dict[str, Callable[[], list[Engine]]] = {
    "spammer": lambda: [Spammer()],
    "do-nothing": lambda: [DoNothing()],
    "always-rollback": lambda: [AlwaysRollback()],
    "scale-everything": lambda: [ScaleEverything()],
    "simple-detector": lambda: [SimpleDetector()],
    "page-every-alert": lambda: [PageEveryAlert()],
    "page-nothing": lambda: [PageNothing()],
    "notify-everything": lambda: [NotifyEverything()],
}


@contextlib.contextmanager
def installed(name: str, factory: Callable[[], list[Engine]]) -> Iterator[None]:
    """Make ``name`` an engine set the runner can run, for the duration of the block.

    Registered in the engine registry (``engines.registry``) when it exists, and the runner's
    ``engine_set`` (if it still resolves sets through one) is wrapped too, so either route finds it.
    """
    import scenarios.runner as runner

    with contextlib.ExitStack() as stack:
        try:
            from engines import registry
        except ImportError:
            registry = None  # type: ignore[assignment]
        if registry is not None:
            built = factory()
            names = [f"test-{name}-{k}" for k in range(len(built))]
            for k, ename in enumerate(names):
                registry.register(ename, lambda cfg, k=k: factory()[k], description="test-only engine", replace=True)
                stack.callback(registry.REGISTRY.unregister, ename)
            registry.register_set(name, names, replace=True, handles_alerting=any(
                isinstance(e, Spammer) or getattr(e, "handles_alerting", False) for e in built))
            stack.callback(registry.REGISTRY.unregister_set, name)
        original = getattr(runner, "engine_set", None)
        if original is not None:
            def engine_set(n: str) -> list[Engine]:
                return factory() if n == name else original(n)

            runner.engine_set = engine_set  # type: ignore[attr-defined]
            stack.callback(setattr, runner, "engine_set", original)
        yield


def run_engines(scn: Any, name: str, **kw: Any) -> Any:
    """Run the baseline or gaming engine set ``name`` on ``scn`` (every action allowed by the gate)."""
    from scenarios.runner import run_scenario

    kw.setdefault("gate", AllowAll())
    if name in GAMING:
        with installed(name, GAMING[name]):
            return run_scenario(scn, name, **kw)
    return run_scenario(scn, name, **kw)
