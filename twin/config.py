"""Configuration of a simulated world, validated with pydantic.

Durations accept seconds (``90``) or strings with a unit (``"30s"``,
``"5m"``, ``"2h"``, ``"7d"``).  Every model forbids unknown fields so a typo
is an error that names the field, never a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from common.durations import PATTERN as DURATION_PATTERN
from common.durations import is_duration
from common.durations import parse_duration as _parse_duration


def parse_duration(v: object) -> float:
    """``"5m"`` → 300.0; numbers are seconds (the one grammar: :mod:`common.durations`)."""
    return _parse_duration(v, allow_negative=True)  # a negative number fails the field's own ``ge=0``


MAX_NUMBER = 2.0**53  # the largest magnitude any number in a scenario may have (exact in a float)

Duration = Annotated[
    float, BeforeValidator(parse_duration), Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": DURATION_PATTERN}],
                    "description": "seconds, or a number with a unit: 500ms, 30s, 5m, 2h, 7d, 1w"}),
]


def _check_magnitude(v: Any) -> None:
    """Refuse numbers no run can use (they overflow numpy's int64 or lose every digit in a float)."""
    if isinstance(v, bool):
        return
    if isinstance(v, int | float) and abs(v) > MAX_NUMBER:
        raise ValueError(f"{v:.6g} is too large: numbers must be at most {MAX_NUMBER:.0f} in magnitude")
    if isinstance(v, dict):
        for x in v.values():
            _check_magnitude(x)
    elif isinstance(v, list | tuple):
        for x in v:
            _check_magnitude(x)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_bounded(cls, v: Any) -> Any:
        _check_magnitude(v)
        return v


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
    stopped: float = Field(0.0, ge=0, le=1, description="share of its rate a SHUTOFF server still pays (0: a stopped "
                           "server's compute is not billed; disks are not modelled); SHELVED_OFFLOADED servers pay "
                           "nothing")


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
    period: Duration = Field(60.0, gt=0)


class Spike(Model):
    type: Literal["spike"]
    at: Duration
    duration: Duration
    factor: float = Field(gt=0, description="multiplier at the peak, 6.0 = +500 %")
    ramp: Duration = 60.0


class Bursts(Model):
    """Transient blips: spikes at random times (a Poisson process from the traffic stream), each over in minutes."""

    type: Literal["bursts"]
    rate_per_day: float = Field(gt=0, le=10_000, description="mean number of bursts per day")
    duration: Duration = Field(gt=0, description="how long each burst holds its peak")
    factor: float = Field(gt=0, description="multiplier at the peak, 3.0 = +200 %")
    ramp: Duration = Field(30.0, ge=0, description="rise and fall time")


class Ramp(Model):
    type: Literal["ramp"]
    start: Duration
    end: Duration
    to_factor: float = Field(gt=0)


class Idle(Model):
    type: Literal["idle"]
    start: Duration
    end: Duration


TRACE_POINT = re.compile(r"^@-?\d+(\.\d+)?$")  # '@1709337600': Unix epoch seconds


def parse_trace_point(v: object, field: str) -> float | str | None:
    """A trace window bound: an offset (seconds or '2h', from the file's first row), an ISO time or '@<epoch>'."""
    if v is None:
        return None
    if isinstance(v, date):  # YAML reads an unquoted 2026-03-02T00:00:00Z as a date-time
        v = v.isoformat() if isinstance(v, datetime) else f"{v.isoformat()}T00:00:00"
    if isinstance(v, str) and TRACE_POINT.match(v.strip()):
        return v.strip()
    if isinstance(v, str | datetime) and not (isinstance(v, str) and is_duration(v)):
        try:
            parse_instant(v)
        except ValueError:
            raise ValueError(f"{field}: {v!r} is neither an offset (seconds or '2h', '1d' from the first row), an "
                             f"ISO date-time ('2026-03-02T00:00:00Z') nor '@<epoch seconds>'") from None
        return v if isinstance(v, str) else v.isoformat()
    secs = parse_duration(v)
    if secs < 0:
        raise ValueError(f"{field}: an offset must be >= 0 s from the first row, got {secs:g}")
    return secs


def parse_instant(v: object) -> datetime:
    """An ISO date-time (naive = UTC) or '@<epoch seconds>' as an aware datetime; ValueError otherwise."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str) and TRACE_POINT.match(v.strip()):
        try:
            return datetime.fromtimestamp(float(v.strip()[1:]), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{v!r}: epoch seconds out of range") from None
    elif isinstance(v, str):
        dt = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"{v!r} is not a date-time")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Trace(Model):
    type: Literal["trace"]
    file: str = Field(description="CSV with a time column (seconds, epoch seconds or ISO time) and a value column; "
                      "relative paths are relative to the scenario file")
    scale: float = Field(1.0, gt=0, description="multiplies the trace's values")
    time_scale: float = Field(1.0, gt=0, description="stretches the trace's time axis")
    normalize: Literal["mean", "peak", "none"] = Field(
        "mean", description="mean: divide by the mean of the replayed rows, so `base` is the mean rate (default, as "
        "before); peak: divide by their maximum, so `base` is the peak rate; none: the values are requests/s "
        "(times `scale`; set the service's base to 1)")
    start: float | str | None = Field(None, description="first row to replay: an offset from the file's first row "
                                      "(seconds or '2h', '1d'), an ISO date-time or '@<epoch seconds>' (inclusive)")
    end: float | str | None = Field(None, description="end of the replayed rows, same forms as start (exclusive)")
    gaps: Literal["interpolate", "zero", "error"] = Field(
        "interpolate", description="rows missing from the file (a step over 1.5x the usual one): interpolate "
        "linearly (with a notice), count as zero requests (with a notice), or refuse the trace")
    time_column: str | None = Field(None, description="name of the time column (default: the first of timestamp, "
                                    "time, ts, datetime, date found)")
    value_column: str | None = Field(None, description="name of the value column (default: the first of value, "
                                     "count, requests, hits, rate, rps found)")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _point(cls, v: object, info: Any) -> float | str | None:
        return parse_trace_point(v, info.field_name)

    @model_validator(mode="after")
    def _window(self) -> Trace:
        if isinstance(self.start, float) and isinstance(self.end, float) and self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
        if isinstance(self.start, str) and isinstance(self.end, str) and \
                parse_instant(self.end) <= parse_instant(self.start):
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


TrafficComponent = Annotated[Diurnal | Weekly | Noise | Spike | Bursts | Ramp | Idle | Trace,
                             Field(discriminator="type")]


class Traffic(Model):
    base: float = Field(ge=0, description="requests per second before the components")
    components: list[TrafficComponent] = Field(default_factory=list)
    # set by WorldConfig: the scenario's start_time, and the trace that 'start_time: trace' means
    _start_time: str | None = PrivateAttr(None)
    _anchor_trace: Trace | None = PrivateAttr(None)


# ----------------------------------------------------------------- services
class Dependency(Model):
    service: str
    calls_per_request: float = Field(1.0, ge=0)


class SLO(Model):
    latency_p95_ms: float = Field(250.0, gt=0)
    error_ratio: float = Field(0.01, ge=0, le=1)


class BatchRun(Model):
    """A scheduled batch: ``jobs`` arrive at ``at`` (and again every ``every``, if given)."""

    at: Duration
    jobs: int = Field(ge=1, le=100_000, description="jobs that arrive together")
    every: Duration | None = Field(None, gt=0, description="repeat period (e.g. 1d for a nightly batch)")


class BatchJobs(Model):
    """A batch workload: jobs queue up and its servers' vCPUs work them off, first come first served."""

    rate_per_hour: float = Field(0.0, ge=0, le=1_000_000, description="Poisson arrivals of single jobs")
    schedule: list[BatchRun] = Field(default_factory=list, description="scheduled arrivals of several jobs")
    work_vcpu_s: float = Field(gt=0, description="work per job in vCPU-seconds (mean)")
    work_sigma: float = Field(0.0, ge=0, le=5, description="lognormal spread of each job's work around the mean")
    deadline: Duration = Field(gt=0, description="each job must complete within this of its arrival")


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
    edge: bool | None = Field(None, description="takes users' requests (edge availability counts them); default: "
                              "true when no other service depends on it")
    disk_base: float = Field(0.3, ge=0, le=1)
    settings: dict[str, float] = Field(default_factory=dict, description="e.g. pool_size for databases")
    dependencies: list[Dependency] = Field(default_factory=list)
    traffic: Traffic | None = None
    slo: SLO = SLO()
    workload: Literal["interactive", "batch"] = Field(
        "interactive", description="interactive: requests with a latency SLO; batch: a job queue with deadlines")
    batch: BatchJobs | None = Field(None, description="the jobs of a batch workload (workload: batch)")

    @model_validator(mode="after")
    def _batch(self) -> Service:
        if self.workload == "batch":
            if self.batch is None:
                raise ValueError(f"service {self.name!r}: workload 'batch' needs a batch section (its jobs)")
            if self.traffic is not None:
                raise ValueError(f"service {self.name!r}.traffic: a batch service takes no request traffic; "
                                 "describe its work under batch")
            if self.batch.rate_per_hour == 0 and not self.batch.schedule:
                raise ValueError(f"service {self.name!r}.batch: no jobs arrive; give rate_per_hour or schedule")
        elif self.batch is not None:
            raise ValueError(f"service {self.name!r}.batch: only for workload 'batch' (got {self.workload!r})")
        return self


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
    jitter: Duration = Field(0.0, ge=0, description="onset = at + a uniform draw in [0, jitter) from the fault's own "
                             "random stream: the same for every engine set on a seed, not aligned to their cadences")
    effect: Literal["error_ratio", "latency", "cpu", "memory", "slow_leak"] | None = Field(
        None, description="bad_deploy only: what the bad release does (default error_ratio)")


class RandomFaults(Model):
    rate_per_day: float = Field(ge=0, le=1_000_000)
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


class Maintenance(Model):
    """Planned work (twin/maintenance.py): ``servers`` servers of ``service`` stopped at ``at`` and started again
    ``duration`` later by the maintainer — alerts fire, and it is no fault."""

    at: Duration = Field(ge=0)
    duration: Duration = Field(gt=0)
    service: str
    servers: int = Field(1, ge=1, description="how many of its ACTIVE servers (the first ones) are stopped")
    description: str = ""


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
    deploy: Distribution = Distribution(mean=30.0)
    stop: Distribution = Distribution(mean=10.0)
    shelve: Distribution = Distribution(mean=60.0)
    unshelve: Distribution = Distribution(mean=90.0)


# ------------------------------------------------ releases, budgets, requests
ReleaseEffect = Literal["error_ratio", "latency", "cpu", "memory", "memory_leak", "slow_leak"]
RequestKind = Literal["create_servers", "quota_increase", "resize"]


class Canary(Model):
    fraction: float = Field(0.1, gt=0, lt=1, description="share of the service's servers the pipeline deploys to first")
    bake: Duration = Field(1800.0, description="how long the canary runs before the pipeline rolls out to every server")


class Releases(Model):
    """A delivery pipeline that ships releases on its own (actor ``pipeline``); each release's effect is drawn.

    A bad release is a fault in the ground truth (``bad_deploy`` or ``memory_leak``); a benign one is not.
    """

    rate_per_day: float = Field(0.0, ge=0, le=10_000, description="releases per day, over all the services shipped")
    services: list[str] | None = Field(None, description="services the pipeline ships (default: all)")
    benign: float = Field(0.8, ge=0, le=1, description="share of releases that change no metric")
    improved: float = Field(0.0, ge=0, le=1, description="share of releases that improve a metric (half faster, half "
                            "less CPU per request), taken from the benign share")
    bad: dict[ReleaseEffect, float] = Field(
        default_factory=lambda: {"error_ratio": 0.4, "latency": 0.2, "cpu": 0.15, "memory": 0.1, "memory_leak": 0.15},
        description="how the bad releases split by effect (weights, normalised)")
    severity_sigma: float = Field(0.5, ge=0, le=5, description="lognormal spread of a bad release's severity around 1")
    canary: Canary | None = Field(None, description="deploy to a canary share first, then to all after `bake`")


class BudgetSpec(Model):
    project: str = Field("*", description="a project, or '*' for the whole account")
    period: Duration = Field(30 * 86400.0, gt=0, description="budget period (periods start at t=0)")
    limit: float = Field(gt=0, description="money per period")
    alert_at: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0], description="shares of the limit")
    hard: bool = Field(False, description="spend beyond the limit must be prevented, not only reported")


