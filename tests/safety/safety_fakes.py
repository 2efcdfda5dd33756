"""A small in-memory world implementing the Adapter protocol: a test double of the world, not of the gate."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from adapters.base import (
    Action,
    ActionResult,
    Alert,
    Flavor,
    Hypervisor,
    MetricWindow,
    NotFound,
    Price,
    Quota,
    Server,
    ServiceState,
    Spend,
    TransientAPIError,
)

FLAVORS = (Flavor("small", 1, 2048, 20), Flavor("medium", 2, 4096, 80), Flavor("large", 8, 32768, 500))
PRICES = (Price("small", "on_demand", 0.05), Price("medium", "on_demand", 0.2), Price("large", "on_demand", 1.6),
          Price("small", "spot", 0.02))
ZONES = {"az-canary": "canary", "az-east-1": "east", "az-west-1": "west"}


class FakeWorld:
    """Servers, services and prices in memory; ``execute`` applies actions at once."""

    name = "fake"

    def __init__(self, services: Mapping[str, tuple[str, int]] | None = None, *,
                 flavors: Sequence[Flavor] = FLAVORS, prices: Sequence[Price] = PRICES,
                 zones: Mapping[str, str] | None = None, fail_every: int = 0) -> None:
        self.t = 0.0
        self._flavors = list(flavors)
        self._prices = list(prices)
        self.zones = dict(zones or ZONES)
        self._ids = itertools.count(1)
        self.servers_by_id: dict[str, Server] = {}
        self.service_flavor: dict[str, str] = {}
        self.executed: list[tuple[float, Action, ActionResult]] = []
        self.calls = 0
        self.fail_every = fail_every
        for name, (flavor, n) in (services or {"web": ("small", 4)}).items():
            self.service_flavor[name] = flavor
            for _ in range(n):
                self._add(name, flavor, None)

    def _add(self, service: str, flavor: str, zone: str | None, pricing: str = "on_demand") -> Server:
        i = next(self._ids)
        zones = sorted(self.zones)
        s = Server(f"srv-{i}", f"{service}-{i}", flavor, "p", "ACTIVE", zone or zones[i % len(zones)], f"hv-{i % 3}",
                   service, pricing, self.t)  # type: ignore[arg-type]
        self.servers_by_id[s.id] = s
        return s

    # observe
    def now(self) -> float:
        return self.t

    def flavors(self) -> Sequence[Flavor]:
        return self._flavors

    def hypervisors(self) -> Sequence[Hypervisor]:
        return [Hypervisor(f"hv-{z}", f"hv-{z}", r, z, "up", 64, 0, 1 << 20, 0, 10_000, 0)
                for z, r in self.zones.items()]

    def servers(self, *, service: str | None = None, status: str | None = None) -> Sequence[Server]:
        return [s for s in self.servers_by_id.values()
                if (service is None or s.service == service) and (status is None or s.status == status)]

    def server(self, server_id: str) -> Server | None:
        return self.servers_by_id.get(server_id)

    def services(self) -> Sequence[ServiceState]:
        out = []
        for name, flavor in self.service_flavor.items():
            mine = [s for s in self.servers_by_id.values() if s.service == name]
            out.append(ServiceState(name, "p", flavor, (), sum(s.status == "ACTIVE" for s in mine), 0,
                                    sum(s.status == "ERROR" for s in mine), 1, {}))
        return out

    def metric_window(self, metric: str, labels: Mapping[str, str], seconds: float) -> MetricWindow:
        return MetricWindow(metric, labels, np.array([]), np.array([]))

    def latest(self, metric: str) -> Mapping[str, float]:
        return {}

    def alerts(self, since: float) -> Sequence[Alert]:
        return []

    def prices(self) -> Sequence[Price]:
        return self._prices

    def price_of(self, flavor: str, pricing: str = "on_demand") -> float:
        d = {(p.flavor, p.pricing): p.per_hour for p in self._prices}
        return d.get((flavor, pricing), d[(flavor, "on_demand")])

    def spend(self) -> Spend:
        rate = sum(self.price_of(s.flavor, s.pricing) for s in self.servers_by_id.values() if s.status == "ACTIVE")
        return Spend(0.0, rate, {"p": rate})

    def quotas(self) -> Sequence[Quota]:
        return [Quota("p", 10_000, 100_000, 1 << 30, len(self.servers_by_id), 0, 0)]

    # act
    def execute(self, action: Action) -> ActionResult:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise TransientAPIError("injected failure")
        res = self._apply(action)
        self.executed.append((self.t, action, res))
        return res

    def _apply(self, a: Action) -> ActionResult:
        k = a.kind
        if k == "create_server":
            flavor = a.flavor or self.service_flavor[a.service]  # type: ignore[attr-defined]
            made = [self._add(a.service, flavor, a.zone, a.pricing) for _ in range(a.count)]  # type: ignore[attr-defined]
            return ActionResult(True, "created", tuple(s.id for s in made))
        sid = getattr(a, "server_id", None)
        if sid is not None and sid not in self.servers_by_id:
            raise NotFound(sid)
        if k == "delete_server":
            del self.servers_by_id[sid]
        elif k == "resize_server":
            self.servers_by_id[sid] = replace(self.servers_by_id[sid], flavor=a.flavor)  # type: ignore[attr-defined]
        elif k == "start_server":
            self.servers_by_id[sid] = replace(self.servers_by_id[sid], status="ACTIVE")
        return ActionResult(True, k)
