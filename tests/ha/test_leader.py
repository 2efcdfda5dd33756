"""Leader election (issue 13 item 7): one acting controller per scope, failover without duplicates.

The in-process tests drive :class:`control.leader.LeaderLease` on tooz's ``file://`` driver; the two-process
tests run two real live controllers (``LiveController`` + ``min_floor_keeper``) in separate processes on one
:class:`tests.ha.world.FileWorld` and ``kill -9`` the leader in the middle of a create.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.base import CreateServer
from adapters.live_config import parse_config
from control.leader import (
    FencedAdapter,
    HAError,
    LeaderGate,
    LeaderLease,
    Leadership,
    NotLeader,
    check_url,
    lease_from,
    lock_name,
    redact,
    run_with_leadership,
)
from control.runtime import ALLOW, AllowAll
from tests.ha.world import FileWorld

LEASE = 2.0
BEAT = 0.1


# ------------------------------------------------------------------ in one process
def test_the_lock_is_per_scope_not_per_path() -> None:
    assert lock_name("default", ["p1", "p2"], "c") == lock_name("default", ["p2", "p1"], "c")
    assert lock_name("default", ["p1"]) != lock_name("other", ["p1"])
    assert lock_name("default", ["p1"]) != lock_name("default", ["p2"])


def test_bad_backend_urls_say_what_is_allowed() -> None:
    with pytest.raises(HAError, match="allowed: file:///DIR"):
        check_url("etcd3+http://x:2379")
    with pytest.raises(HAError, match="absolute directory"):
        check_url("file://relative/dir")
    with pytest.raises(HAError, match="shorter than the lease"):
        LeaderLease("file:///tmp/x", "n", lease=1.0, heartbeat=2.0)
    assert redact("mysql://u:secret@h:3306/db") == "mysql://u:***@h:3306/db"


def test_one_leader_then_the_other_after_release(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/ha"
    a = LeaderLease(url, "scope-x", lease=LEASE, heartbeat=BEAT)
    b = LeaderLease(url, "scope-x", lease=LEASE, heartbeat=BEAT)
    other = LeaderLease(url, "scope-y", lease=LEASE, heartbeat=BEAT)
    try:
        assert a.poll() is True
        assert b.poll() is False and not b.is_leader
        assert other.poll() is True  # another scope: its own lock
        assert a.poll() is True  # confirmed
        a.close()
        assert b.poll() is True
        assert b.describe()["role"] == "leader" and b.state.acquisitions == 1
    finally:
        for x in (a, b, other):
            x.close()


def test_the_lease_runs_out_without_confirmation(tmp_path: Path) -> None:
    clock = [100.0]
    a = LeaderLease(f"file://{tmp_path}/ha", "s", lease=LEASE, heartbeat=0.5, monotonic=lambda: clock[0])
    try:
        assert a.poll()
        clock[0] += LEASE - 0.5 - 0.01
        assert a.is_leader
        clock[0] += 0.02  # the heartbeat thread was stuck: no confirmation within lease - heartbeat
        assert not a.is_leader
    finally:
        a.close()


def test_a_lost_lock_stops_acting_at_once(tmp_path: Path) -> None:
    lease = LeaderLease(f"file://{tmp_path}/ha", "s", lease=LEASE, heartbeat=BEAT)
    changes: list[bool] = []
    lease.on_change = changes.append
    leadership = Leadership(lease, say=lambda m: None)
    gate = LeaderGate(AllowAll(), leadership)

    class Inner:
        executed = 0

        def execute(self, action: Any) -> Any:
            Inner.executed += 1
            return None

    fenced = FencedAdapter(Inner(), leadership)
    act = CreateServer(service="web")
    try:
        assert gate.review(0, "e", act, None).rule == "not-leader"  # before the lease
        lease.poll()
        assert gate.review(0, "e", act, None).rule == "not-leader"  # leader, not yet reconciled
        leadership.tick()
        assert leadership.acting and gate.review(0, "e", act, None) == ALLOW
        fenced.execute(act)
        os.unlink(Path(str(tmp_path)) / "ha" / lease.name)  # someone removed the lock file: no longer exclusive
        lease.poll()
        assert not leadership.acting and gate.review(0, "e", act, None).rule == "not-leader"
        with pytest.raises(NotLeader):
            fenced.execute(act)
        assert Inner.executed == 1 and changes == [True, False]
        leadership.tick()
        assert not leadership.reconciled
    finally:
        lease.close()


# ------------------------------------------------------------------ two processes
def _controller(world_path: str, url: str, state: str, out: str, pre: float, post: float, duration: float) -> None:
    """One live controller process: act mode, min_floor_keeper, under the scope's lease."""
    from engines.floor import MinFloorKeeper
    from zeroops.live import LiveController

    world = FileWorld(world_path, pre=pre, post=post)
    config = parse_config({"services": [{"name": "web", "flavor": "small", "image": "img", "min_servers": 1}],
                           "keep_min_servers": False}, "<ha-test>")
    with open(out, "w", buffering=1) as f:
        ctl = LiveController(world, config, "act", engines=[MinFloorKeeper(cadence=0.1)], gate=AllowAll(),
                             state_dir=state, out=f)
        lease = lease_from(url, ctl.scope.name, ctl.scope.projects, config.cloud,
                           {"lease": LEASE, "heartbeat": BEAT})
        f.write(f"started {os.getpid()}\n")
        try:
            run_with_leadership(ctl, lease, duration)
        finally:
            ctl.close()


