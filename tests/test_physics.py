"""Physics invariants of the twin, for arbitrary small worlds and action sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import make_scenario
from twin import errors
from twin.world import DELETED, World

FAULTS = ["server_crash", "memory_leak", "db_pool_exhaustion", "latency_degradation", "bad_deploy", "disk_pressure",
          "hypervisor_failure", "cpu_throttling", "network_partition", "az_outage"]


@st.composite
def worlds(draw: st.DrawFn, resize: bool = True) -> World:
    api = draw(st.integers(0, 8))
    base = draw(st.floats(0, 2000))
    comps = [{"type": "noise", "sigma": 0.05}]
    if draw(st.booleans()):
        comps.append({"type": "spike", "at": 300, "duration": 600, "factor": draw(st.floats(1.5, 8))})
    if draw(st.booleans()):
        comps.append({"type": "idle", "start": 900, "end": 1200})
    faults = []
    for ftype in draw(st.lists(st.sampled_from(FAULTS), max_size=3)):
        f = {"type": ftype, "at": draw(st.integers(0, 1700))}
        if ftype not in ("hypervisor_failure", "cpu_throttling", "network_partition", "az_outage"):
            f["service"] = draw(st.sampled_from(["api", "db"]))
        faults.append(f)
    scn = make_scenario(
        seed=draw(st.integers(0, 2**16)), duration=1800,
        services=[
            {"name": "api", "project": "p", "flavor": "small", "servers": api, "capacity_per_vcpu": 50,
             "dependencies": [{"service": "db", "calls_per_request": 0.5}],
             "traffic": {"base": base, "components": comps}},
            {"name": "db", "project": "p", "flavor": "large", "servers": draw(st.integers(0, 3)),
             "capacity_per_vcpu": 40, "settings": {"pool_size": 50}},
        ], faults=faults)
    w = World(scn)
    # random control actions at random times, as an engine or a human would issue them
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.floats(0, 1790))
        kinds = ["create", "delete", "reboot", "migrate", "restart", "weights"] + (["resize"] if resize else [])
        kind = draw(st.sampled_from(kinds))
        pick = draw(st.integers(0, 10_000))
        w.later(at, lambda kind=kind, pick=pick: _act(w, kind, pick))
    return w


def _act(w: World, kind: str, pick: int) -> None:
    alive = np.flatnonzero(w.alive())
    sid = f"srv-{alive[pick % len(alive)]:06d}" if len(alive) else "srv-000000"
    try:
        match kind:
            case "create":
                w.create_servers("api", count=1 + pick % 3)
            case "delete":
                w.delete_server(sid)
            case "reboot":
                w.reboot_server(sid, hard=True)
            case "migrate":
                w.migrate_server(sid)
            case "resize":
                w.resize_server(sid, "large" if pick % 2 else "small")
            case "restart":
                w.restart_service("db")
            case "weights":
                w.set_lb_weights("api", {})
    except errors.TwinError:
        pass


@settings(max_examples=20)
@given(worlds())
def test_served_plus_dropped_equals_offered(w: World) -> None:
    w.run()
    w.finish()
    t = w.truth
    np.testing.assert_allclose(t.served + t.dropped, t.offered, rtol=1e-9, atol=1e-6)
    assert np.all(t.good <= t.served + 1e-6)
    assert np.all(t.dropped >= -1e-6)


@settings(max_examples=20)
@given(worlds(resize=False))  # a resize changes the price mid-life; covered by the next test
def test_spend_is_the_integral_of_price_and_stops_at_deletion(w: World) -> None:
    w.run()
    w.finish()
    n = w.n
    end = np.minimum(w.deleted_at[:n], w.now())
    life = np.maximum(end - np.minimum(w.created_at[:n], w.now()), 0.0)
    expected = w.f_od[w.flavor[:n]] * life  # on-demand only: a constant price per second
    np.testing.assert_allclose(w.billed[:n], expected, rtol=1e-9, atol=1e-9)
    assert abs(w.spend_total - expected.sum()) <= 1e-9 * max(1.0, expected.sum())
    assert abs(w.spend_project.sum() - w.spend_total) <= 1e-9 * max(1.0, w.spend_total)
    # nothing is billed after deletion: a deleted server's bill is frozen
    deleted = np.flatnonzero(w.status[:n] == DELETED)
    before = w.billed[deleted].copy()
    w.env.run(until=w.now() + 600)
    np.testing.assert_array_equal(w.billed[deleted], before)


def test_capacity_bookkeeping_matches_the_servers(small) -> None:  # type: ignore[no-untyped-def]
    w = World(small)
    w.create_servers("api", count=3)
    w.run(until=200)
    w.delete_server("srv-000000")
    w.migrate_server("srv-000001")
    w.resize_server("srv-000002", "large")
    w.run()
    n = w.n
    alive = w.status[:n] != DELETED
    used = np.zeros_like(w.hv_used)
    np.add.at(used, w.hv[:n][alive], w.f_res[w.flavor[:n][alive]])
    np.testing.assert_array_equal(used, w.hv_used)


def test_same_seed_same_run_other_seed_other_run() -> None:
    from scenarios.runner import run_scenario

    scn = make_scenario(faults=[{"type": "server_crash", "at": 600, "service": "api"}])
    a = run_scenario(scn, "reactive", seed=5)
    b = run_scenario(scn, "reactive", seed=5)
    c = run_scenario(scn, "reactive", seed=6)
    assert a.score.metrics == b.score.metrics
    assert [r.as_row() for r in a.records] == [r.as_row() for r in b.records]
    np.testing.assert_array_equal(a.world.truth.offered, b.world.truth.offered)
    assert a.world.spend_total == b.world.spend_total
    assert not np.array_equal(a.world.truth.offered, c.world.truth.offered)


def test_placement_fails_with_no_valid_host_when_full(small) -> None:  # type: ignore[no-untyped-def]
    w = World(small)
    free_vcpus = int((w.hv_vcpus - w.hv_used[:, 0]).sum())
    import pytest

    with pytest.raises(errors.NoValidHost):
        w.create_servers("db", count=free_vcpus // 8 + 1)
    assert int((w.hv_vcpus - w.hv_used[:, 0]).sum()) == free_vcpus  # nothing half-placed


def test_quota_exceeded(small) -> None:  # type: ignore[no-untyped-def]
    import pytest

    w = World(small)
    w.update_quota("p", instances=7, cores=None, ram_mb=None)
    with pytest.raises(errors.QuotaExceeded, match="instances"):
        w.create_servers("api", count=2)
    w.create_servers("api", count=1)


def test_server_lifecycle_latencies(small) -> None:  # type: ignore[no-untyped-def]
    w = World(small)
    (sid,) = w.create_servers("api")
    i = int(sid[4:])
    assert w.status[i] == 0  # BUILD
    w.run(until=600)
    assert w.status[i] == 1  # ACTIVE after the boot latency
    w.delete_server(sid)
    assert w.status[i] == 1 and w.deleting[i]
    w.run(until=700)
    assert w.status[i] == DELETED and 600 < w.deleted_at[i] < 700


def test_resize_bills_each_flavor_for_its_own_time(small) -> None:  # type: ignore[no-untyped-def]
    w = World(small)
    w.run(until=100)
    w.resize_server("srv-000000", "large")
    done = {}
    w.listeners.append(lambda kind, i, s, actor: done.setdefault(kind, w.now()))
    w.run()
    t = done["resize_server"]
    small_rate, large_rate = w.f_od[0], w.f_od[1]
    # billed at the old flavor until the resize completes, at the new one after (to within one tick)
    expected = small_rate * t + large_rate * (w.now() - t)
    assert abs(w.billed[0] - expected) <= (large_rate - small_rate) * w.dt + 1e-12


def test_reserved_commitments_are_billed_unused_and_cover_reserved_servers() -> None:
    scn = make_scenario(duration=3600, prices={"on_demand": {"small": 0.06, "large": 0.24},
                                               "reserved": {"discount": 0.5, "commitments": {"small": 3}}},
                        services=[{"name": "api", "project": "p", "flavor": "small", "servers": 5,
                                   "pricing": "reserved", "traffic": {"base": 10}},
                                  {"name": "db", "project": "p", "flavor": "large", "servers": 0}])
    w = World(scn)
    w.run()
    commitment = 3 * 0.06 * 0.5  # per hour, used or not
    beyond = 2 * 0.06  # two reserved-model servers beyond the commitment pay on-demand
    assert w.spend_total == pytest.approx(commitment + beyond, rel=1e-9)


def test_spot_servers_pay_the_spot_price_and_get_preempted() -> None:
    scn = make_scenario(duration=4 * 3600, prices={"on_demand": {"small": 0.06, "large": 0.24},
                                                   "spot": {"discount": 0.7, "volatility": 0.0,
                                                            "preemption_rate_per_hour": 0.5}},
                        services=[{"name": "api", "project": "p", "flavor": "small", "servers": 10,
                                   "pricing": "spot", "traffic": {"base": 10}},
                                  {"name": "db", "project": "p", "flavor": "large", "servers": 0}],
                        operator={"enabled": False})
    w = World(scn)
    w.run()
    w.finish()
    n = w.n
    life = np.minimum(w.deleted_at[:n], w.now()) - w.created_at[:n]
    assert w.spend_total == pytest.approx(float((life * 0.06 * 0.3 / 3600).sum()), rel=1e-9)
    assert w.truth.preemptions > 5  # ~0.5 per server-hour over 10 servers and 4 h, fewer as they go
    assert {f.type for f in w.truth.faults} == {"spot_preemption"}
