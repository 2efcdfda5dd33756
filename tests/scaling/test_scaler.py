"""The predictive scaler on a fake world whose utilisation follows its load (tests/scaling/harness.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters.base import (
    CreateServer,
    DeleteServer,
    IncidentInfo,
    RebootServer,
    Server,
    SetLBWeights,
    SetMetadata,
    StartServer,
    StopServer,
)
from engines.registry import REGISTRY, RegistryError
from engines.scaling import CapacityModel, PredictiveScaler, PredictiveScalerConfig
from tests.scaling.harness import LoadedFake

WARM = 1500.0  # a forecast is scored 15 minutes after it is made: accuracy is known after this


def creates(acts: list) -> int:
    return sum(a.count for a in acts if isinstance(a, CreateServer))


# ------------------------------------------------------------------ config
def test_design_names_are_accepted_and_bad_values_are_named() -> None:
    et = REGISTRY.engine("predictive_scaler")
    cfg = et.validate({"PredictionWindowMinutes": 30, "MinPredictionAccuracy": 0.9, "ScaleUpThreshold": 0.8})
    assert (cfg.prediction_window_minutes, cfg.min_prediction_accuracy, cfg.scale_up_threshold) == (30, 0.9, 0.8)
    assert cfg.cost_weight == 0.4 and cfg.performance_weight == 0.6 and cfg.scale_to_zero_idle_minutes == 60
    with pytest.raises(RegistryError, match="min_prediction_accuracy|MinPredictionAccuracy"):
        et.validate({"MinPredictionAccuracy": 1.5})
    with pytest.raises(RegistryError, match="ScaleDownThreshold"):
        et.validate({"ScaleDownThreshold": 0.8, "ScaleUpThreshold": 0.7})
    with pytest.raises(RegistryError, match="unknown setting"):
        et.validate({"PredictionWindow": 15})
    assert isinstance(et.build({}), PredictiveScaler)


# --------------------------------------------------------------- capacity
def test_capacity_model_separates_fixed_and_per_request_parts() -> None:
    cap = CapacityModel(1)
    rng = np.random.default_rng(0)
    for k in range(200):
        x = 50 + 30 * rng.uniform()
        u = np.array([[0.01 * x], [0.4], [0.1 + 0.002 * x], [0.0]])
        cap.learn(k * 15.0, np.array([x]), u)
    a, b = cap.coefficients()
    assert a[0, 0] == pytest.approx(0.0, abs=0.01) and b[0, 0] == pytest.approx(0.01, rel=0.02)
    assert a[1, 0] == pytest.approx(0.4, abs=0.01) and b[1, 0] == pytest.approx(0.0, abs=1e-4)  # memory: fixed
    assert a[2, 0] == pytest.approx(0.1, abs=0.01) and b[2, 0] == pytest.approx(0.002, rel=0.05)
    need = CapacityModel.servers_needed(a, b, np.array([1000.0]), np.array([0.7]))
    assert need[0, 0] == math.ceil(10 / 0.7) and need[1, 0] == 0  # fixed memory never asks for servers


# ------------------------------------------------------------ dimensions
def test_the_binding_dimension_decides() -> None:
    """Memory per request is twice CPU per request: memory binds and sizes the service."""
    w = LoadedFake(lambda t: 300.0, servers=4, cpu_per_rps=0.002, mem_per_rps=0.004, mem0=0.05)
    w.run(WARM)
    d = w.engine.last["web"]
    assert d["mode"] == "predictive"
    ev = d["evidence"]
    assert ev["binding_dimension"] == "memory"
    by = ev["servers_by_dimension"]
    assert by["memory"] > by["cpu"]
    assert w.active() == by["memory"]  # 300 rps x 0.004 = 1.2 servers of memory at 70 % -> 2


def test_explanations_carry_forecast_interval_accuracy_headroom_and_cost() -> None:
    w = LoadedFake(lambda t: 300.0 if t < WARM else 900.0, servers=4, cpu_per_rps=0.005, max_servers=40)
    w.run(WARM)
    acts = w.run(120)
    made = [a for a in acts if isinstance(a, CreateServer)]
    assert made
    a = made[0]
    for key in ("forecast_lead", "forecast_window", "binding_dimension", "accuracy", "headroom",
                "expected_cost_per_hour", "price_per_server_hour"):
        assert key in a.evidence, key
    assert a.evidence["forecast_window"]["hi"] >= a.evidence["forecast_window"]["mean"]
    assert "binding dimension" in a.reason and "headroom" in a.reason and "/h" in a.reason


def test_a_batch_service_is_sized_for_throughput_on_spot_capacity() -> None:
    def run(settings: dict[str, float]) -> tuple[int, list[CreateServer]]:
        w = LoadedFake(lambda t: 300.0 if t < WARM else 1200.0, servers=4, cpu_per_rps=0.005, max_servers=40,
                       settings=settings)
        w.run(WARM + 900)
        return w.active(), [a for _, a in w.actions if isinstance(a, CreateServer)]

    n_batch, made = run({"batch": 1.0})
    n_web, made_web = run({})
    assert made and all(a.pricing == "spot" for a in made) and "batch" in made[0].evidence["workload"]
    assert all(a.pricing == "on_demand" for a in made_web)
    assert n_batch < n_web  # 90 % utilisation for throughput vs 70 % for latency


def test_a_batch_queue_is_sized_for_its_deadlines() -> None:
    """60 queued jobs of 1,200 vCPU-s within 80 % of a 1-h deadline on 1-vCPU servers: 25 servers, on spot,
    more as the jobs wait."""
    queue = {"n": 0.0}
    w = LoadedFake(lambda t: 0.0, servers=2, cpu_per_rps=0.005, max_servers=40,
                   settings={"batch_deadline_s": 3600.0, "batch_work_vcpu_s": 1200.0})
    w.fake.feed("queue_length", {"service": "web"}, fn=lambda t: queue["n"])
    w.run(600)
    assert not [a for _, a in w.actions if isinstance(a, CreateServer)]
    queue["n"] = 60.0
    w.run(300)
    made = [a for _, a in w.actions if isinstance(a, CreateServer)]
    assert made and all(a.pricing == "spot" for a in made) and made[0].reason.startswith("batch: 60 job(s) queued")
    # 25 servers at once; more as the jobs wait (nothing works them off in the fake): 72,000 / (2,880 - 300) s
    assert 25 <= w.active() <= 28
    queue["n"] = 0.0
    w.run(1800)
    assert w.active() == 1  # the queue is done: back to one server (min_servers 1), gently


# ---------------------------------------------------------------- limits
def test_scale_up_is_limited_per_window_and_by_max_servers() -> None:
    w = LoadedFake(lambda t: 200.0 if t < WARM else 3000.0, servers=4, cpu_per_rps=0.005, max_servers=20,
                   MaxScaleUpPercent=50, scale_up_window_s=60)
    w.run(WARM)
    base = w.active()
    first = w.run(60)  # one window: at most max(50 % of base, 2)
    assert 0 < creates(first) <= max(math.floor(base * 0.5), 2)
    w.run(900)
    assert w.active() == 20  # 3000 rps needs ~22 servers: capped at max_servers
    assert all(w.active() <= 20 for _ in range(1))


def test_scale_down_is_limited_per_window_not_per_step_and_keeps_min() -> None:
    w = LoadedFake(lambda t: 2000.0 if t < WARM else 20.0, servers=16, min_servers=3, cpu_per_rps=0.005,
                   MaxScaleDownPercent=25, scale_down_window_s=300)
    w.run(WARM)
    n0 = w.active()
    assert n0 >= 14
    w.run(300)  # the stabilisation window must pass first
    seen = []
    for _ in range(48):
        w.run(75)
        seen.append(w.active())
    assert seen[0] > 3 and min(seen) == 3 and seen[-1] == 3  # down to min_servers, never below
    # no 300-s window (sliding) removes more than 25 % of what it started with (at least one)
    times = [t for t, a in w.actions if isinstance(a, DeleteServer)]
    for t0 in times:
        in_window = [t for t in times if t0 <= t < t0 + 300]
        assert len(in_window) <= max(1, math.floor(n0 * 0.25))


# --------------------------------------------------------------- fallback
def test_low_accuracy_falls_back_to_reactive_and_says_so() -> None:
    rng = np.random.default_rng(3)
    jumps = rng.uniform(100, 2000, 400)
    w = LoadedFake(lambda t: float(jumps[int(t // 60) % 400]), servers=6, cpu_per_rps=0.004, max_servers=40)
    w.run(3600)
    d = w.engine.last["web"]
    assert d["mode"] == "reactive"
    assert "MinPredictionAccuracy" in d["evidence"]["fallback"] and "reactive fallback" in d["why"]
    reasons = [a.reason for _, a in w.actions]
    assert reasons and all("reactive fallback" in r for r in reasons)
    assert any("not measured yet" in r for r in reasons) or any("MinPredictionAccuracy" in r for r in reasons)


def test_a_spike_the_forecast_missed_scales_up_at_once() -> None:
    w = LoadedFake(lambda t: 300.0 if t < WARM + 20 else 1500.0, servers=4, cpu_per_rps=0.006, max_servers=60)
    w.run(WARM)
    assert not [a for a in w.run(15) if isinstance(a, CreateServer)]
    acts = w.run(15)
    made = [a for a in acts if isinstance(a, CreateServer)]
    assert made and "safety net" in made[0].reason and "forecast missed" in made[0].reason


# -------------------------------------------------------------- boot time
def test_boot_time_is_learnt_from_build_to_active() -> None:
    w = LoadedFake(lambda t: 300.0 if t < 600 else 1200.0, servers=4, cpu_per_rps=0.005, boot_delay=120.0)
    w.run(1500)
    assert w.engine.boots >= 1
    assert 90 <= w.engine.boot_s <= 135


# ------------------------------------------------------------------- zero
def test_scale_to_zero_after_idle_keeps_a_warm_pool_and_resumes_on_the_first_request() -> None:
    busy = {"on": True}
    w = LoadedFake(lambda t: 100.0 if busy["on"] else 0.0, servers=3, min_servers=0, cpu_per_rps=0.005,
                   ScaleToZeroIdleMinutes=10, warm_pool_size=1)
    w.run(600)
    busy["on"] = False
    w.run(9 * 60)
    assert w.active() > 0  # not idle long enough yet
    acts = w.run(600)  # gently: at most MaxScaleDownPercent (50 %, at least one) per 300-s window
    stops = [a for a in acts if isinstance(a, StopServer)]
    assert len(stops) == 1 and "scale to zero" in stops[0].reason
    assert w.active() == 0
    pool = stops[0].server_id
    assert w.fake.server(pool).status == "SHUTOFF"
    w.run(600)  # at zero: nothing more happens, the pool's cost is measured from the spend
    assert w.active() == 0 and "warm_pool_cost_per_hour" in w.engine.warm_cost["web"]
    busy["on"] = True
    acts = w.run(15)  # the first step that sees requests resumes the warm server
    starts = [a for a in acts if isinstance(a, StartServer)]
    assert [a.server_id for a in starts] == [pool] and "scale from zero" in starts[0].reason
    assert w.active() >= 1


def test_a_warm_server_another_engine_starts_is_not_fought_over() -> None:
    busy = {"on": True}
    w = LoadedFake(lambda t: 100.0 if busy["on"] else 0.0, servers=2, min_servers=0, cpu_per_rps=0.005,
                   ScaleToZeroIdleMinutes=10)
    w.run(600)
    busy["on"] = False
    w.run(1500)
    (pool,) = [a.server_id for _, a in w.actions if isinstance(a, StopServer)]
    assert w.fake.server(pool).metadata.get("zeroops_warm_pool") == "1"
    w.fake.execute(StartServer(server_id=pool))  # a crash restarter's "server stopped unexpectedly"
    acts = w.run(1800)
    cleared = [a for a in acts if isinstance(a, SetMetadata) and a.server_id == pool]
    assert cleared and cleared[0].metadata["zeroops_warm_pool"] == ""  # marks cleared: back in service
    assert not [a for a in acts if isinstance(a, StopServer)]  # no stop/start fight ...
    assert [a for a in acts if isinstance(a, DeleteServer) and a.server_id == pool]  # ... zero by deletion instead


# ---------------------------------------------------- one fault, one reaction
def test_runbook_created_servers_are_never_deleted() -> None:
    w = LoadedFake(lambda t: 600.0 if t < WARM else 50.0, servers=2, cpu_per_rps=0.005)
    w.fake.execute(CreateServer(service="web", count=3, request_id="INC-0001-web-np"))
    theirs = {s.id for s in w.fake.servers(service="web") if s.metadata.get("zeroops_request_id")}
    w.run(WARM + 1800)
    deleted = {a.server_id for _, a in w.actions if isinstance(a, DeleteServer)}
    assert deleted and not deleted & theirs
    assert all(w.fake.server(s).status == "ACTIVE" for s in theirs)


def test_drained_servers_are_not_counted_as_serving_nor_deleted() -> None:
    w = LoadedFake(lambda t: 400.0, servers=6, cpu_per_rps=0.005)
    drained = [s.id for s in w.fake.servers(service="web")][:2]
    w.fake.execute(SetLBWeights(service="web", weights=dict.fromkeys(drained, 0.0)))
    w.run(WARM + 900)
    ev = w.engine.last["web"]["evidence"]
    assert ev["drained"] == 2 and ev["serving"] == w.active() - 2
    # utilisation is over the serving servers: 400 rps x 0.005 / serving
    assert ev["utilisation"]["cpu"] == pytest.approx(2.0 / ev["serving"], rel=0.02)
    assert not {a.server_id for _, a in w.actions if isinstance(a, DeleteServer)} & set(drained)


def test_new_servers_avoid_the_zone_of_drained_servers() -> None:
    w = LoadedFake(lambda t: 400.0 if t < WARM else 1600.0, servers=6, cpu_per_rps=0.005, max_servers=40)
    servers = w.fake.servers(service="web")
    bad = servers[0].zone
    w.fake.execute(SetLBWeights(service="web", weights={s.id: 0.0 for s in servers if s.zone == bad}))
    w.run(WARM + 300)
    made = [a for _, a in w.actions if isinstance(a, CreateServer)]
    assert made and all(a.zone is not None and a.zone != bad for a in made)


def test_shutoff_servers_are_left_to_their_owner_and_not_replaced() -> None:
    w = LoadedFake(lambda t: 400.0, servers=5, cpu_per_rps=0.005)
    w.run(WARM)
    n = w.active()
    victim = [s.id for s in w.fake.servers(service="web") if s.status == "ACTIVE"][0]
    w.fake.set_status(victim, "SHUTOFF")
    acts = w.run(300)
    assert not [a for a in acts if getattr(a, "server_id", None) == victim]
    assert not [a for a in acts if isinstance(a, StartServer | RebootServer)]
    assert creates(acts) == 0  # counted as coming back (the restarter's), not replaced
    assert w.active() == n - 1


def test_no_scale_down_while_an_incident_names_the_service() -> None:
    w = LoadedFake(lambda t: 800.0 if t < WARM else 50.0, servers=4, cpu_per_rps=0.005)
    w.run(WARM)
    inc = IncidentInfo(id="INC-7", components=("web",), severity="P2", status="open", declared_at=0.0,
                       declared_by="ops-center")
    w.fake.incidents = lambda: [inc]  # type: ignore[method-assign]
    acts = w.run(900)
    assert not [a for a in acts if isinstance(a, DeleteServer)]


def test_config_object_and_settings_build_the_same_engine() -> None:
    a = PredictiveScaler(PredictiveScalerConfig(MaxScaleUpPercent=50))
    b = PredictiveScaler(max_scale_up_percent=50)
    assert a.cfg == b.cfg and a.cadence == 15.0


def test_capacity_for_an_incident_owned_service_waits_unless_users_hurt_now() -> None:
    """One fault, one owner: a forecast-driven scale-up of a service an open incident names is deferred; a
    saturated one joins the incident's response (its action tied to the incident, so the gate admits it)."""
    from engines.scaling import fleet as fl

    inc = IncidentInfo(id="INC-9", components=("web",), severity="P2", status="mitigating", declared_at=0.0,
                       declared_by="automation")
    f = fl.ServiceFleet(name="web")
    assert fl.owning_incident(f, {"INC-9": inc}) is inc
    done = IncidentInfo(id="INC-9", components=("web",), severity="P2", status="mitigated", declared_at=0.0,
                        declared_by="automation")
    assert fl.owning_incident(f, {"INC-9": done}) is None


def test_a_runbooks_servers_are_the_services_again_once_its_incident_is_over() -> None:
    from engines.scaling import fleet as fl

    srv = Server(id="s1", name="s1", flavor="small", project="p", status="ACTIVE", zone="z", hypervisor="h",
                 service="web", metadata={fl.META_REQUEST: "INC-7-web-scale"})
    person = Server(id="s2", name="s2", flavor="small", project="p", status="ACTIVE", zone="z", hypervisor="h",
                    service="web", metadata={fl.META_REQUEST: "ticket-42"})

    def board(status: str) -> dict[str, IncidentInfo]:
        return {"INC-7": IncidentInfo(id="INC-7", components=("web",), severity="P2", status=status,
                                      declared_at=0.0, declared_by="automation")}

    assert fl.someone_elses(srv, board("mitigating"))  # the response is running: its capacity, its decision
    assert not fl.someone_elses(srv, board("resolved"))  # over: the scaler may give it back
    assert fl.someone_elses(person, board("resolved"))  # a person's server stays theirs
