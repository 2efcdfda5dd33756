"""Driving the self-service engine against a world through the real control plane (gate, choke point)."""

from __future__ import annotations

from typing import Any

from adapters.base import Observation
from adapters.fake import FakeAdapter, FakeService
from control.compose import ControlPlane, compose
from control.runtime import ActionRecord
from engines.selfservice import SelfService, SelfServiceConfig


def fake_world(**kw: Any) -> FakeAdapter:
    """Two teams: shop (api, 4 small) and lab (batch, 2 medium), small quotas to be decided against."""
    return FakeAdapter([FakeService("api", "small", 4, project="shop"), FakeService("batch", "medium", 2, project="lab")],
                       quotas={"shop": (20, 80, 163_840), "lab": (10, 40, 81_920)}, **kw)


def plane(adapter: Any, engine: SelfService | None = None, **safety: Any) -> tuple[ControlPlane, SelfService]:
    eng = engine or SelfService(SelfServiceConfig())
    p = compose(adapter, {"name": "selfservice-test", "engines": []}, safety=None)
    return p, eng


def run(adapter: Any, eng: Any, p: ControlPlane, seconds: float, step: float | None = None) -> list[ActionRecord]:
    """Step ``eng`` every ``step`` seconds for ``seconds`` of the fake's clock; every action through ``p``'s choke."""
    step = step or eng.cadence
    out: list[ActionRecord] = []
    end = adapter.now() + seconds
    while adapter.now() < end:
        adapter.advance(step)
        now = adapter.now()
        obs = Observation(adapter, now)
        for a in eng.step(now, obs):
            out.append(p.choke.submit(now, eng.name, a, obs))
        obs.close()
    return out


def status(adapter: Any, rid: str) -> str:
    return {r.id: r.status for r in adapter.requests()}[rid]
