"""Managed scope: a controller acts only on the servers it manages; everything else is read-only context.

:class:`Scope` answers two questions: does this controller manage a server (:meth:`Scope.manages`), and
may an action run (:meth:`Scope.refusal`: None, or the reason it may not).  It is enforced twice, at the
boundary and not in the engines:

* :class:`ScopeGate` wraps the choke point's gate: an out-of-scope action is *denied* with rule
  ``out-of-scope`` and the reason, so it lands in the audit trail like any other decision;
* the adapter refuses it again (:class:`OutOfScope`), for paths that skip the gate (the approval
  executor, reconciliation, a caller of ``execute``).  :class:`ScopedAdapter` adds this to any adapter
  (the twin's fake in tests); :class:`adapters.openstack.OpenStackAdapter` checks it in ``execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import (
    Action,
    ActionResult,
    AdapterError,
    Deploy,
    InjectFault,
    Observation,
    PurchaseReservation,
    RestartService,
    RollbackDeploy,
    Server,
    SetLBWeights,
    SetServiceSetting,
    UpdateQuota,
)

if TYPE_CHECKING:
    from control.runtime import Gate, Verdict

META_MANAGED = "zeroops_managed"
META_SERVICE = "zeroops_service"
RULE = "out-of-scope"

#: actions aimed at one server by its ``server_id``
SERVER_FIELD = "server_id"
#: service-level verbs that reach every server of the service
SERVICE_WIDE = (RestartService, SetServiceSetting, Deploy, RollbackDeploy)


class OutOfScope(AdapterError):
    """The action targets a server, service or project this controller does not manage (never retried)."""


@dataclass(frozen=True)
class Scope:
    """The managed scope: a scope ``name``, ``projects`` (empty: any), ``managed_by`` metadata and ``services``.

    ``managed_by`` None: a server is managed when ``zeroops_managed == name`` or its ``zeroops_service``
    is one of ``services`` (``services`` None: any service name).
    """

    name: str = "default"
    projects: frozenset[str] = frozenset()
    managed_by: Mapping[str, str] | None = None
    services: frozenset[str] | None = None
    _aliases: Mapping[str, str] = field(default_factory=dict, compare=False)  # project id <-> name

    def with_aliases(self, aliases: Mapping[str, str]) -> Scope:
        """The same scope knowing that project ids and names in ``aliases`` (both ways) are the same project."""
        both = dict(aliases) | {v: k for k, v in aliases.items()}
        return Scope(self.name, self.projects, self.managed_by, self.services, both)

    def in_projects(self, project: str) -> bool:
        return not self.projects or project in self.projects or self._aliases.get(project) in self.projects

    def why_not(self, server: Server) -> str | None:
        """None when this scope manages ``server``, else why not (for a refusal's message)."""
        where = f"server {server.id} ({server.name or 'unnamed'}, project {server.project or '?'})"
        if not self.in_projects(server.project):
            return f"{where} is outside the projects of scope {self.name!r} ({', '.join(sorted(self.projects))})"
        meta = server.metadata or {}
        if self.managed_by is not None:
            missing = [f"{k}={v}" for k, v in sorted(self.managed_by.items())
                       if k not in meta or (v != "*" and meta[k] != v)]
            if missing:
                return f"{where} is not managed by scope {self.name!r}: its metadata lacks {', '.join(missing)}"
            return None
        if meta.get(META_MANAGED) == self.name:
            return None
        svc = meta.get(META_SERVICE) or server.service
        if svc and (self.services is None or svc in self.services):
            return None
        if svc:
            return (f"{where} belongs to service {svc!r}, which scope {self.name!r} does not manage "
                    f"(services: {', '.join(sorted(self.services or ()))})")
        return (f"{where} is not managed by scope {self.name!r}: no {META_MANAGED}={self.name} "
                f"and no {META_SERVICE} in its metadata")

    def manages(self, server: Server) -> bool:
        return self.why_not(server) is None

    def create_metadata(self) -> dict[str, str]:
        """Metadata a server this controller creates carries, so that it is managed from birth."""
        if self.managed_by is None:
            return {META_MANAGED: self.name}
        return {k: v for k, v in self.managed_by.items() if v != "*"}

    def _service_refusal(self, service: str) -> str | None:
        if self.services is not None and service not in self.services:
            return (f"service {service!r} is not managed by scope {self.name!r} "
                    f"(services: {', '.join(sorted(self.services))})")
        return None

    def refusal(self, action: Action, lookup: Callable[[str], Server | None],
                members: Callable[[str], Sequence[Server]] | None = None) -> str | None:
        """None when ``action`` may run, else the reason it may not.  ``lookup(id)``: the server now (None: unknown;
        an unknown server is left to the adapter, which answers NotFound).  ``members(service)``: for an adapter
        whose service-wide verbs (restart, deploy, settings) reach every server of the service, those servers;
        such a verb is refused while any of them is unmanaged (the OpenStack adapter filters members itself)."""
        if not action.changes_world:
            return None  # record-only decisions: the incident board, pages, notes
        if isinstance(action, UpdateQuota | PurchaseReservation):
            if not self.in_projects(action.project):
                return f"project {action.project!r} is outside scope {self.name!r} ({', '.join(sorted(self.projects))})"
            return None
        ids: list[str] = []
        sid = getattr(action, SERVER_FIELD, None)
        if isinstance(sid, str):
            ids.append(sid)
        if isinstance(action, SetLBWeights):
            ids.extend(action.weights)
        service = getattr(action, "service", None)
        if isinstance(action, InjectFault):
            target = action.target_component
            if self.services is not None and target in self.services:
                service = target
            else:
                srv = lookup(target)
                if srv is None:
                    return f"fault target {target!r} is neither a managed service nor a managed server"
                ids.append(target)
        if isinstance(service, str):
            why = self._service_refusal(service)
            if why:
                return why
            if members is not None and isinstance(action, SERVICE_WIDE):
                ids.extend(s.id for s in members(service))
        for i in ids:
            srv = lookup(i)
            if srv is not None:
                why = self.why_not(srv)
                if why:
                    return why
        return None

    def check(self, action: Action, lookup: Callable[[str], Server | None],
              members: Callable[[str], Sequence[Server]] | None = None) -> None:
        """Raise :class:`OutOfScope` when ``action`` may not run."""
        why = self.refusal(action, lookup, members)
        if why is not None:
            raise OutOfScope(f"refused: {why}; it is read-only context for this controller")


def scope_of_config(config: Any, default_project: str | None = None) -> Scope:
    """The :class:`Scope` of a live config (:class:`adapters.live_config.LiveConfig`)."""
    spec = config.scope
    projects = set(spec.projects) or ({default_project} if default_project else set())
    projects |= {s.project for s in config.services if s.project}
    return Scope(spec.name, frozenset(projects), dict(spec.managed_by) if spec.managed_by else None,
                 frozenset(s.name for s in config.services))


class ScopeGate:
    """A gate in front of another: out-of-scope actions are denied (rule ``out-of-scope``), the rest reviewed as
    before.  Attributes not defined here are the inner gate's."""

    def __init__(self, inner: Gate, scope: Scope, lookup: Callable[[str], Server | None],
                 members: Callable[[str], Sequence[Server]] | None = None) -> None:
        self.inner = inner
        self.scope = scope
        self.lookup = lookup
        self.members = members

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        from control.runtime import Verdict  # the adapter layer needs the control plane only for this gate

        why = self.scope.refusal(action, self.lookup, self.members)
        if why is not None:
            return Verdict("deny", rule=RULE, detail={"reason": why, "scope": self.scope.name})
        return self.inner.review(now, engine, action, obs)

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        self.inner.executed(now, engine, action, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ScopedAdapter:
    """Any adapter, refusing out-of-scope actions in ``execute`` (:class:`OutOfScope`); everything else is the
    inner adapter's (reads are not filtered: unmanaged servers stay visible as context)."""

    def __init__(self, inner: Any, scope: Scope) -> None:
        self.inner = inner
        self.scope = scope
        self.refused: list[tuple[Action, str]] = []

    def lookup(self, server_id: str) -> Server | None:
        return self.inner.server(server_id)

    def members(self, service: str) -> Sequence[Server]:
        return self.inner.servers(service=service)

    def execute(self, action: Action) -> ActionResult:
        why = self.scope.refusal(action, self.lookup, self.members)
        if why is not None:
            self.refused.append((action, why))
            raise OutOfScope(f"refused: {why}; it is read-only context for this controller")
        return self.inner.execute(action)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def managed_only(servers: Collection[Server], scope: Scope) -> list[Server]:
    """The managed subset of ``servers``."""
    return [s for s in servers if scope.manages(s)]
