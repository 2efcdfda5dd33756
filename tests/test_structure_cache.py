"""The tick's cached structural vectors (World._structure) are never stale and change no result."""

from __future__ import annotations

import numpy as np
import pytest

import twin.world
from scenarios.runner import run_scenario
from tests.builders import SPIKY_SERVICES, make_scenario
from twin.world import ERROR

FAULTS = [
    {"type": "server_crash", "at": 200, "service": "api"},
    {"type": "memory_leak", "at": 300, "service": "api"},
    {"type": "latency_degradation", "at": 400, "service": "db"},
    {"type": "cpu_throttling", "at": 500, "duration": 300},
    {"type": "disk_pressure", "at": 700, "service": "api"},
    {"type": "network_partition", "at": 900, "zone": "az-2", "duration": 300},
    {"type": "hypervisor_failure", "at": 1300},
    {"type": "az_outage", "at": 1700, "zone": "az-1", "duration": 300},
]


def _scenario():  # type: ignore[no-untyped-def]
    return make_scenario(
        duration=2400,
        services=SPIKY_SERVICES,
        faults=FAULTS)


@pytest.mark.parametrize("engines", ["static", "reactive"])
def test_verified_cache_matches_fresh_vectors_through_every_fault(monkeypatch: pytest.MonkeyPatch,
                                                                  engines: str) -> None:
    computed = []
    orig = twin.world.World._compute_structure

    def counting(self, t, rc):  # type: ignore[no-untyped-def]
        computed.append(t)
        return orig(self, t, rc)

    monkeypatch.setattr(twin.world.World, "_compute_structure", counting)
    plain = run_scenario(_scenario(), engines)
    # the cache is used: far fewer fresh computations than ticks
    assert 0 < len(computed) < plain.world.ticks / 2
    monkeypatch.setattr(twin.world, "VERIFY_CACHE", True)  # every cache hit is recomputed and compared
    checked = run_scenario(_scenario(), engines)
    assert checked.world.verify_cache
    assert checked.score.metrics == plain.score.metrics
    np.testing.assert_array_equal(checked.world.metrics.srv["server_cpu_util"].v, plain.world.metrics.srv["server_cpu_util"].v)
    assert checked.world.spend_series == plain.world.spend_series


def test_a_writer_that_skips_invalidate_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twin.world, "VERIFY_CACHE", True)
    scn = make_scenario(duration=600)
    from twin.world import World

    w = World(scn)
    w.run(until=100)
    w.status[0] = ERROR  # a write that bypasses invalidate()
    with pytest.raises(AssertionError, match="stale structural cache"):
        w.run(until=200)


def test_down_until_expiry_refreshes_without_invalidate() -> None:
    scn = make_scenario(duration=600)
    from twin.world import World

    w = World(scn)
    w.verify_cache = True
    w.run(until=100)
    w.down_until[0] = 130.0  # as reboot_server does (with invalidate): down for 30 s
    w.invalidate()
    w.run(until=125)
    assert not w._struct.up[0]
    w.run(until=140)  # passes 130: up again, recomputed because valid_until passed
    assert w._struct.up[0]


def test_grouped_physics_matches_per_row_physics_to_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    grouped_structures = []
    orig = twin.world.World._compute_structure

    def counting(self, t, rc):  # type: ignore[no-untyped-def]
        sc = orig(self, t, rc)
        grouped_structures.append(sc.groups is not None)
        return sc

    monkeypatch.setattr(twin.world.World, "_compute_structure", counting)
    grouped = run_scenario(_scenario(), "reactive")
    assert any(grouped_structures) and not all(grouped_structures)  # both paths ran (faults make rows differ)
    monkeypatch.setattr(twin.world.World, "_groups", lambda self, *a: None)  # every tick per row
    per_row = run_scenario(_scenario(), "reactive")
    a, b = grouped.score.metrics, per_row.score.metrics
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == (b[k] if b[k] is None or isinstance(b[k], str) else pytest.approx(b[k], rel=1e-9, abs=1e-12)), k
    pd_a, pd_b = grouped.world.metrics.to_pandas(60), per_row.world.metrics.to_pandas(60)
    np.testing.assert_allclose(pd_a.to_numpy(), pd_b.to_numpy(), rtol=1e-9, atol=1e-12)
    cpu_a, cpu_b = grouped.world.metrics.srv["server_cpu_util"].v, per_row.world.metrics.srv["server_cpu_util"].v
    np.testing.assert_allclose(cpu_a, cpu_b, rtol=1e-6, atol=1e-9)  # float32 rings
    err_a, err_b = (r.world.metrics.srv["server_error_ratio"].v for r in (grouped, per_row))
    np.testing.assert_allclose(err_a, err_b, rtol=1e-6, atol=1e-9)
    assert grouped.world.spend_total == per_row.world.spend_total  # billing is per row either way
