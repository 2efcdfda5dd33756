"""Stage 4: severity prediction P0–P4 for one group, with the reasons.

From what the adapter shows, in this order:

* the alerts' own severities: critical → P2, warning → P3, info → P4;
* user impact (the SLO burn): the error ratio of the user-facing services at or above the group's services —
  at least ``P0ErrorRatio`` is a total failure (P0), at least ``P1ErrorRatio`` a major degradation (P1);
* breadth: a group spanning half the services or more is one level more severe (not past P2);
* duration: a group firing for three ``P1Delay`` periods unmitigated is one level more severe (not past P2);

  (breadth and duration alone never make a P1: a major degradation shows in what users get, or is declared;)
* declared incidents covering the group's components: their severity, when more severe.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import IncidentInfo
from engines.alerting.config import PRIORITIES, SmartAlertingConfig
from engines.alerting.correlate import Group
from engines.alerting.topology import Topology
from engines.ops.types import Classification

BASE = {"critical": "P2", "warning": "P3", "info": "P4"}


def _up(p: str, floor: str = "P0") -> str:
    return PRIORITIES[max(PRIORITIES.index(p) - 1, PRIORITIES.index(floor))]


def _worse(a: str, b: str) -> str:
    return a if PRIORITIES.index(a) <= PRIORITIES.index(b) else b


def user_error_ratio(group: Group, topo: Topology, errors: Mapping[str, float]) -> tuple[float, str]:
    """Highest error ratio among user-facing services at or above the group's services (and the group's own)."""
    edge = topo.edge()
    seen: set[str] = set()
    for s in group.services:
        seen |= {s} | set(topo.above(s))
    cands = [s for s in seen if s in edge] or sorted(seen)
    best = max(cands, key=lambda s: errors.get(s, 0.0), default="")
    v = errors.get(best, 0.0) if best else 0.0
    return (v if v == v else 0.0), best  # NaN reads as no errors seen


def predict(group: Group, topo: Topology, errors: Mapping[str, float], incidents: Mapping[str, IncidentInfo],
            cfg: SmartAlertingConfig, now: float) -> Classification:
    firing = group.firing() or list(group.members.values())
    top = max(firing, key=lambda t: t.rank)
    p = BASE.get(top.severity, "P4")
    reasons = [f"{len(firing)} alert(s), worst {top.severity} ({top.name}) → {p}"]
    confidence = 0.6
    ratio, where = user_error_ratio(group, topo, errors)
    if ratio >= cfg.P0ErrorRatio:
        p, confidence = "P0", 0.9
        reasons.append(f"user-facing {where} failing {ratio:.1%} of requests ≥ {cfg.P0ErrorRatio:.0%}: total failure")
    elif ratio >= cfg.P1ErrorRatio:
        p, confidence = _worse("P1", p), 0.8
        reasons.append(f"user-facing {where} failing {ratio:.1%} ≥ {cfg.P1ErrorRatio:.0%}: major degradation")
    if topo.size() and len(group.services) / topo.size() >= 0.5 and PRIORITIES.index(p) > 2:
        p = _up(p, "P2")
        reasons.append(f"breadth: {len(group.services)} of {topo.size()} services")
    if group.firing() and now - group.first_start >= 3 * cfg.P1Delay and PRIORITIES.index(p) > 2:
        p = _up(p, "P2")
        reasons.append(f"unmitigated for {now - group.first_start:.0f} s")
    comps = set(group.components())
    declared = [i for i in incidents.values() if comps & set(i.components) and i.severity in PRIORITIES]
    for i in declared:
        if PRIORITIES.index(i.severity) < PRIORITIES.index(p):
            p, confidence = i.severity, max(confidence, i.confidence)
            reasons.append(f"incident {i.id} declared {i.severity}")
    return Classification(p, round(confidence, 3), tuple(reasons))  # type: ignore[arg-type]
