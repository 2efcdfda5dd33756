"""The provisioner on the fake world: idle timing, min floors, stateful data kept, rightsizing, bounded retries,
spot fallback; and its arithmetic by hand (break-even, run-out day)."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import (
    AdapterError,
    CreateServer,
    DeleteServer,
    Notify,
    Observation,
    ResizeServer,
    ShelveServer,
)
from adapters.fake import FakeAdapter, FakeService
from control.runtime import ALLOW, ActionRecord
from engines.provisioning import Provisioner, ProvisionerConfig
from engines.provisioning.attribution import savings_by_lever
from engines.provisioning.plan import DAY, breakeven_utilisation, cheapest_fit, reservation_plan, run_out
from engines.registry import REGISTRY, RegistryError

QUIET = {"rightsize": False, "reserve": False, "capacity": False}


def drive(fake: FakeAdapter, eng: Provisioner, until: float, dt: float | None = None) -> list[ActionRecord]:
    """A minimal runtime: step, execute through the fake, feed the outcome back, advance the clock."""
    dt = dt or eng.cadence
    records: list[ActionRecord] = []
    while fake.now() < until:
        now = fake.now()
        obs = Observation(fake, now)
        try:
            acts = list(eng.step(now, obs))
        finally:
            obs.close()
        for a in acts:
            try:
                rec = ActionRecord(len(records) + 1, now, eng.name, a, ALLOW, "executed", fake.execute(a))
            except AdapterError as e:
                rec = ActionRecord(len(records) + 1, now, eng.name, a, ALLOW, "failed", None, type(e).__name__)
            records.append(rec)
            eng.on_result(rec)
        fake.advance(dt)
    return records


def busy_until(fake: FakeAdapter, service: str, t_idle: float, busy: float = 0.4) -> None:
    """The service and each of its servers at ``busy`` CPU until ``t_idle``, then 0 (no requests)."""
    def f(t: float) -> float:
        return busy if t < t_idle else 0.0

    fake.feed("cpu_util", {"service": service}, fn=f)
    fake.feed("request_rate", {"service": service}, fn=lambda t: 100.0 if t < t_idle else 0.0)
    for s in fake.servers(service=service):
        fake.feed("server_cpu_util", {"server": s.id}, fn=f)


def test_idle_detected_within_a_minute_of_the_hour_and_never_below_min() -> None:
    fake = FakeAdapter([FakeService("rep", "small", 4, min_servers=1, stateful=False)])
    busy_until(fake, "rep", t_idle=600.0)
    eng = Provisioner(ProvisionerConfig(**QUIET))
    recs = drive(fake, eng, until=600 + 3600 - 30)
    assert not [r for r in recs if isinstance(r.action, DeleteServer)], "nothing before the hour"
    recs += drive(fake, eng, until=600 + 3600 + 60)
    dels = [r for r in recs if isinstance(r.action, DeleteServer)]
    assert len(dels) == 3  # 4 servers, min 1
    assert all(600 + 3600 <= r.at <= 600 + 3600 + 60 for r in dels)
    assert dels[0].action.evidence["lever"] == "idle" and dels[0].action.evidence["saving_per_hour"] > 0
    recs += drive(fake, eng, until=4 * 3600)
    assert len([r for r in recs if isinstance(r.action, DeleteServer)]) == 3
    assert fake.services()[0].active == 1


def test_idle_detection_reads_back_when_the_engine_starts_late() -> None:
    """Started after the service went idle, it dates the idle start from the metric window, not from itself."""
    fake = FakeAdapter([FakeService("rep", "small", 2, min_servers=0, stateful=False)])
    busy_until(fake, "rep", t_idle=0.0)
    fake.advance(3000)
    eng = Provisioner(ProvisionerConfig(**QUIET, idle_keep_last=False))
    recs = drive(fake, eng, until=3600 + 60)
    assert len([r for r in recs if isinstance(r.action, DeleteServer)]) == 2


def test_stateful_servers_are_shelved_never_deleted() -> None:
    fake = FakeAdapter([FakeService("db", "small", 3, min_servers=1, stateful=True)])
    busy_until(fake, "db", t_idle=0.0)
    eng = Provisioner(ProvisionerConfig(**QUIET))
    recs = drive(fake, eng, until=2 * 3600)
    assert not [r for r in recs if isinstance(r.action, DeleteServer)]
    shelved = [r for r in recs if isinstance(r.action, ShelveServer)]
    assert len(shelved) == 2
    assert sorted(s.status for s in fake.servers(service="db")) == ["ACTIVE", "SHELVED_OFFLOADED",
                                                                     "SHELVED_OFFLOADED"]


def test_a_busy_server_is_not_idle() -> None:
    fake = FakeAdapter([FakeService("web", "small", 3, stateful=False)])
    busy_until(fake, "web", t_idle=1e9, busy=0.3)
    eng = Provisioner(ProvisionerConfig(**QUIET))
    recs = drive(fake, eng, until=3 * 3600, dt=60)
    assert not recs


def test_rightsizing_picks_the_cheapest_fitting_flavor_one_server_at_a_time() -> None:
    fake = FakeAdapter([FakeService("search", "large", 3, min_servers=3, stateful=False)])
    for m, v in (("cpu_util", 0.1), ("memory_util", 0.08), ("disk_util", 0.05), ("request_rate", 50.0)):
        fake.feed(m, {"service": "search"}, fn=lambda t, v=v: v * (1 + 0.1 * np.sin(t / 3600)))
    for s in fake.servers(service="search"):
        fake.feed("server_cpu_util", {"server": s.id}, fn=lambda t: 0.1)
    eng = Provisioner(ProvisionerConfig(idle=False, reserve=False, capacity=False, rightsize_min_history_s=6 * 3600,
                                        rightsize_settle_s=600))
    fake.advance(7 * 3600)
    recs = drive(fake, eng, until=7 * 3600 + 1800, dt=60)
    rs = [r for r in recs if isinstance(r.action, ResizeServer)]
    assert rs, "a plan on 7 h of history"
    assert {r.action.flavor for r in rs} == {"medium"}  # 8 vCPU x 0.11 / 0.5 = 1.8 -> 2 vCPUs; 32 GB x 0.088 / 0.85
    assert [r.at for r in rs] == sorted(r.at for r in rs) and all(b.at - a.at >= 600 for a, b in zip(rs, rs[1:], strict=False))
    ev = rs[0].action.evidence
    assert ev["lever"] == "rightsize" and ev["from"] == "large" and ev["p95_cpu"] == pytest.approx(0.11, abs=0.005)
    assert ev["saving_per_hour"] == pytest.approx(1.6 - 0.2)


def test_cheapest_fit_by_hand() -> None:
    from adapters.base import Flavor

    fl = {f.name: f for f in (Flavor("s", 2, 4096, 40), Flavor("m", 4, 8192, 80), Flavor("x", 16, 32768, 320),
                              Flavor("r", 4, 32768, 160))}
    prices = {"s": 0.05, "m": 0.10, "x": 0.40, "r": 0.25}
    # 16 vCPU at p95 0.12 -> 3.84 vCPUs at 0.5; 32 GB x 0.15 / 0.85 = 5783 MB; disk 320 x 0.2 / 0.9 = 71 GB
    c = cheapest_fit(fl, prices, "x", 0.12, 0.15, 0.5, 0.85, 0.2, 0.9)
    assert c is not None and c.flavor == "m" and c.need_vcpus == pytest.approx(3.84)
    # memory binds: 32 GB x 0.5 / 0.85 = 19275 MB -> only x and r hold it; r is cheaper
    c = cheapest_fit(fl, prices, "x", 0.12, 0.5, 0.5, 0.85, 0.2, 0.9)
    assert c is not None and c.flavor == "r"
    assert cheapest_fit(fl, prices, "x", float("nan"), 0.1, 0.5, 0.85) is None


def test_retry_elsewhere_is_bounded_and_never_loops() -> None:
    fake = FakeAdapter([FakeService("web", "large", 0, min_servers=2, stateful=False)], quotas={"p": (0, 0, 0)})
    eng = Provisioner(ProvisionerConfig(**QUIET, idle=False, spot_services=("web",), retry_max=3))
    recs = drive(fake, eng, until=3600)
    creates = [r for r in recs if isinstance(r.action, CreateServer)]
    roots = {r.action.request_id.split("~")[0] for r in creates}
    # each original request: itself plus at most retry_max retries, all failing (nothing fits)
    for root in roots:
        mine = [r for r in creates if r.action.request_id.split("~")[0] == root]
        assert 1 <= len(mine) <= 1 + 3
        assert all(r.outcome == "failed" for r in mine)
        assert len({(r.action.zone, r.action.flavor) for r in mine}) == len(mine), "never the same place twice"
    notes = [r for r in recs if isinstance(r.action, Notify)]
    assert len(notes) == len(roots) and "stopped" in notes[0].action.message
    assert eng.gave_up
    # after giving up, the min guard backs off 30 minutes: two tries in the hour, not one per step
    firsts = sorted({r.at for r in creates if "~" not in r.action.request_id})
    assert len(firsts) == 2 and firsts[1] - firsts[0] >= 1800 and len(roots) == 4  # one per missing server
    hyps = [("hv-a", "az-a", "r", 2, 4096, 100), ("hv-b", "az-b", "r", 2, 4096, 100)]
    fake = FakeAdapter([FakeService("web", "large", 0, min_servers=2, stateful=False)], hypervisors=hyps)
    eng = Provisioner(ProvisionerConfig(**QUIET, idle=False, spot_services=("web",), retry_max=3))
    recs = drive(fake, eng, until=600)
    creates = [r for r in recs if isinstance(r.action, CreateServer)]
    done = [r for r in creates if r.outcome == "executed"]
    assert len(done) == 2 and len(creates) <= 2 * (1 + 3)  # no large fits anywhere: the nearest flavor does
    assert {r.action.flavor for r in done} == {"medium"} and {r.action.zone for r in done} == {"az-a", "az-b"}


def test_retry_finds_another_zone() -> None:
    hyps = [("hv-a", "az-a", "r", 2, 4096, 100), ("hv-b", "az-b", "r", 64, 1 << 20, 10_000)]
    fake = FakeAdapter([FakeService("web", "large", 0, min_servers=1, stateful=False)], hypervisors=hyps)
    eng = Provisioner(ProvisionerConfig(**QUIET, idle=False))
    obs = Observation(fake, 0.0)
    eng.step(0.0, obs)  # learns the flavors and hypervisors
    obs.close()
    a = CreateServer(service="web", zone="az-a", request_id="prov-test-1")
    eng.on_result(ActionRecord(1, 0.0, eng.name, a, ALLOW, "failed", None, "NoValidHost"))
    retry = eng.queue[0]
    assert isinstance(retry, CreateServer) and retry.zone == "az-b" and retry.request_id == "prov-test-1~1"
    assert fake.execute(retry).ok


def test_spot_preemption_falls_back_to_on_demand_and_keeps_min() -> None:
    fake = FakeAdapter([FakeService("batch", "small", 5, min_servers=4, stateful=False)])
    fake.feed("cpu_util", {"service": "batch"}, fn=lambda t: 0.4)
    fake.feed("request_rate", {"service": "batch"}, fn=lambda t: 100.0)
    eng = Provisioner(ProvisionerConfig(**QUIET, idle=False, spot_services=("batch",)))
    drive(fake, eng, until=120)
    for s in list(fake.servers(service="batch"))[:3]:  # the provider takes three back
        fake.execute(DeleteServer(server_id=s.id))
    recs = drive(fake, eng, until=240)
    fb = [r for r in recs if isinstance(r.action, CreateServer) and r.action.pricing == "on_demand"]
    assert sum(r.action.count for r in fb) == 2  # 2 left, min 4
    assert len({r.action.zone for r in fb}) == 2, "spread over zones"
    assert fake.services()[0].active + fake.services()[0].building >= 4


def test_reserved_breakeven_by_hand() -> None:
    # reserved 0.06/h vs on-demand 0.10/h: a committed server must run 60 % of its term (432 h of 720)
    assert breakeven_utilisation(0.06, 0.10) == pytest.approx(0.6)
    counts = [4] * 50 + [2] * 50  # half the time 4 servers, half 2: slots 1-2 always used, 3-4 half the time
    p = reservation_plan(counts, on_demand=0.10, reserved=0.06, term_s=30 * DAY, margin=0.05)
    assert p.count == 2 and p.slot_utilisation == (1.0, 1.0, 0.5, 0.5)
    assert p.breakeven_hours == pytest.approx(432.0)
    assert p.saving_per_hour == pytest.approx(2 * (0.10 - 0.06))
    # slots 3-4 at 50 % would lose money: 0.10 x 0.5 < 0.06
    assert reservation_plan([4] * 100, 0.10, 0.06, 30 * DAY, already=3).count == 1
    assert reservation_plan(counts, 0.10, 0.099, 30 * DAY).count == 0  # no margin over the break-even


def test_capacity_runs_out_on_a_known_linear_series() -> None:
    t = np.arange(0, 2 * DAY + 1, 300.0)
    used = 100 + 10 * t / DAY  # +10 vCPUs a day from 100
    ro = run_out(t, used, capacity=130.0, now=2 * DAY, horizon_s=7 * DAY)
    assert ro is not None and ro.slope_per_day == pytest.approx(10.0)
    assert ro.full_at == pytest.approx(3 * DAY, rel=1e-6) and ro.days_left(2 * DAY) == pytest.approx(1.0)
    assert run_out(t, used, capacity=200.0, now=2 * DAY, horizon_s=7 * DAY).full_at is None  # day 10: past
    assert run_out(t, used, capacity=200.0, now=2 * DAY, horizon_s=9 * DAY).full_at == pytest.approx(10 * DAY)
    assert run_out(t, used, capacity=110.0, now=2 * DAY, horizon_s=DAY).full_at == 2 * DAY  # already full


def test_capacity_flag_is_a_notify_with_the_day() -> None:
    fake = FakeAdapter([FakeService("web", "small", 0, stateful=False)],
                       hypervisors=[("hv-a", "az-a", "r", 64, 1 << 20, 10_000)])
    eng = Provisioner(ProvisionerConfig(idle=False, rightsize=False, reserve=False, capacity_min_history_s=3600))
    recs: list[ActionRecord] = []
    for _k in range(40):  # one more server every 15 minutes: +96 vCPUs a day on 64
        fake.execute(CreateServer(service="web"))
        recs += drive(fake, eng, until=fake.now() + 900, dt=300)
    notes = [r.action for r in recs if isinstance(r.action, Notify)]
    assert notes and notes[0].component == "az-a" and notes[0].evidence["lever"] == "capacity"
    assert notes[0].evidence["days_left"] < 1 and notes[0].evidence["day"] == 1  # day 1: the first 24 h
    assert len(notes) <= 3, "no note per step: only when the day moves"


def test_savings_by_lever_from_the_log() -> None:
    a = DeleteServer(server_id="srv-1", evidence={"lever": "idle", "saving_per_hour": 0.2})
    b = ResizeServer(server_id="srv-2", flavor="m", evidence={"lever": "rightsize", "saving_per_hour": 0.3})
    recs = [ActionRecord(1, 0.0, "provisioner", a, ALLOW, "executed"),
            ActionRecord(2, 3600.0, "provisioner", b, ALLOW, "executed"),
            ActionRecord(3, 3600.0, "provisioner", b, ALLOW, "failed")]
    out = savings_by_lever(recs, run_end=7200.0)
    assert out["idle"] == {"actions": 1, "saving_per_hour": 0.2, "saving": pytest.approx(0.4)}
    assert out["rightsize"]["actions"] == 1 and out["rightsize"]["saving"] == pytest.approx(0.3)
    assert out["reserved"]["actions"] == 0


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(RegistryError, match="idle_s"):
        REGISTRY.engine("provisioner").build({"idle_s": -1})
    with pytest.raises(RegistryError, match="rightsize_min_history_s"):
        REGISTRY.engine("provisioner").build({"rightsize_min_history_s": 10, "rightsize_history_s": 5})


def test_capacity_follows_daily_peaks_that_grow_with_the_traffic() -> None:
    t = np.arange(0, 2 * DAY + 1, 300.0)
    used = (100 + 20 * t / DAY) * (1 + 0.3 * np.sin(2 * np.pi * t / DAY))  # peaks 1.3 x a growing mean
    ro = run_out(t, used, capacity=200.0, now=2 * DAY, horizon_s=7 * DAY)
    # the peaks reach 200 when (100 + 20 d) x 1.3 = 200: d = 2.69; a mean-only trend would say later
    assert ro is not None and ro.full_at is not None and 2.4 * DAY <= ro.full_at <= 2.8 * DAY


def test_a_service_emptied_when_idle_gets_a_server_back_with_its_traffic() -> None:
    fake = FakeAdapter([FakeService("rep", "small", 2, min_servers=0, stateful=False)])
    busy_until(fake, "rep", t_idle=0.0)
    eng = Provisioner(ProvisionerConfig(**QUIET, idle_keep_last=False))
    recs = drive(fake, eng, until=3600 + 120)
    assert len([r for r in recs if isinstance(r.action, DeleteServer)]) == 2 and not fake.servers(service="rep")
    fake.feed("request_rate", {"service": "rep"}, fn=lambda t: 50.0 if t > 4000 else 0.0)
    recs = drive(fake, eng, until=4100)
    made = [r for r in recs if isinstance(r.action, CreateServer)]
    assert len(made) == 1 and made[0].outcome == "executed" and 4000 < made[0].at <= 4000 + 60


def test_by_default_the_idle_lever_leaves_going_to_zero_to_the_scaler() -> None:
    fake = FakeAdapter([FakeService("rep", "small", 2, min_servers=0, stateful=False)])
    busy_until(fake, "rep", t_idle=0.0)
    recs = drive(fake, Provisioner(ProvisionerConfig(**QUIET)), until=2 * 3600)
    assert len([r for r in recs if isinstance(r.action, DeleteServer)]) == 1  # the last server stays
