"""The executor against the in-memory fake world, through the real choke point."""

from __future__ import annotations

import pytest

from adapters.base import CreateServer, Observation, Page, RebootServer, SetServiceSetting
from adapters.fake import FakeService
from engines.runbooks import RunbookError, RunbookLibrary
from engines.runbooks.loading import parse_runbook
from tests.runbooks.harness import ScriptedGate, World, ctx

LIB = RunbookLibrary.load(builtin=True)


def crash_world(gate: object = None) -> World:
    def values(w: World) -> dict:
        n = w.serving("web")
        out = {("active_servers", (("service", "web"),)): float(n),
               ("error_ratio", (("service", "web"),)): 0.001 if n >= 3 else 0.2}
        for s in w.fake.servers(service="web"):
            up = s.status == "ACTIVE" and s.id not in w.crashed
            out[("server_up", (("server", s.id),))] = 1.0 if up else 0.0
        return out

    w = World([FakeService("web", servers=3, min_servers=1)], values, gate=gate)
    w.advance(300)
    w.crashed.add("srv-1")  # telemetry sees it; the inventory still lists it ACTIVE (Nova's sync lags)
    w.advance(5)
    return w


def heal_rebooted(w: World) -> None:
    for _, a, _ in w.fake.executed:
        if isinstance(a, RebootServer):
            w.crashed.discard(a.server_id)


def test_crash_runbook_reboots_the_dead_server_and_verifies() -> None:
    w = crash_world()
    c = ctx("srv-1", "server_crash", at=w.fake.t)
    obs = Observation(w.fake, w.fake.t)
    books = LIB.match(c, obs)
    obs.close()
    assert books[0].name == "server-crash-reboot"
    assert any("server_crash" in why for why in books[0].why)
    d = w.start(LIB, books[0], c)
    w.drive(d, 400, each=lambda: heal_rebooted(w))
    assert d.run.status == "succeeded", d.run.log
    assert w.statuses == ["running", "verifying", "succeeded"]
    reboots = [a for a in d.issued if isinstance(a, RebootServer)]
    assert [(a.server_id, a.hard, a.incident) for a in reboots] == [("srv-1", True, "inc-1")]
    assert reboots[0].evidence["runbook"] == "server-crash-reboot" and reboots[0].confidence == 0.9
    assert "server-crash-reboot" in reboots[0].reason
    # verified only once capacity held over the 20 s window after the reboot's 20 s (samples every 5 s)
    assert w.fake.t - w.fake.executed[0][0] >= 35


def test_failed_verification_rolls_back_and_pages() -> None:
    def values(w: World) -> dict:  # the pool stays exhausted whatever the runbook does
        return {("pool_util", (("service", "db"),)): 1.0, ("error_ratio", (("service", "db"),)): 0.3}

    w = World([FakeService("db", servers=2, settings={"pool_size": 100})], values)
    w.advance(60)
    c = ctx("db", "db_pool_exhaustion", at=w.fake.t, metric="pool_util", severity="P1")
    d = w.start(LIB, "db-pool-raise-and-restart", c)
    w.drive(d, 900)
    run = d.run
    assert run.status == "escalated", run.log
    assert w.statuses == ["running", "verifying", "rolling_back", "escalated"]
    kinds = [a.kind for a in d.issued]
    assert kinds == ["set_service_setting", "restart_service", "set_service_setting", "page"]
    raised, restored = [a for a in d.issued if isinstance(a, SetServiceSetting)]
    assert (raised.value, restored.value) == (200.0, 100.0)
    assert w.fake.services()[0].settings["pool_size"] == 100.0
    page = d.issued[-1]
    assert isinstance(page, Page) and page.incident_id == "inc-1" and page.severity == "P1" and page.who == "oncall"
    assert "verification did not hold" in page.why and "pool_util" in page.why and "rolled back" in page.why
    assert run.step(w.fake.t + 5, None) == []  # type: ignore[arg-type]  # finished: nothing more, ever


