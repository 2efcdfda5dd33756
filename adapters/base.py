"""The seam: the typed protocol that engines use to observe and act on a world.

Engines import this module (and nothing of ``twin/``, simpy or openstack).
Two worlds implement it: :mod:`adapters.sim` on the SimPy twin and
:mod:`adapters.openstack` on a live cloud.  Names follow OpenStack's compute
API (server, flavor, hypervisor, project, quota) so a live adapter maps one to
one; see ``docs/adapter-mapping.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

ServerStatus = Literal["BUILD", "ACTIVE", "SHUTOFF", "ERROR", "DELETED"]
PricingModel = Literal["on_demand", "spot", "reserved"]
Severity = Literal["critical", "warning", "info"]


# --------------------------------------------------------------------- errors
class AdapterError(Exception):
    """Base of every error an adapter raises; engines must handle these."""


class QuotaExceeded(AdapterError):
    """The project's quota (instances, cores or RAM) would be exceeded."""


class NoValidHost(AdapterError):
    """The placement scheduler found no hypervisor with room for the request."""


class Conflict(AdapterError):
    """The target is in a state that does not allow the action (HTTP 409)."""


class NotFound(AdapterError):
    """The target does not exist (any more)."""


class TransientAPIError(AdapterError):
    """A 5xx or a time-out: the same call may succeed later."""


# ---------------------------------------------------------------- observations
@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class Hypervisor:
    id: str
    name: str
    region: str
    zone: str
    state: Literal["up", "down"]
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    disk_gb: int
    disk_gb_used: int
    gpus: int = 0
    gpus_used: int = 0


@dataclass(frozen=True, slots=True)
class Server:
    id: str
    name: str
    flavor: str
    project: str
    status: ServerStatus
    zone: str
    hypervisor: str | None
    service: str | None
    pricing: PricingModel = "on_demand"
    created_at: float = 0.0
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A group of servers behind a load balancer, as its operators see it."""

    name: str
    project: str
    flavor: str
    dependencies: tuple[str, ...]
    active: int
    building: int
    failed: int
    version: int
    settings: Mapping[str, float]
    min_servers: int = 0
    max_servers: int = 1_000_000
    stateful: bool = True  # its servers' disks hold data (deleting one deletes data); unknown = assume so


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification of a Prometheus-style alerting rule."""

    name: str
    severity: Severity
    labels: Mapping[str, str]
    state: Literal["firing", "resolved"]
    starts_at: float
    at: float
    value: float
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Price:
    flavor: str
    pricing: PricingModel
    per_hour: float


@dataclass(frozen=True, slots=True)
class Spend:
    total: float
    rate_per_hour: float
    per_project: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Quota:
    project: str
    instances: int
    cores: int
    ram_mb: int
    instances_used: int
    cores_used: int
    ram_mb_used: int


@dataclass(frozen=True, slots=True)
class MetricWindow:
    """Samples of one metric for one entity: times (s) and values, oldest first."""

    metric: str
    labels: Mapping[str, str]
    t: np.ndarray
    v: np.ndarray

    def last(self, default: float = float("nan")) -> float:
        return float(self.v[-1]) if len(self.v) else default

    def mean(self, default: float = float("nan")) -> float:
        return float(np.nanmean(self.v)) if len(self.v) else default


# Metric names every world exports, per service (label ``service``) unless noted.
SERVICE_METRICS: tuple[str, ...] = (
    "request_rate",  # offered requests per second
    "served_rate",  # requests per second answered
    "error_ratio",  # failed / offered, 0..1
    "latency_p95_ms",
    "cpu_util",  # mean over active servers, 0..1
    "memory_util",  # max over active servers, 0..1
    "disk_util",  # max over active servers, 0..1
    "pool_util",  # in-use / pool size of connection pools, 0..1
    "network_mbps",  # request traffic in and out, megabits per second
    "active_servers",
)
SERVER_METRICS: tuple[str, ...] = ("server_cpu_util", "server_memory_util", "server_disk_util", "server_network_mbps",
                                   "server_up")


# --------------------------------------------------------------------- actions
_action_ids = itertools.count(1)


@dataclass(frozen=True, kw_only=True)
class Action:
    """Something an engine asks the world to do.

    ``reason``, ``confidence``, ``evidence`` and ``alternatives`` explain the
    decision and land in the audit trail; ``incident`` ties actions to one
    incident when the engine tracks incidents.
    """

    reason: str = ""
    confidence: float = 1.0
    evidence: Mapping[str, Any] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()
    incident: str | None = None

    kind: str = field(init=False, default="action")

    def target(self) -> str:
        """The component the action touches (a server id or a service name)."""
        return ""

    def params(self) -> dict[str, Any]:
        skip = {"reason", "confidence", "evidence", "alternatives", "incident", "kind"}
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}


@dataclass(frozen=True, kw_only=True)
class CreateServer(Action):
    service: str
    flavor: str | None = None  # None: the service's flavor
    count: int = 1
    zone: str | None = None
    pricing: PricingModel = "on_demand"
    request_id: str | None = None  # idempotency key, stored in server metadata
    kind: str = field(init=False, default="create_server")

    def target(self) -> str:
        return self.service


