"""The inventory the adapter shows lags the truth as Nova's does; telemetry shows the symptom at once."""

from __future__ import annotations

import numpy as np

from adapters.sim import SimAdapter
from tests.builders import make_scenario
from twin.world import World


def _world(**kw: object) -> tuple[World, SimAdapter]:
    w = World(make_scenario(duration=3600, operator={"enabled": False}, **kw))
    return w, SimAdapter(w)


def test_a_crash_shows_in_telemetry_at_once_and_in_the_inventory_at_the_next_power_sync() -> None:
    w, a = _world(faults=[{"type": "server_crash", "at": 130, "service": "api"}])
    w.run(until=136)
    (rec,) = w.truth.faults
    sid = rec.servers[0]
    up = a.metric_window("server_up", {"server": sid}, 10)
    assert up.v[-1] == 0.0  # the next scrape sees it down
    assert a.server(sid).status == "ACTIVE"  # Nova has not synced the power state yet
    assert not a.servers(status="ERROR")
    assert next(s for s in a.services() if s.name == "api").failed == 0
    w.run(until=599)
    assert a.server(sid).status == "ACTIVE"
    w.run(until=601)  # the periodic sync (every power_state_sync_interval = 600 s)
    assert a.server(sid).status == "ERROR" and [s.id for s in a.servers(status="ERROR")] == [sid]
    assert next(s for s in a.services() if s.name == "api").failed == 1


def test_the_sync_interval_is_configurable() -> None:
    w, a = _world(faults=[{"type": "server_crash", "at": 130, "service": "api"}],
                  inventory={"power_state_sync_interval": 60})
    w.run(until=181)
    assert a.server(w.truth.faults[0].servers[0]).status == "ERROR"


def test_an_action_shows_at_once() -> None:
    w, a = _world(faults=[{"type": "server_crash", "at": 130, "service": "api"}])
    w.run(until=140)
    sid = w.truth.faults[0].servers[0]
    w.stop_server(sid)  # an API action: the cloud reflects it when it completes (long before the next sync)
    w.run(until=200)
    assert a.server(sid).status == "SHUTOFF"
    w.delete_server(sid)
    assert a.server(sid) is None


def test_a_dead_host_shows_down_after_service_down_time_and_its_servers_keep_their_state() -> None:
    w, a = _world(faults=[{"type": "hypervisor_failure", "at": 130}])
    w.run(until=136)
    (rec,) = w.truth.faults
    host = rec.hypervisors[0]
    state = {h.name: h.state for h in a.hypervisors()}
    assert state[host] == "up"
    assert np.nanmin([a.metric_window("server_up", {"server": s}, 10).v[-1] for s in rec.servers]) == 0.0
    w.run(until=189)
    assert {h.name: h.state for h in a.hypervisors()}[host] == "up"
    w.run(until=191)  # 60 s (service_down_time) after it died
    assert {h.name: h.state for h in a.hypervisors()}[host] == "down"
    w.run(until=1300)  # power syncs run on the compute hosts: a dead host's servers are not synced
    assert {a.server(s).status for s in rec.servers} == {"ACTIVE"}
    w.migrate_server(rec.servers[0])  # evacuate: shows once done
    w.run(until=1400)
    assert a.server(rec.servers[0]).status == "ACTIVE" and a.server(rec.servers[0]).hypervisor != host


def test_the_reactive_restarter_replaces_servers_on_a_host_shown_down() -> None:
    """Servers on a dead host stay ACTIVE in the API; the baseline acts once the host shows down (60 s)."""
    from scenarios.runner import run_scenario

    scn = make_scenario(duration=1800, operator={"enabled": False},
                        faults=[{"type": "hypervisor_failure", "at": 300}], engines=["reactive"])
    r = run_scenario(scn, "reactive")
    (inc,) = r.score.incidents
    assert inc.resolved_by == "automation"
    deletes = [x for x in r.records if x.kind == "delete_server" and x.outcome == "executed"]
    assert deletes and min(x.at for x in deletes) >= 300 + 60  # not before the host shows down