class RequestSpec(Model):
    """One self-service request from a team, submitted at ``at``."""

    at: Duration
    requester: str
    kind: RequestKind
    project: str | None = Field(None, description="default: the service's project, else the first project")
    service: str | None = Field(None, description="create_servers and resize: the service")
    count: int = Field(1, ge=1, le=1000, description="create_servers: how many")
    flavor: str | None = Field(None, description="create_servers: the flavor (default the service's); resize: the new one")
    server: str | None = Field(None, description="resize: the server id (default: the service's oldest live server)")
    instances: int = Field(0, ge=0, description="quota_increase: added to the project's instance quota")
    cores: int = Field(0, ge=0, description="quota_increase: added to the core quota")
    ram_mb: int = Field(0, ge=0, description="quota_increase: added to the RAM quota")


class RandomRequests(Model):
    rate_per_day: float = Field(ge=0, le=10_000)
    requesters: list[str] = Field(min_length=1)
    kinds: list[RequestKind] = Field(default_factory=lambda: ["create_servers"], min_length=1)
    services: list[str] | None = None


class Requests(Model):
    """The self-service inbox: requests at given times and/or at a rate, answered by FulfillRequest."""

    items: list[RequestSpec] = Field(default_factory=list)
    random: RandomRequests | None = None
    human_delay: Duration | None = Field(
        14400.0, description="a person approves a request still open after this long (actor 'human'); null: nobody")


