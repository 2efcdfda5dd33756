"""Deciding one request by policy: its size and estimated cost from what the adapter shows, then the first rule
that applies — invalid, hard limit (refuse), project quota / auto limit / budget headroom (a person approves),
else approve inside policy.  Pure functions of the request, the policy and the observation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.base import Budget, Flavor, Observation, Price, Quota, Request, Server, ServiceState
from engines.selfservice.policy import HOURS_PER_MONTH, Policy

Verdict = Literal["approve", "approval", "refuse"]
SERVER_KINDS = ("vm_provision", "create_servers")
KINDS = (*SERVER_KINDS, "resize", "quota_increase", "project_onboard", "project_offboard")


@dataclass(frozen=True)
class Decision:
    """A request's verdict, the rule that decided, its estimated cost and the figures the rule compared."""

    request: str
    kind: str
    project: str
    verdict: Verdict
    rule: str
    cost_per_month: float | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    plan: Mapping[str, Any] = field(default_factory=dict)  # what approving carries out (resolved flavor, targets)

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request, "kind": self.kind, "project": self.project, "verdict": self.verdict,
                "rule": self.rule, "cost_per_month": self.cost_per_month, "detail": dict(self.detail),
                "plan": dict(self.plan)}


class Invalid(ValueError):
    """The request cannot be read (missing or unknown fields): refused with rule ``invalid-request``."""


def pick_flavor(flavors: Sequence[Flavor], vcpus: int, ram_mb: int, disk_gb: float) -> Flavor | None:
    """The smallest flavor (vCPUs, then RAM, then disk) that fits one server of the request."""
    fits = [f for f in flavors if f.vcpus >= vcpus and f.ram_mb >= ram_mb and f.disk_gb >= disk_gb and not f.gpus]
    return min(fits, key=lambda f: (f.vcpus, f.ram_mb, f.disk_gb, f.name)) if fits else None


def on_demand(prices: Sequence[Price], flavor: str) -> float | None:
    return next((p.per_hour for p in prices if p.flavor == flavor and p.pricing == "on_demand"), None)


def _int(p: Mapping[str, Any], key: str, default: int = 0, lo: int = 0) -> int:
    v = p.get(key, default)
    try:
        out = int(v if v is not None else default)
    except (TypeError, ValueError):
        raise Invalid(f"params.{key}: {v!r} is not a whole number") from None
    if out < lo:
        raise Invalid(f"params.{key}: {out} is below {lo}")
    return out


def _num(p: Mapping[str, Any], key: str) -> float:
    v = p.get(key, 0)
    try:
        return float(v or 0)
    except (TypeError, ValueError):
        raise Invalid(f"params.{key}: {v!r} is not a number") from None


@dataclass(frozen=True)
class View:
    """The parts of an observation a decision reads (built once per step)."""

    flavors: Mapping[str, Flavor]
    prices: Sequence[Price]
    quotas: Mapping[str, Quota]
    budgets: Mapping[str, Budget]
    services: Mapping[str, ServiceState]
    servers: Sequence[Server]
    rate_per_project: Mapping[str, float]
    now: float

    @classmethod
    def of(cls, obs: Observation) -> View:
        return cls(obs.flavors, obs.prices, obs.quotas, obs.budgets, obs.services, obs.servers(),
                   obs.spend.rate_per_project, obs.now)


def decide(r: Request, policy: Policy, v: View) -> Decision:
    """The verdict on one request (never raises: unreadable requests are refused with ``invalid-request``)."""
    try:
        if r.kind not in KINDS:
            raise Invalid(f"kind {r.kind!r} unknown; allowed: {', '.join(KINDS)}")
        if r.kind in SERVER_KINDS or r.kind == "resize":
            return _servers(r, policy, v)
        if r.kind == "quota_increase":
            return _quota(r, policy, v)
        if r.kind == "project_onboard":
            return _onboard(r, policy, v)
        return _offboard(r, policy, v)
    except Invalid as e:
        return Decision(r.id, r.kind, r.project, "refuse", "invalid-request", None, {"error": str(e)})


def _ask_servers(r: Request, v: View) -> tuple[Flavor, int, str | None, dict[str, Any]]:
    p = r.params
    if r.kind == "resize":
        sid = p.get("server") or p.get("server_id")
        server = next((s for s in v.servers if s.id == sid), None)
        if server is None:
            raise Invalid(f"params.server: {sid!r} is not a server of this world")
        name = p.get("flavor")
        if name not in v.flavors:
            raise Invalid(f"params.flavor: {name!r} unknown; allowed: {', '.join(sorted(v.flavors))}")
        return v.flavors[str(name)], 1, server.service, {"server": server.id, "from_flavor": server.flavor}
    count = _int(p, "count", 1, lo=1)
    service = p.get("service")
    if service is not None and service not in v.services:
        raise Invalid(f"params.service: {service!r} unknown; allowed: {', '.join(sorted(v.services))}")
    if service is None:  # a project's own service takes its servers (the first by name)
        mine = sorted(s.name for s in v.services.values() if s.project == r.project)
        service = mine[0] if mine else None
    name = p.get("flavor")
    if name:
        if name not in v.flavors:
            raise Invalid(f"params.flavor: {name!r} unknown; allowed: {', '.join(sorted(v.flavors))}")
        flavor = v.flavors[str(name)]
    elif any(k in p for k in ("cpus", "memory", "memory_gb", "storage", "storage_gb")):
        cpus = _int(p, "cpus", 1, lo=1)
        ram_mb = int(1024 * (_num(p, "memory_gb") or _num(p, "memory")))
        disk = _num(p, "storage_gb") or _num(p, "storage")
        found = pick_flavor(list(v.flavors.values()), cpus, ram_mb, disk)
        if found is None:
            raise Invalid(f"no flavor fits {cpus} vCPU, {ram_mb} MB, {disk:g} GB; flavors: {', '.join(sorted(v.flavors))}")
        flavor = found
    elif service is not None and service in v.services:
        flavor = v.flavors[v.services[service].flavor]
    else:
        raise Invalid("give params.flavor, or cpus/memory_gb/storage_gb, or a service")
    return flavor, count, service, {}