def test_a_denied_action_escalates_without_doing_anything() -> None:
    w = crash_world(gate=ScriptedGate(deny=("reboot_server",)))
    c = ctx("srv-1", "server_crash", at=w.fake.t)
    d = w.start(LIB, "server-crash-reboot", c)
    w.drive(d, 60)
    assert d.run.status == "escalated"
    assert [a.kind for a in d.issued] == ["reboot_server", "page"]
    assert "denied by the safety gate (test-deny)" in d.issued[-1].why  # type: ignore[attr-defined]
    assert not [a for _, a, _ in w.fake.executed if isinstance(a, RebootServer)]


def test_an_action_awaiting_approval_is_never_reissued_and_the_run_still_ends() -> None:
    w = crash_world(gate=ScriptedGate(hold=("reboot_server",)))
    c = ctx("srv-1", "server_crash", at=w.fake.t)
    d = w.start(LIB, "server-crash-reboot", c)
    w.drive(d, 3600)
    reboots = [a for a in d.issued if isinstance(a, RebootServer)]
    assert len(reboots) == 1  # proposed once, never again while it waits
    assert d.run.status == "escalated"  # the timeout (8 min) ended the wait; nothing to roll back
    assert "timeout" in d.run.failure  # type: ignore[operator]
    assert w.fake.t - c.declared_at <= LIB.get("server-crash-reboot").timeout + 10


def test_an_approval_that_arrives_lets_the_run_go_on() -> None:
    w = crash_world(gate=ScriptedGate(hold=("reboot_server",)))
    c = ctx("srv-1", "server_crash", at=w.fake.t)
    d = w.start(LIB, "server-crash-reboot", c)
    w.drive(d, 30)
    (held,) = [a for a in d.issued if isinstance(a, RebootServer)]
    assert d.run.status == "running"
    rec = w.choke.execute_approved(w.fake.t, "ops", held, ScriptedGate().review(0, "", held, None))
    d.on_result(rec)
    w.drive(d, 300, each=lambda: heal_rebooted(w))
    assert d.run.status == "succeeded", d.run.log
    assert len([a for a in d.issued if isinstance(a, RebootServer)]) == 1


def test_failed_action_is_retried_only_after_its_failure_then_escalates() -> None:
    rb = parse_runbook({
        "name": "t-retry", "fault_classes": ["server_crash"],
        "steps": [{"action": "start_server", "params": {"server_id": "{server}"}, "retries": 2}],
        "verify": {"conditions": ["error_ratio < 0.01"]}}, "t.yaml")
    w = crash_world()  # srv-1 is ACTIVE in the inventory: start_server is a Conflict each time
    w.fake.set_status("srv-1", "ERROR")
    c = ctx("srv-1", "server_crash", at=w.fake.t)
    d = w.start(RunbookLibrary([rb]), rb, c)
    w.drive(d, 120)
    assert [a.kind for a in d.issued] == ["start_server"] * 3 + ["page"]
    assert d.run.status == "escalated" and "failed" in (d.run.failure or "")


def test_steps_wait_and_continue_on_failure_when_told() -> None:
    rb = parse_runbook({
        "name": "t-seq", "fault_classes": ["overload"],
        "steps": [{"action": "start_server", "params": {"server_id": "srv-1"}, "on_failure": "continue",
                   "wait": "30s"},
                  {"action": "create_server", "params": {"service": "{service}", "count": "{scale_out}"}}],
        "verify": {"conditions": ["servers ACTIVE >= 3", "servers BUILD == 0"], "within": "1m"}}, "t.yaml")

    def values(w: World) -> dict:
        return {("cpu_util", (("service", "web"),)): 0.9}

    w = World([FakeService("web", servers=2)], values)
    w.advance(30)
    d = w.start(RunbookLibrary([rb]), rb, ctx("web", "overload", at=w.fake.t))
    t0 = w.fake.t
    w.drive(d, 200)
    assert d.run.status == "succeeded", d.run.log
    creates = [(t, a) for t, a, _ in w.fake.executed if a.kind == "create_server"]
    assert len(creates) == 1 and creates[0][0] - t0 >= 30  # the wait held the next step back
    assert creates[0][1].count == 1  # HPA rule: ceil(2 x 0.9 / 0.6) = 3 -> one more


