"""Synthetic fleets for the performance benchmarks, built programmatically.

``fleet_scenario(servers, services, days)`` makes a :class:`Scenario` with the
servers spread evenly over the services, diurnal (plus smoothed noise) traffic
sized for ~50 % mean CPU, a three-tier dependency chain per group of services,
enough hypervisors for the HPA to double the fleet, and the default alert
rules.  Nothing is tuned to a benchmark: it is an ordinary scenario.
"""

from __future__ import annotations

import math

from control.safety import SafetyConfig
from scenarios.schema import Scenario
from twin.config import (
    Dependency,
    Diurnal,
    Flavor,
    HypervisorGroup,
    Noise,
    Prices,
    Project,
    Region,
    Service,
    Traffic,
    Zone,
)

DAY = 86400.0
VCPUS = 4  # m1.medium
CAPACITY_PER_VCPU = 50.0
MEAN_UTIL = 0.5  # offered load at the diurnal mean, relative to the initial capacity


def fleet_scenario(servers: int, services: int, days: float, *, tick: float = 5.0, seed: int = 0,
                   zones: int = 3, name: str | None = None) -> Scenario:
    """A world of ``servers`` over ``services`` for ``days`` simulated days (see module doc)."""
    if services < 1 or servers < services:
        raise ValueError("need at least one server per service")
    per = [servers // services + (1 if i < servers % services else 0) for i in range(services)]
    # room for the autoscaler to grow every service to twice its size, spread over the zones
    hv_vcpus = 64
    hvs = math.ceil(2.2 * servers * VCPUS / hv_vcpus / zones) + 1
    region = Region(name="region-1", zones=[
        Zone(name=f"az-{z + 1}", hypervisors=[HypervisorGroup(count=hvs, vcpus=hv_vcpus, ram_mb=262144, disk_gb=4000)])
        for z in range(zones)])
    flavors = [Flavor(name="m1.small", vcpus=2, ram_mb=4096, disk_gb=40),
               Flavor(name="m1.medium", vcpus=VCPUS, ram_mb=8192, disk_gb=80)]
    svcs = []
    for i, n in enumerate(per):
        tier = i % 3  # 0 = front (external traffic), 1 = middle, 2 = back end
        deps = [Dependency(service=f"svc-{i + 1:03d}", calls_per_request=0.5)] if tier < 2 and i + 1 < services else []
        capacity = n * VCPUS * CAPACITY_PER_VCPU
        if tier == 0:
            traffic = Traffic(base=MEAN_UTIL * capacity, components=[
                Diurnal(type="diurnal", amplitude=0.5, peak_hour=10 + (i % 8)), Noise(type="noise", sigma=0.05)])
        else:
            traffic = Traffic(base=MEAN_UTIL * capacity * 0.5, components=[
                Diurnal(type="diurnal", amplitude=0.4, peak_hour=12 + (i % 6))])
        svcs.append(Service(name=f"svc-{i:03d}", project="bench", flavor="m1.medium", servers=n,
                            min_servers=max(1, n // 4), max_servers=3 * n, capacity_per_vcpu=CAPACITY_PER_VCPU,
                            dependencies=deps, traffic=traffic))
    return Scenario(
        name=name or f"fleet-{servers}x{services}-{days:g}d", seed=seed, duration=days * DAY, tick=tick,
        regions=[region], flavors=flavors, prices=Prices(on_demand={"m1.small": 0.05, "m1.medium": 0.10}),
        projects=[Project(name="bench")], services=svcs, engines=["reactive"],
        # The gate runs at the choke point (its cost is measured) with the design's limits, except the two
        # absolute counts that would change what the engines do at this size: the HPA's routine scale-in of
        # a 10,000-server fleet alone exceeds 100 actions a minute and 1,000 new VMs a day, and the
        # re-proposals of denied actions would then be measured instead of the twin.
        safety=SafetyConfig(rate_limit_actions=None, max_vms_auto_provisioned=None))
