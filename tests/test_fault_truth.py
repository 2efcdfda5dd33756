"""Faults are the same for every engine set on a seed; their ground truth says what ended them and when."""

from __future__ import annotations

import pytest

from scenarios.loader import load_scenario
from scenarios.runner import run_scenario
from tests.builders import make_scenario
from twin.world import World

STANDARD = "scenarios/standard"


def _faults(name: str, engines: str) -> list[tuple]:
    r = run_scenario(load_scenario(f"{STANDARD}/{name}.yaml"), engines)
    return [(f.id, f.type, f.start, f.root_component, tuple(f.hypervisors), tuple(f.zones), f.retargeted)
            for f in r.world.truth.faults]


@pytest.mark.parametrize("name", ["hypervisor-failure", "incident-mix"])
def test_fault_targets_and_onsets_do_not_depend_on_the_engines(name: str) -> None:
    static, reactive = _faults(name, "static"), _faults(name, "reactive")
    assert static and static == reactive


def test_jitter_moves_onsets_off_the_engine_cadences_deterministically() -> None:
    spec = {"type": "server_crash", "at": 600, "jitter": 30, "service": "api"}
    w1, w2 = World(make_scenario(faults=[spec])), World(make_scenario(faults=[spec]))
    (_, t1), (_, t2) = w1.faults.plan[0], w2.faults.plan[0]
    assert t1.onset == t2.onset and 600 <= t1.onset < 630 and t1.onset % 5 != 0
    other = World(make_scenario(seed=2, faults=[spec])).faults.plan[0][1].onset
    assert other != t1.onset
    # adding a fault moves no other fault's onset or target
    w3 = World(make_scenario(faults=[{"type": "bad_deploy", "at": 100, "service": "api"}, spec]))
    assert w3.faults.plan[1][1] == t1


def test_targets_come_from_the_initial_world() -> None:
    spec = {"type": "server_crash", "at": 900, "service": "api"}
    w = World(make_scenario(faults=[spec]))
    order = w.faults.plan[0][1].servers
    assert sorted(order) == [0, 1, 2, 3]  # api's four initial servers, in the fault's own order
    w.run(until=600)
    w.delete_server(f"srv-{order[0]:06d}")  # an engine deletes the drawn server before the onset
    w.create_servers("api")
    w.run(until=905)
    (rec,) = w.truth.faults
    assert rec.servers == [f"srv-{order[1]:06d}"] and not rec.retargeted  # the next in the fault's order


def test_retarget_when_every_initial_server_is_gone() -> None:
    spec = {"type": "server_crash", "at": 900, "service": "api"}
    w = World(make_scenario(faults=[spec]))
    new = w.create_servers("api")
    w.run(until=300)
    for i in range(4):
        w.delete_server(f"srv-{i:06d}")
    w.run(until=905)
    (rec,) = w.truth.faults
    assert rec.retargeted and rec.servers == [new[0]] and rec.root_component == new[0]


def test_resolving_action_is_the_action_after_which_the_fault_ended() -> None:
    scn = make_scenario(duration=1800, faults=[{"type": "server_crash", "at": 300, "service": "api"}])
    w = World(scn)
    w.run(until=400)
    (rec,) = w.truth.faults
    sid = rec.root_component
    assert sid == rec.servers[0] and rec.end is None
    w.set_metadata(sid, {"x": "1"})  # not an action listeners hear of
    w.restart_service("db", actor="automation")  # an action on a component the fault does not cover
    w.run(until=500)
    w.reboot_server(sid, hard=True, actor="someone")
    w.run()
    w.finish()
    assert rec.end is not None and rec.resolved_by == "someone"
    ra = rec.resolving_action
    assert ra["actor"] == "someone" and ra["kind"] == "reboot_server" and ra["target"] == sid
    assert ra["at"] <= rec.end < ra["at"] + scn.tick + 1e-9  # the tick right after it completed


def test_a_fault_that_expires_resolved_itself() -> None:
    scn = make_scenario(duration=1800, operator={"enabled": False},
                        faults=[{"type": "az_outage", "at": 300, "zone": "az-2", "duration": 600}])
    w = World(scn)
    w.run()
    w.finish()
    (rec,) = w.truth.faults
    assert rec.root_component == "az-2" and rec.resolved_by == "self" and rec.resolving_action is None
    assert rec.end is not None and rec.end >= 900


def test_mitigated_at_is_when_the_covered_slos_stop_breaching() -> None:
    # the db's pool leaks: its errors spread to the api upstream; a restart of the db ends the fault
    scn = make_scenario(duration=3600, operator={"enabled": False},
                        faults=[{"type": "db_pool_exhaustion", "at": 200, "service": "db", "severity": 3}])
    w = World(scn)
    w.run(until=1200)
    (rec,) = w.truth.faults
    assert rec.root_component == "db"
    opened = [b for b in w.truth.breaches if b[1] >= 200] + [
        (s, float(w.truth.breach_open[i]), None) for i, s in enumerate(w.svc_names)
        if w.truth.breach_open[i] == w.truth.breach_open[i]]
    assert opened, "the leak breaches an SLO"
    w.restart_service("db", actor="automation")
    w.run()
    w.finish()
    assert rec.resolving_action["kind"] == "restart_service" and rec.resolved_by == "automation"
    assert rec.mitigated_at is not None
    # no covered service (db, and api which calls it) is in breach after mitigated_at
    late = [b for b in w.truth.breaches if b[0] in ("api", "db") and b[2] > rec.mitigated_at + 1e-9]
    assert not late
    ends = [b[2] for b in w.truth.breaches if b[0] in ("api", "db") and b[1] >= 200]
    assert rec.mitigated_at == max(ends)


def test_never_breached_means_no_mitigation_time() -> None:
    scn = make_scenario(duration=900, faults=[{"type": "server_crash", "at": 300, "service": "api"}])
    w = World(scn)
    w.run()
    w.finish()
    (rec,) = w.truth.faults
    assert not [b for b in w.truth.breaches if b[1] >= 300]
    assert rec.mitigated_at is None