@dataclass(frozen=True, kw_only=True)
class DeleteServer(Action):
    server_id: str
    kind: str = field(init=False, default="delete_server")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class RebootServer(Action):
    server_id: str
    hard: bool = False
    kind: str = field(init=False, default="reboot_server")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class StartServer(Action):
    server_id: str
    kind: str = field(init=False, default="start_server")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class ResizeServer(Action):
    server_id: str
    flavor: str
    kind: str = field(init=False, default="resize_server")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class MigrateServer(Action):
    server_id: str
    hypervisor: str | None = None  # None: let the scheduler choose
    kind: str = field(init=False, default="migrate_server")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class RestartService(Action):
    service: str
    kind: str = field(init=False, default="restart_service")

    def target(self) -> str:
        return self.service


@dataclass(frozen=True, kw_only=True)
class SetServiceSetting(Action):
    service: str
    key: str
    value: float
    kind: str = field(init=False, default="set_service_setting")

    def target(self) -> str:
        return self.service


@dataclass(frozen=True, kw_only=True)
class RollbackDeploy(Action):
    service: str
    kind: str = field(init=False, default="rollback_deploy")

    def target(self) -> str:
        return self.service


@dataclass(frozen=True, kw_only=True)
class SetLBWeights(Action):
    service: str
    weights: Mapping[str, float]  # server id -> weight (0 drains)
    kind: str = field(init=False, default="set_lb_weights")

    def target(self) -> str:
        return self.service


@dataclass(frozen=True, kw_only=True)
class SetMetadata(Action):
    server_id: str
    metadata: Mapping[str, str]
    kind: str = field(init=False, default="set_metadata")

    def target(self) -> str:
        return self.server_id


@dataclass(frozen=True, kw_only=True)
class UpdateQuota(Action):
    project: str
    instances: int | None = None
    cores: int | None = None
    ram_mb: int | None = None
    kind: str = field(init=False, default="update_quota")

    def target(self) -> str:
        return self.project


@dataclass(frozen=True, kw_only=True)
class Notify(Action):
    """Declare or page an incident: changes nothing in the world, but is recorded."""

    component: str
    severity: Severity = "warning"
    message: str = ""
    page_human: bool = False
    kind: str = field(init=False, default="notify")

    def target(self) -> str:
        return self.component


ACTION_TYPES: dict[str, type[Action]] = {
    cls.__dataclass_fields__["kind"].default: cls  # type: ignore[misc]
    for cls in (
        CreateServer,
        DeleteServer,
        RebootServer,
        StartServer,
        ResizeServer,
        MigrateServer,
        RestartService,
        SetServiceSetting,
        RollbackDeploy,
        SetLBWeights,
        SetMetadata,
        UpdateQuota,
        Notify,
    )
}


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an adapter did with an action. ``server_ids``: servers created."""

    ok: bool
    detail: str = ""
    server_ids: tuple[str, ...] = ()
    attempts: int = 1


# -------------------------------------------------------------------- protocol
@runtime_checkable
class Adapter(Protocol):
    """One client, swappable worlds: the only way engines touch anything."""

    name: str

    def now(self) -> float: ...
    # observe
    def flavors(self) -> Sequence[Flavor]: ...
    def hypervisors(self) -> Sequence[Hypervisor]: ...
    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]: ...
    def server(self, server_id: str) -> Server | None: ...
    def services(self) -> Sequence[ServiceState]: ...
    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> MetricWindow: ...
    def latest(self, metric: str) -> Mapping[str, float]: ...
    def alerts(self, since: float) -> Sequence[Alert]: ...
    def prices(self) -> Sequence[Price]: ...
    def spend(self) -> Spend: ...
    def quotas(self) -> Sequence[Quota]: ...
    # act
    def execute(self, action: Action) -> ActionResult: ...


class Observation:
    """What an engine sees at ``now``: a lazy, per-step cached view of an adapter.

    Each property asks the adapter once per observation, so engines that do
    not look at servers do not pay for listing them.
    """

    def __init__(self, adapter: Adapter, now: float) -> None:
        self.adapter = adapter
        self.now = now
        self._cache: dict[Any, Any] = {}

    def _get(self, key: Any, fn: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def flavors(self) -> dict[str, Flavor]:
        return self._get("flavors", lambda: {f.name: f for f in self.adapter.flavors()})

    @property
    def hypervisors(self) -> Sequence[Hypervisor]:
        return self._get("hypervisors", self.adapter.hypervisors)

    @property
    def services(self) -> dict[str, ServiceState]:
        return self._get("services", lambda: {s.name: s for s in self.adapter.services()})

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        return self._get(("servers", service, status), lambda: self.adapter.servers(service=service, status=status))

    def server(self, server_id: str) -> Server | None:
        """One server by id (None if it does not exist or is deleted)."""
        return self._get(("server", server_id), lambda: self.adapter.server(server_id))

    def latest(self, metric: str) -> Mapping[str, float]:
        """Latest value of a per-service metric, keyed by service name."""
        return self._get(("latest", metric), lambda: self.adapter.latest(metric))

    def window(self, metric: str, seconds: float, **labels: str) -> MetricWindow:
        key = ("window", metric, seconds, tuple(sorted(labels.items())))
        return self._get(key, lambda: self.adapter.metric_window(metric, labels, seconds))

    def alerts(self, since: float) -> Sequence[Alert]:
        return self._get(("alerts", since), lambda: self.adapter.alerts(since))

    @property
    def prices(self) -> Sequence[Price]:
        return self._get("prices", self.adapter.prices)

    @property
    def spend(self) -> Spend:
        return self._get("spend", self.adapter.spend)

    @property
    def quotas(self) -> dict[str, Quota]:
        return self._get("quotas", lambda: {q.project: q for q in self.adapter.quotas()})
