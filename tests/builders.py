"""Small scenarios built in code, so each test states what it needs."""

from __future__ import annotations

import copy
from typing import Any

from scenarios.schema import Scenario

BASE: dict[str, Any] = {
    "name": "small",
    "seed": 1,
    "duration": 1800,
    "regions": [{"name": "r1", "zones": [
        {"name": "az-1", "hypervisors": [{"count": 4, "vcpus": 32, "ram_mb": 131072, "disk_gb": 2000}]},
        {"name": "az-2", "hypervisors": [{"count": 4, "vcpus": 32, "ram_mb": 131072, "disk_gb": 2000}]},
    ]}],
    "flavors": [{"name": "small", "vcpus": 2, "ram_mb": 4096, "disk_gb": 40},
                {"name": "large", "vcpus": 8, "ram_mb": 16384, "disk_gb": 160}],
    "prices": {"on_demand": {"small": 0.06, "large": 0.24}},
    "projects": [{"name": "p"}],
    "services": [
        {"name": "api", "project": "p", "flavor": "small", "servers": 4, "min_servers": 1, "max_servers": 30,
         "capacity_per_vcpu": 50, "dependencies": [{"service": "db", "calls_per_request": 0.5}],
         "traffic": {"base": 200, "components": [{"type": "noise", "sigma": 0.03}]}},
        {"name": "db", "project": "p", "flavor": "large", "servers": 2, "min_servers": 2, "max_servers": 6,
         "capacity_per_vcpu": 40, "base_latency_ms": 5, "settings": {"pool_size": 100}},
    ],
}


def scenario_dict(**overrides: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(overrides)
    return d


def make_scenario(**overrides: Any) -> Scenario:
    return Scenario.model_validate(scenario_dict(**overrides))


# a 12-server api over a 2-server db, with a 4x spike at 1,500 s: enough churn to scale, fail and recover
SPIKY_SERVICES: list[dict[str, Any]] = [
    {"name": "api", "project": "p", "flavor": "small", "servers": 12, "min_servers": 1, "max_servers": 30,
     "capacity_per_vcpu": 50, "dependencies": [{"service": "db", "calls_per_request": 0.5}],
     "traffic": {"base": 300, "components": [{"type": "noise", "sigma": 0.05},
                                             {"type": "spike", "at": 1500, "duration": 400, "factor": 4}]}},
    {"name": "db", "project": "p", "flavor": "large", "servers": 2, "min_servers": 2, "max_servers": 6,
     "capacity_per_vcpu": 40, "base_latency_ms": 5, "settings": {"pool_size": 100}},
]