def _wait(cond: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _read(p: Path) -> str:
    return p.read_text() if p.exists() else ""


@pytest.fixture
def pair(tmp_path: Path) -> Any:
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []

    def spawn(name: str, pre: float, post: float) -> tuple[Any, Path]:
        out = tmp_path / f"{name}.out"
        p = ctx.Process(target=_controller, args=(str(tmp_path / "world.db"), f"file://{tmp_path}/ha",
                                                   str(tmp_path / f"state-{name}"), str(out), pre, post, 30.0),
                        daemon=True)
        p.start()
        procs.append(p)
        return p, out

    yield spawn
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
        p.join(5)


@pytest.mark.parametrize("cut", ["before-accept", "after-accept"])
def test_kill_the_leader_mid_create_the_standby_acts_exactly_once(tmp_path: Path, pair: Any, cut: str) -> None:
    """Leader A is killed (SIGKILL) inside a create: before the cloud accepted it, or after (server BUILDing).
    Standby B, on its own journal and state directory, never acts while A lives, takes over within the
    lease, and the service ends with exactly one server."""
    pre, post = (30.0, 0.0) if cut == "before-accept" else (0.0, 30.0)
    world = FileWorld(tmp_path / "world.db")
    world.set_min(1)
    a, a_out = pair("a", pre, post)
    _wait(lambda: "acting as leader" in _read(a_out), 20, "A to lead")
    b, b_out = pair("b", 0.0, 0.0)
    _wait(lambda: "started" in _read(b_out), 20, "B to start")
    phase = "begin" if cut == "before-accept" else "accepted"
    _wait(lambda: any(c[0] == a.pid and c[1] == phase for c in world.calls()), 10, f"A's create to reach {phase}")
    b_decisions = tmp_path / "state-b" / "live-decisions.jsonl"
    if cut == "before-accept":  # B's engine wants the missing server too: denied, rule not-leader
        _wait(lambda: "not-leader" in _read(b_decisions), 10, "B to deny as standby")
    else:
        time.sleep(0.5)  # B's engine sees A's server BUILDing: nothing to do
    assert not [c for c in world.calls() if c[0] == b.pid], "the standby acted while the leader lived"
    os.kill(a.pid, signal.SIGKILL)
    killed = time.time()
    a.join(5)
    _wait(lambda: "acting as leader" in _read(b_out), LEASE + 5, "B to take over")
    took_over = time.time() - killed
    time.sleep(1.0)  # B steps ~10 times as leader: any duplicate would show now
    b_calls = [c for c in world.calls() if c[0] == b.pid]
    rows = world.rows()
    assert len(rows) == 1, f"expected exactly one server after failover, got {rows}"
    if cut == "before-accept":
        assert [c[1] for c in b_calls] == ["begin", "accepted", "active"], b_calls  # B creates the missing one
        assert b_calls[0][3] - killed < LEASE
    else:
        assert b_calls == [], f"B duplicated A's accepted create: {b_calls}"
    print(f"[ha] {cut}: standby acting {took_over:.3f} s after kill -9 (lease {LEASE} s)")
    assert took_over < LEASE, f"takeover took {took_over:.2f} s, lease {LEASE} s"


def test_the_approval_executor_waits_while_standby(tmp_path: Path) -> None:
    """An approved proposal is not run by a standby: the executor's re-check answers not-leader (it stays approved)."""
    import io

    from adapters.fake import FakeAdapter, FakeService
    from control.leader import attach_leadership
    from zeroops.live import LiveController

    config = parse_config({"services": [{"name": "web", "flavor": "small", "image": "i", "min_servers": 1}],
                           "keep_min_servers": False}, "<t>")
    url = f"file://{tmp_path}/ha"
    holder = LeaderLease(url, "scope", lease=LEASE, heartbeat=BEAT)
    ctl = LiveController(FakeAdapter([FakeService("web", servers=0, min_servers=1)]), config, "act", engines=[],
                         state_dir=tmp_path / "s", out=io.StringIO())
    lease = LeaderLease(url, "scope", lease=LEASE, heartbeat=BEAT)
    try:
        assert holder.poll()
        leadership = attach_leadership(ctl, lease)
        gate = ctl.plane.kit.executor.gate
        assert isinstance(gate, LeaderGate)
        assert gate.recheck(0.0, "e", CreateServer(service="web"), None).rule == "not-leader"
        holder.close()
        lease.poll()
        leadership.tick()
        assert leadership.acting and gate.recheck(0.0, "e", CreateServer(service="web"), None).rule != "not-leader"
    finally:
        lease.close()
        holder.close()
        ctl.close()
