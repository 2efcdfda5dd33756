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
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

ServerStatus = Literal["BUILD", "ACTIVE", "SHUTOFF", "SHELVED_OFFLOADED", "ERROR", "DELETED"]
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
class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that refuses writes: the mappings inside observations (server metadata, service settings,
    alert labels, spend splits) and the observation's own lookups, so that one engine cannot rewrite what
    another engine or the safety gate reads from the same observation, nor the world's own records."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("observations are read-only: copy with dict(...) to change a value")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


def _freeze(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not isinstance(v, FrozenDict):
            object.__setattr__(obj, n, FrozenDict(v))


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

    def __post_init__(self) -> None:
        _freeze(self, "metadata")


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

    def __post_init__(self) -> None:
        _freeze(self, "settings")


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

    def __post_init__(self) -> None:
        _freeze(self, "labels")


@dataclass(frozen=True, slots=True)
class Price:
    flavor: str
    pricing: PricingModel
    per_hour: float


@dataclass(frozen=True, slots=True)
class Spend:
    """Money spent since the start (``total``), the current burn rate, and the split per project and service."""

    total: float
    rate_per_hour: float
    per_project: Mapping[str, float]
    per_service: Mapping[str, float] = field(default_factory=dict)
    rate_per_project: Mapping[str, float] = field(default_factory=dict)  # per hour, now

    def __post_init__(self) -> None:
        _freeze(self, "per_project", "per_service", "rate_per_project")


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit for a project (or ``*`` for the whole account) over a period, as engines see it."""

    project: str
    period_s: float  # length of the budget period (e.g. 30 days)
    period_start: float
    limit: float
    spent: float  # in the current period
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)  # shares of ``limit`` at which owners expect warnings
    hard: bool = False  # True: spend beyond the limit must be prevented, not only reported


@dataclass(frozen=True, slots=True)
class Reservation:
    """A commitment: ``count`` servers of ``flavor`` at the reserved rate from ``start`` to ``end``."""

    id: str
    project: str
    flavor: str
    count: int
    per_hour: float  # per server
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class DeployEvent:
    """A release rolled out to part or all of a service (by an engine, a person or a pipeline)."""

    service: str
    version: str
    previous: str
    fraction: float
    at: float
    actor: str  # "pipeline", "automation", "human"


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    """An incident as declared through the choke point (``DeclareIncident``), with its updates."""

    id: str
    components: tuple[str, ...]
    severity: str
    status: str  # "open", "investigating", "mitigating", "mitigated", "resolved"
    declared_at: float
    declared_by: str
    title: str = ""
    root_causes: tuple[Mapping[str, Any], ...] = ()
    confidence: float = 1.0
    updated_at: float = 0.0
    resolved_at: float | None = None
    postmortem: str = ""
    pages: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """A self-service request waiting in the inbox (``obs.requests``), answered by ``FulfillRequest``."""

    id: str
    project: str
    requester: str
    kind: str  # e.g. "create_servers", "quota_increase", "resize"
    params: Mapping[str, Any]
    submitted_at: float
    status: str = "open"  # "open", "approved", "denied"

    def __post_init__(self) -> None:
        _freeze(self, "params")


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


# Server metadata every world keeps: the load-balancer weight last set by SetLBWeights (absent: 1.0, in rotation;
# "0.0": drained).  Engines that average over serving servers read it.
LB_WEIGHT_KEY = "zeroops_lb_weight"
# Server metadata every world keeps: the version of its service the server runs (the OpenStack adapter and the
# fake write it on deploys; the twin shows its per-server version). Canary analysis splits servers by it.
VERSION_KEY = "zeroops_version"

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
    "queue_length",  # batch services: jobs queued or running (0 for interactive services; NaN live where unknown)
    "active_servers",
)
# server_error_ratio: failed / served by that server (0..1; 0 when it served nothing), as a load balancer's
# per-member stats or the app's per-instance request counters show it.
SERVER_METRICS: tuple[str, ...] = ("server_cpu_util", "server_memory_util", "server_disk_util", "server_network_mbps",
                                   "server_up", "server_error_ratio")
# Per dependency edge (labels ``service`` = the caller, ``dependency`` = the callee): the evidence that
# root-cause analysis reads.
DEPENDENCY_METRICS: tuple[str, ...] = ("dep_call_rate", "dep_error_ratio", "dep_latency_ms")


# --------------------------------------------------------------------- actions
_action_ids = itertools.count(1)

Risk = Literal["low", "medium", "high"]
# What an action does to capacity and spend, for the safety gate's cost estimate:
# adds (new servers), removes (deletes one), resizes, resumes (a stopped or shelved server runs again),
# pauses (stops or shelves one), commits (buys a reservation), none (no change in capacity or spend).
Effect = Literal["adds", "removes", "resizes", "resumes", "pauses", "commits", "none"]
IncidentSeverity = Literal["P0", "P1", "P2", "P3", "P4"]
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4")


@dataclass(frozen=True, kw_only=True)
class Action:
    """Something an engine asks the world to do.

    Each action class declares its metadata once, as class attributes, and
    every consumer (the twin's adapter, the OpenStack adapter, the fake, the
    safety gate, the audit trail, the scorer) reads it from there:

    * ``kind`` — the verb's name (``create_server``); adapters dispatch on it;
    * ``target_field`` — the field naming the component it touches;
    * ``risk`` — ``low``, ``medium`` or ``high`` (rollout profiles and multi-approval);
    * ``effect`` — what it does to capacity and spend (the gate's cost estimate);
    * ``changes_world`` — False for record-only decisions (incidents, pages, notes):
      they change no infrastructure, but pass the choke point and the audit trail like any other;
    * ``always_approval`` — True when it never runs unattended unless a policy says so (chaos).

    ``reason``, ``confidence``, ``evidence`` and ``alternatives`` explain the
    decision and land in the audit trail; ``incident`` ties actions to one
    declared incident.
    """

    kind: ClassVar[str] = "action"
    target_field: ClassVar[str] = ""
    risk: ClassVar[Risk] = "medium"
    effect: ClassVar[Effect] = "none"
    changes_world: ClassVar[bool] = True
    always_approval: ClassVar[bool] = False

    reason: str = ""
    confidence: float = 1.0
    evidence: Mapping[str, Any] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()
    incident: str | None = None

    def target(self) -> str:
        """The component the action touches (a server id, a service, a project or an incident id)."""
        return str(getattr(self, self.target_field)) if self.target_field else ""

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _META_FIELDS}


_META_FIELDS = frozenset({"reason", "confidence", "evidence", "alternatives", "incident"})


@dataclass(frozen=True, kw_only=True)
class CreateServer(Action):
    kind: ClassVar[str] = "create_server"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "low"
    effect: ClassVar[Effect] = "adds"
    service: str
    flavor: str | None = None  # None: the service's flavor
    count: int = 1
    zone: str | None = None
    pricing: PricingModel = "on_demand"
    request_id: str | None = None  # idempotency key, stored in server metadata


@dataclass(frozen=True, kw_only=True)
class DeleteServer(Action):
    kind: ClassVar[str] = "delete_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "high"
    effect: ClassVar[Effect] = "removes"
    server_id: str


@dataclass(frozen=True, kw_only=True)
class RebootServer(Action):
    kind: ClassVar[str] = "reboot_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "low"
    server_id: str
    hard: bool = False


@dataclass(frozen=True, kw_only=True)
class StartServer(Action):
    """Power on a SHUTOFF server, or unshelve a SHELVED_OFFLOADED one."""

    kind: ClassVar[str] = "start_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "low"
    effect: ClassVar[Effect] = "resumes"
    server_id: str


@dataclass(frozen=True, kw_only=True)
class StopServer(Action):
    """Power off a server: it keeps its host and disk (billed as the provider bills stopped servers)."""

    kind: ClassVar[str] = "stop_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "medium"
    effect: ClassVar[Effect] = "pauses"
    server_id: str


@dataclass(frozen=True, kw_only=True)
class ShelveServer(Action):
    """Shelve a server: it leaves its host (SHELVED_OFFLOADED) and stops costing compute; StartServer unshelves."""

    kind: ClassVar[str] = "shelve_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "medium"
    effect: ClassVar[Effect] = "pauses"
    server_id: str


@dataclass(frozen=True, kw_only=True)
class ResizeServer(Action):
    kind: ClassVar[str] = "resize_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "medium"
    effect: ClassVar[Effect] = "resizes"
    server_id: str
    flavor: str


@dataclass(frozen=True, kw_only=True)
class MigrateServer(Action):
    kind: ClassVar[str] = "migrate_server"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "medium"
    server_id: str
    hypervisor: str | None = None  # None: let the scheduler choose


@dataclass(frozen=True, kw_only=True)
class RestartService(Action):
    """Restart a service's processes, one server at a time."""

    kind: ClassVar[str] = "restart_service"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "low"
    service: str


@dataclass(frozen=True, kw_only=True)
class SetServiceSetting(Action):
    kind: ClassVar[str] = "set_service_setting"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "medium"
    service: str
    key: str
    value: float


@dataclass(frozen=True, kw_only=True)
class Deploy(Action):
    """Roll ``version`` of a service out to ``fraction`` of its servers (a canary at 0.05, everyone at 1.0).

    Servers carry their version; the load balancer splits traffic by server, so
    ``fraction`` of the servers take about that share of the requests.
    """

    kind: ClassVar[str] = "deploy"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "medium"
    service: str
    version: str
    fraction: float = 1.0


@dataclass(frozen=True, kw_only=True)
class RollbackDeploy(Action):
    """Put every server of a service back on the version before the last deploy."""

    kind: ClassVar[str] = "rollback_deploy"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "medium"
    service: str


@dataclass(frozen=True, kw_only=True)
class SetLBWeights(Action):
    kind: ClassVar[str] = "set_lb_weights"
    target_field: ClassVar[str] = "service"
    risk: ClassVar[Risk] = "medium"
    service: str
    weights: Mapping[str, float]  # server id -> weight (0 drains)


@dataclass(frozen=True, kw_only=True)
class SetMetadata(Action):
    kind: ClassVar[str] = "set_metadata"
    target_field: ClassVar[str] = "server_id"
    risk: ClassVar[Risk] = "low"
    server_id: str
    metadata: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class UpdateQuota(Action):
    kind: ClassVar[str] = "update_quota"
    target_field: ClassVar[str] = "project"
    risk: ClassVar[Risk] = "high"
    project: str
    instances: int | None = None
    cores: int | None = None
    ram_mb: int | None = None


@dataclass(frozen=True, kw_only=True)
class PurchaseReservation(Action):
    """Commit to ``count`` servers of ``flavor`` for ``term_s`` seconds at the reserved rate (billed used or not)."""

    kind: ClassVar[str] = "purchase_reservation"
    target_field: ClassVar[str] = "project"
    risk: ClassVar[Risk] = "high"
    effect: ClassVar[Effect] = "commits"
    project: str
    flavor: str
    count: int = 1
    term_s: float = 365 * 86400.0


@dataclass(frozen=True, kw_only=True)
class InjectFault(Action):
    """Chaos: inject a catalogued fault into ``target`` (a service, server, hypervisor or zone).

    Always needs a human approval unless a chaos policy allows it (``always_approval``);
    the ground truth marks it as a chaos fault.
    """

    kind: ClassVar[str] = "inject_fault"
    target_field: ClassVar[str] = "target_component"
    risk: ClassVar[Risk] = "high"
    always_approval: ClassVar[bool] = True
    fault: str
    target_component: str
    duration: float | None = None
    magnitude: float | None = None
    experiment: str = ""


@dataclass(frozen=True, kw_only=True)
class FulfillRequest(Action):
    """Answer a self-service request from ``obs.requests``: approve (the world carries it out) or deny."""

    kind: ClassVar[str] = "fulfill_request"
    target_field: ClassVar[str] = "request_id"
    risk: ClassVar[Risk] = "medium"
    request_id: str
    approve: bool = True
    note: str = ""
    carried_out: bool = False  # True: the answerer's own actions (each through the gate) did it; the world only closes it


@dataclass(frozen=True, kw_only=True)
class CreateProject(Action):
    """Onboard a project (a Keystone project live): create it with its quotas, a budget and an alert route."""

    kind: ClassVar[str] = "create_project"
    target_field: ClassVar[str] = "project"
    risk: ClassVar[Risk] = "medium"
    project: str
    instances: int = 0
    cores: int = 0
    ram_mb: int = 0
    budget: float | None = None  # per 30 days; None: no budget of its own
    alert_route: str | None = None  # where the project's alerts go (a receiver name)


@dataclass(frozen=True, kw_only=True)
class DeleteProject(Action):
    """Offboard a project: refused (Conflict) while it still has servers; its spend and audit records stay."""

    kind: ClassVar[str] = "delete_project"
    target_field: ClassVar[str] = "project"
    risk: ClassVar[Risk] = "high"
    project: str


# ------------------------------------------------------ record-only decisions
@dataclass(frozen=True, kw_only=True)
class DeclareIncident(Action):
    """Declare an incident: the only action that counts as detecting a fault.

    ``root_causes`` are ranked candidates, best first, each a mapping with
    ``component`` and ``score`` (0..1) and optionally ``evidence``.
    """

    kind: ClassVar[str] = "declare_incident"
    target_field: ClassVar[str] = "incident_id"
    risk: ClassVar[Risk] = "low"
    changes_world: ClassVar[bool] = False
    incident_id: str
    components: tuple[str, ...]
    severity: IncidentSeverity = "P3"
    title: str = ""
    root_causes: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class UpdateIncident(Action):
    kind: ClassVar[str] = "update_incident"
    target_field: ClassVar[str] = "incident_id"
    risk: ClassVar[Risk] = "low"
    changes_world: ClassVar[bool] = False
    incident_id: str
    severity: IncidentSeverity | None = None
    components: tuple[str, ...] | None = None
    root_causes: tuple[Mapping[str, Any], ...] | None = None
    status: Literal["investigating", "mitigating", "mitigated"] | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class ResolveIncident(Action):
    kind: ClassVar[str] = "resolve_incident"
    target_field: ClassVar[str] = "incident_id"
    risk: ClassVar[Risk] = "low"
    changes_world: ClassVar[bool] = False
    incident_id: str
    postmortem: str = ""  # a reference (path or id) to the post-mortem


@dataclass(frozen=True, kw_only=True)
class Page(Action):
    """Page a human (``who``: a rota or a person) about an incident, with why."""

    kind: ClassVar[str] = "page"
    target_field: ClassVar[str] = "who"
    risk: ClassVar[Risk] = "low"
    changes_world: ClassVar[bool] = False
    who: str = "oncall"
    why: str = ""
    incident_id: str | None = None
    severity: IncidentSeverity = "P2"
    components: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Notify(Action):
    """A message to a channel (chat, ticket): recorded, pages nobody, and never counts as detection."""

    kind: ClassVar[str] = "notify"
    target_field: ClassVar[str] = "component"
    risk: ClassVar[Risk] = "low"
    changes_world: ClassVar[bool] = False
    component: str
    severity: Severity = "warning"
    message: str = ""


ACTION_TYPES: dict[str, type[Action]] = {
    cls.kind: cls
    for cls in (
        CreateServer,
        DeleteServer,
        RebootServer,
        StartServer,
        StopServer,
        ShelveServer,
        ResizeServer,
        MigrateServer,
        RestartService,
        SetServiceSetting,
        Deploy,
        RollbackDeploy,
        SetLBWeights,
        SetMetadata,
        UpdateQuota,
        PurchaseReservation,
        InjectFault,
        FulfillRequest,
        CreateProject,
        DeleteProject,
        DeclareIncident,
        UpdateIncident,
        ResolveIncident,
        Page,
        Notify,
    )
}
RECORD_ONLY_KINDS: frozenset[str] = frozenset(k for k, c in ACTION_TYPES.items() if not c.changes_world)


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
    def metric_history(self, metric: str, labels: Mapping[str, str], seconds: float, step: float) -> MetricWindow:
        """Rolled-up history (mean per ``step`` seconds, e.g. 60 or 300) reaching back past the raw window."""
        ...
    def budgets(self) -> Sequence[Budget]: ...
    def reservations(self) -> Sequence[Reservation]: ...
    def deploys(self, since: float) -> Sequence[DeployEvent]: ...
    def incidents(self) -> Sequence[IncidentInfo]: ...
    def requests(self) -> Sequence[Request]: ...
    # act
    def execute(self, action: Action) -> ActionResult: ...


_READERS: dict[int, tuple[Adapter, dict[Any, Any]]] = {}  # observation key -> (what it reads, its cache)
_reader_keys = itertools.count(1)


class Observation:
    """What an engine sees at ``now``: a lazy, per-step cached, read-only view of a world.

    Sealed: an observation holds no handle to the adapter or the world, nor
    its own cache (only a key, valid while the runtime's step lasts), so an
    engine can read what the adapter shows and act only through the actions
    it returns, and cannot change what the safety gate, reading the same
    observation, sees. Each property asks the adapter once per observation;
    metric windows are read-only copies.
    """

    __slots__ = ("now", "_key", "__weakref__")

    def __init__(self, adapter: Adapter, now: float) -> None:
        self.now = now
        self._key = next(_reader_keys)
        _READERS[self._key] = (adapter, {})

    def close(self) -> None:
        """End the view: later reads raise (the runtime closes each observation after its step)."""
        _READERS.pop(self._key, None)

    def __del__(self) -> None:
        _READERS.pop(self._key, None)

    def _get(self, key: Any, fn: Any) -> Any:
        adapter, cache = self._reader()
        if key not in cache:
            cache[key] = fn(adapter)
        return cache[key]

    def _reader(self) -> tuple[Adapter, dict[Any, Any]]:
        try:
            return _READERS[self._key]
        except KeyError:
            raise RuntimeError("this observation is closed: engines read the observation of their own step") from None

    def _cached(self, key: Any) -> bool:
        """Whether ``key`` was read during the step (for the seam's own tests)."""
        entry = _READERS.get(self._key)
        return entry is not None and key in entry[1]

    @property
    def flavors(self) -> dict[str, Flavor]:
        return self._get("flavors", lambda a: FrozenDict({f.name: f for f in a.flavors()}))

    @property
    def hypervisors(self) -> Sequence[Hypervisor]:
        return self._get("hypervisors", lambda a: tuple(a.hypervisors()))

    @property
    def services(self) -> dict[str, ServiceState]:
        return self._get("services", lambda a: FrozenDict({s.name: s for s in a.services()}))

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        return self._get(("servers", service, status), lambda a: tuple(a.servers(service=service, status=status)))

    def server(self, server_id: str) -> Server | None:
        """One server by id (None if it does not exist or is deleted)."""
        return self._get(("server", server_id), lambda a: a.server(server_id))

    def latest(self, metric: str) -> Mapping[str, float]:
        """Latest value of a per-service metric, keyed by service name."""
        return self._get(("latest", metric), lambda a: FrozenDict(a.latest(metric)))

    def window(self, metric: str, seconds: float, **labels: str) -> MetricWindow:
        key = ("window", metric, seconds, tuple(sorted(labels.items())))
        return self._get(key, lambda a: _frozen(a.metric_window(metric, labels, seconds)))

    def history(self, metric: str, seconds: float, step: float = 300.0, **labels: str) -> MetricWindow:
        """Rollups (mean per ``step``) over ``seconds``, reaching back past the raw window (days)."""
        key = ("history", metric, seconds, step, tuple(sorted(labels.items())))
        return self._get(key, lambda a: _frozen(a.metric_history(metric, labels, seconds, step)))

    def alerts(self, since: float) -> Sequence[Alert]:
        return self._get(("alerts", since), lambda a: tuple(a.alerts(since)))

    def deploys(self, since: float) -> Sequence[DeployEvent]:
        return self._get(("deploys", since), lambda a: tuple(a.deploys(since)))

    @property
    def prices(self) -> Sequence[Price]:
        return self._get("prices", lambda a: tuple(a.prices()))

    @property
    def spend(self) -> Spend:
        return self._get("spend", lambda a: a.spend())

    @property
    def quotas(self) -> dict[str, Quota]:
        return self._get("quotas", lambda a: FrozenDict({q.project: q for q in a.quotas()}))

    @property
    def budgets(self) -> dict[str, Budget]:
        return self._get("budgets", lambda a: FrozenDict({b.project: b for b in a.budgets()}))

    @property
    def reservations(self) -> Sequence[Reservation]:
        return self._get("reservations", lambda a: tuple(a.reservations()))

    @property
    def incidents(self) -> dict[str, IncidentInfo]:
        """Open (not resolved) incidents declared through the choke point, by id."""
        return self._get("incidents", lambda a: FrozenDict({i.id: i for i in a.incidents() if i.status != "resolved"}))

    @property
    def requests(self) -> Sequence[Request]:
        """Open self-service requests, oldest first."""
        return self._get("requests", lambda a: tuple(r for r in a.requests() if r.status == "open"))


def _frozen(w: MetricWindow) -> MetricWindow:
    """A copy an engine cannot write back through (no view of the world's buffers)."""
    t, v = np.array(w.t, dtype=float), np.array(w.v, dtype=float)
    t.flags.writeable = False
    v.flags.writeable = False
    return MetricWindow(w.metric, FrozenDict(w.labels), t, v)
