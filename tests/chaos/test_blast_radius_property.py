"""Issue 10 §3 as a property: whatever the plan, and whatever else fails during it, every experiment stays inside
its declared blast radius, aborts within one scrape of a steady-state violation, and leaves no fault behind."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from engines.chaos import KINDS, Spec
from tests.chaos.harness import first_violation, run

SCRAPE = 30.0
ROLLING = 900.0  # a release rollback's rolling restart
IN_FLIGHT = 120.0  # a reboot or start an engine had begun when the experiment's duration ran out
INJECTABLE = sorted(n for n, k in KINDS.items() if k.fault)
ORGANIC = ("server_crash", "latency_degradation", "db_pool_exhaustion", "disk_pressure")

plans = st.lists(st.tuples(st.sampled_from(INJECTABLE), st.floats(0.2, 3.0), st.sampled_from([300.0, 600.0, 900.0])),
                 min_size=1, max_size=3)
failures = st.lists(st.tuples(st.sampled_from(ORGANIC), st.sampled_from(["api", "db"]), st.floats(600.0, 6000.0)),
                    max_size=2)


# each example runs a small twin for a few simulated hours (a fraction of a second): few examples, and no shrinking (a failure
# prints its plan; shrinking it took minutes)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(plan=plans, organic=failures, seed=st.integers(0, 20))
def test_experiments_stay_in_radius_abort_in_time_and_leave_nothing(plan, organic, seed) -> None:  # type: ignore[no-untyped-def]
    specs = [Spec(f"p{i}-{n}", KINDS[n], duration=d, magnitude=m) for i, (n, m, d) in enumerate(plan)]
    duration = 1800.0 + sum(d + 600.0 for _, _, d in plan) + 1800.0
    faults = [{"type": t, "at": min(at, duration - 600.0), "service": s} for t, s, at in organic]
    r = run(specs, duration=duration, faults=faults, seed=seed)
    assert r.engine is not None
    log = {x.spec.name: x for x in r.engine.log}
    mine = [rec for rec in r.records if rec.engine == "chaos-engineer"]
    injected = [rec for rec in mine if rec.kind == "inject_fault" and rec.outcome == "executed"]
    assert len(injected) <= len(specs)  # failures around it never make it inject more
    chaos = {f.experiment: f for f in r.world.truth.faults if f.chaos}
    assert len(chaos) == len(injected)
    for rec in injected:
        x = log[rec.action.experiment]
        f = chaos[x.spec.name]
        radius, target = x.radius, x.target
        assert rec.action.evidence["blast_radius"] == radius
        if radius == "single-server":
            assert f.servers == [target] and not f.hypervisors and not f.zones and f.services == list(x.services)
        elif radius == "single-service":
            assert f.services == [target] and not f.hypervisors and not f.zones
        elif radius == "single-hypervisor":
            assert f.hypervisors == [target] and not f.zones
        else:
            assert radius == "single-az" and f.zones == [target] and not f.hypervisors
        # nothing left behind: the fault ended by its duration, or when a repair in flight then completed (a reboot
        # an engine had started); a leaking release is rolled back server by server, which takes minutes more
        slack = ROLLING if f.type in ("memory_leak", "bad_deploy") else IN_FLIGHT
        assert f.end is not None and f.end <= f.start + rec.action.duration + slack + 1e-6
    for rec in mine:  # every action of an experiment touches only what it may reach
        ev = rec.action.evidence
        name = rec.action.experiment if rec.kind == "inject_fault" else ev.get("chaos_rollback", ev.get("chaos_abort"))
        assert name in log and rec.target in log[name].reach | {log[name].target}
    for x in log.values():
        if x.started_at is None:
            continue
        seen = first_violation(r, x)
        if seen is not None:  # the engine did not miss it: aborted within one scrape of the first bad sample
            assert x.aborted_at is not None and x.aborted_at - seen <= SCRAPE
        if x.violation is not None:
            assert x.aborted_at - x.violation.at <= SCRAPE
    m = r.score.metrics
    assert m["chaos_faults_left"] == 0 and m["chaos_beyond_radius"] == 0
    assert m["chaos_abort_delay_max_s"] is None or m["chaos_abort_delay_max_s"] <= SCRAPE  # from the audit log
    for x in log.values():
        event(f"outcome: {x.outcome}")
