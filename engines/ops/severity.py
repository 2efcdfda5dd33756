"""Severity P0–P4 of an incident, in one call, from what the observation shows now.

API (the ops center calls it when it declares an incident and on every update)::

    clf = ImpactSeverity()                       # or ImpactSeverity(SeverityConfig(...))
    c = clf.classify(now, obs, anomalies, candidates, automation_active,
                     remediation_failed=False)   # -> Classification(severity, confidence, reasons)

The inputs, all read from the :class:`Observation` at ``now`` (never a world's truth):

* **User impact** — the share of *user-facing* requests failing now: over the edge services (those no other
  service depends on, or ``settings["tier"] == 0``), ``max(error_ratio, 1 − served_rate / request_rate)``
  weighted by request rate.  Expressed as the **error-budget burn rate** against each service's SLO
  (``settings["slo"]``, an availability such as 0.999; default ``SeverityConfig.slo`` = 99.9 %): burn 1
  spends the budget exactly over the SLO period.
* **Blast radius** — the share of all services affected: those named by the anomalies and candidates
  (servers, hosts and zones map to the services on them) and every service calling them, transitively;
  the zones and regions involved.
* **Projection** — a disk predicted to fill within ``projection_horizon_s`` (a trend anomaly's ``eta_s``)
  counts as the failures it will cause: its server's share of its service, for the edge traffic that reaches
  that service (a full disk fails the requests its server takes).
* **Tier** — an affected service with ``settings["tier"] == 0`` (declared critical) makes it at least P2.
* **Automation** — ``remediation_failed`` makes it at least P1; ``automation_active`` is reported, and lowers
  P2/P3 by one level only when ``SeverityConfig.automation_lowers`` is set (off by default: severity
  measures impact; whether to page is the alerting pipeline's decision).

Rules, first that holds (P0–P1 follow the system's escalation rules):

======  ==========================================================================================
P0      burn ≥ ``burn_p0`` (25 % of user requests failing at 99.9 %), total failure (an edge service
        failing ≥ ``total_failure`` of its requests or with no server answering), every server of a
        stateful service down (its data unavailable), or an outage spanning ≥ 2 regions
P1      burn ≥ ``burn_p1`` (5 %), a failed remediation, or spend over ``cost_spike_per_hour`` ($10,000/h)
P2      burn ≥ ``burn_p2`` (1 %), blast radius ≥ ``blast_p2`` (half the services), or a tier-0 service hit
P3      burn ≥ ``burn_p3`` (0.1 %), or a user-visible symptom (errors, latency, lost requests) on an
        affected service
P4      otherwise
======  ==========================================================================================

Confidence is high for the rule-based levels and falls as the burn rate nears a boundary between levels,
or when there is no traffic to measure user impact on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.base import IncidentSeverity, Observation, ServiceState
from engines.ops.types import Anomaly, Candidate, Classification

LEVELS: tuple[IncidentSeverity, ...] = ("P0", "P1", "P2", "P3", "P4")
SYMPTOMS = ("error_ratio", "latency_p95_ms", "served_share", "dep_error_ratio", "dep_latency_ms")


@dataclass(frozen=True)
class SeverityConfig:
    """Thresholds (burn rates are multiples of the error budget's sustainable rate)."""

    slo: float = 0.999
    burn_p0: float = 250.0
    burn_p1: float = 50.0
    burn_p2: float = 10.0
    burn_p3: float = 1.0
    blast_p2: float = 0.5
    total_failure: float = 0.9
    cost_spike_per_hour: float = 10_000.0
    automation_lowers: bool = False
    projection_horizon_s: float = 1800.0

    def __post_init__(self) -> None:
        if not 0.0 < self.slo < 1.0:
            raise ValueError(f"SeverityConfig.slo must be an availability in (0, 1), e.g. 0.999; got {self.slo}")
        if not self.burn_p0 >= self.burn_p1 >= self.burn_p2 >= self.burn_p3 > 0:
            raise ValueError("SeverityConfig burn thresholds must satisfy burn_p0 >= burn_p1 >= burn_p2 >= burn_p3 > 0")


class ImpactSeverity:
    """A :class:`engines.ops.types.SeverityClassifier`: stateless, one call, deterministic."""

    def __init__(self, config: SeverityConfig | None = None) -> None:
        self.cfg = config or SeverityConfig()

    def classify(self, now: float, obs: Observation, anomalies: Sequence[Anomaly], candidates: Sequence[Candidate],
                 automation_active: bool, *, remediation_failed: bool = False) -> Classification:
        cfg = self.cfg
        services = obs.services
        callers: dict[str, set[str]] = defaultdict(set)
        for s in services.values():
            for d in s.dependencies:
                callers[d].add(s.name)
        edge = [n for n, s in services.items() if not callers.get(n) or _tier(s) == 0]
        hit, zones = self._affected(obs, anomalies, candidates)
        blast_set = _with_callers(hit, callers)
        blast = len(blast_set) / len(services) if services else 0.0
        burn, share, per = self._user_impact(obs, edge, services)

        reasons: list[str] = []
        rules: list[tuple[int, str, float]] = []  # (level index, reason, confidence)
        if share is None:
            reasons.append("no user-facing traffic to measure impact on")
        else:
            reasons.append(f"user impact: {share:.2%} of user-facing requests failing, error-budget burn "
                           f"{burn:.1f}x (SLO {cfg.slo:.3%} unless set per service)")
        for name, frac in per.items():
            if frac >= cfg.total_failure:
                rules.append((0, f"total failure: edge service {name} fails {frac:.0%} of its requests", 0.9))
        for name in sorted(set(edge) & blast_set):
            st = services[name]
            if st.active == 0 and (st.failed > 0 or st.min_servers > 0):
                rules.append((0, f"total failure: edge service {name} has no server answering", 0.85))
        for name in sorted(hit):
            st = services.get(name)
            if st is not None and st.stateful and st.active == 0 and st.failed > 0:
                rules.append((0, f"every server of stateful service {name} is down: its data is unavailable", 0.8))
        regions = {r for _, r in zones}
        if len(regions) >= 2:
            rules.append((0, f"outage spans {len(regions)} regions: {', '.join(sorted(regions))}", 0.85))
        if remediation_failed:
            rules.append((1, "remediation failed", 0.9))
        rate = obs.spend.rate_per_hour
        if rate > cfg.cost_spike_per_hour:
            rules.append((1, f"cost spike: spending {rate:,.0f}/h (> {cfg.cost_spike_per_hour:,.0f}/h)", 0.9))
        if blast >= cfg.blast_p2:
            rules.append((2, f"blast radius {blast:.0%} of services ({len(blast_set)} of {len(services)})", 0.75))
        crit = sorted(n for n in hit if n in services and _tier(services[n]) == 0)
        if crit:
            rules.append((2, f"tier-0 service affected: {', '.join(crit)}", 0.7))
        if zones:
            reasons.append(f"zones involved: {', '.join(sorted(z for z, _ in zones))}")

        level, conf = self._by_burn(burn)
        proj = self._projected(obs, anomalies, services, callers, edge)
        if proj is not None:
            pshare, why = proj
            plevel, _ = self._by_burn(pshare / (1.0 - cfg.slo))
            if plevel < level:
                level, conf = plevel, 0.6
                reasons.append(f"projected: {why}, ~{pshare:.1%} of user requests would fail")
        symptom = any(a.metric.removesuffix("_trend") in SYMPTOMS or a.metric.startswith("server_")
                      for a in anomalies)
        if level == 4 and symptom:
            level, conf = 3, 0.6
            reasons.append("user-visible symptoms (errors, latency or lost servers) on affected services")
        for lv, why, c in rules:
            if lv < level:
                level, conf = lv, c
            if lv <= level:
                reasons.append(why)
        if automation_active:
            reasons.append("automation is already remediating")
            if cfg.automation_lowers and level in (2, 3):
                level += 1
                reasons.append(f"lowered to {LEVELS[level]} while automation works")
        if share is None and not rules:
            conf = min(conf, 0.5)
        return Classification(LEVELS[level], round(conf, 3), tuple(reasons))

    # ---------------------------------------------------------------- parts
    def _by_burn(self, burn: float) -> tuple[int, float]:
        """The level the burn rate alone gives, and a confidence that falls near a boundary."""
        cfg = self.cfg
        bounds = (cfg.burn_p0, cfg.burn_p1, cfg.burn_p2, cfg.burn_p3)
        level = next((i for i, b in enumerate(bounds) if burn >= b * (1.0 - 1e-9)), 4)  # 5 % / 0.1 % is 49.999…
        near = min(abs(math.log(max(burn, 1e-6) / b)) for b in bounds)  # distance to the nearest boundary
        return level, 0.55 + 0.4 * min(1.0, near / math.log(3.0))

    def _projected(self, obs: Observation, anomalies: Sequence[Anomaly], services: Mapping[str, ServiceState],
                   callers: Mapping[str, set[str]], edge: Sequence[str]) -> tuple[float, str] | None:
        """The worst user impact a disk predicted to fill within ``projection_horizon_s`` would cause: a full
        disk fails the requests its server takes (1 / active servers of its service), seen by the edge
        services that reach that service."""
        cfg = self.cfg
        req = obs.latest("request_rate")
        total = sum(r for n in edge if math.isfinite(r := req.get(n, math.nan)) and r > 0)
        if total <= 0:
            return None
        worst: tuple[float, str] | None = None
        for a in anomalies:
            if a.eta_s is None or a.eta_s > cfg.projection_horizon_s or "disk" not in a.metric:
                continue
            name = a.component if a.component in services else a.labels.get("service", "")
            st = services.get(name)
            if st is None or st.active <= 0:
                continue
            reach = _with_callers({name}, callers)
            users = sum(r for n in edge if n in reach and math.isfinite(r := req.get(n, math.nan)) and r > 0)
            share = users / total / st.active
            if worst is None or share > worst[0]:
                worst = (share, f"a disk of {name} fills in ~{a.eta_s:.0f}s (1 of its {st.active} servers)")
        return worst

    def _user_impact(self, obs: Observation, edge: Sequence[str], services: Mapping[str, ServiceState]
                     ) -> tuple[float, float | None, dict[str, float]]:
        """(burn rate, failing share, failing share per edge service) over the user-facing services."""
        req, served, err = obs.latest("request_rate"), obs.latest("served_rate"), obs.latest("error_ratio")
        total = failed = burn_w = 0.0
        per: dict[str, float] = {}
        for name in edge:
            r = req.get(name, math.nan)
            if not (math.isfinite(r) and r > 0):
                continue
            f = err.get(name, 0.0)
            f = f if math.isfinite(f) else 0.0
            sv = served.get(name, math.nan)
            if math.isfinite(sv):
                f = max(f, 1.0 - sv / r)
            f = min(1.0, max(0.0, f))
            per[name] = f
            slo = services[name].settings.get("slo", self.cfg.slo)
            slo = slo if 0.0 < slo < 1.0 else self.cfg.slo
            total += r
            failed += r * f
            burn_w += r * f / (1.0 - slo)
        if total <= 0:
            return 0.0, None, per
        return burn_w / total, failed / total, per

    def _affected(self, obs: Observation, anomalies: Sequence[Anomaly], candidates: Sequence[Candidate]
                  ) -> tuple[set[str], set[tuple[str, str]]]:
        """Services named (directly or through their servers, hosts or zones), and (zone, region) pairs hit."""
        services = obs.services
        hyps = {h.id: h for h in obs.hypervisors} | {h.name: h for h in obs.hypervisors}
        region_of = {h.zone: h.region for h in obs.hypervisors}
        servers = obs.servers()
        hit: set[str] = set()
        zones: set[tuple[str, str]] = set()
        names = [(a.component, a.labels) for a in anomalies] + [(c.component, {}) for c in candidates]
        for comp, labels in names:
            for part in comp.split("->"):
                if part in services:
                    hit.add(part)
            if labels.get("service") in services:
                hit.add(labels["service"])
            if comp in hyps:
                h = hyps[comp]
                zones.add((h.zone, h.region))
                hit |= {s.service for s in servers if s.hypervisor in (h.id, h.name) and s.service}
            elif comp in region_of:
                zones.add((comp, region_of[comp]))
                hit |= {s.service for s in servers if s.zone == comp and s.service}
            else:
                srv = next((s for s in servers if s.id == comp), None) if comp.startswith("srv") else None
                if srv is not None and srv.service:
                    hit.add(srv.service)
        # a zone with most of its hosts down is hit even if nobody named it
        by_zone: dict[str, list[bool]] = defaultdict(list)
        for h in obs.hypervisors:
            by_zone[h.zone].append(h.state == "down")
        for z, downs in by_zone.items():
            if downs and sum(downs) * 2 >= len(downs) and sum(downs) >= 1:
                zones.add((z, region_of[z]))
        return hit & set(services), zones


def _tier(s: ServiceState) -> float | None:
    t = s.settings.get("tier")
    return None if t is None else float(t)


def _with_callers(hit: set[str], callers: Mapping[str, set[str]]) -> set[str]:
    out, todo = set(hit), list(hit)
    while todo:
        for c in callers.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out
