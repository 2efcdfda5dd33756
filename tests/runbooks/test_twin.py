"""Each fault of the twin's catalog, correctly diagnosed, is fixed by its runbook (the twin's resolution
predicate holds, credited to automation) and the run verifies it from metrics alone.

The driver stands in for detection, RCA and classification: 10 s after the onset it hands the runbook
library the fault's root component and class (read from the ground truth — this is a test, not an engine),
so what is measured is the runbook alone: does it pick a verb that truly fixes the fault, and does its
verification pass only once the service is healthy again.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adapters.base import Action, Observation
from adapters.sim import SimAdapter
from control.runtime import Runtime
from engines.ops.types import Anomaly, Candidate, IncidentContext
from engines.runbooks import Run, RunbookLibrary
from tests.builders import BASE, make_scenario
from twin.clock import SimClock
from twin.world import World

LIB = RunbookLibrary.load()
DIAGNOSIS_DELAY = 10.0


class Diagnosed:
    """Starts the best-matching runbook for the first fault once it is 'diagnosed', then steps it."""

    name = "ops"
    cadence = 5.0

    def __init__(self, world: World) -> None:
        self.w = world
        self.run: Run | None = None
        self.chosen = ""

    def step(self, now: float, obs: Observation) -> list[Action]:
        if self.run is None:
            due = [f for f in self.w.truth.faults if f.start + DIAGNOSIS_DELAY <= now]
            if not due:
                return []
            f = due[0]
            comp = f.root_component
            ctx = IncidentContext("inc-1", (comp,), "P2", now, (Candidate(comp, 0.9, f.type),),
                                  (Anomaly(comp, "error_ratio", 0.9, 0.0, onset=f.start + 5, at=now),))
            books = LIB.match(ctx, obs)
            assert books, f"no runbook matches {f.type} on {comp}"
            self.chosen = books[0].name
            self.run = LIB.start(books[0], ctx, now, obs)
        return self.run.step(now, obs)

    def on_result(self, rec: Any) -> None:
        if self.run is not None:
            self.run.on_result(rec)


def run_fault(spec: dict[str, Any], until: float = 1500.0, **overrides: Any) -> tuple[Diagnosed, Any]:
    w = World(make_scenario(faults=[spec], duration=until, **overrides))
    w.operator_route = "pages"  # the simulated human acts on pages only: the runbook is on its own
    adapter = SimAdapter(w)
    d = Diagnosed(w)
    Runtime(adapter, [d]).attach(SimClock(w.env))
    w.run(until=until)
    return d, w.truth.faults[0]


CASES = {
    "server_crash": {"type": "server_crash", "at": 600, "service": "api"},
    "db_pool_exhaustion": {"type": "db_pool_exhaustion", "at": 600, "service": "db"},
    "latency_degradation": {"type": "latency_degradation", "at": 600, "service": "api"},
    "bad_deploy": {"type": "bad_deploy", "at": 600, "service": "api"},
    "disk_pressure": {"type": "disk_pressure", "at": 600, "service": "api"},
    "hypervisor_failure": {"type": "hypervisor_failure", "at": 600},
    "cpu_throttling": {"type": "cpu_throttling", "at": 600},
    "memory_leak": {"type": "memory_leak", "at": 600, "service": "api"},
    "az_outage": {"type": "az_outage", "at": 600, "zone": "az-1", "duration": 3600},
    "network_partition": {"type": "network_partition", "at": 600, "zone": "az-1", "duration": 3600},
}


@pytest.mark.parametrize("fault", sorted(CASES))
def test_runbook_fixes_the_fault_in_the_twin(fault: str) -> None:
    d, rec = run_fault(CASES[fault])
    assert d.run is not None and d.run.status == "succeeded", (d.chosen, d.run and d.run.log)
    assert rec.end is not None and rec.resolved_by == "automation", rec
    assert d.run.log[-1][0] >= rec.end  # verified no earlier than the fault really ended


def test_spot_capacity_is_replaced_on_demand() -> None:
    services = copy.deepcopy(BASE["services"])
    services[0]["pricing"] = "spot"
    d, rec = run_fault({"type": "spot_preemption", "at": 600, "service": "api"}, services=services)
    assert d.chosen == "spot-preemption-on-demand" and d.run is not None and d.run.status == "succeeded"
    assert rec.end is not None and rec.resolved_by == "automation"
    creates = [a for a in d.run.actions if a.kind == "create_server"]
    assert creates and all(a.pricing == "on_demand" for a in creates)  # type: ignore[attr-defined]


def test_a_crashed_server_on_a_dead_host_is_evacuated_when_the_reboot_cannot_reach_it() -> None:
    """Misdiagnosed as a server crash (the inventory shows the host up for a minute): reboot, then evacuate."""

    class OneServer(Diagnosed):
        def step(self, now: float, obs: Observation) -> list[Action]:
            if self.run is None and self.w.truth.faults and self.w.truth.faults[0].start + 5 <= now:
                sid = self.w.truth.faults[0].servers[0]
                ctx = IncidentContext("inc-1", (sid,), "P2", now, (Candidate(sid, 0.9, "server_crash"),))
                self.chosen = "server-crash-reboot"
                self.run = LIB.start(self.chosen, ctx, now, obs)
            return self.run.step(now, obs) if self.run is not None else []

    w = World(make_scenario(faults=[CASES["hypervisor_failure"]], duration=1200))
    w.operator_route = "pages"
    d = OneServer(w)
    rt = Runtime(SimAdapter(w), [d])
    rt.attach(SimClock(w.env))
    w.run(until=1200)
    rec = w.truth.faults[0]
    sid = rec.servers[0]
    assert d.run is not None
    kinds = [(r.kind, r.outcome) for r in rt.choke.log.records if r.target == sid]  # type: ignore[attr-defined]
    assert kinds[0] == ("reboot_server", "failed") and ("migrate_server", "executed") in kinds