def _servers(r: Request, policy: Policy, v: View) -> Decision:
    flavor, count, service, extra = _ask_servers(r, v)
    price = on_demand(v.prices, flavor.name)
    old = on_demand(v.prices, str(extra["from_flavor"])) if r.kind == "resize" else 0.0
    cost = None if price is None or old is None else (price - old) * count * HOURS_PER_MONTH
    size = {"max_vms": count, "max_vcpus": count * flavor.vcpus, "max_memory_gb": count * flavor.ram_mb / 1024,
            "max_storage_gb": count * flavor.disk_gb, "max_cost_per_month": cost}
    if r.kind == "resize":  # a resize adds the difference, not a server
        was = v.flavors.get(str(extra["from_flavor"]))
        size["max_vms"] = 0
        if was is not None:
            size.update(max_vcpus=max(0, flavor.vcpus - was.vcpus), max_memory_gb=max(0, flavor.ram_mb - was.ram_mb) / 1024,
                        max_storage_gb=max(0, flavor.disk_gb - was.disk_gb))
    plan = {"flavor": flavor.name, "count": count, "service": service, "image": r.params.get("image"), **extra}
    detail: dict[str, Any] = {"size": size, "flavor": flavor.name}

    def out(verdict: Verdict, rule: str, **more: Any) -> Decision:
        return Decision(r.id, r.kind, r.project, verdict, rule, cost, detail | more, plan)

    if r.project not in v.quotas:
        return out("refuse", "invalid-request", error=f"project {r.project!r} does not exist")
    if r.kind != "resize" and service is None:
        return out("approval", "no-service", why=f"project {r.project} has no service to place servers in")
    if service is not None and service in v.services and v.services[service].project != r.project:
        return out("refuse", "invalid-request", error=f"service {service} is not in project {r.project}")
    hard_limits, auto_limits = policy.hard.model_dump(), policy.auto.model_dump()
    for lim, val in size.items():
        if val is not None and val > hard_limits[lim]:
            return out("refuse", f"hard-limit:{lim}", value=val, limit=hard_limits[lim])
    hard_budget = _budget(r.project, cost, v, hard_only=True)
    if hard_budget is not None:
        return out("refuse", "budget-hard", **hard_budget)
    q = v.quotas[r.project]
    need = (size["max_vms"], size["max_vcpus"], size["max_memory_gb"] * 1024)
    over = [n for n, used, lim, add in zip(("instances", "cores", "ram_mb"), (q.instances_used, q.cores_used,
            q.ram_mb_used), (q.instances, q.cores, q.ram_mb), need, strict=True) if lim >= 0 and used + add > lim]
    if over:
        return out("approval", "project-quota", over=over, quota=[q.instances, q.cores, q.ram_mb],
                   used=[q.instances_used, q.cores_used, q.ram_mb_used])
    if cost is None:
        return out("approval", "cost-unknown", why=f"no on-demand price for {flavor.name}")
    for lim, val in size.items():
        if val is not None and val > auto_limits[lim]:
            return out("approval", f"auto-limit:{lim}", value=val, limit=auto_limits[lim])
    soft = _budget(r.project, cost, v, hard_only=False, headroom=policy.budget_headroom)
    if soft is not None:
        return out("approval", "budget-headroom", **soft)
    return out("approve", "within-policy")


def _budget(project: str, cost_per_month: float | None, v: View, *, hard_only: bool,
            headroom: float = 0.0) -> dict[str, Any] | None:
    """The first budget (the project's, the account's) whose period would end above ``(1 - headroom)`` of its
    limit with the request's cost added; None if none would."""
    if not cost_per_month or cost_per_month <= 0:
        return None
    for key in (project, "*"):
        b = v.budgets.get(key)
        if b is None or (hard_only and not b.hard):
            continue
        left_h = max(0.0, b.period_start + b.period_s - v.now) / 3600.0
        rate = sum(v.rate_per_project.values()) if key == "*" else v.rate_per_project.get(key, 0.0)
        projected = b.spent + (rate + cost_per_month / HOURS_PER_MONTH) * left_h
        cap = b.limit * (1.0 - (0.0 if hard_only else headroom))
        if projected > cap:
            return {"budget": key, "projected": round(projected, 2), "limit": b.limit, "cap": round(cap, 2)}
    return None


