"""Edge availability counts users' requests once, however many services a request passes through."""

from __future__ import annotations

import numpy as np

from tests.builders import make_scenario
from twin.world import World

# web -> api -> db: a chain of three; users call web only
CHAIN = [
    {"name": "web", "project": "p", "flavor": "small", "servers": 4, "capacity_per_vcpu": 100,
     "base_error_ratio": 0.0, "dependencies": [{"service": "api"}], "traffic": {"base": 100}},
    {"name": "api", "project": "p", "flavor": "small", "servers": 4, "capacity_per_vcpu": 100,
     "base_error_ratio": 0.0, "dependencies": [{"service": "db"}]},
    {"name": "db", "project": "p", "flavor": "large", "servers": 2, "capacity_per_vcpu": 100,
     "base_error_ratio": 0.0},
]


def _run(faults: list[dict]) -> World:
    w = World(make_scenario(duration=1200, services=CHAIN, faults=faults, operator={"enabled": False}))
    w.run()
    w.finish()
    return w


def test_only_edge_services_count_and_internal_calls_do_not() -> None:
    w = _run([])
    t = w.truth
    assert list(w.svc_edge) == [1.0, 0.0, 0.0]
    assert t.edge_offered[1] == t.edge_offered[2] == 0 and t.edge_good[1] == t.edge_good[2] == 0
    assert np.isclose(t.edge_offered[0], w.traffic[1:, 0].sum() * w.dt)  # what users sent, once
    assert t.offered.sum() > 2.5 * t.edge_offered.sum()  # every hop counted in the all-services totals


def test_a_dependency_failure_lowers_edge_availability_once_not_per_hop() -> None:
    # db fails 30 % of its requests from 300 s to the end: the error reaches users through api and web
    w = _run([{"type": "bad_deploy", "at": 300, "service": "db", "severity": 3}])
    t = w.truth
    edge_avail = t.edge_good.sum() / t.edge_offered.sum()
    lost_users = 1.0 - edge_avail
    share_faulted = (1200 - 300) / 1200
    # users lose ~30 % of requests while the fault lasts (one hop behind per service), not 3 × 30 %
    assert 0.8 * 0.3 * share_faulted < lost_users < 1.05 * 0.3 * share_faulted
    all_lost = 1.0 - t.good.sum() / t.offered.sum()
    assert all_lost > lost_users  # the all-services ratio counts the same failure at each hop


def test_edge_can_be_marked_in_the_config() -> None:
    svcs = [dict(s) for s in CHAIN]
    svcs[1] = {**svcs[1], "edge": True, "traffic": {"base": 50}}  # api also takes users' requests directly
    w = World(make_scenario(duration=600, services=svcs))
    w.run()
    t = w.truth
    assert list(w.svc_edge) == [1.0, 1.0, 0.0]
    assert np.isclose(t.edge_offered[1], w.traffic[1:, 1].sum() * w.dt)
    # api's users get their share of api's good answers; web's calls into api are not users' requests
    assert t.edge_good[1] < t.good[1] and np.isclose(t.edge_good[1] / t.edge_offered[1], t.good[1] / t.offered[1],
                                                      rtol=1e-3)
