"""A fake service whose per-server metrics depend on the version each server runs (for the canary tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.base import VERSION_KEY, Action, Deploy, Observation, RollbackDeploy
from adapters.fake import FakeAdapter


@dataclass(frozen=True)
class Effect:
    err: float = 0.0  # added error ratio
    cpu: float = 1.0  # CPU per request factor
    mem: float = 0.0  # added memory utilisation
    lat: float = 1.0  # latency factor (service level, weighted by share)
    leak: float = 0.0  # memory growth per hour since the release shipped


def _noise(*key: object) -> float:
    """Deterministic noise, uniform in [-1, 1], independent across keys (a CRC is linear: its noise trends)."""
    h = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**63 - 1.0


@dataclass
class World:
    effects: Mapping[str, Effect]
    servers: int = 20
    fake: FakeAdapter = field(init=False)
    actions: list[tuple[float, Action]] = field(default_factory=list)
    shipped_at: float = 0.0
    salt: int = 0  # another draw of the noise

    def __post_init__(self) -> None:
        self.fake = FakeAdapter(services={"web": ("medium", self.servers)}, scrape_interval=30.0)
        for s in self.fake.servers(service="web"):
            self.fake.feed("server_error_ratio", {"server": s.id}, fn=self._metric(s.id, "err"))
            self.fake.feed("server_cpu_util", {"server": s.id}, fn=self._metric(s.id, "cpu"))
            self.fake.feed("server_network_mbps", {"server": s.id}, fn=self._metric(s.id, "net"))
            self.fake.feed("server_memory_util", {"server": s.id}, fn=self._metric(s.id, "mem"))
            self.fake.feed("server_up", {"server": s.id}, fn=lambda t: 1.0)
        self.fake.feed("latency_p95_ms", {"service": "web"}, fn=self._latency)

    def effect(self, sid: str) -> Effect:
        srv = self.fake.server(sid)
        return self.effects.get(srv.metadata.get(VERSION_KEY, "1"), Effect()) if srv else Effect()

    def _metric(self, sid: str, what: str) -> Callable[[float], float]:
        def fn(t: float) -> float:
            e, z = self.effect(sid), _noise(sid, what, t, self.salt)
            if what == "err":
                return max(0.0, 0.002 + 0.001 * z + e.err)
            if what == "cpu":
                return 0.5 * e.cpu * (1 + 0.05 * z)
            if what == "net":
                return 10.0 * (1 + 0.02 * z)
            return 0.4 + 0.01 * z + e.mem + e.leak * max(0.0, t - self.shipped_at) / 3600.0
        return fn

    def _latency(self, t: float) -> float:
        srv = self.fake.servers(service="web")
        lat = float(np.mean([self.effect(s.id).lat for s in srv])) if srv else 1.0
        return 120.0 * lat * (1 + 0.03 * _noise("lat", t))

    def run(self, engine: Any, seconds: float, step: float = 60.0) -> None:
        end = self.fake.now() + seconds
        while self.fake.now() < end:
            self.fake.advance(step)
            obs = Observation(self.fake, self.fake.now())
            try:
                acts = list(engine.step(self.fake.now(), obs))
            finally:
                obs.close()
            for a in acts:
                self.actions.append((self.fake.now(), a))
                self.fake.execute(a)

    def versions(self) -> list[str]:
        return [s.metadata.get(VERSION_KEY, "") for s in self.fake.servers(service="web")]

    def kinds(self) -> list[tuple[str, float | None]]:
        return [(a.kind, a.fraction if isinstance(a, Deploy) else None) for _, a in self.actions
                if isinstance(a, Deploy | RollbackDeploy)]