def _quota(r: Request, policy: Policy, v: View) -> Decision:
    p = r.params
    add = (_int(p, "instances"), _int(p, "cores"), _int(p, "ram_mb"))
    q = v.quotas.get(r.project)
    if q is None:
        return Decision(r.id, r.kind, r.project, "refuse", "invalid-request", None,
                        {"error": f"project {r.project!r} does not exist"})
    target = (q.instances + add[0], q.cores + add[1], q.ram_mb + add[2])
    per_core = min((p_.per_hour / f.vcpus for p_ in v.prices for f in v.flavors.values()
                    if p_.flavor == f.name and p_.pricing == "on_demand" and f.vcpus), default=None)
    cost = None if per_core is None else add[1] * per_core * HOURS_PER_MONTH  # shown: if the new cores all ran
    qi = policy.quota_increase
    detail = {"add": list(add), "target": list(target)}
    plan = {"instances": target[0], "cores": target[1], "ram_mb": target[2]}

    def out(verdict: Verdict, rule: str, **more: Any) -> Decision:
        return Decision(r.id, r.kind, r.project, verdict, rule, cost, detail | more, plan)

    for name, val, lim in zip(("instances", "cores", "ram_mb"), target, (qi.max_instances, qi.max_cores,
                                                                        qi.max_ram_mb), strict=True):
        if val > lim:
            return out("refuse", f"hard-limit:quota_{name}", value=val, limit=lim)
    for name, val, lim in zip(("instances", "cores", "ram_mb"), add, (qi.auto_instances, qi.auto_cores,
                                                                     qi.auto_ram_mb), strict=True):
        if val > lim:
            return out("approval", f"auto-limit:quota_{name}", value=val, limit=lim)
    return out("approve", "within-policy")  # a quota spends nothing: the servers it admits meet the budget rules


def _onboard(r: Request, policy: Policy, v: View) -> Decision:
    p, ob = r.params, policy.onboarding
    quota = (_int(p, "instances", ob.instances), _int(p, "cores", ob.cores), _int(p, "ram_mb", ob.ram_mb))
    budget = _num(p, "budget") or ob.budget_per_month
    first = p.get("first_server") or None
    if first is not None and not isinstance(first, Mapping):
        raise Invalid("params.first_server: a mapping (service, flavor)")
    plan = {"instances": quota[0], "cores": quota[1], "ram_mb": quota[2], "budget": budget,
            "alert_route": str(p.get("alert_route") or ob.alert_route.replace("{project}", r.project)),
            "first_server": dict(first) if first else None}
    cost = 0.0
    if first:
        fl = first.get("flavor") or (v.services[first["service"]].flavor if first.get("service") in v.services else None)
        price = on_demand(v.prices, str(fl)) if fl else None
        cost = None if price is None else price * HOURS_PER_MONTH
        plan["first_server"] = {"service": first.get("service"), "flavor": fl}
    detail = {"quota": list(quota), "budget": budget}

    def out(verdict: Verdict, rule: str, **more: Any) -> Decision:
        return Decision(r.id, r.kind, r.project, verdict, rule, cost, detail | more, plan)

    if not re.fullmatch(ob.name_pattern, r.project):
        return out("refuse", "invalid-request", error=f"project name {r.project!r} does not match {ob.name_pattern}")
    if r.project in v.quotas:
        return out("refuse", "invalid-request", error=f"project {r.project} exists already")
    qi = policy.quota_increase
    for name, val, lim in zip(("instances", "cores", "ram_mb"), quota, (qi.max_instances, qi.max_cores,
                                                                       qi.max_ram_mb), strict=True):
        if val > lim:
            return out("refuse", f"hard-limit:quota_{name}", value=val, limit=lim)
    if budget > ob.max_auto_budget_per_month:
        return out("approval", "auto-limit:budget", value=budget, limit=ob.max_auto_budget_per_month)
    if quota[0] > ob.instances or quota[1] > ob.cores or quota[2] > ob.ram_mb:
        return out("approval", "auto-limit:onboarding_quota", value=list(quota),
                   limit=[ob.instances, ob.cores, ob.ram_mb])
    if first and cost is None:
        return out("approval", "cost-unknown", why="the first server's flavor has no price")
    return out("approve", "within-policy")


def _offboard(r: Request, policy: Policy, v: View) -> Decision:
    if r.project not in v.quotas:
        return Decision(r.id, r.kind, r.project, "refuse", "invalid-request", None,
                        {"error": f"project {r.project!r} does not exist"})
    servers = [s for s in v.servers if s.project == r.project]
    saved = -v.rate_per_project.get(r.project, 0.0) * HOURS_PER_MONTH
    detail = {"servers": len(servers)}
    if not policy.offboard_auto:
        return Decision(r.id, r.kind, r.project, "approval", "offboard-needs-approval", saved, detail)
    return Decision(r.id, r.kind, r.project, "approve", "within-policy", saved, detail)
