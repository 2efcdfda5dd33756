"""The adapter protocol on the SimPy twin, with the twin's latencies and failure modes.

Engines call this exactly as they would call :mod:`adapters.openstack`: the
twin's ground truth (faults, SLO breaches) is not reachable from here.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

import numpy as np

from adapters import base
from adapters.base import Action, ActionResult
from twin import errors
from twin.incidents import IncidentBoard
from twin.world import (
    DEPENDENCY_METRICS,
    PRICING,
    SERVER_METRICS,
    SERVICE_METRICS,
    SHELVED,
    STATUS,
    World,
    server_id,
)

_ERRORS: dict[type[errors.TwinError], type[base.AdapterError]] = {
    errors.QuotaExceeded: base.QuotaExceeded,
    errors.NoValidHost: base.NoValidHost,
    errors.Conflict: base.Conflict,
    errors.NotFound: base.NotFound,
    errors.TransientAPIError: base.TransientAPIError,
}


_COUNT_CLASS = np.array([1, 0, 2, 2, 3, 2], dtype=np.int64)  # by status: BUILD, ACTIVE, SHUTOFF, ERROR, DELETED,
# SHELVED_OFFLOADED (counted with the failed: not serving)


class SimAdapter:
    """One world behind the seam. ``actor`` names who acts, for the ground truth."""

    name = "sim"

    def __init__(self, world: World, actor: str = "automation") -> None:
        self.w = world
        self.actor = actor
        self._deps: list[tuple[str, ...]] | None = None  # per service, from the (frozen) config
        self._states: list[base.ServiceState | None] = []  # per service, the state services() last returned
        self._servers: dict[int, tuple[int, int, int, base.Server]] = {}  # row -> (status, host, flavor, last)
        self._hvs: tuple[list[base.Hypervisor | None], np.ndarray, np.ndarray] = ([], np.empty((0, 4)), np.empty(0))
        self._requests: dict[str, tuple[str, base.Request]] = {}

    def now(self) -> float:
        return self.w.now()

    # ------------------------------------------------------------- observe
    def flavors(self) -> Sequence[base.Flavor]:
        return [base.Flavor(f.name, f.vcpus, f.ram_mb, f.disk_gb, f.gpus) for f in self.w.cfg.flavors]

    def hypervisors(self) -> Sequence[base.Hypervisor]:
        """Every hypervisor as the API shows it; a host's record is rebuilt only when its usage or state changed."""
        w = self.w
        n = w.n_hv
        up = w.hv_shown_up()[:n]  # a dead host shows down only after service_down_time (twin/inventory.py)
        used = w.hv_used[:n]
        cached, prev_used, prev_up = self._hvs
        if len(cached) != n:
            cached, prev_used, prev_up = [None] * n, np.full_like(used, -1), np.zeros(n, dtype=bool)
        changed = np.flatnonzero((used != prev_used).any(axis=1) | (up != prev_up))
        if len(changed):
            u = used[changed].astype(np.int64).tolist()
            regions, zones, names = w.zone_region, w.zone_names, w.hv_names
            for k, h in enumerate(changed.tolist()):
                z = int(w.hv_zone[h])
                cached[h] = base.Hypervisor(
                    f"hv-{h:04d}", names[h], regions[z], zones[z], "up" if up[h] else "down", int(w.hv_vcpus[h]),
                    u[k][0], int(w.hv_ram[h]), u[k][1], int(w.hv_disk[h]), u[k][2], int(w.hv_gpus[h]), u[k][3])
            self._hvs = (cached, used.copy(), up.copy())
        return list(cached)  # type: ignore[arg-type]

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[base.Server]:
        w = self.w
        n = w.n
        mask = w.alive() & ~w.deleting[:n]
        if service is not None:
            if service not in w.svc_index:
                return []
            mask &= w.svc[:n] == w.svc_index[service]
        if status is not None:
            if status not in STATUS:
                raise ValueError(f"status must be one of {STATUS}, got {status!r}")
            mask &= w.shown_status() == STATUS.index(status)  # the inventory's lagging view (twin/inventory.py)
        return [self._server(int(i)) for i in np.flatnonzero(mask)]

    def server(self, server_id: str) -> base.Server | None:
        w = self.w
        i = int(server_id[4:]) if server_id.startswith("srv-") and server_id[4:].isdigit() else -1
        if not 0 <= i < w.n or w.status[i] == 4 or w.deleting[i]:
            return None
        return self._server(i)

    def _server(self, i: int) -> base.Server:
        w = self.w
        h = int(w.hv[i])
        st = w.shown_status_of(i)
        f = int(w.flavor[i])
        # a server equal to the one last returned for this row is returned again (immutable; metadata is a copy)
        old = self._servers.get(i)
        md = old[3].metadata if old is not None else None
        if (old is not None and old[0] == st and old[1] == h and old[2] == f and md is not None
                and md.get(base.VERSION_KEY) == w.releases.version_of(i)
                and {k: v for k, v in md.items() if k != base.VERSION_KEY} == w.metadata[i]):
            return old[3]
        srv = self._make_server(i, h)
        self._servers[i] = (st, h, f, srv)
        return srv

    def _make_server(self, i: int, h: int) -> base.Server:
        w = self.w
        s = int(w.svc[i])
        return base.Server(
            id=server_id(i), name=f"{w.svc_names[s] if s >= 0 else 'server'}-{i}", flavor=w.flavor_names[w.flavor[i]],
            project=w.proj_names[w.svc_project[s]] if s >= 0 else w.proj_names[0], status=STATUS[w.shown_status_of(i)],
            zone=w.zone_names[w.hv_zone[h]],
            hypervisor=None if w.status[i] == SHELVED else w.hv_names[h], service=w.svc_names[s] if s >= 0 else None,
            pricing=PRICING[w.pricing[i]], created_at=float(w.created_at[i]),
            metadata={**w.metadata[i], base.VERSION_KEY: w.releases.version_of(i)})

    def services(self) -> Sequence[base.ServiceState]:
        w = self.w
        n = w.n
        svc = w.svc[:n]
        live = ~w.deleting[:n] & (svc >= 0)
        # one count per (service, class): 0 ACTIVE, 1 BUILD, 2 SHUTOFF or ERROR, 3 DELETED
        key = svc[live] * 4 + _COUNT_CLASS[w.shown_status()[live]]  # as the inventory shows them
        counts = np.bincount(key, minlength=4 * w.n_svc).reshape(w.n_svc, 4)
        active, building, failed = counts[:, 0].tolist(), counts[:, 1].tolist(), counts[:, 2].tolist()
        version = w.svc_version.tolist()
        if self._deps is None:
            self._deps = [tuple(d.service for d in s.dependencies) for s in w.cfg.services]
            self._states = [None] * w.n_svc
        states = self._states
        out = []
        for i, s in enumerate(w.cfg.services):
            # a state equal to the last one returned is returned again (it is immutable; its settings are a copy)
            old = states[i]
            if (old is not None and old.active == active[i] and old.building == building[i]
                    and old.failed == failed[i] and old.version == version[i] and old.settings == w.svc_settings[i]):
                out.append(old)
                continue
            states[i] = st = base.ServiceState(
                name=s.name, project=s.project, flavor=s.flavor, dependencies=self._deps[i],
                active=active[i], building=building[i], failed=failed[i],
                version=version[i], settings=dict(w.svc_settings[i]), min_servers=s.min_servers,
                max_servers=s.max_servers, stateful=s.stateful)
            out.append(st)
        return out

    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> base.MetricWindow:
        w = self.w
        if metric in SERVICE_METRICS:
            name = labels.get("service")
            if name not in w.svc_index:
                raise ValueError(f"metric {metric} needs a label service=<one of {', '.join(w.svc_names)}>")
            t, v = w.metrics.svc[metric].window(seconds, w.svc_index[name])
        elif metric in SERVER_METRICS:
            sid = labels.get("server", "")
            i = int(sid[4:]) if sid.startswith("srv-") and sid[4:].isdigit() else -1
            if not 0 <= i < w.n:
                raise ValueError(f"metric {metric} needs a label server=<server id>, got {sid!r}")
            t, v = w.metrics.srv[metric].window(seconds, i)
        elif metric in DEPENDENCY_METRICS:
            t, v = w.metrics.dep_window(metric, self._edge(metric, labels), seconds)
        else:
            raise ValueError(f"unknown metric {metric!r}; allowed: "
                             f"{', '.join(SERVICE_METRICS + SERVER_METRICS + DEPENDENCY_METRICS)}")
        return base.MetricWindow(metric, dict(labels), t, v)

    def _edge(self, metric: str, labels: Mapping[str, str]) -> int:
        """The dependency edge (caller ``service`` -> callee ``dependency``) a per-edge metric's labels name."""
        e = self.w.edge_index.get((labels.get("service", ""), labels.get("dependency", "")))
        if e is None:
            pairs = ", ".join(f"{a}->{b}" for a, b in self.w.edge_index)
            raise ValueError(f"metric {metric} needs labels service=<caller>, dependency=<callee> of a dependency "
                             f"({pairs or 'none'}), got {dict(labels)}")
        return e

    def metric_history(self, metric: str, labels: Mapping[str, str], seconds: float, step: float) -> base.MetricWindow:
        """Means per ``step`` (a multiple of 60 s) from the telemetry's 1- and 5-minute rollups (twin/telemetry.py:
        1-minute means kept 2 days, 5-minute means 35 days); per service or per dependency edge."""
        w = self.w
        if metric in SERVICE_METRICS:
            name = labels.get("service")
            if name not in w.svc_index:
                raise ValueError(f"metric {metric} needs a label service=<one of {', '.join(w.svc_names)}>")
            t, v = w.metrics.history(metric, w.svc_index[name], w.now(), seconds, step)
        elif metric in DEPENDENCY_METRICS:
            t, v = w.metrics.history(metric, self._edge(metric, labels), w.now(), seconds, step, dependency=True)
        else:
            raise ValueError(f"metric_history serves per-service and per-dependency metrics, not {metric!r}; "
                             f"allowed: {', '.join(SERVICE_METRICS + DEPENDENCY_METRICS)}")
        return base.MetricWindow(metric, dict(labels), t, v)

    def latest(self, metric: str) -> Mapping[str, float]:
        if metric not in SERVICE_METRICS:
            raise ValueError(f"unknown per-service metric {metric!r}; allowed: {', '.join(SERVICE_METRICS)}")
        row = self.w.metrics.svc[metric].last()
        return dict(zip(self.w.svc_names, row.tolist(), strict=True))

    def alerts(self, since: float) -> Sequence[base.Alert]:
        ev = self.w.alerting
        k = bisect.bisect_right(ev.times, since)
        return [base.Alert(a.name, a.severity, a.labels, a.state, a.starts_at, a.at, a.value, a.fingerprint)  # type: ignore[arg-type]
                for a in ev.alerts[k:]]

    def prices(self) -> Sequence[base.Price]:
        w = self.w
        out = []
        for f, name in enumerate(w.flavor_names):
            out.append(base.Price(name, "on_demand", float(w.f_od[f] * 3600)))
            out.append(base.Price(name, "spot", float(w.f_spot[f] * 3600)))
            out.append(base.Price(name, "reserved", float(w.f_reserved_rate[f] * 3600)))
        return out

    def spend(self) -> base.Spend:
        w = self.w
        n = w.n
        svc = w.svc[:n]
        per_svc = np.bincount(svc[svc >= 0], w.billed[:n][svc >= 0], w.n_svc)  # each server's bill, summed
        rate = getattr(w, "spend_rate_project", None)
        return base.Spend(w.spend_total, w.spend_rate, dict(zip(w.proj_names, w.spend_project.tolist(), strict=True)),
                          per_service=dict(zip(w.svc_names, per_svc.tolist(), strict=True)),
                          rate_per_project=dict(zip(w.proj_names, (rate if rate is not None else
                                                                   np.zeros(len(w.proj_names))).tolist(), strict=True)))

    def budgets(self) -> Sequence[base.Budget]:
        return [base.Budget(b.project, b.period_s, b.period_start, b.limit, b.spent, b.alert_at, b.hard)
                for b in self.w.budgets.states()]

    def reservations(self) -> Sequence[base.Reservation]:
        w = self.w
        return [base.Reservation(c.id, w.proj_names[c.project], w.flavor_names[c.flavor], c.count, c.per_hour,
                                 c.start, c.end) for c in w.reservations.items]

    def deploys(self, since: float) -> Sequence[base.DeployEvent]:
        return [base.DeployEvent(d.service, d.version, d.previous, d.fraction, d.at, d.actor)
                for d in self.w.releases.since(since)]

    def requests(self) -> Sequence[base.Request]:
        cache = self._requests  # id -> (status, request): a request is rebuilt only when its status changed
        out = []
        for r in self.w.inbox.items:
            c = cache.get(r.id)
            if c is None or c[0] != r.status:
                c = cache[r.id] = (r.status, base.Request(r.id, r.project, r.requester, r.kind, dict(r.params),
                                                          r.submitted_at, r.status))
            out.append(c[1])
        return out

    def quotas(self) -> Sequence[base.Quota]:
        w = self.w
        gone = getattr(w, "offboarded", set())
        return [base.Quota(p, *map(int, w.quota[i]), *map(int, w.proj_used[i])) for i, p in enumerate(w.proj_names)
                if p not in gone]

    def submit_request(self, project: str, kind: str, params: Mapping[str, object], requester: str = "someone") -> str:
        """Put a self-service request in the twin's inbox (a portal or a CLI calls this); returns its id."""
        return self.w.inbox.submit({"requester": requester, "kind": kind, "project": project,
                                    "params": dict(params)}).id

    @property
    def board(self) -> IncidentBoard:
        """The world's incident board (created on first use when the world does not hold one yet)."""
        b = getattr(self.w, "incident_board", None)
        if b is None:
            b = self.w.incident_board = IncidentBoard(self.w.now)
        return b

    def incidents(self) -> Sequence[base.IncidentInfo]:
        return [base.IncidentInfo(
            id=i.id, components=i.components, severity=i.severity, status=i.status, declared_at=i.declared_at,
            declared_by=i.declared_by, title=i.title, root_causes=i.root_causes, confidence=i.confidence,
            updated_at=i.updated_at, resolved_at=i.resolved_at, postmortem=i.postmortem, pages=i.pages)
            for i in self.board.all()]

    # ---------------------------------------------------------------- act
    def execute(self, action: Action) -> ActionResult:
        try:
            return self._execute(action)
        except errors.TwinError as e:
            raise _ERRORS[type(e)](str(e)) from None

    def _execute(self, a: Action) -> ActionResult:
        """Dispatch on the action's ``kind``: ``_do_<kind>`` does it (None means accepted)."""
        fn = getattr(self, "_do_" + a.kind, None)
        if fn is None:
            raise base.Conflict(f"the simulated adapter does not support {type(a).__name__}")
        out = fn(a)
        return out if out is not None else ActionResult(True, "accepted")

    # one handler per verb, named for its kind
    def _do_create_server(self, a: base.CreateServer) -> ActionResult:
        w = self.w
        if a.request_id:
            found = [server_id(i) for i in range(w.n)
                     if w.metadata[i].get("zeroops_request_id") == a.request_id and w.status[i] != 4]
            if found:
                return ActionResult(True, "found by request id", tuple(found))
        md = {"zeroops_request_id": a.request_id} if a.request_id else None
        ids = w.create_servers(a.service, a.count, a.flavor, a.zone, a.pricing, md, actor=self.actor)
        return ActionResult(True, f"created {len(ids)}", tuple(ids))

    def _do_delete_server(self, a: base.DeleteServer) -> None:
        self.w.delete_server(a.server_id, actor=self.actor)

    def _do_reboot_server(self, a: base.RebootServer) -> None:
        self.w.reboot_server(a.server_id, a.hard, actor=self.actor)

    def _do_start_server(self, a: base.StartServer) -> None:
        self.w.start_server(a.server_id, actor=self.actor)

    def _do_stop_server(self, a: base.StopServer) -> None:
        self.w.stop_server(a.server_id, actor=self.actor)

    def _do_shelve_server(self, a: base.ShelveServer) -> None:
        self.w.shelve_server(a.server_id, actor=self.actor)

    def _do_resize_server(self, a: base.ResizeServer) -> None:
        self.w.resize_server(a.server_id, a.flavor, actor=self.actor)

    def _do_migrate_server(self, a: base.MigrateServer) -> None:
        self.w.migrate_server(a.server_id, a.hypervisor, actor=self.actor)

    def _do_restart_service(self, a: base.RestartService) -> None:
        self.w.restart_service(a.service, actor=self.actor)

    def _do_set_service_setting(self, a: base.SetServiceSetting) -> None:
        self.w.set_service_setting(a.service, a.key, a.value, actor=self.actor)

    def _do_deploy(self, a: base.Deploy) -> ActionResult:
        self.w._check_api()
        self.w.releases.deploy(a.service, a.version, a.fraction, actor=self.actor)
        return ActionResult(True, f"deploying {a.version} to {a.fraction:g} of {a.service}")

    def _do_rollback_deploy(self, a: base.RollbackDeploy) -> None:
        self.w.rollback_deploy(a.service, actor=self.actor)

    def _do_set_lb_weights(self, a: base.SetLBWeights) -> None:
        self.w.set_lb_weights(a.service, dict(a.weights), actor=self.actor)

    def _do_set_metadata(self, a: base.SetMetadata) -> None:
        self.w.set_metadata(a.server_id, dict(a.metadata))

    def _do_update_quota(self, a: base.UpdateQuota) -> None:
        self.w.update_quota(a.project, a.instances, a.cores, a.ram_mb)

    def _do_purchase_reservation(self, a: base.PurchaseReservation) -> ActionResult:
        rid = self.w.reservations.purchase(a.project, a.flavor, a.count, a.term_s, actor=self.actor)
        return ActionResult(True, f"reservation {rid}")

    def _do_inject_fault(self, a: base.InjectFault) -> ActionResult:
        from twin.chaos import inject_fault

        rec = inject_fault(self.w, a.fault, a.target_component, a.duration, a.magnitude, a.experiment)
        return ActionResult(True, f"injected {rec.type} ({rec.id})")

    def _do_fulfill_request(self, a: base.FulfillRequest) -> ActionResult:
        r = self.w.inbox.fulfill(a.request_id, a.approve, a.note, actor=self.actor, carried_out=a.carried_out)
        return ActionResult(True, f"{r.status}: {r.result}" if r.result else r.status, tuple(r.server_ids))

    def _do_notify(self, a: base.Notify) -> None:
        pass

    def _do_create_project(self, a: base.CreateProject) -> ActionResult:
        """A new project row (quota, usage, spend), its budget and alert route; a name once offboarded comes back."""
        from twin.config import BudgetSpec

        w = self.w
        w._check_api()
        gone: set[str] = w.__dict__.setdefault("offboarded", set())
        if a.project in w.proj_index and a.project not in gone:
            raise base.Conflict(f"project {a.project!r} exists already")
        if min(a.instances, a.cores, a.ram_mb) < 0:
            raise base.Conflict("quota values must be >= 0")
        if a.project not in w.proj_index:
            w.proj_index[a.project] = len(w.proj_names)
            w.proj_names.append(a.project)
            w.quota = np.vstack([w.quota, np.zeros((1, 3), dtype=w.quota.dtype)])
            w.proj_used = np.vstack([w.proj_used, np.zeros((1, 3), dtype=w.proj_used.dtype)])
            w.spend_project = np.append(w.spend_project, 0.0)
            w.spend_rate_project = np.append(w.spend_rate_project, 0.0)
            w.reservations.rate_proj = np.append(w.reservations.rate_proj, 0.0)
            w.invalidate()
        gone.discard(a.project)
        w.quota[w.proj_index[a.project]] = (a.instances, a.cores, a.ram_mb)
        if a.budget is not None and a.budget > 0:
            book = w.budgets
            book.specs.append(BudgetSpec(project=a.project, limit=a.budget))
            book.base.append(float(w.spend_project[w.proj_index[a.project]]))
            book.start.append(w.now())
        w.__dict__.setdefault("alert_routes", {})[a.project] = a.alert_route
        return ActionResult(True, f"project {a.project}: quota {a.instances}/{a.cores}/{a.ram_mb}, "
                                  f"budget {a.budget}, alerts to {a.alert_route}")

    def _do_delete_project(self, a: base.DeleteProject) -> ActionResult:
        """Offboard: refused while servers remain; quotas go to 0; spend and budgets stay on record."""
        w = self.w
        w._check_api()
        gone: set[str] = w.__dict__.setdefault("offboarded", set())
        if a.project not in w.proj_index or a.project in gone:
            raise base.NotFound(f"no project {a.project!r}")
        left = [s.id for s in self.servers() if s.project == a.project]
        if left:
            raise base.Conflict(f"project {a.project} still has {len(left)} server(s): {', '.join(left[:5])}")
        w.quota[w.proj_index[a.project]] = 0
        gone.add(a.project)
        w.__dict__.get("alert_routes", {}).pop(a.project, None)
        return ActionResult(True, f"project {a.project} deleted (spend {w.spend_project[w.proj_index[a.project]]:.2f})")

    def _do_declare_incident(self, a: base.DeclareIncident) -> None:
        self.board.declare(a.incident_id, a.components, a.severity, a.title, a.root_causes, by=self.actor)

    def _do_update_incident(self, a: base.UpdateIncident) -> None:
        self.board.update(a.incident_id, severity=a.severity, components=a.components,
                          root_causes=a.root_causes, status=a.status, note=a.note, by=self.actor)

    def _do_resolve_incident(self, a: base.ResolveIncident) -> None:
        self.board.resolve(a.incident_id, a.postmortem, by=self.actor)

    def _do_page(self, a: base.Page) -> None:
        self.board.page(a.incident_id, by=self.actor)
        self.w.operator.page(f"page:{a.who}:{a.incident_id or ''}", set(a.components))
