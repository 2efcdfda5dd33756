"""Onboarding and offboarding against the local OpenStack (the devcloud): the self_service engine creates a
Keystone project with quotas, budget and alert-route tags and a first server, through the composed control plane
(gate, choke point, audit); then offboards it: the server deleted, the project deleted.  Everything the test
creates is deleted in the test, the project included, whatever happens.

Needs ZEROOPS_TEST_CLOUD and OS_CLIENT_CONFIG_FILE (``make devcloud-up``) and an identity admin; skips otherwise.
"""

from __future__ import annotations

import os
import secrets
import time
import warnings
from typing import Any

import pytest

from adapters.base import Observation

pytestmark = [pytest.mark.openstack, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CLOUD = os.environ.get("ZEROOPS_TEST_CLOUD")
ONBOARD_LIMIT_S = 300.0  # the "onboarding in < 5 minutes"


def _cleanup(conn: Any, name: str) -> None:
    """Delete every server of the project, wait for them, then the project."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = conn.identity.find_project(name, ignore_missing=True)
        if p is None:
            return
        servers = [s for s in conn.compute.servers(details=True, all_projects=True) if s.project_id == p.id]
        for s in servers:
            conn.compute.delete_server(s, ignore_missing=True)
        end = time.monotonic() + 120
        while servers and time.monotonic() < end:
            servers = [s for s in conn.compute.servers(details=True, all_projects=True) if s.project_id == p.id]
            time.sleep(1)
        conn.identity.delete_project(p, ignore_missing=True)


def _drive(adapter: Any, plane: Any, eng: Any, until: Any, timeout: float) -> float:
    """Step the engine on the wall clock, every action through the choke point, until ``until()``; seconds taken."""
    t0 = time.monotonic()
    while not until():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"not done after {timeout:.0f} s: {eng.decisions()[-1]}")
        now = adapter.now()
        obs = Observation(adapter, now)
        for a in eng.step(now, obs):
            plane.choke.submit(now, eng.name, a, obs)
        obs.close()
        time.sleep(1.0)
    return time.monotonic() - t0


def test_onboard_then_offboard_a_project_on_openstack(tmp_path: Any) -> None:
    if not CLOUD:
        pytest.skip("no OpenStack cloud configured (ZEROOPS_TEST_CLOUD, OS_CLIENT_CONFIG_FILE: make devcloud-up)")
    import openstack

    from adapters.live_config import parse_config
    from adapters.openstack import OpenStackAdapter
    from control.compose import compose
    from engines.selfservice import SelfService, SelfServiceConfig

    conn = openstack.connect(cloud=CLOUD, api_timeout=30)
    conn.authorize()
    name = "zt-ss-" + secrets.token_hex(3)
    svc = name + "-vm"
    cfg = parse_config({
        "cloud": CLOUD, "network": "none", "prices": {"zeroops.small": 0.02},
        "services": [{"name": svc, "project": name, "flavor": "zeroops.small", "image": "zeroops-tiny",
                      "min_servers": 0, "max_servers": 2}],
        "retry": {"attempts": 4, "base_delay": 0.1, "max_delay": 1.0}, "wait": {"create": 120, "poll": 0.5},
    }, "<selfservice-live>")
    adapter = OpenStackAdapter(conn, cfg, cache_ttl=0.5)
    plane = compose(adapter, {"name": "ss-live", "engines": []}, audit_path=tmp_path / "audit.db")
    eng = SelfService(SelfServiceConfig())
    try:
        rid = adapter.submit_request(name, "project_onboard", {
            "budget": 150, "alert_route": "team-x-oncall", "first_server": {"service": svc}}, "live-test")

        def status(r: str) -> str:
            return {x.id: x.status for x in adapter.requests()}[r]

        took = _drive(adapter, plane, eng, lambda: status(rid) != "open", ONBOARD_LIMIT_S)
        d = eng.decision(rid)
        assert status(rid) == "approved", d
        assert took < ONBOARD_LIMIT_S and d["rule"] == "within-policy"
        p = conn.identity.find_project(name)
        assert p is not None and "zeroops-budget=150" in p.tags and "zeroops-alert-route=team-x-oncall" in p.tags
        q = conn.compute.get_quota_set(p.id)
        assert (q.instances, q.cores, q.ram) == (10, 20, 40960)
        mine = [s for s in conn.compute.servers(details=True, all_projects=True) if s.project_id == p.id]
        assert len(mine) == 1 and (mine[0].metadata or {}).get("zeroops_request_id") == rid
        print(f"\nonboarding on OpenStack took {took:.1f} s (project, quotas, tags, first server ACTIVE)")

        off = adapter.submit_request(name, "project_offboard", {}, "live-test")
        took_off = _drive(adapter, plane, eng, lambda: status(off) != "open", 300)
        assert status(off) == "approved", eng.decision(off)
        assert conn.identity.find_project(name, ignore_missing=True) is None
        print(f"offboarding on OpenStack took {took_off:.1f} s (server deleted, project deleted)")
        kinds = [e.body["kind"] for e in _audit(tmp_path)]
        assert {"create_project", "create_server", "delete_server", "delete_project"} <= set(kinds)
    finally:
        plane.close()
        _cleanup(conn, name)
        assert conn.identity.find_project(name, ignore_missing=True) is None


def _audit(tmp_path: Any) -> list[Any]:
    from control.audit import AuditReader

    return AuditReader(tmp_path / "audit.db").list()
