"""The gate's chaos policy on a twin's observation: BusinessHoursOnly, CanaryRegionsFirst, MaxBlastRadius."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import InjectFault, Observation, RebootServer
from adapters.sim import SimAdapter
from control.runtime import ActionResult
from control.safety import SafetyConfig, SafetyGate
from tests.chaos.harness import scenario
from twin.world import World

MONDAY_10H = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
SUNDAY_10H = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()


def setup(**chaos: object) -> tuple[SimAdapter, SafetyGate]:
    a = SimAdapter(World(scenario()))
    return a, SafetyGate(SafetyConfig(chaos={"allow": True, **chaos}))


def review(gate: SafetyGate, a: SimAdapter, t: float, action: object) -> tuple[str, str]:
    v = gate.review(t, "chaos", action, Observation(a, t))  # type: ignore[arg-type]
    return v.decision, v.rule


def test_business_hours_only_denies_injection_not_rollbacks() -> None:
    a, gate = setup(business_hours_only=True)
    sid = a.servers(service="api")[0].id
    crash = InjectFault(fault="server_crash", target_component=sid)
    assert review(gate, a, SUNDAY_10H, crash) == ("deny", "chaos-business-hours")
    assert review(gate, a, MONDAY_10H - 2 * 3600, crash) == ("deny", "chaos-business-hours")  # 08:00
    assert review(gate, a, MONDAY_10H, crash)[0] == "allow"
    assert review(gate, a, SUNDAY_10H, RebootServer(server_id=sid, hard=True))[0] == "allow"  # a rollback


def test_canary_regions_first_orders_servers_hosts_and_zones_not_services() -> None:
    a, gate = setup(canary_regions_first=True, canary_regions=("az-1",), canary_bake_seconds=600)
    by_zone = {z: [s.id for s in a.servers() if s.zone == z] for z in ("az-1", "az-2")}
    out = InjectFault(fault="server_crash", target_component=by_zone["az-2"][0])
    inside = InjectFault(fault="server_crash", target_component=by_zone["az-1"][0])
    assert review(gate, a, 0.0, out) == ("deny", "chaos-canary-first")
    assert review(gate, a, 0.0, InjectFault(fault="az_outage", target_component="az-2")) == (
        "deny", "chaos-canary-first")
    assert review(gate, a, 0.0, InjectFault(fault="latency_degradation", target_component="api"))[0] == "allow"
    assert review(gate, a, 1.0, inside)[0] == "allow"
    gate.executed(1.0, "chaos", inside, ActionResult(True))
    assert review(gate, a, 300.0, out) == ("deny", "chaos-canary-first")  # still baking
    assert review(gate, a, 700.0, out)[0] == "allow"
    assert review(gate, a, 700.0, InjectFault(fault="disk_pressure", target_component=by_zone["az-2"][0])) == (
        "deny", "chaos-canary-first")  # another fault type starts in the canary again


def test_max_blast_radius_is_a_deny_for_every_wider_target() -> None:
    a, gate = setup(max_blast_radius="single-server")
    sid = a.servers(service="api")[0].id
    host = a.hypervisors()[0].name
    assert review(gate, a, 0.0, InjectFault(fault="server_crash", target_component=sid))[0] == "allow"
    for fault, target, radius in (("latency_degradation", "api", "single-service"),
                                  ("cpu_throttling", host, "single-hypervisor"),
                                  ("az_outage", "az-1", "single-az"), ("az_outage", "r1", "single-region")):
        v = gate.review(0.0, "chaos", InjectFault(fault=fault, target_component=target), Observation(a, 0.0))
        assert (v.decision, v.rule, v.detail["blast_radius"]) == ("deny", "max-blast-radius", radius)
