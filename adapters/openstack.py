"""The live adapter: the adapter protocol on a real OpenStack cloud, through openstacksdk.

Observe: servers, flavors, hypervisors (capacity from Placement inventories,
since compute microversion 2.88 hides hypervisor sizes), images, compute
quotas and usage, server actions/faults; metrics, rollups and alerts from
Prometheus (:mod:`adapters.prometheus`); budgets and reservations from the
live config; deploys, incidents and the request inbox from the adapter's own
store (:mod:`adapters.journal`), since OpenStack has no API for them.  Act:
create (idempotent through a request id in server metadata), delete, reboot,
start/unshelve, stop, shelve, resize with confirm, migrate, metadata, quotas,
rolling restarts that wait for health, deploys and rollbacks (Nova rebuilds with the
service's release images, else server metadata), LB weights (Octavia, else metadata), server-level chaos.  ``execute``
dispatches on ``action.kind`` through one table (``_HANDLERS``).  Every API call goes through :class:`adapters.retry.Retry`;
every attempt lands in the ``ActionResult`` (``attempts``, ``detail``).

A protocol *service* is the set of servers carrying ``zeroops_service=<name>``
in their metadata; the services themselves come from the live configuration
(:mod:`adapters.live_config`).  Actions without an OpenStack equivalent on the cloud at hand are mapped
onto server metadata; ``describe()`` says which; see ``docs/adapter-mapping.md``.
No credentials are logged: :meth:`OpenStackAdapter.describe` is what may be shown.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters import incident_board as board
from adapters import octavia, releases
from adapters.base import (
    DEPENDENCY_METRICS,
    SERVER_METRICS,
    SERVICE_METRICS,
    Action,
    ActionResult,
    AdapterError,
    Alert,
    Budget,
    Conflict,
    CreateProject,
    CreateServer,
    DeclareIncident,
    DeleteProject,
    DeleteServer,
    Deploy,
    DeployEvent,
    Flavor,
    FulfillRequest,
    Hypervisor,
    IncidentInfo,
    InjectFault,
    MetricWindow,
    MigrateServer,
    NotFound,
    Notify,
    NoValidHost,
    Page,
    Price,
    PurchaseReservation,
    Quota,
    QuotaExceeded,
    RebootServer,
    Request,
    Reservation,
    ResizeServer,
    ResolveIncident,
    RestartService,
    RollbackDeploy,
    Server,
    ServerStatus,
    ServiceState,
    SetLBWeights,
    SetMetadata,
    SetServiceSetting,
    ShelveServer,
    Spend,
    StartServer,
    StopServer,
    TransientAPIError,
    UpdateIncident,
    UpdateQuota,
)
from adapters.journal import Journal, JournalEntry
from adapters.live_config import ConfigError, LiveConfig, ServiceSpec
from adapters.prometheus import Prometheus, epoch_seconds
from adapters.releases import META_PREV_IMAGE, META_REBUILD
from adapters.retry import Retry, Trail, classify, fail
from adapters.scope import OutOfScope, Scope, scope_of_config

# metadata keys zeroops writes on servers
META_SERVICE = "zeroops_service"
META_REQUEST = "zeroops_request_id"
META_INDEX = "zeroops_index"
META_VERSION = "zeroops_version"
META_PREV_VERSION = "zeroops_prev_version"
META_SETTING = "zeroops_setting_"
META_WEIGHT = "zeroops_lb_weight"  # == adapters.base.LB_WEIGHT_KEY
META_PRICING = "zeroops_pricing"

# Nova task states during which a server is on its way somewhere: engines must not act again.
_TRANSIT_TASKS = {
    "rebooting",
    "reboot_pending",
    "reboot_started",
    "rebooting_hard",
    "reboot_pending_hard",
    "reboot_started_hard",
    "powering-on",
    "powering-off",
    "spawning",
    "scheduling",
    "block_device_mapping",
    "networking",
    "rebuilding",
    "shelving",
    "shelving_image_pending_upload",
    "shelving_image_uploading",
    "shelving_offloading",
    "unshelving",
    "pausing",
    "unpausing",
    "suspending",
    "resuming",
}
#: faults InjectFault can cause live (server-level only): fault -> what is done to the target server
LIVE_FAULTS: dict[str, str] = {"server_crash": "stop", "server_pause": "pause", "server_reboot": "reboot"}


def map_status(status: str | None, task_state: str | None) -> ServerStatus:
    """Nova's status and task state, as the protocol's five server statuses."""
    st = (status or "").upper()
    task = (task_state or "").lower()
    if task == "deleting" or st in ("DELETED", "SOFT_DELETED"):
        return "DELETED"
    if st in ("BUILD", "REBUILD", "REBOOT", "HARD_REBOOT") or task in _TRANSIT_TASKS:
        return "BUILD"
    if st == "ERROR" or st == "UNKNOWN":
        return "ERROR"
    if st == "SHELVED_OFFLOADED":
        return "SHELVED_OFFLOADED"
    if st in ("SHUTOFF", "STOPPED", "SUSPENDED", "PAUSED", "SHELVED"):
        return "SHUTOFF"
    return "ACTIVE"  # ACTIVE, RESIZE, VERIFY_RESIZE, REVERT_RESIZE, MIGRATING, PASSWORD, RESCUE


def version_number(v: str | None) -> int:
    """The release number in a version string: ``'7'`` -> 7, ``'v2.3'`` -> 3 (the last digits), ``'x'`` -> 0."""
    m = re.search(r"(\d+)\D*$", v or "")
    return int(m.group(1)) if m else 0


def _image_of(s: Any) -> str:
    """The id of the image a raw Nova server runs ('' when booted from a volume)."""
    img = getattr(s, "image", None)
    if isinstance(img, dict):
        return str(img.get("id") or "")
    return str(getattr(img, "id", None) or "")


def _int(s: Any, default: int = 0) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        return default


class OpenStackAdapter:
    """The adapter protocol over an ``openstack.connection.Connection`` (or anything shaped like it)."""

    name = "openstack"

    def __init__(
        self,
        conn: Any,
        config: LiveConfig | None = None,
        *,
        prometheus: Prometheus | None = None,
        journal: Journal | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        cache_ttl: float = 1.0,
    ) -> None:
        self.conn = conn
        self.config = config or LiveConfig()
        self.prometheus = (
            prometheus
            if prometheus is not None
            else (Prometheus(self.config.prometheus, clock) if self.config.prometheus else None)
        )
        self.journal = journal
        # deploys, incidents and requests: in the journal's database, else in memory (lost on restart)
        self.store = journal if journal is not None else Journal(":memory:")
        self.actor = "automation"
        self._sleep = sleep
        self._clock = clock
        r = self.config.retry
        self.retry = Retry(r.attempts, r.base_delay, r.max_delay, r.jitter, sleep=sleep)
        self._cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.RLock()
        self._flavor_ids: dict[str, str] = {}
        self._project_names: dict[str, str] = {}
        self._scope: Scope | None = None
        self._scope_ids: set[str] | None = None
        self._project_conns: dict[str, Any] = {}

    # ---------------------------------------------------------------- setup
    @classmethod
    def connect(cls, cloud: str | None = None, config: LiveConfig | None = None, **kwargs: Any) -> OpenStackAdapter:
        """Connect with a clouds.yaml entry (``cloud``) or, without one, the ``OS_*`` environment."""
        import openstack  # local: engines and the twin never pay for it

        config = config or LiveConfig()
        name = cloud or config.cloud
        conn = (
            openstack.connect(cloud=name, api_timeout=config.api_timeout)
            if name
            else openstack.connect(api_timeout=config.api_timeout)
        )
        return cls(conn, config, **kwargs)

    def describe(self) -> dict[str, Any]:
        """Where this adapter points, safe to print (no password, no token)."""
        cfg = getattr(self.conn, "config", None)
        auth = dict(getattr(cfg, "config", {}).get("auth", {})) if cfg is not None else {}
        return {
            "cloud": getattr(cfg, "name", None),
            "auth_url": auth.get("auth_url"),
            "username": auth.get("username"),
            "project": self.project_name,
            "region": getattr(cfg, "region_name", None),
            "prometheus": self.prometheus.config.url if self.prometheus else None,
            "load_balancer": "octavia" if self._octavia() else "none (SetLBWeights: zeroops_lb_weight metadata only)",
            "service_actions": self.service_actions(),
        }

    def service_actions(self) -> dict[str, dict[str, str]]:
        """Per service: what RestartService, Deploy/RollbackDeploy and SetLBWeights really do on this cloud."""
        out = {}
        for s in self.config.services:
            r = s.rollout
            deploy = (f"Nova rebuild with the release's image ({'releases ' + str(sorted(s.releases)) if s.releases else ''}"
                      f"{' ' if s.releases and s.release_image else ''}{s.release_image or ''}), one server at a time"
                      if releases.image_deployed(s) else "zeroops_version metadata only (your deploy tooling ships)")
            out[s.name] = {
                "restart": f"rolling reboot, {r.max_unavailable} at a time, waiting for ACTIVE"
                           + (f" and {r.health_metric} > 0" if self._health_metric(s) else " (no health query)"),
                "deploy": deploy,
                "lb_weights": self.lb_mode(s.name),
            }
        return out

    def validate(self) -> list[str]:
        """Check the configuration against the cloud; return problems (flavor/image unknown, ...)."""
        problems = []
        flavors = sorted(f.name for f in self.flavors())
        images = sorted(i["name"] for i in self.images())
        for s in self.config.services:
            where = f"services[{s.name}]"
            if s.flavor not in flavors:
                problems.append(f"{where}.flavor: {s.flavor!r} is not a flavor of this cloud; allowed: {flavors}")
            if s.image not in images:
                problems.append(f"{where}.image: {s.image!r} is not an image of this cloud; allowed: {images}")
            ids = {str(i["id"]) for i in self.images()}
            for version, img in sorted(s.releases.items()):
                if img not in images and img not in ids:
                    problems.append(f"{where}.releases[{version}]: {img!r} is not an image of this cloud; "
                                    f"allowed: {images}")
            if s.project and s.project not in (self.project_name, self.project_id):
                try:
                    self._compute_for(s.project)
                except AdapterError as e:
                    problems.append(f"{where}.project: {s.project!r}: cannot act in it with the cloud entry's "
                                    f"credentials ({type(e).__name__}: {e})")
        for p in self.config.scope.projects:
            try:
                self._project_id(p)
            except AdapterError as e:
                problems.append(f"scope.projects: {p!r}: {e}")
        return problems

    @property
    def project_id(self) -> str:
        return str(self.conn.current_project_id)

    @property
    def project_name(self) -> str:
        return self._project_name(self.project_id)

    def _project_name(self, pid: str) -> str:
        if pid not in self._project_names:
            name = pid
            try:
                if pid == self.conn.current_project_id:
                    name = self.conn.current_project.name or pid
                else:
                    name = self.conn.identity.get_project(pid).name or pid
            except Exception:  # non-admin users may not read other projects: keep the id
                name = pid
            self._project_names[pid] = name
        return self._project_names[pid]

    def _project_id(self, project: str) -> str:
        if project in (self.project_name, self.project_id):
            return self.project_id
        try:
            p = self.conn.identity.find_project(project, ignore_missing=True)
        except Exception as e:
            raise classify(e) from e
        if p is None:
            raise NotFound(f"project {project!r} not found")
        return str(p.id)

    # ---------------------------------------------------------------- scope
    @property
    def scope(self) -> Scope:
        """What this controller manages (config ``scope:``; default: the cloud entry's project)."""
        if self._scope is None:
            self._scope = scope_of_config(self.config, self.project_name).with_aliases(
                {self.project_id: self.project_name})
        return self._scope

    def _scope_project_ids(self) -> set[str]:
        """Ids of the scope's projects (the current one always included)."""
        if self._scope_ids is None:
            ids = {self.project_id}
            for p in self.scope.projects:
                with contextlib.suppress(NotFound):  # a scope project not created yet (onboarding) holds nothing
                    ids.add(self._project_id(p))
            self._scope_ids = ids
        return self._scope_ids

    def _multi_project(self) -> dict[str, Any]:
        """Listing arguments: ``all_projects`` when the scope spans projects beyond the token's."""
        return {"all_projects": True} if self._scope_project_ids() != {self.project_id} else {}

    def _compute_for(self, project: str | None) -> Any:
        """The compute proxy acting in ``project`` (None or the token's project: this connection's own); another
        project gets a connection scoped to it (``connect_as_project``: the user needs a role there)."""
        if not project or project in (self.project_name, self.project_id):
            return self.conn.compute
        pid = self._project_id(project)
        with self._lock:
            other = self._project_conns.get(pid)
        if other is None:
            try:
                p = self.conn.identity.get_project(pid)
                other = self.conn.connect_as_project({"id": pid, "name": getattr(p, "name", None),
                                                      "domain_id": getattr(p, "domain_id", None)})
                other.authorize()
            except Exception as e:
                raise classify(e) from e
            with self._lock:
                self._project_conns[pid] = other
        return other.compute

    def manages(self, server: Server) -> bool:
        return self.scope.manages(server)

    def _lookup(self, server_id: str) -> Server | None:
        """One server as it is now (fresh from Nova), for the scope check; None if Nova does not know it."""
        try:
            return self._to_server(self._get_server(server_id))
        except NotFound:
            return None

    # ---------------------------------------------------------------- cache
    def _cached(self, key: str, fn: Callable[[], Any], ttl: float | None = None) -> Any:
        ttl = self._cache_ttl if ttl is None else ttl
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < ttl:
                return hit[1]
        val = fn()
        with self._lock:
            self._cache[key] = (now, val)
        return val

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def _read(self, what: str, fn: Callable[[], Any]) -> Any:
        """A read call with retries (no trail kept)."""
        return self.retry.call(Trail(), what, fn)

    # -------------------------------------------------------------- observe
    def now(self) -> float:
        return self._clock()

    def _raw_flavors(self) -> list[Any]:
        return self._cached("flavors", lambda: self._read("list flavors", lambda: list(self.conn.compute.flavors())), 60)

    def flavors(self) -> Sequence[Flavor]:
        out = []
        for f in self._raw_flavors():
            extra = getattr(f, "extra_specs", None) or {}
            gpus = sum(_int(v) for k, v in extra.items() if k.startswith("resources:") and "GPU" in k.upper())
            out.append(Flavor(f.name, int(f.vcpus or 0), int(f.ram or 0), int(f.disk or 0), gpus))
            self._flavor_ids[f.name] = f.id
        return out

    def _flavor_id(self, name: str) -> str:
        if name not in self._flavor_ids:
            self.flavors()
        if name not in self._flavor_ids:
            raise NotFound(f"flavor {name!r} not found; flavors: {sorted(self._flavor_ids)}")
        return self._flavor_ids[name]

    def images(self) -> list[dict[str, Any]]:
        """Images visible to the project: id, name, status, size."""

        def fetch() -> list[dict[str, Any]]:
            imgs = self._read("list images", lambda: list(self.conn.image.images()))
            return [{"id": i.id, "name": i.name, "status": i.status, "size": i.size} for i in imgs]

        return self._cached("images", fetch, 60)

    def _image_id(self, name: str) -> str:
        for i in self.images():
            if name in (i["name"], i["id"]) and i["status"] == "active":
                return str(i["id"])
        raise NotFound(f"image {name!r} not found or not active; images: {sorted(str(i['name']) for i in self.images())}")

    def _placement(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Resource provider name -> (inventories, usages), read from Placement."""
        out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        rps = self._read("placement providers", lambda: self.conn.placement.get("/resource_providers").json())
        for rp in rps.get("resource_providers", []):
            u = rp["uuid"]
            inv = self._read(
                "placement inventories",
                lambda u=u: self.conn.placement.get(f"/resource_providers/{u}/inventories").json(),
            )
            use = self._read("placement usages", lambda u=u: self.conn.placement.get(f"/resource_providers/{u}/usages").json())
            out[rp["name"]] = (inv.get("inventories", {}), use.get("usages", {}))
        return out

    def hypervisors(self) -> Sequence[Hypervisor]:
        return self._cached("hypervisors", self._hypervisors, 5)

    def _hypervisors(self) -> list[Hypervisor]:
        hyps = self._read("list hypervisors", lambda: list(self.conn.compute.hypervisors(details=True)))
        zones: dict[str, str] = {}
        try:
            for z in self._read("availability zones", lambda: list(self.conn.compute.availability_zones(details=True))):
                for host, svcs in (z.hosts or {}).items():
                    if "nova-compute" in svcs:
                        zones[host] = z.name
        except AdapterError:
            pass
        try:
            placement = self._placement()
        except AdapterError:
            placement = {}
        legacy: dict[str, dict[str, Any]] = {}
        if not placement:  # no Placement access: sizes from the compute API before 2.88
            try:
                body = self._read(
                    "hypervisors@2.87",
                    lambda: self.conn.compute.get("/os-hypervisors/detail", microversion="2.87").json(),
                )
                legacy = {h["hypervisor_hostname"]: h for h in body.get("hypervisors", [])}
            except AdapterError:
                legacy = {}
        region = getattr(getattr(self.conn, "config", None), "region_name", None) or ""
        out = []
        for h in hyps:
            inv, use = placement.get(h.name, ({}, {}))

            def cap(rc: str, inv: dict[str, Any] = inv) -> int:
                i = inv.get(rc)
                return int((i["total"] - i.get("reserved", 0)) * i.get("allocation_ratio", 1.0)) if i else 0

            gpu_rc = [rc for rc in inv if "GPU" in rc]
            lg = legacy.get(h.name, {})
            host = (getattr(h, "service_details", None) or {}).get("host", h.name)
            out.append(
                Hypervisor(
                    id=str(h.id),
                    name=h.name,
                    region=region,
                    zone=zones.get(host, "nova"),
                    state="up" if (h.state or "up") == "up" and (h.status or "enabled") == "enabled" else "down",
                    vcpus=cap("VCPU") if inv else _int(lg.get("vcpus")),
                    vcpus_used=_int(use.get("VCPU")) if inv else _int(lg.get("vcpus_used")),
                    memory_mb=cap("MEMORY_MB") if inv else _int(lg.get("memory_mb")),
                    memory_mb_used=_int(use.get("MEMORY_MB")) if inv else _int(lg.get("memory_mb_used")),
                    disk_gb=cap("DISK_GB") if inv else _int(lg.get("local_gb")),
                    disk_gb_used=_int(use.get("DISK_GB")) if inv else _int(lg.get("local_gb_used")),
                    gpus=sum(cap(rc) for rc in gpu_rc),
                    gpus_used=sum(_int(use.get(rc)) for rc in gpu_rc),
                )
            )
        return out

    def _raw_servers(self) -> list[Any]:
        return self._cached("servers", self._list_servers)

    def _list_servers(self) -> list[Any]:
        """The servers of the scope's projects: of the token's project, or of all of them (a role that may list
        all projects' servers) when the scope spans several."""
        ids = self._scope_project_ids()
        if ids == {self.project_id}:
            return list(self._read("list servers", lambda: list(self.conn.compute.servers(details=True))))
        every = self._read("list servers", lambda: list(self.conn.compute.servers(details=True, all_projects=True)))
        return [s for s in every if str(getattr(s, "project_id", "")) in ids]

    def _to_server(self, s: Any) -> Server:
        meta = dict(s.metadata or {})
        flavor = getattr(s, "flavor", None)
        fname = (getattr(flavor, "original_name", None) or getattr(flavor, "name", None) or "") if flavor else ""
        pricing = meta.get(META_PRICING, "on_demand")
        return Server(
            id=str(s.id),
            name=s.name or "",
            flavor=fname,
            project=self._project_name(s.project_id) if s.project_id else "",
            status=map_status(s.status, getattr(s, "task_state", None)),
            zone=getattr(s, "availability_zone", None) or "",
            hypervisor=getattr(s, "hypervisor_hostname", None) or getattr(s, "compute_host", None),
            service=meta.get(META_SERVICE),
            pricing=pricing if pricing in ("on_demand", "spot", "reserved") else "on_demand",  # type: ignore[arg-type]
            created_at=epoch_seconds(getattr(s, "created_at", None)),
            metadata=meta,
        )

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        out = [self._to_server(s) for s in self._raw_servers()]
        return [
            s
            for s in out
            if (service is None or s.service == service) and (status is None or s.status == status) and s.status != "DELETED"
        ]

    def server(self, server_id: str) -> Server | None:
        for s in self._raw_servers():
            if str(s.id) == server_id:
                srv = self._to_server(s)
                return None if srv.status == "DELETED" else srv
        return None

    def services(self) -> Sequence[ServiceState]:
        all_servers = self.servers()
        out = []
        for spec in self.config.services:
            mine = [s for s in all_servers if s.service == spec.name]
            version = max((version_number(s.metadata.get(META_VERSION)) for s in mine), default=0)
            settings: dict[str, float] = {}
            for s in sorted(mine, key=lambda s: s.created_at):
                for k, v in s.metadata.items():
                    if k.startswith(META_SETTING):
                        with contextlib.suppress(ValueError):
                            settings[k[len(META_SETTING) :]] = float(v)
            out.append(
                ServiceState(
                    name=spec.name,
                    project=spec.project or self.project_name,
                    flavor=spec.flavor,
                    dependencies=tuple(spec.dependencies),
                    active=sum(s.status == "ACTIVE" for s in mine),
                    building=sum(s.status == "BUILD" for s in mine),
                    failed=sum(s.status in ("ERROR", "SHUTOFF", "SHELVED_OFFLOADED") for s in mine),
                    version=version,
                    settings=settings,
                    min_servers=spec.min_servers,
                    max_servers=spec.max_servers,
                )
            )
        return out

    def _check_metric(self, metric: str) -> None:
        known = SERVICE_METRICS + SERVER_METRICS + DEPENDENCY_METRICS
        if metric not in known and not (self.prometheus and metric in self.prometheus.config.queries):
            raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(known)} (or a name under prometheus.queries)")

    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> MetricWindow:
        self._check_metric(metric)
        if self.prometheus is None:
            import numpy as np

            return MetricWindow(metric, dict(labels), np.array([]), np.array([]))
        return self.prometheus.metric_window(metric, labels, seconds)

    def metric_history(self, metric: str, labels: Mapping[str, str], seconds: float, step: float) -> MetricWindow:
        """Means per ``step`` from Prometheus (``avg_over_time`` over a range query at ``step``)."""
        self._check_metric(metric)
        if self.prometheus is None:
            import numpy as np

            return MetricWindow(metric, dict(labels), np.array([]), np.array([]))
        return self.prometheus.metric_history(metric, labels, seconds, step)

    def latest(self, metric: str) -> Mapping[str, float]:
        self._check_metric(metric)
        if metric == "active_servers" and not (self.prometheus and metric in self.prometheus.config.queries):
            return {s.name: float(s.active) for s in self.services()}
        if self.prometheus is None:
            return {}
        return self.prometheus.latest(metric)

    def alerts(self, since: float) -> Sequence[Alert]:
        return self.prometheus.alerts(since) if self.prometheus else []

    def prices(self) -> Sequence[Price]:
        return [Price(f, "on_demand", p) for f, p in sorted(self.config.prices.items())]

    def spend(self) -> Spend:
        """Flavor price x age of every server that exists now (Nova forgets deleted ones); shelved ones do not burn."""
        return self._spend(None)

    def _spend(self, since: float | None) -> Spend:
        now = self.now()
        total = rate = 0.0
        per: dict[str, float] = {}
        per_service: dict[str, float] = {}
        rate_project: dict[str, float] = {}
        for s in self.servers():
            p = self.config.prices.get(s.flavor, 0.0)
            start = max(s.created_at, since) if since is not None else s.created_at
            cost = p * max(0.0, now - start) / 3600.0 if s.created_at else 0.0
            total += cost
            per[s.project] = per.get(s.project, 0.0) + cost
            if s.service:
                per_service[s.service] = per_service.get(s.service, 0.0) + cost
            if s.status != "SHELVED_OFFLOADED":
                rate += p
                rate_project[s.project] = rate_project.get(s.project, 0.0) + p
        return Spend(total, rate, per, per_service, rate_project)

    def budgets(self) -> Sequence[Budget]:
        """The config's ``budgets:``; ``spent`` is what :meth:`spend` counts within the current period."""
        now = self.now()
        out = []
        for b in self.config.budgets:
            start = b.period_start + math.floor(max(0.0, now - b.period_start) / b.period_s) * b.period_s
            sp = self._spend(start)
            spent = sp.total if b.project == "*" else sp.per_project.get(b.project, 0.0)
            out.append(Budget(b.project, b.period_s, start, b.limit, spent, tuple(b.alert_at), b.hard))
        return out

    def reservations(self) -> Sequence[Reservation]:
        """The config's ``reservations:`` (OpenStack has no reservations without Blazar)."""
        return [Reservation(r.id, r.project, r.flavor, r.count, r.per_hour, r.start, r.end)
                for r in self.config.reservations]

    def deploys(self, since: float) -> Sequence[DeployEvent]:
        """The deploys and rollbacks this adapter made (journalled); a pipeline's own releases are not seen."""
        return self.store.deploys(since)

    def incidents(self) -> Sequence[IncidentInfo]:
        return self.store.incidents()

    def requests(self) -> Sequence[Request]:
        return self.store.requests()

    def submit_request(self, project: str, kind: str, params: Mapping[str, Any], requester: str = "someone") -> str:
        """Put a self-service request in the inbox (a portal or a CLI calls this); returns its id."""
        return self.store.submit_request(project, kind, dict(params), requester, self.now())

    def quotas(self) -> Sequence[Quota]:
        def fetch() -> list[Quota]:
            projects = self._scope_project_ids()  # the token's, the scope's and the services' that exist
            out = []
            for pid in sorted(projects):
                qs = self._read("quota set", lambda pid=pid: self.conn.compute.get_quota_set(pid, usage=True))
                use = qs.usage or {}
                out.append(
                    Quota(
                        project=self._project_name(pid),
                        instances=_int(qs.instances, -1),
                        cores=_int(qs.cores, -1),
                        ram_mb=_int(qs.ram, -1),
                        instances_used=_int(use.get("instances")),
                        cores_used=_int(use.get("cores")),
                        ram_mb_used=_int(use.get("ram")),
                    )
                )
            return out

        return self._cached("quotas", fetch, 5)

    def server_events(self, server_id: str) -> dict[str, Any]:
        """Status, fault and instance actions (with their events) of one server."""
        s = self._get_server(server_id)
        actions = self._read("server actions", lambda: list(self.conn.compute.server_actions(server_id)))
        return {
            "status": s.status,
            "task_state": getattr(s, "task_state", None),
            "fault": getattr(s, "fault", None),
            "actions": [
                {
                    "action": a.action,
                    "request_id": a.request_id,
                    "start_time": a.start_time,
                    "message": getattr(a, "message", None),
                }
                for a in actions
            ],
        }

    # ------------------------------------------------------------------ act
    def execute(self, action: Action) -> ActionResult:
        """Carry out one action; journal it while in flight; raise adapter errors with the attempt trail."""
        handler = self._HANDLERS.get(action.kind)
        if handler is None:
            raise AdapterError(f"{type(action).__name__} is not supported by the OpenStack adapter")
        if isinstance(action, Notify):
            return ActionResult(True, f"notified ({action.severity}): {action.message}")
        if action.changes_world:
            service = getattr(action, "service", None)
            if isinstance(service, str) and not isinstance(action, InjectFault):
                try:  # NotFound first: a service no config names is unknown, not merely not ours
                    self._spec(service)
                except NotFound as e:
                    raise fail(e, Trail()) from e
            self.scope.check(action, self._lookup)  # OutOfScope: the server/service/project is not ours
        rid = (action.request_id if isinstance(action, CreateServer) else None) or uuid.uuid4().hex
        trail = Trail()
        if self.journal:
            self.journal.begin(rid, action.kind, action.target(), action.params() | {"request_id": rid})
        try:
            result = handler(self, action, rid, trail)
        except AdapterError as e:
            if self.journal:
                self.journal.finish(rid, "failed", f"{type(e).__name__}: {e}")
            self.invalidate()
            if not hasattr(e, "attempts"):
                raise fail(e, trail) from e
            raise
        if self.journal:
            self.journal.finish(rid, "done" if result.ok else "failed", result.detail)
        self.invalidate()
        return result

    def _result(self, ok: bool, msg: str, trail: Trail, server_ids: Sequence[str] = ()) -> ActionResult:
        detail = f"{msg} [attempts: {trail.attempts}; {trail.text()}]" if trail.lines else msg
        return ActionResult(ok, detail, tuple(server_ids), max(1, trail.attempts))

    def _get_server(self, server_id: str, trail: Trail | None = None) -> Any:
        """Read one server (retried); retries are noted in ``trail`` but do not count as attempts of the action."""
        reads = Trail()
        try:
            s = self.retry.call(reads, f"get {server_id[:8]}", lambda: self.conn.compute.get_server(server_id))
        finally:
            if trail is not None and reads.lines:
                trail.lines.extend(reads.lines)
        if s is None:
            raise NotFound(f"server {server_id} not found")
        return s

    def _wait(self, server_id: str, until: Callable[[Any], bool], timeout: float, trail: Trail, what: str) -> Any:
        """Poll a server until ``until(server)``; ERROR ends the wait early. Returns the last server seen."""
        deadline = time.monotonic() + timeout
        while True:
            s = self._get_server(server_id, trail)
            if until(s) or s.status == "ERROR" or time.monotonic() >= deadline:
                if not until(s) and s.status != "ERROR":
                    trail.note(f"{what}: still {s.status}/{getattr(s, 'task_state', None)} after {timeout:.0f}s")
                return s
            self._sleep(self.config.wait.poll)

    @staticmethod
    def _fault(s: Any) -> str:
        f = getattr(s, "fault", None) or {}
        return f"{f.get('code', '')} {f.get('message', '')}".strip() if isinstance(f, dict) else str(f)

    # -- create
    def _spec(self, service: str) -> ServiceSpec:
        spec = self.config.service(service)
        if spec is None:
            raise NotFound(f"service {service!r} is not in the live config; services: {[s.name for s in self.config.services]}")
        return spec

    def find_request(self, request_id: str, index: int | None = None, thorough: bool = False) -> list[Any]:
        """Servers (any status but deleted) created under ``request_id`` (and ``index``), straight from Nova.

        Looks servers up by the name zeroops gave them; ``thorough`` also scans every server's
        metadata (for servers renamed since), at the cost of listing them all.
        """
        prefix = request_id[:8]
        more = self._multi_project()
        found = self._read("find by request id",
                           lambda: list(self.conn.compute.servers(details=True, name=f"-{prefix}-", **more)))

        def mine(servers: list[Any]) -> list[Any]:
            out = [
                s
                for s in servers
                if (s.metadata or {}).get(META_REQUEST) == request_id
                and map_status(s.status, getattr(s, "task_state", None)) != "DELETED"
            ]
            if index is not None:
                out = [s for s in out if (s.metadata or {}).get(META_INDEX) == str(index)]
            return out

        out = mine(found)
        if not out and thorough:
            out = mine(self._read("list servers", lambda: list(self.conn.compute.servers(details=True, **more))))
        return out

    def _service_meta(self, service: str) -> dict[str, str]:
        """Version and settings the service's newest servers carry, for a new member to inherit."""
        mine = sorted(self.servers(service=service), key=lambda s: s.created_at)
        meta: dict[str, str] = {}
        for s in mine:
            for k, v in s.metadata.items():
                if k == META_VERSION or k.startswith(META_SETTING):
                    meta[k] = v
        return meta

    def _create(self, a: CreateServer, rid: str, trail: Trail) -> ActionResult:
        spec = self._spec(a.service)
        compute = self._compute_for(spec.project)  # the service's project (default: the cloud entry's)
        flavor_id = self._flavor_id(a.flavor or spec.flavor)
        network = spec.network or self.config.network
        inherited = self._service_meta(spec.name)
        # with releases, a new server runs the image of the version it inherits (else the service's image)
        version, release_image = inherited.get(META_VERSION), None
        with contextlib.suppress(Conflict):  # a version without an image (from before the releases): spec.image
            release_image = releases.image_name(spec, version) if version else None
        image_id = self._image_id(release_image or spec.image)
        ids: list[str] = []
        reused = 0
        err: AdapterError | None = None
        for i in range(a.count):
            existing = self.find_request(rid, i)
            if existing:
                ids.append(str(existing[0].id))
                reused += 1
                trail.note(f"create #{i}: exists already as {existing[0].id} (request {rid[:8]})")
                continue
            name = f"{spec.name}-{rid[:8]}-{i}"
            meta = inherited | self.scope.create_metadata() | {
                META_SERVICE: spec.name, META_REQUEST: rid, META_INDEX: str(i), META_PRICING: a.pricing}
            attrs: dict[str, Any] = {"name": name, "flavor_id": flavor_id, "image_id": image_id, "metadata": meta}
            attrs["networks"] = network if network in ("none", "auto") else [{"uuid": self._network_id(network)}]
            if a.zone or spec.zone:
                attrs["availability_zone"] = a.zone or spec.zone
            if spec.key_name:
                attrs["key_name"] = spec.key_name

            def recover(i: int = i) -> Any:
                found = self.find_request(rid, i)
                return found[0] if found else None

            try:
                s = self.retry.call(
                    trail,
                    f"create {name}",
                    lambda attrs=attrs: compute.create_server(**attrs),
                    recover=recover,
                )
            except AdapterError as e:
                err = e
                break
            ids.append(str(s.id))
        if ids and self.config.wait.create > 0:
            ids, werr = self._wait_active(ids, trail)
            err = err or werr
        if err is not None and not ids:
            raise err
        msg = f"created {len(ids)} of {a.count} server(s) for {spec.name} (request {rid[:8]}"
        msg += f", {reused} found from an earlier attempt)" if reused else ")"
        if err is not None:
            msg += f"; stopped by {type(err).__name__}: {err}"
        return self._result(err is None, msg, trail, ids)

    def _network_id(self, network: str) -> str:
        net = self._read("find network", lambda: self.conn.network.find_network(network, ignore_missing=True))
        if net is None:
            raise NotFound(f"network {network!r} not found")
        return str(net.id)

    def _wait_active(self, ids: list[str], trail: Trail) -> tuple[list[str], AdapterError | None]:
        """Wait for new servers to leave BUILD; servers that failed to schedule are deleted and reported."""
        deadline = time.monotonic() + self.config.wait.create
        pending = set(ids)
        failed: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for sid in sorted(pending):
                s = self._get_server(sid, trail)
                if s.status == "ACTIVE" and not getattr(s, "task_state", None):
                    pending.discard(sid)
                elif s.status == "ERROR":
                    pending.discard(sid)
                    failed[sid] = self._fault(s)
            if pending:
                self._sleep(self.config.wait.poll)
        if pending:
            trail.note(f"{len(pending)} server(s) still building after {self.config.wait.create:.0f}s")
        if not failed:
            return ids, None
        for sid, fault in failed.items():
            trail.note(f"server {sid[:8]} went to ERROR ({fault}); deleting it")
            with contextlib.suppress(AdapterError):
                self.retry.call(trail, f"delete failed {sid[:8]}", lambda sid=sid: self.conn.compute.delete_server(sid))
        faults = "; ".join(sorted(set(failed.values())))
        err = classify(Exception(f"{len(failed)} new server(s) went to ERROR: {faults}"))  # quota / no valid host
        return [i for i in ids if i not in failed], err

    # -- delete / reboot / start
    def _delete(self, a: DeleteServer, rid: str, trail: Trail) -> ActionResult:
        self._get_server(a.server_id, trail)  # NotFound for an unknown id; a retry below tolerates 404
        self.retry.call(
            trail,
            f"delete {a.server_id[:8]}",
            lambda: self.conn.compute.delete_server(a.server_id, ignore_missing=True),
        )
        return self._result(True, f"deleted {a.server_id}", trail, ())

    def _reboot_one(self, server_id: str, hard: bool, trail: Trail, *, upgrade: bool = False) -> str:
        """Reboot (or start, or unshelve) one server. A SOFT reboot of a server that is not ACTIVE is a
        Conflict, as in Nova and the twin, unless ``upgrade`` (restarts and starts) makes it HARD."""
        s = self._get_server(server_id, trail)
        if s.status in ("SHELVED", "SHELVED_OFFLOADED"):
            self.retry.call(trail, f"unshelve {server_id[:8]}", lambda: self.conn.compute.unshelve_server(server_id))
            return f"unshelved {server_id} (was {s.status})"
        if s.status == "SHUTOFF":
            self.retry.call(trail, f"start {server_id[:8]}", lambda: self.conn.compute.start_server(server_id))
            return f"started {server_id} (was SHUTOFF)"
        if map_status(s.status, getattr(s, "task_state", None)) == "BUILD":
            raise Conflict(f"cannot reboot {server_id} while it is {s.status}/{getattr(s, 'task_state', None)}")
        if s.status != "ACTIVE" and not hard and not upgrade:
            raise Conflict(f"cannot SOFT reboot {server_id} in {s.status} ({self._fault(s)}); use a hard reboot")
        kind = "HARD" if hard or s.status != "ACTIVE" else "SOFT"
        self.retry.call(trail, f"reboot {server_id[:8]} {kind}", lambda: self.conn.compute.reboot_server(server_id, kind))
        note = f" (was {s.status}: {self._fault(s)})" if s.status == "ERROR" else ""
        return f"rebooted {server_id} {kind}{note}"

    def _reboot(self, a: RebootServer, rid: str, trail: Trail) -> ActionResult:
        return self._result(True, self._reboot_one(a.server_id, a.hard, trail), trail)

    def _start(self, a: StartServer, rid: str, trail: Trail) -> ActionResult:
        s = self._get_server(a.server_id, trail)
        if s.status == "ACTIVE" and not getattr(s, "task_state", None):
            return self._result(True, f"{a.server_id} is ACTIVE already", trail)
        return self._result(True, self._reboot_one(a.server_id, True, trail, upgrade=True), trail)

    def _stop(self, a: StopServer, rid: str, trail: Trail) -> ActionResult:
        s = self._get_server(a.server_id, trail)
        st = map_status(s.status, getattr(s, "task_state", None))
        if st == "SHUTOFF":
            return self._result(True, f"{a.server_id} is {s.status} already", trail)
        if st in ("BUILD", "SHELVED_OFFLOADED"):
            raise Conflict(f"cannot stop {a.server_id} while it is {s.status}/{getattr(s, 'task_state', None)}")
        self.retry.call(trail, f"stop {a.server_id[:8]}", lambda: self.conn.compute.stop_server(a.server_id))
        return self._result(True, f"stopped {a.server_id}", trail)

    def _shelve(self, a: ShelveServer, rid: str, trail: Trail) -> ActionResult:
        s = self._get_server(a.server_id, trail)
        st = map_status(s.status, getattr(s, "task_state", None))
        if st == "SHELVED_OFFLOADED" or s.status == "SHELVED":
            return self._result(True, f"{a.server_id} is {s.status} already", trail)
        if st == "BUILD":
            raise Conflict(f"cannot shelve {a.server_id} while it is {s.status}/{getattr(s, 'task_state', None)}")
        self.retry.call(trail, f"shelve {a.server_id[:8]}", lambda: self.conn.compute.shelve_server(a.server_id))
        return self._result(True, f"shelved {a.server_id} (Nova offloads it: SHELVED_OFFLOADED)", trail)

    # -- resize / migrate
    def _resize(self, a: ResizeServer, rid: str, trail: Trail) -> ActionResult:
        flavor_id = self._flavor_id(a.flavor)
        s = self._get_server(a.server_id, trail)
        current = getattr(s.flavor, "original_name", None) or getattr(s.flavor, "name", None)
        if current == a.flavor and s.status == "ACTIVE":
            return self._result(True, f"{a.server_id} has flavor {a.flavor} already", trail)
        if s.status == "VERIFY_RESIZE":  # a resize of ours was cut short: finish it first
            trail.note("server was in VERIFY_RESIZE: confirming the earlier resize")
            self._confirm(a.server_id, trail)
            s = self._get_server(a.server_id, trail)
            current = getattr(s.flavor, "original_name", None)
            if current == a.flavor:
                return self._result(True, f"confirmed earlier resize of {a.server_id} to {a.flavor}", trail)
        if s.status != "ACTIVE" and s.status != "SHUTOFF":
            raise Conflict(f"cannot resize {a.server_id} in status {s.status} ({self._fault(s)})")
        self.retry.call(trail, f"resize {a.server_id[:8]}", lambda: self.conn.compute.resize_server(a.server_id, flavor_id))
        s = self._wait(
            a.server_id,
            lambda s: (
                s.status == "VERIFY_RESIZE"
                or (
                    s.status in ("ACTIVE", "SHUTOFF")
                    and not getattr(s, "task_state", None)
                    and getattr(s.flavor, "original_name", None) != current
                )
            ),
            self.config.wait.resize,
            trail,
            "resize",
        )
        if s.status == "VERIFY_RESIZE":
            self._confirm(a.server_id, trail)
            return self._result(True, f"resized {a.server_id} {current} -> {a.flavor}, confirmed", trail)
        if s.status == "ERROR":
            raise fail(AdapterError(f"resize put {a.server_id} in ERROR: {self._fault(s)}"), trail)
        reason = self._last_action_message(a.server_id)
        err: AdapterError = (
            NoValidHost(reason)
            if "no valid host" in reason.lower()
            else AdapterError(f"resize of {a.server_id} did not happen: {reason or s.status}")
        )
        raise fail(err, trail)

    def _confirm(self, server_id: str, trail: Trail) -> None:
        self.retry.call(trail, f"confirm resize {server_id[:8]}", lambda: self.conn.compute.confirm_server_resize(server_id))
        self._wait(
            server_id,
            lambda s: s.status in ("ACTIVE", "SHUTOFF") and not getattr(s, "task_state", None),
            self.config.wait.resize,
            trail,
            "confirm",
        )

    def _last_action_message(self, server_id: str) -> str:
        try:
            ev = self.server_events(server_id)
        except AdapterError:
            return ""
        msgs = [a["message"] for a in ev["actions"] if a.get("message")]
        return (msgs[0] if msgs else "") or self._fault_text(ev.get("fault"))

    @staticmethod
    def _fault_text(f: Any) -> str:
        return f.get("message", "") if isinstance(f, dict) else ""

    def _migrate(self, a: MigrateServer, rid: str, trail: Trail) -> ActionResult:
        s = self._get_server(a.server_id, trail)
        src = getattr(s, "hypervisor_hostname", None) or getattr(s, "compute_host", None)
        if a.hypervisor:
            self.retry.call(
                trail,
                f"live-migrate {a.server_id[:8]}",
                lambda: self.conn.compute.live_migrate_server(a.server_id, host=a.hypervisor, block_migration="auto"),
            )
        else:
            self.retry.call(trail, f"migrate {a.server_id[:8]}", lambda: self.conn.compute.migrate_server(a.server_id))
        s = self._wait(
            a.server_id,
            lambda s: s.status == "VERIFY_RESIZE" or (s.status in ("ACTIVE", "SHUTOFF") and not getattr(s, "task_state", None)),
            self.config.wait.resize,
            trail,
            "migrate",
        )
        if s.status == "VERIFY_RESIZE":
            self._confirm(a.server_id, trail)
            s = self._get_server(a.server_id, trail)
        dst = getattr(s, "hypervisor_hostname", None) or getattr(s, "compute_host", None)
        if dst == src:
            reason = self._last_action_message(a.server_id)
            err: AdapterError = (
                NoValidHost(reason)
                if "no valid host" in reason.lower()
                else AdapterError(f"{a.server_id} is still on {src}: {reason or s.status}")
            )
            raise fail(err, trail)
        return self._result(True, f"migrated {a.server_id} {src} -> {dst}", trail)

    # -- metadata-mapped actions
    def _set_meta(self, server_id: str, meta: Mapping[str, str], trail: Trail) -> None:
        self.retry.call(
            trail,
            f"set metadata {server_id[:8]}",
            lambda: self.conn.compute.set_server_metadata(server_id, **dict(meta)),
        )

    def _set_metadata(self, a: SetMetadata, rid: str, trail: Trail) -> ActionResult:
        self._set_meta(a.server_id, {k: str(v) for k, v in a.metadata.items()}, trail)
        return self._result(True, f"metadata of {a.server_id} set: {sorted(a.metadata)}", trail)

    def _members(self, service: str) -> list[Server]:
        self._spec(service)
        self.invalidate()
        return [s for s in self.servers(service=service) if s.status != "DELETED" and self.scope.manages(s)]

    # -- service-wide rolls: restart, rebuild (docs/adapter-mapping.md, "Service-level actions")
    def _health_metric(self, spec: ServiceSpec) -> str | None:
        """The per-server metric that says a server answers its scrape, when Prometheus has a query for it."""
        m = spec.rollout.health_metric
        return m if self.prometheus is not None and m in self.prometheus.config.queries else None

    def _await_healthy(self, server_id: str, spec: ServiceSpec, trail: Trail, *, timeout: float, what: str,
                       image_id: str | None = None, expect: str = "ACTIVE") -> str | None:
        """Wait until a rolled server is ``expect`` (ACTIVE, or SHUTOFF for a stopped one), settled, on ``image_id``
        if given, and (ACTIVE, with a health metric) answering its scrape.  None when it is; else why not."""

        def settled(x: Any) -> bool:
            return (x.status == expect and not getattr(x, "task_state", None)
                    and (image_id is None or _image_of(x) == image_id))

        deadline = time.monotonic() + timeout
        s = self._wait(server_id, settled, timeout, trail, what)
        if not settled(s):
            img = f", image {_image_of(s)[:8]} (wanted {image_id[:8]})" if image_id and _image_of(s) != image_id else ""
            fault = f": {self._fault(s)}" if s.status == "ERROR" else ""
            return f"{s.status}/{getattr(s, 'task_state', None)}{img}{fault} after {what}"
        metric = self._health_metric(spec)
        if metric is None or expect != "ACTIVE" or self.prometheus is None:
            return None
        self._sleep(spec.rollout.health_settle)
        while True:
            try:
                v = self.prometheus.latest(metric).get(server_id)
                last = f"{metric} {v:g}" if v is not None else f"no {metric} sample"
                if v is not None and v > 0:
                    trail.note(f"{what} {server_id[:8]}: ACTIVE and {metric} {v:g}")
                    return None
            except AdapterError as e:
                last = f"Prometheus: {e}"
            if time.monotonic() >= deadline:
                return f"ACTIVE but not healthy within {timeout:.0f}s ({last})"
            self._sleep(max(self.config.wait.poll, 1.0))

    def _restart_service(self, a: RestartService, rid: str, trail: Trail) -> ActionResult:
        """A rolling restart that waits for health: servers already down first (restarting them takes nothing
        more down), then the ACTIVE ones ``rollout.max_unavailable`` at a time.  Each batch must be ACTIVE and,
        when Prometheus has the ``rollout.health_metric`` query, answer its scrape within ``health_timeout``
        before the next batch goes down; otherwise the roll stops there (``ok=False``, the rest untouched)."""
        spec = self._spec(a.service)
        members = sorted((s for s in self._members(a.service) if s.status != "SHELVED_OFFLOADED"),
                         key=lambda s: (s.created_at, s.id))
        down = [s for s in members if s.status != "ACTIVE"]
        up = [s for s in members if s.status == "ACTIVE"]
        k = spec.rollout.max_unavailable
        batches = ([down] if down else []) + [up[i:i + k] for i in range(0, len(up), k)]
        health = self._health_metric(spec)
        how = f"{k} at a time, health: {health or 'Nova ACTIVE only'}"
        done: list[str] = []
        for b, batch in enumerate(batches):
            for s in batch:
                try:
                    trail.note(self._reboot_one(s.id, False, trail, upgrade=True))
                except Conflict as e:
                    if s.status == "ACTIVE":
                        raise
                    trail.note(f"{s.id[:8]} is on its way already ({e}): waiting for it")
            for s in batch:
                why = self._await_healthy(s.id, spec, trail, timeout=spec.rollout.health_timeout, what="restart")
                if why is not None:
                    left = [x.id for later in batches[b + 1:] for x in later]
                    return self._result(False, f"restart {a.service}: ABORTED after {len(done)} of {len(members)} "
                                               f"({how}): {s.id} not back: {why}; not restarted: {left}", trail)
                done.append(s.id)
        return self._result(True, f"restart {a.service}: {len(done)} of {len(members)} restarted, {how}", trail)

    def _set_setting(self, a: SetServiceSetting, rid: str, trail: Trail) -> ActionResult:
        members = self._members(a.service)
        for s in members:
            self._set_meta(s.id, {META_SETTING + a.key: repr(float(a.value))}, trail)
        return self._result(True, f"{a.service}: {a.key}={a.value} on {len(members)} server(s)", trail)

    def _current_version(self, members: Sequence[Server]) -> str:
        versions = [s.metadata[META_VERSION] for s in members if META_VERSION in s.metadata]
        return max(versions, key=version_number) if versions else "0"

    def _raw_images(self, ids: Sequence[str]) -> dict[str, str]:
        """Server id -> the image id Nova shows it running."""
        wanted = set(ids)
        return {str(s.id): _image_of(s) for s in self._raw_servers() if str(s.id) in wanted}

    def _rebuild_one(self, spec: ServiceSpec, server_id: str, image_id: str, trail: Trail) -> str | None:
        """Rebuild one server with ``image_id`` (skipped if it runs it already) and wait until it is back and
        healthy; clear its rebuild marker then.  None on success, else why it is not back."""
        timeout = self.config.wait.rebuild + spec.rollout.health_timeout
        s = self._get_server(server_id, trail)
        if map_status(s.status, getattr(s, "task_state", None)) == "BUILD":  # a rebuild of an earlier run, in flight
            s = self._wait(server_id, lambda x: not getattr(x, "task_state", None), self.config.wait.rebuild, trail,
                           "earlier task")
        expect = "SHUTOFF" if s.status == "SHUTOFF" else "ACTIVE"
        if _image_of(s) != image_id or s.status == "ERROR":

            def recover() -> Any:  # a rebuild whose response was lost: Nova shows the new image or the task
                x = self._get_server(server_id)
                return x if _image_of(x) == image_id or getattr(x, "task_state", None) else None

            self.retry.call(trail, f"rebuild {server_id[:8]} with {image_id[:8]}",
                            lambda: self.conn.compute.rebuild_server(server_id, image_id), recover=recover)
        else:
            trail.note(f"{server_id[:8]} runs image {image_id[:8]} already")
        why = self._await_healthy(server_id, spec, trail, timeout=timeout, what="rebuild", image_id=image_id,
                                  expect=expect)
        if why is None:
            self.retry.call(trail, f"clear rebuild marker {server_id[:8]}",
                            lambda: self.conn.compute.delete_server_metadata(server_id, [META_REBUILD]))
        return why

    def _roll_rebuilds(self, spec: ServiceSpec, plan: list[tuple[Server, str, dict[str, str]]],
                       trail: Trail) -> tuple[list[str], str | None]:
        """Rebuild the planned servers one at a time: first every server gets its target metadata and the
        rebuild marker (what a restarted controller finishes), then each is rebuilt and waited for.  A server
        that does not come back stops the roll: the servers not yet rebuilt get their old metadata back."""
        originals = {s.id: {k: s.metadata.get(k) for k in (META_VERSION, META_PREV_VERSION, META_PREV_IMAGE)}
                     for s, _, _ in plan}
        for s, _, meta in plan:
            self._set_meta(s.id, meta, trail)
        done: list[str] = []
        for i, (s, image_id, _) in enumerate(plan):
            why = self._rebuild_one(spec, s.id, image_id, trail)
            if why is None:
                done.append(s.id)
                continue
            for t, _, _ in plan[i:]:
                old = originals[t.id]
                if t.id != s.id:
                    self._set_meta(t.id, {k: v for k, v in old.items() if v is not None}, trail)
                gone = [META_REBUILD] + ([k for k, v in old.items() if v is None] if t.id != s.id else [])
                with contextlib.suppress(AdapterError):
                    self.retry.call(trail, f"clear marker {t.id[:8]}",
                                    lambda t=t, gone=gone: self.conn.compute.delete_server_metadata(t.id, gone))
            return done, f"{s.id} not back after its rebuild: {why}; not rebuilt: {[t.id for t, _, _ in plan[i + 1:]]}"
        return done, None

    def _deploy(self, a: Deploy, rid: str, trail: Trail) -> ActionResult:
        """Roll ``version`` out to ``fraction`` of the servers (oldest first).  With ``releases``/``release_image``
        each is rebuilt with the version's image, one at a time, waiting for health; without, the servers are
        only tagged (``zeroops_version``) and the site's deploy tooling ships the artefact."""
        if not 0 < a.fraction <= 1:
            raise Conflict(f"fraction must be in (0, 1], got {a.fraction}")
        spec = self._spec(a.service)
        members = sorted(self._members(a.service), key=lambda s: (s.created_at, s.id))
        if not members:
            raise Conflict(f"{a.service} has no servers to deploy to")
        previous = self._current_version(members)
        n = max(1, min(len(members), math.ceil(a.fraction * len(members) - 1e-9)))
        name = releases.image_name(spec, a.version)
        if name is None:
            on = [s for s in members if s.metadata.get(META_VERSION) == a.version]
            todo = [s for s in members if s.metadata.get(META_VERSION) != a.version][: max(0, n - len(on))]
            for s in todo:
                old = s.metadata.get(META_VERSION, previous)
                self._set_meta(s.id, {META_VERSION: a.version, META_PREV_VERSION: old}, trail)
            self.store.record_deploy(DeployEvent(a.service, a.version, previous, float(a.fraction), self.now(), self.actor))
            return self._result(True, f"deployed {a.version} to {len(on) + len(todo)} of {len(members)} server(s) of "
                                      f"{a.service} (tagged: zeroops_version metadata)", trail)
        image_id = self._image_id(name)
        images = self._raw_images([s.id for s in members])
        on = [s for s in members if s.metadata.get(META_VERSION) == a.version and images.get(s.id) == image_id
              and META_REBUILD not in s.metadata]
        rest = [s for s in members if s not in on]
        rest.sort(key=lambda s: META_REBUILD not in s.metadata)  # an interrupted rebuild first
        plan = []
        for s in rest[: max(0, n - len(on))]:
            meta = {META_VERSION: a.version, META_REBUILD: releases.marker(a.version, image_id)}
            if META_REBUILD not in s.metadata:  # an interrupted one keeps what it ran before that
                meta |= {META_PREV_VERSION: s.metadata.get(META_VERSION, previous), META_PREV_IMAGE: images.get(s.id, "")}
            plan.append((s, image_id, meta))
        done, why = self._roll_rebuilds(spec, plan, trail)
        if done or on:
            self.store.record_deploy(DeployEvent(a.service, a.version, previous, float(a.fraction), self.now(), self.actor))
        msg = (f"deployed {a.version} (image {name}) to {len(on) + len(done)} of {len(members)} server(s) of "
               f"{a.service}: {len(done)} rebuilt one at a time")
        return self._result(why is None, msg + (f"; ABORTED: {why}" if why else ""), trail)

    def _rollback(self, a: RollbackDeploy, rid: str, trail: Trail) -> ActionResult:
        """Every server back to the version before the last deploy.  With releases, each server not on that
        version's image is rebuilt with it (or, for a version without an image, with the image it ran before
        zeroops rebuilt it: ``zeroops_prev_image``), one at a time, waiting for health."""
        spec = self._spec(a.service)
        members = sorted(self._members(a.service), key=lambda s: (s.created_at, s.id))
        current = self._current_version(members)
        version = version_number(current)
        prevs = [s.metadata[META_PREV_VERSION] for s in members if s.metadata.get(META_PREV_VERSION)]
        if prevs:  # what each server ran before the last deploy
            target = min(prevs, key=version_number)
        elif version > 0:
            target = str(version - 1)
        else:
            raise Conflict(f"{a.service} is at version {current}: nothing to roll back")
        before = str(max(0, version_number(target) - 1))
        tag = {META_VERSION: target, META_PREV_VERSION: before}
        if not releases.image_deployed(spec):
            for s in members:
                self._set_meta(s.id, tag, trail)
            self.store.record_deploy(DeployEvent(a.service, target, current, 1.0, self.now(), self.actor))
            return self._result(True, f"{a.service}: version {current} -> {target} on {len(members)} server(s) "
                                      "(tagged: zeroops_version metadata)", trail)
        try:
            target_image: str | None = self._image_id(str(releases.image_name(spec, target)))
        except (Conflict, NotFound):
            target_image = None  # a version from before the releases: each server's own previous image
        images = self._raw_images([s.id for s in members])
        plan, tagged = [], []
        for s in members:
            img = target_image or (s.metadata.get(META_PREV_IMAGE) if s.metadata.get(META_VERSION) != target else None)
            if img and img != images.get(s.id):
                plan.append((s, img, tag | {META_PREV_IMAGE: images.get(s.id, ""),
                                            META_REBUILD: releases.marker(target, img)}))
            else:
                tagged.append(s)
        for s in tagged:
            self._set_meta(s.id, tag, trail)
        done, why = self._roll_rebuilds(spec, plan, trail)
        self.store.record_deploy(DeployEvent(a.service, target, current, 1.0, self.now(), self.actor))
        msg = f"{a.service}: version {current} -> {target}: {len(done)} of {len(plan)} server(s) rebuilt one at a time"
        return self._result(why is None, msg + (f"; ABORTED: {why}" if why else ""), trail)

    def lb_mode(self, service: str) -> str:
        """How SetLBWeights acts for ``service``: through an Octavia pool, or the metadata fallback (and why)."""
        spec = self._spec(service)
        if not self._octavia():
            return "metadata zeroops_lb_weight only: the catalog has no load-balancer (Octavia) service"
        if not spec.lb_pool:
            return "metadata zeroops_lb_weight only: Octavia is in the catalog but the service sets no lb_pool"
        return f"Octavia pool {spec.lb_pool} (member weights) + metadata zeroops_lb_weight"

    def _octavia(self) -> bool:
        return bool(self._cached("octavia", lambda: octavia.available(self.conn), 300))

    def _lb_weights(self, a: SetLBWeights, rid: str, trail: Trail) -> ActionResult:
        """Weights as metadata (what engines read) and, with Octavia and an ``lb_pool``, as member weights."""
        spec = self._spec(a.service)
        members = {s.id for s in self._members(a.service)}
        for sid in sorted(set(a.weights) - members):
            self._get_server(sid, trail)  # NotFound for an unknown server, as in the twin
            raise Conflict(f"server {sid} is not behind service {a.service}")
        mode = self.lb_mode(a.service)
        if spec.lb_pool and self._octavia():
            pool = spec.lb_pool
            addresses = {str(s.id): octavia.server_addresses(s) for s in self._raw_servers() if str(s.id) in a.weights}
            ws = {sid: octavia.octavia_weight(float(w), spec.lb_weight_scale) for sid, w in a.weights.items()}
            for line in self.retry.call(trail, f"octavia weights in {pool}", lambda: octavia.set_weights(
                    self.conn.load_balancer, pool, ws, addresses)):
                trail.note(line)
        for sid, w in a.weights.items():
            self._set_meta(sid, {META_WEIGHT: repr(float(w))}, trail)
        return self._result(True, f"{a.service}: weights set on {len(a.weights)} server(s) via {mode}", trail)

    def _update_quota(self, a: UpdateQuota, rid: str, trail: Trail) -> ActionResult:
        pid = self._project_id(a.project)
        attrs = {k: v for k, v in (("instances", a.instances), ("cores", a.cores), ("ram", a.ram_mb)) if v is not None}
        if not attrs:
            return self._result(True, "nothing to change", trail)
        self.retry.call(trail, f"update quota {a.project}", lambda: self.conn.compute.update_quota_set(pid, **attrs))
        return self._result(True, f"quota of {a.project}: {attrs}", trail)

    def _purchase(self, a: PurchaseReservation, rid: str, trail: Trail) -> ActionResult:
        raise Conflict(
            "PurchaseReservation is not supported live: OpenStack has no reservations without Blazar; "
            "buy the commitment with your provider and list it under `reservations:` in the live config"
        )

    def _inject(self, a: InjectFault, rid: str, trail: Trail) -> ActionResult:
        """Server-level chaos only (:data:`LIVE_FAULTS`); a service target picks its oldest ACTIVE server."""
        how = LIVE_FAULTS.get(a.fault)
        if how is None:
            raise Conflict(f"fault {a.fault!r} is not supported live; live faults: {sorted(LIVE_FAULTS)}")
        target = a.target_component
        if self.config.service(target) is not None:
            up = sorted((s for s in self.servers(service=target, status="ACTIVE") if self.scope.manages(s)),
                        key=lambda s: (s.created_at, s.id))
            if not up:
                raise Conflict(f"service {target} has no ACTIVE server to inject {a.fault} into")
            target = up[0].id
        s = self._get_server(target, trail)
        if (s.metadata or {}).get(META_SERVICE) is None:
            raise Conflict(f"server {target} is not a zeroops server (no {META_SERVICE}); chaos stays inside zeroops")
        if how == "stop":
            self.retry.call(trail, f"stop {target[:8]}", lambda: self.conn.compute.stop_server(target))
        elif how == "pause":
            self.retry.call(trail, f"pause {target[:8]}", lambda: self.conn.compute.pause_server(target))
        else:
            self.retry.call(trail, f"reboot {target[:8]}", lambda: self.conn.compute.reboot_server(target, "HARD"))
        return self._result(True, f"injected {a.fault} into {target}: {how}", trail)

    def _fulfill(self, a: FulfillRequest, rid: str, trail: Trail) -> ActionResult:
        r = self.store.request(a.request_id)
        if r is None:
            raise NotFound(f"no request {a.request_id!r}")
        if r.status != "open":
            raise Conflict(f"request {r.id} is {r.status} already")
        if not a.approve:
            self.store.set_request_status(r.id, "denied")
            return self._result(True, f"denied {r.id}" + (f": {a.note}" if a.note else ""), trail)
        if a.carried_out:  # the answerer's own actions (each through the gate) did it: only close it
            self.store.set_request_status(r.id, "approved")
            return self._result(True, f"approved {r.id}: carried out by the answerer's actions", trail)
        p = r.params
        inner: Action | None = None
        if r.kind == "create_servers":
            inner = CreateServer(service=str(p["service"]))
        elif r.kind == "quota_increase":
            inner = UpdateQuota(project=r.project)
        elif r.kind == "resize":
            inner = ResizeServer(server_id=str(p["server_id"]), flavor=str(p["flavor"]))
        if inner is not None:
            self.scope.check(inner, self._lookup)
        if r.kind == "create_servers":
            res = self._create(
                CreateServer(service=str(p["service"]), count=int(p.get("count", 1)), flavor=p.get("flavor")),
                r.id,
                trail,
            )
        elif r.kind == "quota_increase":
            res = self._update_quota(
                UpdateQuota(project=r.project, instances=p.get("instances"), cores=p.get("cores"), ram_mb=p.get("ram_mb")),
                rid,
                trail,
            )
        elif r.kind == "resize":
            res = self._resize(ResizeServer(server_id=str(p["server_id"]), flavor=str(p["flavor"])), rid, trail)
        else:
            raise Conflict(f"request kind {r.kind!r} is not supported; kinds: create_servers, quota_increase, resize")
        self.store.set_request_status(r.id, "approved")
        return ActionResult(res.ok, f"approved {r.id}: {res.detail}", res.server_ids, res.attempts)

    # -- projects: onboarding and offboarding (Keystone; needs an identity admin)
    def _create_project(self, a: CreateProject, rid: str, trail: Trail) -> ActionResult:
        """A Keystone project in the token's domain, with the member role for this user (so the adapter can act
        in it), its compute quotas; the budget and alert route are kept as project tags."""
        ident = self.conn.identity
        if self._read("find project", lambda: ident.find_project(a.project, ignore_missing=True)) is not None:
            raise Conflict(f"project {a.project!r} exists already")
        tags = [f"zeroops-budget={a.budget:g}"] if a.budget is not None else []
        tags += [f"zeroops-alert-route={a.alert_route}"] if a.alert_route else []
        domain = self.conn.current_project.domain_id or "default"
        proj = self.retry.call(trail, f"create project {a.project}", lambda: ident.create_project(
            name=a.project, domain_id=domain, description="onboarded by zeroops", tags=tags))
        user = self.conn.current_user_id
        for role_name in ("member", "admin"):  # least privilege first
            role = self._read("find role", lambda role_name=role_name: ident.find_role(role_name, ignore_missing=True))
            if role is not None:
                self.retry.call(trail, f"assign {role_name}", lambda role=role: ident.assign_project_role_to_user(
                    proj, user, role))
                break
        self._scope_ids = None
        quota = {k: v for k, v in (("instances", a.instances), ("cores", a.cores), ("ram", a.ram_mb))}
        self.retry.call(trail, f"quota {a.project}", lambda: self.conn.compute.update_quota_set(proj.id, **quota))
        return self._result(True, f"project {a.project} ({proj.id}) created: quota {quota}, tags {tags}", trail)

    def _delete_project(self, a: DeleteProject, rid: str, trail: Trail) -> ActionResult:
        """Refused while the project has servers (offboarding deletes them first, each through the gate)."""
        pid = self._project_id(a.project)
        left = self._read("list servers", lambda: [
            s for s in self.conn.compute.servers(details=True, all_projects=True, project_id=pid)
            if str(getattr(s, "project_id", "")) == pid and map_status(s.status, getattr(s, "task_state", None)) != "DELETED"])
        if left:
            raise Conflict(f"project {a.project} still has {len(left)} server(s): {', '.join(str(s.id) for s in left[:5])}")
        self.retry.call(trail, f"delete project {a.project}", lambda: self.conn.identity.delete_project(pid))
        self._project_names.pop(pid, None)
        self._project_conns.pop(pid, None)
        self._scope_ids = None
        return self._result(True, f"project {a.project} ({pid}) deleted", trail)

    # -- record-only decisions: the incident board lives in the adapter's store (OpenStack has no incident tool)
    def _declare(self, a: DeclareIncident, rid: str, trail: Trail) -> ActionResult:
        self.store.put_incident(board.declare(self.store.incident(a.incident_id), a, self.now(), self.actor))
        return ActionResult(True, f"declared {a.incident_id}")

    def _update_incident(self, a: UpdateIncident, rid: str, trail: Trail) -> ActionResult:
        i = board.update(board.existing(self.store.incident(a.incident_id), a.incident_id), a, self.now())
        self.store.put_incident(i)
        return ActionResult(True, f"updated {i.id}")

    def _resolve(self, a: ResolveIncident, rid: str, trail: Trail) -> ActionResult:
        i = board.resolve(board.existing(self.store.incident(a.incident_id), a.incident_id), a, self.now())
        self.store.put_incident(i)
        return ActionResult(True, f"resolved {i.id}")

    def _page(self, a: Page, rid: str, trail: Trail) -> ActionResult:
        i = self.store.incident(a.incident_id) if a.incident_id else None
        if i is not None:
            self.store.put_incident(board.paged(i, self.now()))
        return ActionResult(True, f"paged {a.who} (recorded; wire a pager to the audit trail)")

    _HANDLERS: dict[str, Callable[..., ActionResult]] = {
        CreateServer.kind: _create,
        DeleteServer.kind: _delete,
        RebootServer.kind: _reboot,
        StartServer.kind: _start,
        StopServer.kind: _stop,
        ShelveServer.kind: _shelve,
        ResizeServer.kind: _resize,
        MigrateServer.kind: _migrate,
        SetMetadata.kind: _set_metadata,
        RestartService.kind: _restart_service,
        SetServiceSetting.kind: _set_setting,
        Deploy.kind: _deploy,
        RollbackDeploy.kind: _rollback,
        SetLBWeights.kind: _lb_weights,
        UpdateQuota.kind: _update_quota,
        PurchaseReservation.kind: _purchase,
        InjectFault.kind: _inject,
        FulfillRequest.kind: _fulfill,
        CreateProject.kind: _create_project,
        DeleteProject.kind: _delete_project,
        DeclareIncident.kind: _declare,
        UpdateIncident.kind: _update_incident,
        ResolveIncident.kind: _resolve,
        Page.kind: _page,
        Notify.kind: lambda self, a, rid, trail: ActionResult(True, "recorded"),
    }

    # -------------------------------------------------------- reconciliation
    def reconcile(self, act: bool = True) -> list[str]:
        """Finish or abandon actions a previous controller left open, then sweep half-done resizes.

        Policy (level-triggered: the engines re-decide on the fresh view):
        create — servers found under the request id are adopted, the rest abandoned;
        delete — finished if the server still exists; resize/migrate — a server in
        VERIFY_RESIZE is confirmed; metadata, settings, quotas — re-applied (idempotent);
        deploy/rollback with releases — every server still carrying its rebuild marker is rebuilt with the
        marked image (or found on it already) and waited for; a tag-only deploy/rollback, reboot, start,
        restart — abandoned.  With ``act=False`` nothing is changed.
        """
        notes: list[str] = []
        entries: list[JournalEntry] = self.journal.open_entries() if self.journal else []
        for e in entries:
            try:
                notes.append(self._reconcile_one(e, act))
            except AdapterError as err:
                notes.append(f"{e.kind} {e.target} ({e.request_id[:8]}): reconcile failed: {type(err).__name__}: {err}")
                if act and self.journal:
                    self.journal.finish(e.request_id, "abandoned", f"reconcile failed: {err}")
        for s in self._raw_servers():
            meta = s.metadata or {}
            if s.status == "VERIFY_RESIZE" and META_SERVICE in meta and self.scope.manages(self._to_server(s)):
                if act:
                    self._confirm(str(s.id), Trail())
                notes.append(f"{'confirmed' if act else 'would confirm'} pending resize of {s.id} ({meta[META_SERVICE]})")
        self.invalidate()
        return notes

    def _reconcile_one(self, e: JournalEntry, act: bool) -> str:
        tag = f"{e.kind} {e.target} ({e.request_id[:8]})"
        verb = "" if act else "would "
        p = e.params
        state, msg = "abandoned", "abandoned"
        if e.kind == "create_server":
            found = self.find_request(e.request_id, thorough=True)
            state = "adopted" if found else "abandoned"
            msg = (f"{verb}adopt {len(found)} of {p.get('count', 1)} server(s): {[str(s.id) for s in found]}" if found
                   else f"{verb}abandon: no server under its request id (the engines re-decide)")
        elif e.kind == "delete_server":
            try:
                s = self._get_server(str(p["server_id"]))
            except NotFound:
                s = None
            if s is not None and map_status(s.status, getattr(s, "task_state", None)) != "DELETED":
                if act:
                    self.retry.call(Trail(), "delete", lambda: self.conn.compute.delete_server(s.id, ignore_missing=True))
                state, msg = "finished", f"{verb}finish delete of {s.id}"
            else:
                state, msg = "finished", "server already gone"
        elif e.kind in ("resize_server", "migrate_server"):
            try:
                s = self._get_server(str(p["server_id"]))
            except NotFound:
                s = None
            if s is not None and s.status == "VERIFY_RESIZE":
                if act:
                    self._confirm(str(s.id), Trail())
                state, msg = "finished", f"{verb}confirm resize of {s.id}"
            else:
                msg = f"abandoned (server {'gone' if s is None else s.status})"
        elif e.kind in ("deploy", "rollback_deploy"):
            state, msg = self._finish_rebuilds(e, act)
        elif e.kind in ("set_metadata", "set_service_setting", "set_lb_weights", "update_quota"):
            if act:
                action = _rebuild(e)
                if action is not None:
                    self._HANDLERS[action.kind](self, action, e.request_id, Trail())
            state, msg = "finished", f"{verb}re-apply"
        if act and self.journal:
            self.journal.finish(e.request_id, state, msg)
        return f"{tag}: {msg}"

    def _finish_rebuilds(self, e: JournalEntry, act: bool) -> tuple[str, str]:
        """An interrupted deploy/rollback: finish the rebuilds its markers plan (``releases.META_REBUILD``)."""
        service = str(e.params.get("service", e.target))
        spec = self._spec(service)
        self.invalidate()
        marked = _marked(self, service)
        if not marked:
            return "abandoned", "abandoned (no rebuild in flight; the engines re-decide)"
        if not act:
            return "abandoned", f"would finish {len(marked)} rebuild(s): {[s.id for s, _ in marked]}"
        done: list[str] = []
        failed: list[str] = []
        for s, (_, image_id) in marked:
            why = self._rebuild_one(spec, s.id, image_id, Trail())
            if why is None:
                done.append(s.id)
            else:
                failed.append(f"{s.id}: {why}")
        if done and e.kind == "deploy":
            self.store.record_deploy(DeployEvent(service, str(e.params.get("version", marked[0][1][0])),
                                                 marked[0][0].metadata.get(META_PREV_VERSION, "0"),
                                                 float(e.params.get("fraction", 1.0)), self.now(), self.actor))
        elif done:
            self.store.record_deploy(DeployEvent(service, marked[0][1][0], "", 1.0, self.now(), self.actor))
        state = "finished" if not failed else "abandoned"
        return state, f"finished {len(done)} rebuild(s) {done}" + (f"; not back: {failed}" if failed else "")


def _marked(adapter: OpenStackAdapter, service: str) -> list[tuple[Server, tuple[str, str]]]:
    """Managed servers of ``service`` carrying a rebuild marker: (server, (version, image id))."""
    out = []
    for s in adapter.servers(service=service):
        m = releases.parse_marker(s.metadata.get(META_REBUILD))
        if m is not None and adapter.scope.manages(s):
            out.append((s, m))
    return out


def _rebuild(e: JournalEntry) -> Action | None:
    """The action a journal entry recorded (only for the idempotent kinds that are re-applied)."""
    from adapters.base import ACTION_TYPES

    cls = ACTION_TYPES.get(e.kind)
    if cls is None:
        return None
    fields = {k: v for k, v in e.params.items() if k in cls.__dataclass_fields__ and k != "kind"}
    try:
        return cls(**fields)
    except TypeError:
        return None


__all__ = [
    "ConfigError",
    "OpenStackAdapter",
    "OutOfScope",
    "QuotaExceeded",
    "TransientAPIError",
    "map_status",
]