def check_ops_references(cfg: WorldConfig) -> None:
    """Releases, budgets and requests name services, projects and flavors that exist."""
    services = {s.name for s in cfg.services}
    projects = {p.name for p in cfg.projects}
    flavors = {f.name for f in cfg.flavors}

    def need(where: str, value: str | None, allowed: set[str]) -> None:
        if value is not None and value not in allowed:
            raise ValueError(f"{where}: unknown {value!r}; allowed: {', '.join(sorted(allowed)) or '(none defined)'}")

    for s in (cfg.releases.services if cfg.releases else None) or []:
        need("releases.services", s, services)
    for i, b in enumerate(cfg.budgets):
        need(f"budgets[{i}].project", b.project, projects | {"*"})
    for i, r in enumerate(cfg.requests.items):
        where = f"requests.items[{i}] ({r.kind})"
        need(f"{where}.service", r.service, services)
        need(f"{where}.project", r.project, projects)
        need(f"{where}.flavor", r.flavor, flavors)
        if r.kind in ("create_servers", "resize") and r.service is None and r.server is None:
            raise ValueError(f"{where}.service: required for {r.kind}")
        if r.kind == "resize" and r.flavor is None:
            raise ValueError(f"{where}.flavor: required for resize")
        if r.at > cfg.duration:
            raise ValueError(f"{where}.at: {r.at:g} s is after the end of the run ({cfg.duration:g} s)")
    rr = cfg.requests.random
    for s in (rr.services if rr else None) or []:
        need("requests.random.services", s, services)
    for i, m in enumerate(cfg.maintenance):
        need(f"maintenance[{i}].service", m.service, services)
        if m.at >= cfg.duration:
            raise ValueError(f"maintenance[{i}].at: {m.at:g} s is not before the end of the run ({cfg.duration:g} s)")


