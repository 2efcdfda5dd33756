"""A fake world whose utilisation follows its load, for the scaler's tests (no simpy: fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.base import Action, Observation
from adapters.fake import FakeAdapter, FakeService
from engines.scaling import PredictiveScaler

STEP = 15.0


class LoadedFake:
    """One service ``web`` behind a :class:`FakeAdapter`: ``rate(t)`` requests per second shared by its serving
    servers; each request per second costs ``cpu_per_rps`` CPU (and ``mem_per_rps`` memory) of a server, plus
    fixed parts ``cpu0`` / ``mem0``."""

    def __init__(self, rate: Callable[[float], float], *, servers: int = 4, min_servers: int = 1,
                 max_servers: int = 50, cpu_per_rps: float = 0.01, mem_per_rps: float = 0.0, cpu0: float = 0.0,
                 mem0: float = 0.3, boot_delay: float = 0.0, settings: dict[str, float] | None = None,
                 **scaler: Any) -> None:
        self.fake = FakeAdapter([FakeService("web", "small", servers, min_servers=min_servers,
                                             max_servers=max_servers, stateful=False, settings=settings or {})],
                                boot_delay=boot_delay, scrape_interval=STEP)
        self.rate = rate
        self.k = (cpu0, cpu_per_rps, mem0, mem_per_rps)
        f = self.fake
        lab = {"service": "web"}
        f.feed("request_rate", lab, fn=lambda t: self.rate(t))
        f.feed("cpu_util", lab, fn=lambda t: self._util(t, 0))
        f.feed("memory_util", lab, fn=lambda t: self._util(t, 2))
        f.feed("disk_util", lab, fn=lambda t: 0.2 if self._serving() else 0.0)
        f.feed("network_mbps", lab, fn=lambda t: self.rate(t) * 0.01)
        self.engine = PredictiveScaler(**scaler)
        self.actions: list[tuple[float, Action]] = []

    def _serving(self) -> int:
        return sum(1 for s in self.fake.servers_by_id.values() if s.service == "web" and s.status == "ACTIVE"
                   and s.metadata.get("zeroops_lb_weight", "1") not in ("0", "0.0"))

    def _active(self) -> int:
        return sum(1 for s in self.fake.servers_by_id.values() if s.service == "web" and s.status == "ACTIVE")

    def _util(self, t: float, k: int) -> float:
        """Mean over ACTIVE servers (drained ones idle at 0, as a world's mean shows them)."""
        n, act = self._serving(), self._active()
        if n == 0:
            return float("nan")
        per = self.k[k] + self.k[k + 1] * self.rate(t) / n
        return min(per, 1.0) * n / act

    def active(self) -> int:
        return self._active()

    def run(self, seconds: float) -> list[Action]:
        """Step the engine every 15 s for ``seconds``, executing what it returns; the actions of this run."""
        out: list[Action] = []
        end = self.fake.now() + seconds
        while self.fake.now() < end - 1e-9:
            self.fake.advance(STEP)
            now = self.fake.now()
            obs = Observation(self.fake, now)
            try:
                acts = list(self.engine.step(now, obs))
            finally:
                obs.close()
            for a in acts:
                self.fake.execute(a)
                self.actions.append((now, a))
            out += acts
        return out
