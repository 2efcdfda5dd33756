"""The chaos engineer: daily tests and weekly game days, watched by a steady-state hypothesis.

It decides only from the observation and acts only through ``InjectFault`` and ordinary rollback actions
returned to the runtime (so every one passes the safety gate).  One experiment at a time:

1. **Before** — none while an incident of P0/P1 is open, nor outside the configured working hours (the gate
   enforces both too); the steady state must hold; the probes' baselines are measured.
2. **Inject** — ``InjectFault`` with the experiment's ``duration`` (the world ends the fault by then whatever
   happens) and the blast radius its target declares in the evidence.
3. **Watch** — every step, every scrape sample since the last step is checked against the tolerances; a
   violation, or a real incident (one naming components outside the experiment's reach) opening, aborts it
   at once: a ``Notify`` records the abort (with the violating sample's time) and the rollback actions are
   sent in the same step.
4. **End** — after ``duration`` (plus ``end_grace_s``, so the world's own end goes first) whatever effect is still
   observed is rolled back.

``log`` keeps one entry per experiment (outcome, violation, abort latency, rollbacks) for reports and tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import Action, InjectFault, Notify, Observation
from control.runtime import ActionRecord
from engines.chaos.catalog import DAILY, GAME_DAY, KINDS, Kind
from engines.chaos.hypothesis import Probe, SteadyState, Violation
from engines.chaos.rollback import rollback_actions


class ChaosEngineerConfig(BaseModel):
    """Settings of ``chaos_engineer`` (engines.registry validates them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(15.0, gt=0, description="seconds between steps (at most one scrape interval)")
    daily: tuple[str, ...] = Field(tuple(k.name for k in DAILY), description="daily tests, in order")
    game_day: tuple[str, ...] = Field(tuple(k.name for k in GAME_DAY), description="the weekly game day's experiments")
    game_day_weekday: int = Field(1, ge=0, le=6, description="weekday of the game day (Monday = 0); it replaces "
                                                             "that day's daily tests")
    business_days: tuple[int, ...] = Field((0, 1, 2, 3, 4), description="weekdays experiments run on")
    start_hour: float = Field(10.0, ge=0, lt=24, description="first experiment of a day starts then (local time)")
    end_hour: float = Field(16.0, gt=0, le=24, description="no experiment starts after this hour")
    utc_offset_hours: float = Field(0.0, ge=-14, le=14, description="local time = UTC + this ('now' is POSIX)")
    duration_s: float = Field(900.0, gt=0, description="how long each injected fault lasts at most")
    gap_s: float = Field(1800.0, ge=0, description="quiet time between two experiments")
    end_grace_s: float = Field(120.0, ge=0, description="after a fault's duration, wait this long (the world ends "
                                                        "it and the inventory shows it) before rolling back what "
                                                        "is still observed")
    max_error_ratio: float = Field(0.05, gt=0, le=1, description="steady state: error ratio of each watched service")
    max_latency_factor: float = Field(3.0, gt=1, description="steady state: p95 latency at most this x its baseline")
    latency_floor_ms: float = Field(50.0, ge=0, description="the latency bound is never below this")
    canary_regions: tuple[str, ...] = Field((), description="regions or zones where each fault type runs first "
                                                             "(as the gate's Chaos.CanaryRegions)")
    seed: int = Field(0, ge=0, description="seed of the target draws")


@dataclass
class Spec:
    """One experiment to run: a kind aimed at a target (None: drawn when it starts)."""

    name: str
    kind: Kind
    target: str | None = None
    duration: float | None = None
    magnitude: float | None = None
    probes: tuple[Probe, ...] | None = None  # None: the default hypothesis around the target


@dataclass
class Run:
    """An experiment as it went; ``log`` entries are :meth:`as_dict` of these."""

    spec: Spec
    planned_at: float
    target: str = ""
    radius: str = ""
    services: tuple[str, ...] = ()
    reach: frozenset[str] = frozenset()
    steady: SteadyState | None = None
    action: InjectFault | None = None
    state: str = "queued"  # queued, injecting, running, done
    outcome: str = ""  # completed, aborted, denied, needs-approval, failed, skipped
    detail: str = ""
    started_at: float | None = None
    ends_at: float = math.inf
    checked_to: float = -math.inf
    violation: Violation | None = None
    aborted_at: float | None = None
    rollbacks: list[str] = field(default_factory=list)
    postponed: int = 0
    in_canary: bool = False  # aimed inside the canary regions (the fault type's first run)

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.spec.name, "kind": self.spec.kind.name, "fault": self.spec.kind.fault,
                "target": self.target, "blast_radius": self.radius, "services": list(self.services),
                "planned_at": self.planned_at, "started_at": self.started_at, "outcome": self.outcome,
                "detail": self.detail, "violation": self.violation.as_dict() if self.violation else None,
                "aborted_at": self.aborted_at,
                "abort_delay_s": (self.aborted_at - self.violation.at
                                  if self.aborted_at is not None and self.violation else None),
                "rollbacks": list(self.rollbacks), "postponed": self.postponed}


