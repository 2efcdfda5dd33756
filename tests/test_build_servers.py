"""The initial servers are placed in one pass exactly as placing them one by one through place() would."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.fleet import fleet_scenario
from tests.builders import make_scenario
from twin.world import World


def _both(scn):  # type: ignore[no-untyped-def]
    fast = World(scn)
    ref = World.__new__(World)
    orig = World._build_servers
    try:
        World._build_servers = World._build_servers_one_by_one  # type: ignore[method-assign]
        ref = World(scn)
    finally:
        World._build_servers = orig  # type: ignore[method-assign]
    return fast, ref


@pytest.mark.parametrize("scn", [
    make_scenario(),
    make_scenario(services=[
        {"name": "a", "project": "p", "flavor": "large", "servers": 9, "zones": ["az-2"]},
        {"name": "b", "project": "p", "flavor": "small", "servers": 23},
        {"name": "c", "project": "p", "flavor": "large", "servers": 5, "pricing": "spot"},
    ]),
    fleet_scenario(600, 12, 0.01),
], ids=["small", "mixed-flavors-zones", "fleet"])
def test_one_pass_placement_matches_one_by_one(scn) -> None:  # type: ignore[no-untyped-def]
    fast, ref = _both(scn)
    assert fast.n == ref.n
    n = fast.n
    for name in ("status", "svc", "flavor", "hv", "pricing", "created_at", "deleted_at", "weight", "vcpus"):
        np.testing.assert_array_equal(getattr(fast, name)[:n], getattr(ref, name)[:n], err_msg=name)
    np.testing.assert_array_equal(fast.hv_used, ref.hv_used)
    np.testing.assert_array_equal(fast.proj_used, ref.proj_used)
    assert fast.metadata == ref.metadata


def test_no_room_is_a_clear_error() -> None:
    scn = make_scenario(services=[{"name": "a", "project": "p", "flavor": "large", "servers": 40}])
    with pytest.raises(ValueError, match="no room for its 40 initial servers"):
        World(scn)