def test_a_proposal_that_never_got_approved_is_not_rolled_back() -> None:
    def values(w: World) -> dict:
        return {("pool_util", (("service", "db"),)): 1.0, ("error_ratio", (("service", "db"),)): 0.3}

    w = World([FakeService("db", servers=2, settings={"pool_size": 100})], values,
              gate=ScriptedGate(hold=("set_service_setting",)))
    w.advance(60)
    d = w.start(LIB, "db-pool-raise-and-restart", ctx("db", "db_pool_exhaustion", at=w.fake.t))
    w.drive(d, 900)
    assert d.run.status == "escalated" and "timeout" in (d.run.failure or "")
    assert [a.kind for a in d.issued] == ["set_service_setting", "page"]  # nothing executed: nothing to undo


def test_a_busy_server_is_retried_after_the_delay_and_record_only_steps_are_not_waited_for() -> None:
    rb = parse_runbook({
        "name": "t-busy", "fault_classes": ["server_crash"],
        "steps": [{"action": "reboot_server", "params": {"server_id": "{server}", "hard": True}, "retries": 1,
                   "retry_delay": "20s"},
                  {"action": "notify", "params": {"component": "{server}", "message": "rebooted"}}],
        "verify": {"conditions": ["server_up >= 1 for 10s"], "within": "2m"}}, "t.yaml")
    w = crash_world()
    w.fake.set_status("srv-1", "BUILD")  # a task in progress: the first reboot is a Conflict
    d = w.start(RunbookLibrary([rb]), rb, ctx("srv-1", "server_crash", at=w.fake.t))
    w.drive(d, 10)
    w.fake.set_status("srv-1", "ERROR")
    w.drive(d, 200, each=lambda: heal_rebooted(w))
    tries = [t for t, a, _ in w.fake.executed if a.kind == "reboot_server"]
    reboots = [a for a in d.issued if a.kind == "reboot_server"]
    assert len(reboots) == 2 and len(tries) == 1  # the Conflict raised before the fake recorded it
    assert d.run.status == "succeeded", d.run.log
    assert [a.kind for a in d.issued] == ["reboot_server", "reboot_server", "notify"]
    at = [r.at for r in w.choke.log.records if r.kind == "reboot_server"]  # type: ignore[attr-defined]
    assert at[1] - at[0] >= 20  # re-issued only after the retry delay


def test_a_partition_drain_never_takes_a_services_last_capacity() -> None:
    """web has servers in both zones: drained at once; db only in the partitioned zone: drained only once its
    replacements in the healthy zone serve."""
    hosts = [("hv-a", "az-a", "r1", 64, 262144, 4000), ("hv-b", "az-b", "r1", 64, 262144, 4000)]

    def values(w: World) -> dict:
        return {("error_ratio", (("service", s),)): 0.0 for s in ("web", "db")}

    w = World([FakeService("web", servers=0), FakeService("db", servers=0)], values, hypervisors=hosts,
              boot_delay=30.0)
    for svc, zone in (("web", "az-a"), ("web", "az-b"), ("db", "az-a")):
        w.fake.execute(CreateServer(service=svc, zone=zone))
    w.advance(60)
    d = w.start(LIB, "network-partition-drain-zone", ctx("az-a", "network_partition", at=w.fake.t))
    w.drive(d, 400)
    drains = [(t, a.service, dict(a.weights)) for t, a, _ in w.fake.executed if a.kind == "set_lb_weights"]
    boots = {a.service: t for t, a, _ in w.fake.executed if a.kind == "create_server" and a.incident}
    assert drains[0][1] == "web" and drains[0][0] < boots["db"]  # web drained at once
    db_drain = next(t for t, svc, _ in drains if svc == "db")
    assert db_drain >= boots["db"] + 30  # db only after its new server (30 s boot) served
    assert d.run.status == "succeeded", d.run.log


def test_when_names_an_item_variable() -> None:
    with pytest.raises(RunbookError, match=r"t.yaml: steps\[0\]: when: 'spare' is not a variable of for_each "
                                           r"zone_services; allowed: service, zone"):
        parse_runbook({"name": "t", "fault_classes": ["network_partition"],
                       "steps": [{"action": "notify", "for_each": "zone_services", "when": "spare > 1",
                                  "params": {"component": "{service}"}}]}, "t.yaml")