class ChaosEngineer:
    """Schedules and runs chaos experiments within their blast radius (see the module docstring)."""

    name = "chaos-engineer"

    def __init__(self, config: ChaosEngineerConfig | None = None, plan: Iterable[Spec] = ()) -> None:
        self.cfg = config or ChaosEngineerConfig()
        for n in (*self.cfg.daily, *self.cfg.game_day):
            if n not in KINDS:
                raise ValueError(f"unknown experiment kind {n!r}; allowed: {', '.join(KINDS)}")
        self.cadence = self.cfg.cadence
        self.rng = random.Random(self.cfg.seed)
        self.queue: list[Run] = []
        self.fixed = list(plan)  # an explicit plan (a Chaos Toolkit experiment): no schedule then
        self.current: Run | None = None
        self.log: list[Run] = []
        self.days: set[str] = set()
        self.next_at = -math.inf
        self.canary_done: set[str] = set()  # fault types that already ran inside the canary regions

    # ------------------------------------------------------------ schedule
    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, UTC) + timedelta(hours=self.cfg.utc_offset_hours)

    def _in_window(self, now: float) -> bool:
        t = self._local(now)
        h = t.hour + t.minute / 60 + t.second / 3600
        return t.weekday() in self.cfg.business_days and self.cfg.start_hour <= h < self.cfg.end_hour

    def _plan_day(self, now: float) -> None:
        t = self._local(now)
        day = t.date().isoformat()
        if day in self.days or not self._in_window(now):
            return
        self.days.add(day)
        if self.fixed:
            specs, self.fixed = self.fixed, []
        else:
            game = t.weekday() == self.cfg.game_day_weekday
            names = self.cfg.game_day if game else self.cfg.daily
            specs = [Spec(f"{'gameday' if game else 'daily'}-{day}-{n}", KINDS[n]) for n in names]
        self.queue += [Run(s, now) for s in specs]

    # ---------------------------------------------------------------- step
    def step(self, now: float, obs: Observation) -> list[Action]:
        self._plan_day(now)
        run = self.current
        if run is None:
            if not self.queue or now < self.next_at:
                return []
            if not self._in_window(now):  # the day's window closed: what is left waits for no one
                for r in self.queue:
                    self._finish(r, "skipped", "outside the working hours before its turn came")
                self.queue.clear()
                return []
            return self._start(now, obs, self.queue[0])
        if run.state == "running":
            return self._watch(now, obs, run)
        return []

    def _start(self, now: float, obs: Observation, run: Run) -> list[Action]:
        kind = run.spec.kind
        hot = [i.id for i in obs.incidents.values() if i.severity in ("P0", "P1")
               and i.status not in ("mitigated", "resolved")]
        if hot:
            run.postponed += 1
            run.detail = f"postponed: open P0/P1 {', '.join(hot)}"
            self.next_at = now + 300.0
            return []
        self.queue.pop(0)
        if kind.fault is None:
            self._finish(run, "skipped", kind.note)
            return []
        target = run.spec.target or self._pick(obs, kind)
        run.in_canary = (bool(self.cfg.canary_regions) and kind.fault not in self.canary_done
                         and not run.spec.target and kind.aim != "service")
        if target is None:
            self._finish(run, "skipped", f"no target for {kind.name} in the observation")
            return []
        run.target, run.radius = target, self._radius(obs, target, kind)
        run.services = self._services_of(obs, target)
        run.reach = self._reach(obs, target, run.services)
        run.steady = SteadyState(run.spec.probes or self._default_probes(obs, run.services))
        broken = run.steady.holds(obs, 2 * self.cadence)
        if broken is not None:
            self.queue.insert(0, run)
            run.postponed += 1
            run.detail = f"postponed: steady state does not hold ({broken.probe.name} = {broken.value:.3g})"
            self.next_at = now + 300.0
            return []
        run.steady.measure_baseline(obs)
        run.action = InjectFault(
            fault=kind.fault, target_component=target, duration=run.spec.duration or self.cfg.duration_s,
            magnitude=run.spec.magnitude if run.spec.magnitude is not None else kind.magnitude,
            experiment=run.spec.name, reason=f"chaos {kind.name}: {kind.fault} on {target}",
            evidence={"blast_radius": run.radius, "chaos_experiment": run.spec.name,
                      "steady_state": [p.describe(run.steady.baseline.get(p.name)) for p in run.steady.probes]})
        run.state = "injecting"
        self.current = run
        return [run.action]

    def on_result(self, rec: ActionRecord) -> None:
        run = self.current
        if run is None or rec.action is not run.action:
            return
        if rec.outcome == "executed":
            run.state, run.started_at = "running", rec.at
            run.ends_at = rec.at + (run.spec.duration or self.cfg.duration_s)
            run.checked_to = rec.at
            if self._in_canary_zone(run):
                self.canary_done.add(run.spec.kind.fault or "")
            return
        why = {"denied": "denied", "proposed": "needs-approval"}.get(rec.outcome, "failed")
        self._finish(run, why, f"{rec.verdict.rule}: {rec.result.detail if rec.result else rec.error or ''}")
        self.current = None
        self.next_at = rec.at + self.cadence

    def _watch(self, now: float, obs: Observation, run: Run) -> list[Action]:
        assert run.steady is not None
        window = max(now - run.checked_to, 0.0) + 2 * self.cadence
        v = run.steady.check(obs, run.checked_to, window)
        run.checked_to = now
        real = self._real_incident(obs, run)
        if v is not None or real:
            run.violation = v
            run.aborted_at = now
            why = (f"steady state broken: {v.probe.name} = {v.value:.3g} outside [{v.bound[0]:g}, {v.bound[1]:g}]"
                   if v is not None else f"a real incident opened: {real}")
            return self._end(now, obs, run, "aborted", why, force=True)
        if now >= run.ends_at + self.cfg.end_grace_s:  # the world's own end of the fault comes first
            return self._end(now, obs, run, "completed", "steady state held", force=False)
        return []

    def _end(self, now: float, obs: Observation, run: Run, outcome: str, why: str, force: bool) -> list[Action]:
        actions = self._rollback(obs, run, force)
        run.rollbacks = [f"{a.kind} {a.target()}" for a in actions]
        if outcome == "aborted":  # the abort itself goes on the record (the audit trail), rollback or not
            v = run.violation
            actions.insert(0, Notify(component=run.target, severity="warning",
                                     message=f"chaos experiment {run.spec.name} aborted: {why}",
                                     reason=why, evidence={"chaos_abort": run.spec.name,
                                                           "violation_sample_at": v.at if v else None}))
        self._finish(run, outcome, why)
        self.current = None
        self.next_at = now + self.cfg.gap_s
        return actions

    def _finish(self, run: Run, outcome: str, detail: str) -> None:
        run.state, run.outcome, run.detail = "done", outcome, detail
        self.log.append(run)

    # ----------------------------------------------------------- rollbacks
    def _rollback(self, obs: Observation, run: Run, force: bool) -> list[Action]:
        """The actions that end what is still observed of the fault (all of them on an abort)."""
        meta = {"reason": f"chaos rollback of {run.spec.name}", "evidence": {"chaos_rollback": run.spec.name},
                "incident": self._owner(obs, run)}
        return rollback_actions(obs, run.spec.kind.fault or "", run.target, force=force, meta=meta,
                                latency_bound=self._bound(run, "latency_p95_ms", run.target))

    def _bound(self, run: Run, metric: str, service: str) -> float:
        for p in run.steady.probes if run.steady else ():
            if p.metric == metric and p.service == service:
                return p.bound(run.steady.baseline.get(p.name))[1] if run.steady else math.inf
        return math.inf

    # ------------------------------------------------------------- targets
    def _pick(self, obs: Observation, kind: Kind) -> str | None:
        """A target for ``kind``: canary zones first for a fault type that has not run there yet."""
        canary = set(self.cfg.canary_regions)
        first = bool(canary) and kind.fault not in self.canary_done

        def in_canary(zone: str) -> bool:
            return zone in canary or any(h.region in canary for h in obs.hypervisors if h.zone == zone)

        services = self._candidates(obs, kind)
        if kind.aim == "server":
            servers = [s for name in services for s in obs.servers(service=name, status="ACTIVE")]
            if first:
                servers = [s for s in servers if in_canary(s.zone)]
            return self.rng.choice(sorted(servers, key=lambda s: s.id)).id if servers else None
        if kind.aim == "service":  # a service-wide fault follows the service wherever it runs
            return self.rng.choice(services) if services else None
        hvs = [h for h in obs.hypervisors if h.state == "up"]
        if first:
            hvs = [h for h in hvs if in_canary(h.zone)]
        if kind.aim == "hypervisor":
            busy = sorted(((h.vcpus_used, h.name) for h in hvs), reverse=True)
            return busy[0][1] if busy and busy[0][0] > 0 else None
        zones = sorted({h.zone for h in hvs})
        if len({h.zone for h in obs.hypervisors}) < 2:
            return None  # a zone failure with no other zone to fail over to is an outage, not an experiment
        return self.rng.choice(zones) if zones else None

    def _candidates(self, obs: Observation, kind: Kind) -> list[str]:
        svcs = obs.services
        redundant = sorted(n for n, s in svcs.items() if s.active >= 2)
        if kind.pick == "stateful":
            return [n for n in redundant if svcs[n].stateful and self._callers(obs, n)] or []
        if kind.pick == "deepest":
            ranked = sorted(redundant, key=lambda n: (-len(self._callers(obs, n)), n))
            return ranked[:1]
        if kind.pick == "edge":
            return [n for n in redundant if not self._callers(obs, n)]
        return redundant

    def _callers(self, obs: Observation, service: str) -> set[str]:
        """Every service that calls ``service``, directly or not."""
        out: set[str] = set()
        todo = [service]
        while todo:
            x = todo.pop()
            for n, s in obs.services.items():
                if x in s.dependencies and n not in out:
                    out.add(n)
                    todo.append(n)
        return out

    def _services_of(self, obs: Observation, target: str) -> tuple[str, ...]:
        s = obs.server(target)
        if s is not None:
            return (s.service,) if s.service else ()
        if target in obs.services:
            return (target,)
        hosts = {h.name for h in obs.hypervisors if target in (h.id, h.name, h.zone)} | {
            h.id for h in obs.hypervisors if target in (h.id, h.name, h.zone)}
        return tuple(sorted({x.service for x in obs.servers() if x.hypervisor in hosts and x.service}))

    def _reach(self, obs: Observation, target: str, services: tuple[str, ...]) -> frozenset[str]:
        """Every component the experiment may show up on: the target, its services, their callers, their
        servers, and the target's hosts and zones."""
        svcs = set(services)
        for s in services:
            svcs |= self._callers(obs, s)
        out = {target} | svcs | {x.id for n in svcs for x in obs.servers(service=n)}
        out |= {v for h in obs.hypervisors if target in (h.id, h.name, h.zone) for v in (h.id, h.name, h.zone)}
        return frozenset(out)

    def _default_probes(self, obs: Observation, services: tuple[str, ...]) -> tuple[Probe, ...]:
        """Error ratio and p95 latency of the target's services and every service calling them."""
        watched = set(services)
        for s in services:
            watched |= self._callers(obs, s)
        c = self.cfg
        return tuple(p for n in sorted(watched) for p in (
            Probe("error_ratio", n, max=c.max_error_ratio),
            Probe("latency_p95_ms", n, factor=c.max_latency_factor, floor=c.latency_floor_ms)))

    def _radius(self, obs: Observation, target: str, kind: Kind) -> str:
        if obs.server(target) is not None:
            return "single-server"
        if target in obs.services:
            return "single-service"
        if any(target in (h.id, h.name) for h in obs.hypervisors):
            return "single-hypervisor"
        if any(target == h.zone for h in obs.hypervisors):
            return "single-az"
        return "single-region" if any(target == h.region for h in obs.hypervisors) else kind.radius

    def _in_canary_zone(self, run: Run) -> bool:
        return run.in_canary

    # ----------------------------------------------------------- incidents
    def _real_incident(self, obs: Observation, run: Run) -> str:
        """An incident opened since the injection that names something outside the experiment's reach, or an
        open P0/P1 it did not cause (its components are outside the reach too)."""
        started = run.started_at if run.started_at is not None else math.inf
        for i in obs.incidents.values():
            if i.status in ("mitigated", "resolved"):
                continue
            outside = [c for c in i.components if c not in run.reach]
            if outside and (i.declared_at >= started or i.severity in ("P0", "P1")):
                return f"{i.id} ({i.severity}) on {', '.join(outside[:3])}"
        return ""

    def _owner(self, obs: Observation, run: Run) -> str | None:
        """The open incident that owns the experiment's target (its response includes the rollback)."""
        for i in obs.incidents.values():
            if i.status not in ("resolved",) and ({run.target, *run.services} & set(i.components)):
                return i.id
        return None
