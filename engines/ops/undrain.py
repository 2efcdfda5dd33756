"""Putting drained servers back: a canary probe of each drained group, then the whole group back in rotation.

A runbook drains servers at the load balancer (``SetLBWeights`` weight 0) when they cannot serve, e.g. a zone
cut off from its dependencies.  Nothing in the observation says when the cause heals, so the drain would stay
forever and the service would run on less capacity than it pays for.  :class:`DrainProber` finds out the way
an operator would: it sends one drained server a small share of traffic (``probe_weight``) and watches that
server's own ``server_error_ratio``:

* healthy for ``probe_s`` → every drained server of the same service and zone gets weight 1 again;
* failing → the probe server is drained again and the group waits twice as long before the next probe
  (``backoff_s`` doubling up to ``max_backoff_s``).

The probe server carries a planned-work mark (``zeroops_maintenance=drain-probe``, expiring by itself) while
it is probed, so its expected errors open no incident.  It leaves alone servers under planned maintenance,
servers an open incident names (or whose zone or service
it names: the incident's response owns them), and groups drained for less than ``settle_s``.  Decisions only
from the observation: the drain is read from the servers' metadata (:data:`adapters.base.LB_WEIGHT_KEY`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import LB_WEIGHT_KEY, Action, Observation, Server, SetLBWeights, SetMetadata
from engines.maintenance import MAINTENANCE_KEY, UNTIL_KEY, under_maintenance


class DrainProberConfig(BaseModel):
    """Settings of ``drain_prober``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(15.0, gt=0, description="seconds between steps")
    settle_s: float = Field(300.0, ge=0, description="a group stays drained at least this long before a probe")
    probe_weight: float = Field(0.1, gt=0, le=1, description="weight of the probe server (others have 1)")
    probe_s: float = Field(60.0, gt=0, description="how long the probe server must stay healthy")
    max_error_ratio: float = Field(0.02, ge=0, le=1, description="the probe fails above this server_error_ratio")
    backoff_s: float = Field(600.0, gt=0, description="wait after a failed probe (doubles each time)")
    max_backoff_s: float = Field(3600.0, gt=0, description="longest wait between probes")


@dataclass
class _Group:
    """Drained servers of one service in one zone."""

    since: float
    next_probe: float
    wait: float
    probe: str | None = None
    probe_started: float = 0.0
    worst: float = 0.0


def _weight(s: Server) -> float:
    raw = s.metadata.get(LB_WEIGHT_KEY)
    if raw is None:
        return 1.0
    try:
        return float(raw)
    except ValueError:
        return 1.0


class DrainProber:
    """Probes drained servers and puts them back in rotation once one of them serves cleanly."""

    name = "drain-prober"

    def __init__(self, config: DrainProberConfig | None = None) -> None:
        self.cfg = config or DrainProberConfig()
        self.cadence = self.cfg.cadence
        self.groups: dict[tuple[str, str], _Group] = {}

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        cfg = self.cfg
        owned: set[str] = set()
        for inc in obs.incidents.values():
            if inc.status != "resolved":
                owned.update(inc.components)
        drained: dict[tuple[str, str], list[Server]] = {}
        probing: dict[tuple[str, str], Server] = {}
        for s in obs.servers(status="ACTIVE"):
            if s.service is None:
                continue
            w = _weight(s)
            key = (s.service, s.zone)
            g = self.groups.get(key)
            if g is not None and g.probe == s.id:
                probing[key] = s
            elif w == 0.0 and not under_maintenance(s, now):
                drained.setdefault(key, []).append(s)
        for key in [k for k in self.groups if k not in drained and k not in probing]:
            del self.groups[key]  # undrained by someone else, or the servers are gone
        out: list[Action] = []
        for key in sorted(set(drained) | set(probing)):
            service, zone = key
            servers = drained.get(key, [])
            g = self.groups.get(key)
            if g is None:
                g = self.groups[key] = _Group(since=now, next_probe=now + cfg.settle_s, wait=cfg.backoff_s)
            if owned & {service, zone, *(s.id for s in servers)}:
                g.next_probe = max(g.next_probe, now + cfg.settle_s)  # the incident's response owns them
                continue
            if g.probe is not None:
                e = obs.window("server_error_ratio", 10.0, server=g.probe).last()
                if math.isfinite(e):
                    g.worst = max(g.worst, e)
                if g.worst > cfg.max_error_ratio:
                    out.append(_unmark(g.probe))
                    out.append(SetLBWeights(
                        service=service, weights={g.probe: 0.0}, confidence=0.9,
                        reason=f"probe of drained {service} in {zone} failed: server_error_ratio {g.worst:.2f} > "
                               f"{cfg.max_error_ratio:.2f}; drained again, next probe in {g.wait:.0f} s",
                        evidence={"probe": g.probe, "server_error_ratio": g.worst, "zone": zone}))
                    g.probe, g.next_probe = None, now + g.wait
                    g.wait = min(g.wait * 2, cfg.max_backoff_s)
                elif now - g.probe_started >= cfg.probe_s and key in probing:
                    ids = [g.probe, *(s.id for s in servers)]
                    out.append(_unmark(g.probe))
                    out.append(SetLBWeights(
                        service=service, weights=dict.fromkeys(ids, 1.0), confidence=0.8,
                        reason=f"probe server {g.probe} served cleanly for {now - g.probe_started:.0f} s "
                               f"(server_error_ratio <= {g.worst:.3f}): {len(ids)} drained server(s) of {service} "
                               f"in {zone} back in rotation",
                        evidence={"probe": g.probe, "server_error_ratio": g.worst, "zone": zone,
                                  "servers": ids, "drained_for_s": now - g.since}))
                    del self.groups[key]
                continue
            if now >= g.next_probe and servers:
                probe = min(servers, key=lambda s: s.id)
                g.probe, g.probe_started, g.worst = probe.id, now, 0.0
                # marked as planned work first: a probe that fails is the test's answer, not a new incident
                out.append(SetMetadata(server_id=probe.id, metadata={
                    MAINTENANCE_KEY: "drain-probe", UNTIL_KEY: repr(now + cfg.probe_s + 2 * cfg.cadence)},
                    reason=f"probing drained {probe.id}: its errors while probed are expected"))
                out.append(SetLBWeights(
                    service=service, weights={probe.id: cfg.probe_weight}, confidence=0.7,
                    reason=f"{len(servers)} server(s) of {service} in {zone} drained for {now - g.since:.0f} s: "
                           f"probe {probe.id} at weight {cfg.probe_weight} to see whether the cause healed",
                    evidence={"probe": probe.id, "zone": zone, "drained": [s.id for s in servers]},
                    alternatives=("leave drained until a human restores the weights",)))
        return out


def _unmark(server_id: str) -> SetMetadata:
    """Clear the probe's planned-work mark (an empty mark silences nothing)."""
    return SetMetadata(server_id=server_id, metadata={MAINTENANCE_KEY: "", UNTIL_KEY: ""},
                       reason=f"probe of {server_id} over")
