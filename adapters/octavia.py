"""Load-balancer member weights through Octavia (openstacksdk's ``load_balancer`` proxy).

Used by the live adapter's ``SetLBWeights`` when the cloud's catalog has a ``load-balancer`` service and the
service names its pool (``lb_pool`` in the live config).  Pool members are matched to servers by address
(any of the server's fixed or floating addresses).  The protocol's weights are floats (0 drains, 1.0 is full
weight); Octavia's are integers 0..256: ``round(w * lb_weight_scale)``, at least 1 for a non-zero weight.
Without Octavia the adapter writes the ``zeroops_lb_weight`` metadata only (docs/adapter-mapping.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters.base import Conflict, NotFound
from adapters.retry import classify

#: the catalog's service type of Octavia
SERVICE_TYPE = "load-balancer"
MAX_WEIGHT = 256


def available(conn: Any) -> bool:
    """True when the catalog of ``conn`` (an openstacksdk Connection) lists a load-balancer endpoint."""
    try:
        return bool(conn.has_service(SERVICE_TYPE))
    except Exception:  # no catalog access: treat as absent (the fallback is safe)
        return False


def octavia_weight(weight: float, scale: int) -> int:
    """Protocol weight -> Octavia member weight: 0 stays 0 (drained), anything else 1..256."""
    if weight <= 0:
        return 0
    return max(1, min(MAX_WEIGHT, round(weight * scale)))


def server_addresses(server: Any) -> set[str]:
    """Every address Nova lists for a server (``addresses``: network -> [{addr: ...}]), plus access IPs."""
    out = {str(a["addr"]) for net in (getattr(server, "addresses", None) or {}).values() for a in net if a.get("addr")}
    for attr in ("access_ipv4", "access_ipv6"):
        if getattr(server, attr, None):
            out.add(str(getattr(server, attr)))
    return out


def set_weights(lb: Any, pool_ref: str, weights: Mapping[str, int], addresses: Mapping[str, Iterable[str]]) -> list[str]:
    """Set the weight of each server's pool member; return one line per member changed or already right.

    ``lb`` is ``conn.load_balancer``; ``weights`` server id -> Octavia weight; ``addresses`` server id -> its
    addresses.  Every server must have a member in the pool (else :class:`Conflict`, nothing changed); an
    unknown pool is :class:`NotFound`.
    """
    try:
        pool = lb.find_pool(pool_ref, ignore_missing=False)
    except Exception as e:
        err = classify(e)
        if not isinstance(err, NotFound):
            raise err from e
        pools = sorted(str(p.name or p.id) for p in lb.pools())
        raise NotFound(f"Octavia pool {pool_ref!r} not found (services[].lb_pool); pools: {pools}") from None
    by_address = {str(m.address): m for m in lb.members(pool)}
    chosen: dict[str, Any] = {}
    missing = []
    for sid in weights:
        member = next((by_address[a] for a in sorted(addresses.get(sid, ())) if a in by_address), None)
        if member is None:
            missing.append(sid)
        else:
            chosen[sid] = member
    if missing:
        raise Conflict(f"server(s) {missing} have no member in Octavia pool {pool.name or pool.id} (matched by "
                       f"address; members: {sorted(by_address)})")
    lines = []
    for sid, member in chosen.items():
        w = weights[sid]
        if member.weight == w:
            lines.append(f"member {member.address} ({sid[:8]}) weight {w} already")
            continue
        lb.update_member(member, pool, weight=w)
        lines.append(f"member {member.address} ({sid[:8]}) weight {member.weight} -> {w}")
    return lines
