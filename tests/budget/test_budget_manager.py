"""The budget manager on the in-memory fake world: thresholds, scale-down, caps, reallocation, anomalies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters.base import (
    Budget,
    CreateServer,
    Notify,
    Observation,
    SetServiceSetting,
    ShelveServer,
    StartServer,
    StopServer,
)
from adapters.fake import FakeAdapter, FakeService
from control.safety import budget_guard
from engines import budget as eb
from engines.budget import BudgetManager, BudgetManagerConfig, SpendSeries
from engines.registry import REGISTRY, RegistryError

DAY = 86400.0


def _world(budgets: list[Budget], **kw: object) -> FakeAdapter:
    return FakeAdapter([FakeService("api", "small", 4, project="shop", settings={"priority": 2}),
                        FakeService("batch", "large", 6, project="lab", min_servers=1, settings={"priority": 0})],
                       budgets=budgets, **kw)  # type: ignore[arg-type]


def _run(world: FakeAdapter, engine: BudgetManager, until: float, step: float = 300.0) -> list[tuple[float, object]]:
    """Step the engine until ``until``, executing what it returns at once (no gate: the engine's own logic)."""
    out = []
    while world.t < until:
        world.advance(step)
        obs = Observation(world, world.t)
        for a in engine.step(world.t, obs):
            out.append((world.t, a))
            world.execute(a)
        obs.close()
    return out


def _notes(acts: list[tuple[float, object]], key: str) -> list[tuple[float, dict]]:
    return [(t, a.evidence[key]) for t, a in acts if isinstance(a, Notify) and key in a.evidence]


def test_registered_with_design_names_and_clear_errors() -> None:
    e = REGISTRY.engine("budget_manager").build({"AlertThresholds": [0.9, 0.5], "ForecastDays": 7,
                                                  "AutoScaleDownAtPercent": 0.85, "EnforceHardLimit": True,
                                                  "CostAnomalyThreshold": 0.4, "AutoReallocation": False})
    assert e.cfg.alert_thresholds == (0.5, 0.9) and e.cfg.forecast_days == 7 and e.cfg.enforce_hard_limit
    with pytest.raises(RegistryError, match=r"budget_manager.*AlertThresholds: shares must be in"):
        REGISTRY.engine("budget_manager").validate({"AlertThresholds": [0]}, "budget_manager")
    with pytest.raises(RegistryError, match="unknown setting of engine budget_manager"):
        REGISTRY.engine("budget_manager").validate({"ForecastDayz": 3}, "budget_manager")


def test_cap_settings_agree_with_the_gate() -> None:
    assert eb.CAP_SETTING == budget_guard.CAP_SETTING and eb.CAP_UNTIL_SETTING == budget_guard.CAP_UNTIL_SETTING


def test_thresholds_fire_once_each_per_period() -> None:
    # api 4 x 0.05 + batch 6 x 0.4 (fake's large) = rate per hour; limit chosen so 100 % falls on day ~3
    world = _world([])
    rate = world.spend().rate_per_hour
    world.add_budget("*", limit=rate * 24 * 3, period_s=4 * DAY)
    eng = BudgetManager(BudgetManagerConfig(auto_reallocation=False, auto_scale_down_at_percent=2.0))
    acts = _run(world, eng, 4 * DAY + 2.9 * DAY, step=900.0)
    alerts = _notes(acts, "budget_alert")
    first = [(a["threshold"], a["period_start"]) for _, a in alerts]
    assert first[:3] == [(0.8, 0.0), (0.9, 0.0), (1.0, 0.0)]  # once each, in order, in period 1
    assert len([x for x in first if x[1] == 0.0]) == 3
    assert [x[0] for x in first if x[1] == 4 * DAY] == [0.8, 0.9]  # period 2: again, once each (day 6.4, 6.7)
    for t, a in alerts:  # each names the project, spent, limit and forecast
        assert a["spent"] >= a["threshold"] * a["limit"] - 1e-6 and "point" in a["forecast_period_end"]
        assert t - a["period_start"] <= a["threshold"] * 3 * DAY + 1800


def test_scale_down_low_priority_at_90_percent_never_below_min_never_delete() -> None:
    world = _world([])
    lab_rate = world.spend().rate_per_project["lab"]
    world.add_budget("lab", limit=lab_rate * 24 * 9.5, period_s=10 * DAY)  # at this rate: over by day 9.5
    world.add_budget("shop", limit=1000.0, period_s=10 * DAY)
    eng = BudgetManager(BudgetManagerConfig(auto_reallocation=False))
    acts = _run(world, eng, 10 * DAY - 900, step=900.0)
    kinds = {type(a).__name__ for _, a in acts}
    assert "DeleteServer" not in kinds
    shelves = [(t, a) for t, a in acts if isinstance(a, ShelveServer | StopServer)]
    assert shelves, "the budget manager never scaled low-priority work down"
    assert all(world.servers_by_id[a.server_id].service == "batch" for _, a in shelves)  # never the priority-2 api
    assert min(t for t, _ in shelves) >= 0.9 * 9.5 * DAY - 900  # not before 90 % of the limit was spent
    running = [s for s in world.servers_by_id.values() if s.service == "batch" and s.status == "ACTIVE"]
    assert len(running) >= 1  # min_servers
    caps = [a for _, a in acts if isinstance(a, SetServiceSetting) and a.key == eb.CAP_SETTING]
    assert caps and caps[-1].value >= 1
    lab = next(b for b in world.budgets() if b.project == "lab")
    assert lab.spent <= lab.limit  # it ends the period under budget
    # a new period: what was shelved for the old one runs again
    acts2 = _run(world, eng, 10 * DAY + 1800, step=900.0)
    assert any(isinstance(a, StartServer) for _, a in acts2)


def test_reallocation_moves_headroom_to_the_higher_priority_project() -> None:
    world = _world([])
    rates = world.spend().rate_per_project
    world.add_budget("*", limit=10_000.0, period_s=10 * DAY)
    world.add_budget("shop", limit=rates["shop"] * 24 * 7, period_s=10 * DAY)  # shop (priority 2) runs out on day 7
    world.add_budget("lab", limit=rates["lab"] * 24 * 20, period_s=10 * DAY)  # lab (priority 0) uses half of it
    eng = BudgetManager(BudgetManagerConfig(auto_scale_down_at_percent=2.0))
    acts = _run(world, eng, 3 * DAY, step=900.0)
    moves = _notes(acts, "budget_reallocation")
    assert moves and all(m["from"] == "lab" and m["to"] == "shop" for _, m in moves)
    assert eng.realloc["shop"] > 0 and math.isclose(eng.realloc["shop"], -eng.realloc["lab"])


def _seasonal_cum(t: np.ndarray, base: float = 2.0, amp: float = 0.5, noise: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """Cumulative spend of a rate base * (1 + amp * sin(2 pi t / day)) (+ relative noise per step)."""
    rate = base * (1 + amp * np.sin(2 * np.pi * t / DAY))
    if noise:
        rate = rate * (1 + noise * np.random.default_rng(seed).standard_normal(len(t)))
    dt = np.diff(t, prepend=t[0])
    return np.cumsum(rate * dt / 3600.0)


def test_forecast_30_days_within_tolerance_on_daily_seasonality() -> None:
    """From any time of day, on 20 noisy seasonal months: the point within 2 %, the 90 % interval mostly right."""
    t = np.arange(0, 45 * DAY, 300.0)
    errors, inside = [], []
    for seed in range(20):
        cum = _seasonal_cum(t, noise=0.05, seed=seed)
        s = SpendSeries(keep_s=40 * DAY)
        now_i = int((8 + seed * 0.37) * DAY / 300)  # a different time of day each time
        for x, y in zip(t[: now_i + 1], cum[: now_i + 1], strict=True):
            s.add(float(x), float(y))
        now = float(t[now_i])
        f = s.forecast(now, 30)
        assert f.basis == "24h"
        actual = float(np.interp(now + 30 * DAY, t, cum) - cum[now_i])
        errors.append(abs(f.point - actual) / actual)
        inside.append(f.lo <= actual <= f.hi)
    assert max(errors) < 0.02
    assert np.mean(inside) >= 0.75


def _spend_world(services: dict[str, np.ndarray], t: np.ndarray) -> type:
    """A minimal seam exposing cumulative per-service spend along ``t`` (one service per project)."""

    class W:
        name = "spend-only"
        k = 0

        def now(self) -> float:
            return float(t[self.k])

        def spend(self):  # noqa: ANN202
            from adapters.base import Spend

            per = {n: float(c[self.k]) for n, c in services.items()}
            return Spend(sum(per.values()), 0.0, {f"proj-{n}": v for n, v in per.items()}, per)

        def services(self):  # noqa: ANN202
            from adapters.base import ServiceState

            return [ServiceState(n, f"proj-{n}", "small", (), 2, 0, 0, 1, {}) for n in services]

        def servers(self, *, service: str | None = None, status: str | None = None):  # noqa: ANN202
            return []

        def prices(self):  # noqa: ANN202
            return []

        def budgets(self):  # noqa: ANN202
            return []

    return W


def _anomaly_times(series: dict[str, np.ndarray], t: np.ndarray) -> list[tuple[float, dict]]:
    W = _spend_world(series, t)
    w = W()
    eng = BudgetManager()
    found = []
    for k in range(len(t)):
        w.k = k
        obs = Observation(w, float(t[k]))  # type: ignore[arg-type]
        for a in eng.step(float(t[k]), obs):
            if isinstance(a, Notify) and "cost_anomaly" in a.evidence:
                found.append((float(t[k]), a.evidence["cost_anomaly"]))
        obs.close()
    return found


def test_anomaly_caught_within_the_hour_and_none_on_a_seasonal_series() -> None:
    t = np.arange(0, 9 * DAY, 300.0)
    onset = 8 * DAY + 5 * 3600 + 600
    plain = _seasonal_cum(t, noise=0.05, seed=1)
    rate = 2.0 * (1 + 0.5 * np.sin(2 * np.pi * t / DAY)) * (1 + 0.05 * np.random.default_rng(2).standard_normal(len(t)))
    rate = np.where(t >= onset, rate * 1.5, rate)  # a 50 % spike of the spend rate
    spiky = np.cumsum(rate * np.diff(t, prepend=0.0) / 3600.0)
    found = _anomaly_times({"quiet": plain, "hot": spiky}, t)
    assert all(a["service"] == "hot" for _, a in found), found  # no alarm on the plain seasonal series
    hits = [x for x, a in found if x >= onset]
    assert hits and hits[0] - onset < 3600.0
    assert not [x for x, _ in found if x < onset]  # nor on the spiky one before its spike
    first = next(a for x, a in found if x >= onset)
    assert first["project"] == "proj-hot" and first["ratio"] >= 1.4


def test_enforce_hard_limit_scales_down_before_90_percent_and_names_the_resource_of_a_spike() -> None:
    world = _world([])
    lab_rate = world.spend().rate_per_project["lab"]
    world.add_budget("lab", limit=lab_rate * 24 * 20, period_s=10 * DAY)  # room for twice the rate
    eng = BudgetManager(BudgetManagerConfig(auto_reallocation=False, enforce_hard_limit=True))
    _run(world, eng, 2 * DAY, step=900.0)
    for _ in range(8):  # a runaway: 8 more large batch servers (the rate x 2.3, the period's end over the limit)
        world.execute(CreateServer(service="batch", flavor="large"))
    acts = _run(world, eng, 2 * DAY + 3 * 3600, step=900.0)
    anomalies = _notes(acts, "cost_anomaly")
    assert anomalies and anomalies[0][1]["service"] == "batch" and anomalies[0][1]["project"] == "lab"
    assert anomalies[0][1]["resource"]["flavor"] == "large" and len(anomalies[0][1]["resource"]["new_servers"]) == 8
    shelves = [a for _, a in acts if isinstance(a, ShelveServer)]
    assert shelves  # hard: at ~10 % of the limit already, since the projection passed the limit
    assert all(a.evidence["budget_action"]["trigger"] == "hard-limit" for a in shelves)
    lab = next(b for b in world.budgets() if b.project == "lab")
    assert lab.spent < 0.3 * lab.limit


def test_an_overrun_with_no_low_priority_work_left_is_said_once() -> None:
    world = FakeAdapter([FakeService("api", "large", 3, project="shop", min_servers=3, settings={"priority": 2})])
    rate = world.spend().rate_per_project["shop"]
    world.add_budget("shop", limit=rate * 24 * 3, period_s=4 * DAY)
    eng = BudgetManager(BudgetManagerConfig(auto_reallocation=False))
    acts = _run(world, eng, 3.5 * DAY, step=900.0)
    unmet = _notes(acts, "budget_unmet")
    assert len(unmet) == 1 and not [a for _, a in acts if isinstance(a, ShelveServer | StopServer)]
