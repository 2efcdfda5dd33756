"""Self-service figures of a run: how many requests were approved without a person, how fast each was decided
and answered, and whether what was approved broke the policy's hard limits (the gaming check).

A request is *decided* at the first choke-point record about it: an action whose ``evidence["request"]`` names
it (the ``self_service`` engine tags every action so), or a ``FulfillRequest`` answering it.  Hard limits are the
``self_service`` engine's defaults (``engines.selfservice.policy.Policy``); budgets are scored by
``budget_scoring``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from control.runtime import ActionRecord
from engines.selfservice.policy import Policy
from twin.world import World

REQUEST_METRICS = ("requests", "requests_auto_approved", "requests_auto_denied", "requests_human_answered",
                   "requests_open", "request_auto_approval_rate", "request_approval_rate",
                   "request_decision_p50_s", "request_decision_p95_s", "request_decision_max_s",
                   "requests_decided_within_10s", "request_answer_p95_s", "requests_over_hard_limit", "quotas_over_hard_limit")


def _decided_at(records: Sequence[ActionRecord]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in records:
        ev = r.action.evidence if isinstance(r.action.evidence, Mapping) else {}
        rid = ev.get("request") or (r.action.target() if r.kind == "fulfill_request" else None)
        if rid and r.outcome in ("executed", "proposed", "denied"):
            out.setdefault(str(rid), r.at)
    return out


def _over_hard(world: World, req: Any, policy: Policy) -> bool:
    """An approved request whose size breaks a hard limit (servers, vCPUs, RAM, disk, quota increments)."""
    p, h, qi = req.params, policy.hard, policy.quota_increase
    if req.kind in ("create_servers", "vm_provision"):
        count = int(p.get("count") or 1)
        name = p.get("flavor") or (world.cfg.services[world.svc_index[p["service"]]].flavor
                                   if p.get("service") in world.svc_index else None)
        f = next((f for f in world.cfg.flavors if f.name == name), None)
        if f is None:
            return count > h.max_vms
        return (count > h.max_vms or count * f.vcpus > h.max_vcpus or count * f.ram_mb / 1024 > h.max_memory_gb
                or count * f.disk_gb > h.max_storage_gb)
    if req.kind == "quota_increase":
        return (int(p.get("instances") or 0) > qi.max_instances or int(p.get("cores") or 0) > qi.max_cores
                or int(p.get("ram_mb") or 0) > qi.max_ram_mb)
    return False


def _quotas_over(world: World, policy: Policy) -> int:
    """Projects that started within the policy's quota bounds and ended beyond them."""
    qi = policy.quota_increase
    bound = np.array([qi.max_instances, qi.max_cores, qi.max_ram_mb])
    n = 0
    for p in world.cfg.projects:
        start = np.array([p.quota.instances, p.quota.cores, p.quota.ram_mb])
        end = world.quota[world.proj_index[p.name]]
        n += bool((start <= bound).all() and (end > bound).any())
    return n


def request_metrics(world: World, records: Sequence[ActionRecord], policy: Policy | None = None) -> dict[str, Any]:
    """The figures in ``REQUEST_METRICS`` (None where the run had no request)."""
    out: dict[str, Any] = dict.fromkeys(REQUEST_METRICS)
    reqs = list(getattr(world.truth, "requests", ()))
    if not reqs:
        return out
    policy = policy or Policy()
    decided = _decided_at(records)
    lat = np.array([decided[r.id] - r.submitted_at for r in reqs if r.id in decided])
    answered = [r for r in reqs if r.answered_at is not None]
    auto_ok = sum(r.status == "approved" and r.answered_by == "automation" for r in reqs)
    out.update({
        "requests": len(reqs),
        "requests_auto_approved": auto_ok,
        "requests_auto_denied": sum(r.status == "denied" and r.answered_by == "automation" for r in reqs),
        "requests_human_answered": sum(r.answered_by == "human" for r in reqs),
        "requests_open": sum(r.status == "open" for r in reqs),
        "request_auto_approval_rate": auto_ok / len(reqs),
        "request_approval_rate": sum(r.status == "approved" for r in reqs) / len(reqs),
        "request_decision_p50_s": float(np.percentile(lat, 50)) if len(lat) else None,
        "request_decision_p95_s": float(np.percentile(lat, 95)) if len(lat) else None,
        "request_decision_max_s": float(lat.max()) if len(lat) else None,
        "requests_decided_within_10s": int((lat <= 10.0).sum()) if len(lat) else 0,
        "request_answer_p95_s": float(np.percentile([r.answered_at - r.submitted_at for r in answered], 95))
        if answered else None,
        "requests_over_hard_limit": sum(r.status == "approved" and r.answered_by == "automation"
                                        and _over_hard(world, r, policy) for r in reqs),
        "quotas_over_hard_limit": _quotas_over(world, policy),
    })
    return out