class Operator(Model):
    """The human on call, part of the simulated world."""

    enabled: bool = True
    response_delay: Duration = Field(900.0, description="from page to hands on keyboard")
    paged_by: Literal["critical_alerts", "any_alert"] = Field(
        "any_alert", description="which raw alerts page the human: a traditional on-call gets every warning too")
    route: Literal["raw_alerts", "pages"] = Field(
        "raw_alerts", description="raw_alerts: raw alerts page the human (baselines); pages: only a Page action does "
        "(an engine set that handles alerting); the runner sets World.operator_route from the engine set")


class Inventory(Model):
    """How late the cloud's inventory (what the API shows) follows the truth, as in Nova."""

    power_state_sync_interval: Duration = Field(
        600.0, gt=0, description="Nova's sync_power_state_interval: a server that crashed shows ERROR at the next sync")
    service_down_time: Duration = Field(
        60.0, ge=0, description="Nova's service_down_time: a dead hypervisor shows 'down' this long after it died")


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

    seed: int = Field(0, ge=0, description="random seed (a non-negative integer)")
    duration: Duration = Field(3600.0, gt=0)
    tick: Duration = Field(5.0, gt=0, description="physics step")
    start_time: str | None = Field(
        None, description="calendar time of t=0, for the diurnal and weekly components: an ISO date-time (its UTC "
        "offset is the local time they follow), '@<epoch seconds>', or 'trace' (the first replayed row of the "
        "scenario's first trace). Default: t=0 is a Monday 00:00")
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
    inventory: Inventory = Inventory()
    api: Api = Api()
    releases: Releases | None = Field(None, description="a pipeline shipping releases on its own")
    budgets: list[BudgetSpec] = Field(default_factory=list, description="spending limits engines can see")
    requests: Requests = Field(default_factory=Requests, description="self-service requests from teams")
    maintenance: list[Maintenance] = Field(default_factory=list, description="planned work: servers stopped and "
                                           "started again (no fault)")

    @model_validator(mode="after")
    def _ops_references(self) -> WorldConfig:
        check_ops_references(self)
        return self

    @field_validator("start_time", mode="before")
    @classmethod
    def _start_time_yaml(cls, v: object) -> object:
        if isinstance(v, date):  # YAML reads an unquoted 2026-03-02T00:00:00Z as a date-time
            return v.isoformat() if isinstance(v, datetime) else f"{v.isoformat()}T00:00:00"
        return v

    @field_validator("start_time")
    @classmethod
    def _start_time(cls, v: str | None) -> str | None:
        if v is None or v.strip() == "trace":
            return None if v is None else "trace"
        try:
            parse_instant(v)
        except ValueError:
            raise ValueError(f"{v!r}: expected an ISO date-time like '2026-03-02T00:00:00Z', '@<epoch seconds>' "
                             f"or 'trace'") from None
        return v.strip()

    @model_validator(mode="after")
    def _limits(self) -> WorldConfig:
        """Sizes first: a world too big to build is refused before anything walks it."""
        from twin.limits import check_size

        if self.tick > self.duration:
            raise ValueError(f"tick: {self.tick:g} s is longer than the run (duration {self.duration:g} s)")
        check_size(self)
        traces = [c for s in self.services if s.traffic for c in s.traffic.components if isinstance(c, Trace)]
        if self.start_time == "trace" and not traces:
            raise ValueError("start_time: 'trace' needs a service with a trace component")
        for s in self.services:
            if s.traffic is not None:
                s.traffic._start_time = self.start_time
                s.traffic._anchor_trace = traces[0] if traces else None
        return self

    @model_validator(mode="after")
    def _references(self) -> WorldConfig:
        flavors = {f.name for f in self.flavors}
        projects = {p.name for p in self.projects}
        services = [s.name for s in self.services]
        zones = {z.name for r in self.regions for z in r.zones}
        zone_hvs = {z.name: _zone_hv_count(z) for r in self.regions for z in r.zones}

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
            if fs.hypervisor is not None and not _is_hypervisor(fs.hypervisor, zone_hvs):
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


def _is_hypervisor(name: str, zone_hvs: dict[str, int]) -> bool:
    """Is ``name`` one of the '<zone>-hvNNN' hosts (checked without listing them all)?"""
    m = re.fullmatch(r"(.+)-hv(\d{3,})", name)
    if not m or m.group(1) not in zone_hvs:
        return False
    i = m.group(2)
    return int(i) < zone_hvs[m.group(1)] and i == f"{int(i):03d}"


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
