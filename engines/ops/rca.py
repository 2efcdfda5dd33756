"""Root-cause analysis over the dependency graph, the per-edge metrics, deploys, inventory and onset order.

API (the ops center calls it every tick an incident is open)::

    rca = GraphRCA()                       # or GraphRCA(RCAConfig(...))
    candidates = rca.rank(now, obs, anomalies)   # list[Candidate], best first, at most ``max_candidates``

A candidate is a service name, a server id, a hypervisor *name* or a zone, with a score in 0..1, a
``fault_class`` from :data:`engines.ops.types.FAULT_CLASSES` when the evidence suggests one, and
human-readable ``evidence``.  Everything is read from the :class:`Observation` at ``now`` and the anomalies
(``engines/ops/anomalies.py`` makes them; any :class:`Anomaly` list works); nothing of a world's truth.

The reasoning, in general terms (no fault's numbers):

* **Services** (the RED/USE view): a service's *own* evidence is its anomalies plus what it shows now —
  a utilisation at saturation (``pool_util``, ``cpu_util``, ``memory_util``, ``disk_util`` ≥ ``saturation``),
  an error ratio or p95 latency that left its pre-onset level.  An *edge* ``caller -> callee`` whose
  ``dep_error_ratio`` / ``dep_latency_ms`` left its pre-onset level says the caller's trouble comes from the
  callee.  A service's support is the most of its own evidence and of its callers' edges into it; the part
  of it explained by an anomalous edge out of it is passed downstream.  The root is the downstream-most
  service whose anomaly is not explained by a dependency, weighted by how many anomalous services it
  explains (its coverage).  So a db whose pool saturated outranks the api that showed the errors first.
* **Deploys**: a release of a service shortly before its onset (``deploy_window_s``) raises its score (less
  when its anomaly is explained downstream) and suggests ``bad_deploy``.
* **Hardware** (the placement tree server → hypervisor → zone): servers that are down (``server_up`` 0, ERROR
  or SHUTOFF) or saturated are grouped by host and zone; the most specific common cause that covers most of
  what lies under it wins (one server: the server; most servers of one host: the host; most hosts of a
  zone: the zone).  A host or zone the inventory shows down is strong evidence by itself.  Parents discount
  the children they explain, and a service whose trouble its own broken servers explain is discounted too.
  A server that fails far more of what it serves (``server_error_ratio``) than the healthiest quarter of its
  service's servers counts as broken too (unless its service just deployed: a canary differs by version,
  not by place); such servers on one host, or on the hosts of one zone only, name that host or zone: servers
  that fail while their peers elsewhere are fine are cut off (``network_partition``).
* **Onset order** breaks ties (earlier first, then the name): ranks are deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from adapters.base import SERVER_METRICS, Hypervisor, Observation, Server
from common.nanstats import nan_lower_quartile
from engines.ops.types import Anomaly, Candidate

UTILISATION = ("pool_util", "cpu_util", "memory_util", "disk_util")
UTIL_CLASS = {"pool_util": "db_pool_exhaustion", "memory_util": "memory_leak", "disk_util": "disk_pressure",
              "cpu_util": "overload"}
DOWN_METRICS = frozenset({"server_up", "server_status"})


@dataclass(frozen=True)
class RCAConfig:
    """Tunables (general defaults, not any fault's numbers).

    saturation: a utilisation at or above this is saturated.
    baseline_s: how far before the onset the pre-onset level of a series is read.
    recent_s: the span read as "now" (the latest samples).
    deploy_window_s: a deploy this long before a service's onset makes it a suspect.
    shift_z: robust z (vs the pre-onset median/MAD) at which a series counts as shifted; score 1 at 3x.
    max_candidates: at most this many candidates are returned.
    max_server_reads: at most this many ``server_up`` / ``server_disk_util`` reads per call (cost bound).
    error_margin: a server whose error ratio exceeds its service's healthiest quarter by this much is broken.
    error_lookback_s: per-server error ratios are read as their worst over at least this long (a drained server
        serves nothing and shows 0; later symptoms, e.g. its peers' extra load, move the onset on).
    """

    saturation: float = 0.9
    baseline_s: float = 600.0
    recent_s: float = 30.0
    deploy_window_s: float = 900.0
    shift_z: float = 4.0
    max_candidates: int = 5
    max_server_reads: int = 64
    error_margin: float = 0.2
    error_lookback_s: float = 900.0


@dataclass
class _Node:
    """What one component has going for it as a root cause."""

    kind: str  # service, server, hypervisor, zone, other
    score: float = 0.0
    onset: float = math.inf
    evidence: list[str] = field(default_factory=list)
    classes: dict[str, float] = field(default_factory=dict)

    def add(self, score: float, text: str, cls: str | None = None, onset: float | None = None) -> None:
        self.score = max(self.score, score)
        if text and text not in self.evidence:
            self.evidence.append(text)
        if cls is not None:
            self.classes[cls] = max(self.classes.get(cls, 0.0), score)
        if onset is not None:
            self.onset = min(self.onset, onset)

    def fault_class(self) -> str | None:
        if not self.classes:
            return None
        return sorted(self.classes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


class GraphRCA:
    """A :class:`engines.ops.types.RootCauseAnalyzer`; stateless between calls (deterministic for one input)."""

    def __init__(self, config: RCAConfig | None = None) -> None:
        self.cfg = config or RCAConfig()

    # ------------------------------------------------------------------ entry
    def rank(self, now: float, obs: Observation, anomalies: Sequence[Anomaly]) -> list[Candidate]:
        """Candidates best first (empty when nothing stands out)."""
        services = obs.services
        servers = {s.id: s for s in obs.servers() if s.status != "DELETED"}
        hyps = list(obs.hypervisors)
        hv_by = {h.id: h for h in hyps} | {h.name: h for h in hyps}
        zones = {h.zone for h in hyps} | {s.zone for s in servers.values() if s.zone}
        t0 = min((a.onset for a in anomalies), default=now)

        svc_anoms: dict[str, list[Anomaly]] = defaultdict(list)
        edge_anoms: dict[tuple[str, str], list[Anomaly]] = defaultdict(list)
        srv_anoms: dict[str, list[Anomaly]] = defaultdict(list)
        nodes: dict[str, _Node] = {}
        hv_down: dict[str, float] = {}
        for a in anomalies:
            edge = _edge_of(a, services)
            if edge is not None:
                edge_anoms[edge].append(a)
            elif a.component in services:
                svc_anoms[a.component].append(a)
            elif a.component in servers or a.labels.get("server") in servers:
                srv_anoms[a.component if a.component in servers else a.labels["server"]].append(a)
            elif a.component in hv_by:
                h = hv_by[a.component]
                hv_down[h.name] = min(hv_down.get(h.name, math.inf), a.onset)
            elif a.component in zones:
                _node(nodes, a.component, "zone").add(0.5 * a.score, f"{a.metric} anomalous ({a.value:g})",
                                                       onset=a.onset)
            elif a.labels.get("service") in services:
                svc_anoms[a.labels["service"]].append(a)
        for h in hyps:
            if h.state == "down":
                hv_down.setdefault(h.name, t0)

        anomalous = set(svc_anoms) | {c for c, _ in edge_anoms} | {d for _, d in edge_anoms}
        anomalous |= {servers[s].service for s in srv_anoms if servers[s].service in services}  # type: ignore[misc]
        svc = self._services(now, obs, services, anomalous, svc_anoms, edge_anoms, t0, nodes)
        seen = {n: {a.metric for a in items} for n, items in svc_anoms.items()}
        self._hardware(now, obs, services, servers, hyps, hv_down, srv_anoms, svc, anomalous, seen, t0, nodes)

        out = [Candidate(c, round(min(1.0, n.score), 4), n.fault_class(), tuple(n.evidence))
               for c, n in nodes.items() if n.score > 0.05]
        out.sort(key=lambda c: (-c.score, nodes[c.component].onset, c.component))
        return out[: self.cfg.max_candidates]

    # --------------------------------------------------------------- services
    def _services(self, now: float, obs: Observation, services: Mapping, anomalous: set[str],
                  svc_anoms: Mapping[str, list[Anomaly]], edge_anoms: Mapping[tuple[str, str], list[Anomaly]],
                  t0: float, nodes: dict[str, _Node]) -> dict[str, float]:
        """Score the services in scope; returns each one's support (how wrong it looks, 0..1).

        Scope: the anomalous services, their direct dependencies, and whatever anomalous edges lead to
        (transitively) — so the cost grows with the trouble, not with the size of the graph.
        """
        cfg = self.cfg
        edge: dict[tuple[str, str], float] = {}  # does the caller's trouble come from the callee?
        scope: set[str] = set()
        todo = sorted(anomalous, reverse=True)
        while todo:
            c = todo.pop()
            if c in scope:
                continue
            scope.add(c)
            for d in services[c].dependencies:
                if d not in services:
                    continue
                sc = max((min(1.0, max(a.score, 0.5)) for a in edge_anoms.get((c, d), ())), default=0.0)
                sc = max(sc, self._shift(obs, now, t0, "dep_error_ratio", service=c, dependency=d),
                         0.8 * self._shift(obs, now, t0, "dep_latency_ms", service=c, dependency=d))
                if sc > 0:
                    edge[(c, d)] = sc
                if d not in scope and (c in anomalous or sc > 0.2):
                    todo.append(d)
        own: dict[str, _Node] = {s: _Node("service") for s in scope}
        for s, items in svc_anoms.items():
            for a in items:
                base = a.metric.removesuffix("_trend")
                cls = UTIL_CLASS.get(base) if base in UTILISATION else None
                if a.metric.endswith("_trend") and base == "memory_util":
                    cls = "memory_leak"
                what = f"{a.metric} anomalous since t={a.onset:.0f} ({a.value:.3g}, score {a.score:.2f})"
                if a.eta_s is not None:
                    what += f", limit in ~{a.eta_s:.0f}s"
                own[s].add(min(1.0, max(a.score, 0.5)), what, cls, a.onset)
        lat = {m: obs.latest(m) for m in UTILISATION}
        for s in sorted(scope):
            for m in UTILISATION:
                u = lat[m].get(s, math.nan)
                if math.isfinite(u) and u >= cfg.saturation:
                    sc = 0.6 + 0.4 * min(1.0, (u - cfg.saturation) / max(1e-9, 1.0 - cfg.saturation))
                    own[s].add(sc, f"{m} {u:.2f} (saturated, >= {cfg.saturation:g})", UTIL_CLASS[m])
            for m, cls in (("error_ratio", None), ("latency_p95_ms", "latency_degradation")):
                z = self._shift(obs, now, t0, m, service=s)
                if z > 0:
                    own[s].add(0.8 * z, f"{m} left its pre-onset level (shift {z:.2f})", cls)
        callers: dict[str, list[str]] = defaultdict(list)
        for c, d in edge:
            callers[d].append(c)
        support = {s: max([own[s].score] + [edge[(c, s)] for c in callers.get(s, ())]) for s in scope}
        explained = {s: max([0.0] + [edge.get((s, d), 0.0) for d in services[s].dependencies]) for s in scope}
        troubled = [s for s in sorted(scope) if support[s] > 0.2]
        deploys = obs.deploys(t0 - cfg.deploy_window_s)
        for s in sorted(scope):
            if support[s] <= 0.05:
                continue
            covered = _upstream_via(s, edge, troubled)
            cov = len(covered) / max(1, len(troubled))
            score = support[s] * (1.0 - explained[s]) * (0.6 + 0.4 * cov)
            n = _node(nodes, s, "service")
            for text in own[s].evidence:
                n.add(0.0, text)
            n.classes.update(own[s].classes)
            n.onset = min(own[s].onset, min((a.onset for a in svc_anoms.get(s, ())), default=math.inf))
            for c in sorted(callers.get(s, ())):
                n.add(0.0, f"edge {c} -> {s}: its errors/latency come from {s} (evidence {edge[(c, s)]:.2f})")
            if explained[s] > 0.2:
                d = max(services[s].dependencies, key=lambda x: (edge.get((s, x), 0.0), x))
                n.add(0.0, f"its own trouble is explained by dependency {d} (edge evidence {explained[s]:.2f})")
            if len(covered) > 1:
                n.add(0.0, f"explains {len(covered)} of {len(troubled)} troubled services: "
                           f"{', '.join(sorted(covered))}")
            onset_s = n.onset if math.isfinite(n.onset) else t0
            for dep in deploys:
                if dep.service == s and dep.at <= onset_s + 5.0 and onset_s - dep.at <= cfg.deploy_window_s:
                    bonus = 0.35 * (1.0 - max(0.0, onset_s - dep.at) / cfg.deploy_window_s)
                    bonus *= 1.0 - 0.7 * explained[s]
                    score += bonus
                    n.add(0.0, f"deploy {dep.previous} -> {dep.version} ({dep.fraction:.0%}, by {dep.actor}) "
                               f"at t={dep.at:.0f}, {max(0.0, onset_s - dep.at):.0f}s before onset",
                          )
                    if "memory_leak" not in n.classes:  # a release right before the onset outranks symptoms
                        n.classes["bad_deploy"] = max(n.classes.get("bad_deploy", 0.0), 1.0 + bonus)
            n.score = max(n.score, min(1.0, score))
            if not n.classes and support[s] > 0.2 and explained[s] < 0.2:
                self._plain_class(obs, s, svc_anoms.get(s, ()), n)
        return support

    def _plain_class(self, obs: Observation, s: str, items: Iterable[Anomaly], n: _Node) -> None:
        """Overload (traffic up) or lost capacity on spot servers, when nothing more specific was seen."""
        metrics = {a.metric for a in items}
        if "request_rate" in metrics:
            n.classes["overload"] = 0.5
        if "active_servers" in metrics and any(x.pricing == "spot" for x in obs.servers(service=s)):
            n.classes["spot_preemption"] = 0.5

    def _shift(self, obs: Observation, now: float, t0: float, metric: str, **labels: str) -> float:
        """How far the recent level of a series left its pre-onset level, 0..1 (0 when not read or unchanged)."""
        cfg = self.cfg
        try:
            w = obs.window(metric, now - t0 + cfg.baseline_s, **labels)
        except (ValueError, KeyError):
            return 0.0
        t, v = w.t, w.v
        ok = np.isfinite(v)
        t, v = t[ok], v[ok]
        if len(v) < 4:
            return 0.0
        base = v[t < t0]
        if len(base) < 3:
            return 0.0
        rec = v[t >= max(t0, now - cfg.recent_s)]
        if not len(rec):
            return 0.0
        med = _median(base)
        mad = 1.4826 * _median(np.abs(base - med))
        floor = 0.1 * abs(med) if metric.endswith("latency_ms") or metric == "latency_p95_ms" else 0.002
        z = (_median(rec) - med) / max(mad, floor, 1e-9)
        return float(min(1.0, max(0.0, (z - cfg.shift_z) / (2.0 * cfg.shift_z))))

    # --------------------------------------------------------------- hardware
    def _hardware(self, now: float, obs: Observation, services: Mapping, servers: Mapping[str, Server],
                  hyps: list[Hypervisor], hv_down: Mapping[str, float], srv_anoms: Mapping[str, list[Anomaly]],
                  support: Mapping[str, float], anomalous: set[str], seen: Mapping[str, set[str]], t0: float,
                  nodes: dict[str, _Node]) -> None:
        cfg = self.cfg
        bad: dict[str, tuple[float, str, str, float]] = {}  # server -> (strength, evidence, class, onset)
        for sid, items in srv_anoms.items():
            for a in items:
                base = a.metric.removesuffix("_trend")
                if a.metric in DOWN_METRICS:
                    ent = (0.9, f"{a.metric}: not answering (since t={a.onset:.0f})", "server_crash", a.onset)
                elif base in ("server_disk_util", "disk_util"):
                    ent = (0.85, f"{a.metric} {a.value:.2f} (disk filling)", "disk_pressure", a.onset)
                elif base in ("server_memory_util", "memory_util"):
                    ent = (0.7, f"{a.metric} {a.value:.2f}", "memory_leak", a.onset)
                else:
                    ent = (0.6 * max(a.score, 0.5), f"{a.metric} anomalous ({a.value:.3g})", "cpu_throttling"
                           if "cpu" in base else "", a.onset)
                if sid not in bad or ent[0] > bad[sid][0]:
                    bad[sid] = ent
        for s in servers.values():
            if s.status in ("ERROR", "SHUTOFF") and s.id not in bad:
                rel = 1.0 if s.service in anomalous else 0.4  # an old wreck unrelated to this trouble
                bad[s.id] = (0.8 * rel, f"inventory shows {s.status}", "server_crash", t0)
        # servers of troubled services, read now (the feed may lag): who is down, who is the outlier that a
        # service's max-aggregated disk figure or a host-confined CPU squeeze comes from
        by_service: dict[str, list[Server]] = defaultdict(list)
        for s in sorted(servers.values(), key=lambda x: x.id):
            if s.service and s.status == "ACTIVE":
                by_service[s.service].append(s)
        answering = obs.latest("active_servers")
        deployed = {d.service for d in obs.deploys(t0 - cfg.deploy_window_s)}
        erroring: set[str] = set()  # servers broken only by their error ratio
        reads = 0
        for name in sorted(anomalous):
            members = by_service.get(name, [])[: max(0, cfg.max_server_reads - reads)]
            sat = _sat(obs, name, cfg)
            metrics = seen.get(name, set())
            # server_up only when fewer servers answer than the inventory shows ACTIVE; per-server CPU and disk
            # only when the service shows latency/CPU or disk trouble (reads cost, and most calls need none)
            up_hint = answering.get(name, math.inf) < services[name].active
            disk_hint = "disk_util" in sat or any("disk" in m for m in metrics)
            cpu_hint = "cpu_util" in sat or any("latency" in m or "cpu" in m for m in metrics)
            # hot survivors of a service that lost servers carry the lost ones' load: no squeeze to find there
            cpu_hint = cpu_hint and not up_hint and not any(s.id in bad for s in by_service.get(name, ()))
            # per-server errors (the worst since the onset, so what our own drain hides still counts) unless a
            # release explains a split by version
            err_hint = name not in deployed
            reads += len(members) * (up_hint + disk_hint + cpu_hint + err_hint)
            cpu: dict[str, float] = {}
            disk: dict[str, float] = {}
            errs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for s in members:
                if s.id in bad:
                    continue
                if up_hint and _last(obs, "server_up", s.id) == 0.0 and now - s.created_at > cfg.recent_s:
                    bad[s.id] = (0.85, "server_up 0 (not answering its scrape)", "server_crash", now)
                    continue
                if cpu_hint:
                    cpu[s.id] = _last(obs, "server_cpu_util", s.id)
                if disk_hint:
                    disk[s.id] = _last(obs, "server_disk_util", s.id)
                if err_hint:  # a recent span: a server drained since serves nothing and shows 0
                    errs[s.id] = _series(obs, "server_error_ratio", s.id, max(cfg.error_lookback_s, now - t0))
            for sid, u, med in _outliers(disk):
                if u >= cfg.saturation or u - med >= 0.2:
                    bad[sid] = (0.85, f"server_disk_util {u:.2f} (its service's disk figure; siblings' median "
                                      f"{med:.2f})", "disk_pressure", now)
            busy = {k: u for k, u in cpu.items() if not u <= 0.01}  # an idle (drained) server is no peer for load
            for sid, u, med in _outliers(busy):
                if sid not in bad and u >= cfg.saturation and u - med >= 0.2:
                    bad[sid] = (0.6, f"server_cpu_util {u:.2f} while its siblings' median is {med:.2f}",
                                "cpu_throttling", now)
            for sid, e, ref in _error_outliers(errs, cfg.error_margin):
                if sid not in bad:
                    bad[sid] = (0.75, f"server_error_ratio {e:.2f} while its service's healthiest servers show "
                                      f"{ref:.2f}", "", now)
                    erroring.add(sid)

        # hot survivors of a service that lost servers carry the lost ones' load: that is no squeeze
        lost = {servers[k].service for k, v in bad.items() if (v[2] == "server_crash" or k in erroring)
                and k in servers}
        for k in [k for k, v in bad.items() if v[2] == "cpu_throttling" and k in servers
                  and servers[k].service in lost]:
            del bad[k]
        on_host: dict[str, list[Server]] = defaultdict(list)
        for s in servers.values():
            if s.hypervisor and s.status != "SHELVED_OFFLOADED":
                h = s.hypervisor
                on_host[h].append(s)
        # a squeezed server's neighbours on its host: squeezed too? (then the host is the common cause)
        squeezed_hosts = sorted({servers[k].hypervisor for k, v in bad.items()
                                 if v[2] == "cpu_throttling" and k in servers and servers[k].hypervisor})
        for h in squeezed_hosts:
            for s in sorted(on_host.get(h or "", ()), key=lambda x: x.id):
                if s.id in bad or s.status != "ACTIVE" or reads >= 2 * cfg.max_server_reads:
                    continue
                if any(x.id in bad for x in by_service.get(s.service or "", ())):
                    continue  # its service lost servers: a hot survivor proves nothing about the host
                sibs = [x.id for x in by_service.get(s.service or "", ()) if x.id != s.id][:8]
                reads += 1 + len(sibs)
                u = _last(obs, "server_cpu_util", s.id)
                others = np.array([_last(obs, "server_cpu_util", x) for x in sibs])
                others = others[np.isfinite(others)]
                med = _median(others) if len(others) else math.nan
                if math.isfinite(u) and (u >= cfg.saturation or (math.isfinite(med) and u - med >= 0.2)):
                    bad[s.id] = (0.6, f"server_cpu_util {u:.2f} (its siblings' median {med:.2f}), on the same host "
                                      f"as a squeezed server", "cpu_throttling", now)
        hv_name = {h.id: h.name for h in hyps} | {h.name: h.name for h in hyps}
        hosts_in_zone: dict[str, list[Hypervisor]] = defaultdict(list)
        for h in hyps:
            hosts_in_zone[h.zone].append(h)

        # servers
        for sid, (st, text, cls, onset) in bad.items():
            n = _node(nodes, sid, "server")
            s = servers.get(sid)
            n.add(st, f"{sid} ({s.service if s else '?'}): {text}", cls or None, onset)
        # hypervisors: down in the inventory, or most of their servers broken
        hv_score: dict[str, float] = {}
        for hid, members in on_host.items():
            name = hv_name.get(hid, hid)
            hit = [s for s in members if s.id in bad]
            frac = len(hit) / len(members) if members else 0.0
            svcs = {s.service for s in hit}
            sc, texts, cls = 0.0, [], None
            if name in hv_down:
                sc, cls = 0.95, "hypervisor_failure"
                texts.append(f"hypervisor {name} shows down in the inventory")
            hot = all(bad[s.id][2] == "cpu_throttling" for s in hit)  # a CPU squeeze is the host's by nature
            if (len(hit) >= 2 or (hot and hit)) and frac >= 0.75:
                down = sum(1 for s in hit if bad[s.id][2] == "server_crash")
                sc = max(sc, 0.55 + 0.35 * frac + (0.05 if len(svcs) > 1 else 0.0))
                cut_off = all(s.id in erroring for s in hit)  # its servers fail what they serve: unreachable
                cls = cls or ("hypervisor_failure" if down * 2 >= len(hit) else
                              "network_partition" if cut_off else "cpu_throttling")
                texts.append(f"{len(hit)} of its {len(members)} servers broken ({', '.join(sorted(svcs - {None}))})")
            if sc > 0:
                hv_score[name] = sc
                n = _node(nodes, name, "hypervisor")
                for t in texts:
                    n.add(sc, t, cls, min([hv_down.get(name, math.inf)] + [bad[s.id][3] for s in hit]))
                for s in hit:  # the host explains its servers
                    nodes[s.id].score *= 0.6
        for name, at in hv_down.items():
            if name not in hv_score:
                hv_score[name] = 0.95
                _node(nodes, name, "hypervisor").add(0.95, f"hypervisor {name} shows down in the inventory",
                                                     "hypervisor_failure", at)
        # zones: most of their hosts down or broken, or broken servers on several hosts of one zone only
        for z, hs in sorted(hosts_in_zone.items()):
            names = [h.name for h in hs]
            hit_h = [x for x in names if hv_score.get(x, 0.0) >= 0.5]
            frac = len(hit_h) / len(names) if names else 0.0
            if len(hit_h) >= 2 and frac >= 0.5:
                down = sum(1 for x in hit_h if x in hv_down)
                sc = 0.6 + 0.38 * frac
                n = _node(nodes, z, "zone")
                n.add(sc, f"{len(hit_h)} of {len(names)} hypervisors of zone {z} down or broken",
                      "az_outage" if down * 2 >= len(hit_h) else "network_partition",
                      min(nodes[x].onset for x in hit_h))
                for x in hit_h:
                    nodes[x].score *= 0.7
                continue
            in_z = [sid for sid in bad if servers.get(sid) is not None and servers[sid].zone == z]
            elsewhere = [sid for sid in bad if servers.get(sid) is not None and servers[sid].zone != z]
            hosts = {servers[sid].hypervisor for sid in in_z}
            svcs = {servers[sid].service for sid in in_z}
            if len(hosts) >= 2 and len(hosts) * 2 >= len(names) and len(svcs) >= 2 and not elsewhere:
                n = _node(nodes, z, "zone")
                down = sum(1 for sid in in_z if bad[sid][2] == "server_crash")
                n.add(0.7 + 0.2 * min(1.0, len(hosts) / max(1, len(names))),
                      f"{len(in_z)} broken servers on {len(hosts)} hosts of zone {z} only ({', '.join(sorted(svcs))})",
                      "az_outage" if down * 2 >= len(in_z) else "network_partition",
                      min(bad[sid][3] for sid in in_z))
                for sid in in_z:
                    nodes[sid].score *= 0.6
                for x in names:  # the zone explains its hosts
                    if x in hv_score:
                        nodes[x].score *= 0.7
        # a service whose trouble its own broken servers explain is not the root
        for s in services:
            if s not in nodes or nodes[s].kind != "service":
                continue
            members = by_service.get(s, []) + [x for x in servers.values() if x.service == s and x.id in bad
                                               and x.status != "ACTIVE"]
            broken = [x for x in members if x.id in bad]
            if broken and "bad_deploy" not in nodes[s].classes:
                nodes[s].score *= 1.0 - 0.4 * min(1.0, len(broken) / max(1, len(members)) + 0.5)
                nodes[s].add(0.0, f"{len(broken)} of its {len(members)} servers broken: "
                                  f"{', '.join(sorted(x.id for x in broken)[:5])}")


# ------------------------------------------------------------------ helpers
def _node(nodes: dict[str, _Node], comp: str, kind: str) -> _Node:
    n = nodes.get(comp)
    if n is None:
        n = nodes[comp] = _Node(kind)
    return n


def _edge_of(a: Anomaly, services: Mapping) -> tuple[str, str] | None:
    """The (caller, callee) a per-edge anomaly is about, from its labels or a ``caller->callee`` component."""
    c, d = a.labels.get("service"), a.labels.get("dependency")
    if (c is None or d is None) and "->" in a.component:
        c, d = a.component.split("->", 1)
    if c in services and d in services:
        return c, d  # type: ignore[return-value]
    return None


def _median(v: np.ndarray) -> float:
    """np.median without its per-call overhead (the arrays here are short and finite)."""
    s = np.sort(v)
    n = len(s)
    return float(s[(n - 1) // 2] + s[n // 2]) / 2.0


def _upstream_via(s: str, edge: Mapping[tuple[str, str], float], troubled: Sequence[str]) -> set[str]:
    """Troubled services whose trouble reaches ``s`` through anomalous edges (``s`` itself if troubled)."""
    callers: dict[str, list[str]] = defaultdict(list)
    for (c, d), sc in edge.items():
        if sc > 0.2:
            callers[d].append(c)
    seen, todo = {s}, [s]
    while todo:
        for c in callers.get(todo.pop(), ()):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen & set(troubled)


def _last(obs: Observation, metric: str, server: str) -> float:
    if metric not in SERVER_METRICS:
        return math.nan
    try:
        return obs.window(metric, 15.0, server=server).last()
    except (ValueError, KeyError):
        return math.nan


def _series(obs: Observation, metric: str, server: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A server's finite samples ``(t, v)`` over the last ``seconds`` (empty when not read), leaving out the
    scrapes at which it served nothing (``server_network_mbps`` 0: a drained server's ratio says nothing)."""
    try:
        w = obs.window(metric, seconds, server=server)
        traffic = obs.window("server_network_mbps", seconds, server=server)
    except (ValueError, KeyError):
        return np.array([]), np.array([])
    ok = np.isfinite(w.v)
    idle = traffic.t[np.isfinite(traffic.v) & (traffic.v <= 0.0)]
    if len(idle):
        ok &= ~np.isin(w.t, idle)
    return w.t[ok], w.v[ok]


def _outliers(values: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """The highest finite value of a service's servers with the median of the others: [(server, value, median)]."""
    fin = sorted(((v, k) for k, v in values.items() if math.isfinite(v)), reverse=True)
    if len(fin) < 2:
        return []
    top_v, top_k = fin[0]
    rest = np.array([v for v, _ in fin[1:]])
    out = [(top_k, top_v, _median(rest))]
    med_all = _median(np.array([v for v, _ in fin]))
    out += [(k, v, med_all) for v, k in fin[1:] if v - med_all >= 0.2]  # several outliers (one host's servers)
    return out


def _error_outliers(series: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    margin: float) -> list[tuple[str, float, float]]:
    """Servers that, at some scrape, failed at least half of what they served while the healthiest quarter of
    their service's servers at that same scrape did ``margin`` better: [(server, value, reference)], the
    reference being that scrape's lower quartile (so up to 3/4 may be broken; servers new since are peers
    only where they have samples)."""
    keys = sorted(k for k, (t, _) in series.items() if len(t))
    if len(keys) < 2:
        return []
    times = np.unique(np.concatenate([series[k][0] for k in keys]))
    grid = np.full((len(keys), len(times)), np.nan)
    for i, k in enumerate(keys):
        t, v = series[k]
        grid[i, np.searchsorted(times, t)] = v
    enough = np.sum(np.isfinite(grid), axis=0) >= 2
    if not enough.any():
        return []
    grid = grid[:, enough]
    ref = nan_lower_quartile(grid)
    excess = np.where(np.isfinite(grid) & (grid >= 0.5), grid - ref, -np.inf)
    out = []
    for i, k in enumerate(keys):
        j = int(np.argmax(excess[i]))
        if excess[i, j] >= margin:
            out.append((k, float(grid[i, j]), float(ref[j])))
    return out


def _sat(obs: Observation, service: str, cfg: RCAConfig) -> set[str]:
    """The utilisation metrics of ``service`` at saturation now."""
    return {m for m in UTILISATION if obs.latest(m).get(service, 0.0) >= cfg.saturation}
