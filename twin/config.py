"""Configuration of a simulated world, validated with pydantic.

Durations accept seconds (``90``) or strings with a unit (``"30s"``,
``"5m"``, ``"2h"``, ``"7d"``).  Every model forbids unknown fields so a typo
is an error that names the field, never a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)?\s*$")


def parse_duration(v: object) -> float:
    """``"5m"`` → 300.0; numbers are seconds. Raises ValueError naming what is allowed."""
    if isinstance(v, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30s', '5m', '2h', '7d'")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        m = _DUR.match(v)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"invalid duration {v!r}: use seconds or a string like '30s', '5m', '2h', '7d'")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------- topology
class HypervisorGroup(Model):
    count: int = Field(ge=1, description="hypervisors of this shape in the zone")
    vcpus: int = Field(64, ge=1)
    ram_mb: int = Field(262144, ge=1)
    disk_gb: int = Field(4000, ge=1)
    gpus: int = Field(0, ge=0)


class Zone(Model):
    name: str
    hypervisors: list[HypervisorGroup] = Field(min_length=1)


class Region(Model):
    name: str
    zones: list[Zone] = Field(min_length=1)


class Flavor(Model):
    name: str
    vcpus: int = Field(ge=1)
    ram_mb: int = Field(ge=1)
    disk_gb: int = Field(ge=0)
    gpus: int = Field(0, ge=0)


class Quota(Model):
    instances: int = Field(100_000, ge=0)
    cores: int = Field(10_000_000, ge=0)
    ram_mb: int = Field(10_000_000_000, ge=0)


class Project(Model):
    name: str
    quota: Quota = Quota()


# ------------------------------------------------------------------- prices
class SpotPricing(Model):
    discount: float = Field(0.7, ge=0, lt=1, description="mean discount versus on-demand")
    volatility: float = Field(0.1, ge=0, description="relative std-dev of the spot price process")
    preemption_rate_per_hour: float = Field(0.0, ge=0, description="per spot server")


class ReservedPricing(Model):
    discount: float = Field(0.4, ge=0, lt=1)
    commitments: dict[str, int] = Field(default_factory=dict, description="flavor -> committed servers")


class Prices(Model):
    on_demand: dict[str, float] = Field(description="flavor -> price per hour")
    spot: SpotPricing = SpotPricing()
    reserved: ReservedPricing = ReservedPricing()


# ------------------------------------------------------------------ traffic
class Diurnal(Model):
    type: Literal["diurnal"]
    amplitude: float = Field(0.5, ge=0, le=1)
    peak_hour: float = Field(14.0, ge=0, lt=24)


class Weekly(Model):
    type: Literal["weekly"]
    amplitude: float = Field(0.2, ge=0, le=1, description="weekend dip as a fraction")


class Noise(Model):
    type: Literal["noise"]
    sigma: float = Field(0.05, ge=0, description="relative std-dev, smoothed over `period`")
    period: Duration = 60.0


class Spike(Model):
    type: Literal["spike"]
    at: Duration
    duration: Duration
    factor: float = Field(gt=0, description="multiplier at the peak, 6.0 = +500 %")
    ramp: Duration = 60.0


class Ramp(Model):
    type: Literal["ramp"]
    start: Duration
    end: Duration
    to_factor: float = Field(gt=0)


class Idle(Model):
    type: Literal["idle"]
    start: Duration
    end: Duration


class Trace(Model):
    type: Literal["trace"]
    file: str = Field(description="CSV with columns timestamp,value (seconds or ISO time)")
    scale: float = Field(1.0, gt=0, description="multiplies the trace's values")
    time_scale: float = Field(1.0, gt=0, description="stretches the trace's time axis")


TrafficComponent = Annotated[Diurnal | Weekly | Noise | Spike | Ramp | Idle | Trace, Field(discriminator="type")]


class Traffic(Model):
    base: float = Field(ge=0, description="requests per second before the components")
    components: list[TrafficComponent] = Field(default_factory=list)


# ----------------------------------------------------------------- services
class Dependency(Model):
    service: str
    calls_per_request: float = Field(1.0, ge=0)


class SLO(Model):
    latency_p95_ms: float = Field(250.0, gt=0)
    error_ratio: float = Field(0.01, ge=0, le=1)


class Service(Model):
    name: str
    project: str = "default"
    flavor: str
    servers: int = Field(ge=0, description="servers at the start")
    zones: list[str] | None = Field(None, description="zones to spread over; default all")
    pricing: Literal["on_demand", "spot", "reserved"] = "on_demand"
    min_servers: int = Field(0, ge=0)
    max_servers: int = Field(1000, ge=0)
    capacity_per_vcpu: float = Field(50.0, gt=0, description="requests per second one vCPU serves")
    base_latency_ms: float = Field(20.0, gt=0)
    base_error_ratio: float = Field(0.0005, ge=0, le=1)
    memory_base: float = Field(0.35, ge=0, le=1, description="memory utilisation at rest")
    kb_per_request: float = Field(20.0, ge=0, description="network traffic per request, in and out, KB")
    stateful: bool = Field(False, description="its servers hold data: deleting one counts against MaxDataDeleted")
    disk_base: float = Field(0.3, ge=0, le=1)
    settings: dict[str, float] = Field(default_factory=dict, description="e.g. pool_size for databases")
    dependencies: list[Dependency] = Field(default_factory=list)
    traffic: Traffic | None = None
    slo: SLO = SLO()


# ------------------------------------------------------------------- faults
FaultType = Literal[
    "server_crash",
    "hypervisor_failure",
    "az_outage",
    "memory_leak",
    "db_pool_exhaustion",
    "latency_degradation",
    "bad_deploy",
    "cpu_throttling",
    "disk_pressure",
    "network_partition",
    "spot_preemption",
]


class FaultSpec(Model):
    type: FaultType
    at: Duration
    service: str | None = Field(None, description="target service (server-level faults pick one of its servers)")
    hypervisor: str | None = Field(None, description="target hypervisor name; default: busiest")
    zone: str | None = None
    duration: Duration | None = Field(None, description="for faults that clear by themselves (az_outage, partition)")
    severity: float = Field(1.0, gt=0, description="scales the fault's strength")


class RandomFaults(Model):
    rate_per_day: float = Field(ge=0)
    types: list[FaultType] = Field(min_length=1)
    services: list[str] | None = None


# ---------------------------------------------------------------- telemetry
class AlertRule(Model):
    name: str
    expr: str = Field(description="'<metric> <op> <number>', e.g. 'error_ratio > 0.05'")
    for_: Duration = Field(60.0, alias="for")
    severity: Literal["critical", "warning", "info"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Telemetry(Model):
    scrape_interval: Duration = 5.0
    window: Duration = Field(3600.0, description="length of the raw ring buffers")
    repeat_interval: Duration = Field(300.0, description="re-notify a firing alert this often")
    noise: float = Field(0.03, ge=0, description="relative measurement noise")


class Distribution(Model):
    dist: Literal["const", "lognormal", "uniform"] = "lognormal"
    mean: float = Field(gt=0, description="seconds")
    sigma: float = Field(0.25, ge=0, description="lognormal shape, or half-width fraction for uniform")


class Latencies(Model):
    boot: Distribution = Distribution(mean=45.0)
    delete: Distribution = Distribution(mean=5.0)
    reboot: Distribution = Distribution(mean=25.0)
    resize: Distribution = Distribution(mean=60.0)
    migrate: Distribution = Distribution(mean=40.0)
    restart_service: Distribution = Distribution(mean=10.0)
    rollback: Distribution = Distribution(mean=30.0)
    process_restart: Distribution = Distribution(mean=20.0, sigma=0.2)


class Operator(Model):
    """The human on call, part of the simulated world."""

    enabled: bool = True
    response_delay: Duration = Field(900.0, description="from page to hands on keyboard")
    paged_by: Literal["critical_alerts", "any_alert"] = Field(
        "any_alert", description="which raw alerts page the human: a traditional on-call gets every warning too")


class Api(Model):
    transient_error_rate: float = Field(0.0, ge=0, le=1, description="share of calls failing with a 5xx")


def default_alert_rules() -> list[AlertRule]:
    return [
        AlertRule(name="HighErrorRate", expr="error_ratio > 0.05", **{"for": 60}, severity="critical"),
        AlertRule(name="ElevatedErrorRate", expr="error_ratio > 0.01", **{"for": 120}, severity="warning"),
        AlertRule(name="HighLatency", expr="latency_p95_ms > 500", **{"for": 60}, severity="critical"),
        AlertRule(name="SlowResponses", expr="latency_p95_ms > 250", **{"for": 120}, severity="warning"),
        AlertRule(name="HighCPU", expr="cpu_util > 0.85", **{"for": 120}, severity="warning"),
        AlertRule(name="HighMemory", expr="memory_util > 0.9", **{"for": 60}, severity="warning"),
        AlertRule(name="DiskFilling", expr="disk_util > 0.9", **{"for": 60}, severity="warning"),
        AlertRule(name="PoolSaturated", expr="pool_util > 0.9", **{"for": 30}, severity="critical"),
        AlertRule(name="InstanceDown", expr="server_up < 1", **{"for": 60}, severity="warning"),
    ]


class WorldConfig(Model):
    """Everything the twin needs to build and run one world."""

    seed: int = 0
    duration: Duration = Field(3600.0, gt=0)
    tick: Duration = Field(5.0, gt=0, description="physics step")
    regions: list[Region] = Field(min_length=1)
    flavors: list[Flavor] = Field(min_length=1)
    prices: Prices
    projects: list[Project] = Field(default_factory=lambda: [Project(name="default")])
    services: list[Service] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    random_faults: RandomFaults | None = None
    alert_rules: list[AlertRule] = Field(default_factory=default_alert_rules)
    telemetry: Telemetry = Telemetry()
    latencies: Latencies = Latencies()
    operator: Operator = Operator()
    api: Api = Api()

    @model_validator(mode="after")
    def _references(self) -> WorldConfig:
        flavors = {f.name for f in self.flavors}
        projects = {p.name for p in self.projects}
        services = [s.name for s in self.services]
        zones = {z.name for r in self.regions for z in r.zones}
        hvs = {f"{z.name}-hv{i:03d}" for r in self.regions for z in r.zones for i in range(_zone_hv_count(z))}

        def allowed(xs: set[str] | list[str]) -> str:
            return ", ".join(sorted(xs)) or "(none defined)"

        if len(set(services)) != len(services):
            raise ValueError(f"services: names must be unique, got {services}")
        for f in self.prices.on_demand:
            if f not in flavors:
                raise ValueError(f"prices.on_demand: unknown flavor {f!r}; allowed: {allowed(flavors)}")
        for f in flavors - set(self.prices.on_demand):
            raise ValueError(f"prices.on_demand: flavor {f!r} has no price")
        for f in self.prices.reserved.commitments:
            if f not in flavors:
                raise ValueError(f"prices.reserved.commitments: unknown flavor {f!r}; allowed: {allowed(flavors)}")
        for i, s in enumerate(self.services):
            where = f"services[{i}] ({s.name})"
            if s.flavor not in flavors:
                raise ValueError(f"{where}.flavor: unknown flavor {s.flavor!r}; allowed: {allowed(flavors)}")
            if s.project not in projects:
                raise ValueError(f"{where}.project: unknown project {s.project!r}; allowed: {allowed(projects)}")
            for d in s.dependencies:
                if d.service not in services or d.service == s.name:
                    raise ValueError(
                        f"{where}.dependencies: unknown service {d.service!r}; allowed: {allowed(set(services) - {s.name})}"
                    )
            for z in s.zones or []:
                if z not in zones:
                    raise ValueError(f"{where}.zones: unknown zone {z!r}; allowed: {allowed(zones)}")
            if s.min_servers > s.max_servers:
                raise ValueError(f"{where}: min_servers ({s.min_servers}) > max_servers ({s.max_servers})")
        for i, fs in enumerate(self.faults):
            where = f"faults[{i}] ({fs.type})"
            if fs.service is not None and fs.service not in services:
                raise ValueError(f"{where}.service: unknown service {fs.service!r}; allowed: {allowed(services)}")
            if fs.zone is not None and fs.zone not in zones:
                raise ValueError(f"{where}.zone: unknown zone {fs.zone!r}; allowed: {allowed(zones)}")
            if fs.hypervisor is not None and fs.hypervisor not in hvs:
                raise ValueError(f"{where}.hypervisor: unknown hypervisor {fs.hypervisor!r}; names look like 'az-1-hv000'")
            if fs.at > self.duration:
                raise ValueError(f"{where}.at: {fs.at:g} s is after the end of the run ({self.duration:g} s)")
            needs_service = {"server_crash", "memory_leak", "db_pool_exhaustion", "latency_degradation", "bad_deploy",
                             "disk_pressure", "spot_preemption"}
            if fs.type in needs_service and fs.service is None:
                raise ValueError(f"{where}.service: required for fault type {fs.type!r}")
        cycle = _find_cycle({s.name: [d.service for d in s.dependencies] for s in self.services})
        if cycle:
            raise ValueError(f"services.dependencies: dependency cycle {' -> '.join(cycle)}")
        return self


def _zone_hv_count(z: Zone) -> int:
    return sum(g.count for g in z.hypervisors)


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if state.get(m) is None and (c := visit(m)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in graph:
        if n not in state and (c := visit(n)):
            return c
    return None
