"""The lease on MariaDB/MySQL (tooz's ``mysql://`` driver): controllers on several hosts.

Needs a reachable server: ``ZEROOPS_TEST_MYSQL_URL=mysql://user:password@host:port/db`` (``.ci/run`` points it at
the devcloud's MariaDB); without it every test here skips, saying so.
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

from control.leader import LeaderLease

URL = os.environ.get("ZEROOPS_TEST_MYSQL_URL", "")
pytestmark = [pytest.mark.mariadb, pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # tooz's PyMySQL calls
LEASE, BEAT = 2.0, 0.2


def _reachable() -> str | None:
    if not URL:
        return ("no MariaDB/MySQL for the HA tests: set ZEROOPS_TEST_MYSQL_URL=mysql://USER:PASSWORD@HOST:PORT/DB "
                "(.ci/run uses the devcloud's MariaDB)")
    lease = LeaderLease(URL, "zeroops-test-probe", lease=LEASE, heartbeat=BEAT)
    try:
        lease.poll()
        return None if not lease.state.last_error else f"MariaDB at {URL.split('@')[-1]} unusable: {lease.state.last_error}"
    finally:
        lease.close()


@pytest.fixture(scope="module")
def mysql_url() -> str:
    why = _reachable()
    if why:
        pytest.skip(why)
    return URL


def _holder(url: str, name: str, out: str) -> None:
    """A process that holds the lease and writes its role at every change."""
    lease = LeaderLease(url, name, lease=LEASE, heartbeat=BEAT)
    with open(out, "w", buffering=1) as f:
        lease.on_change = lambda leader: f.write(("leader" if leader else "standby") + f" {time.time()}\n")
        lease.start()
        while True:
            time.sleep(1)


@pytest.fixture
def holder(tmp_path: Path, mysql_url: str) -> Any:
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []

    def spawn(name: str) -> tuple[Any, Path]:
        out = tmp_path / f"{name}.{len(procs)}.out"
        p = ctx.Process(target=_holder, args=(mysql_url, name, str(out)), daemon=True)
        p.start()
        procs.append(p)
        end = time.monotonic() + 10
        while "leader" not in (out.read_text() if out.exists() else ""):
            assert time.monotonic() < end, "the holder process never became leader"
            time.sleep(0.02)
        return p, out

    yield spawn
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGKILL)
        p.join(5)


def _until_leader(lease: LeaderLease, timeout: float) -> float:
    t0 = time.monotonic()
    while not lease.poll():
        assert time.monotonic() - t0 < timeout, f"not leader after {timeout} s: {lease.describe()}"
        time.sleep(BEAT)
    return time.monotonic() - t0


def test_kill_9_the_holder_the_other_takes_over_within_a_heartbeat(holder: Any, mysql_url: str) -> None:
    name = f"zeroops-test-kill-{os.getpid()}"
    p, _ = holder(name)
    b = LeaderLease(mysql_url, name, lease=LEASE, heartbeat=BEAT)
    try:
        assert b.poll() is False
        os.kill(p.pid, signal.SIGKILL)  # its connection closes: MariaDB releases GET_LOCK
        took = _until_leader(b, LEASE)
        print(f"[ha] mysql: leader {took:.3f} s after kill -9 of the holder (lease {LEASE} s)")
        assert took < LEASE
    finally:
        b.close()


def test_a_hung_holder_loses_the_lease_after_wait_timeout(holder: Any, mysql_url: str) -> None:
    """SIGSTOP the holder (a hung host): MariaDB closes its idle connection after the lease (wait_timeout),
    the other takes over; resumed, the old holder finds the lock gone and steps down."""
    name = f"zeroops-test-hang-{os.getpid()}"
    p, out = holder(name)
    b = LeaderLease(mysql_url, name, lease=LEASE, heartbeat=BEAT)
    try:
        assert b.poll() is False
        os.kill(p.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        _until_leader(b, LEASE + 5)
        took = time.monotonic() - stopped
        print(f"[ha] mysql: leader {took:.3f} s after the holder hung (lease {LEASE} s, wait_timeout {int(LEASE)} s)")
        assert LEASE - 1 <= took < LEASE + 3, took  # wait_timeout has a 1 s resolution
        os.kill(p.pid, signal.SIGCONT)
        end = time.monotonic() + 5
        while "standby" not in out.read_text():
            assert time.monotonic() < end, f"the resumed holder did not step down: {out.read_text()}"
            time.sleep(0.05)
        assert b.poll() is True  # still ours
    finally:
        b.close()


def test_a_holder_whose_heartbeat_stalls_stops_acting_before_the_other_leads(mysql_url: str) -> None:
    """Never two leaders: A's heartbeat stops (its thread hung, the process alive); A counts itself leader only
    until lease - heartbeat after its last confirmation, MariaDB frees the lock only after wait_timeout = lease."""
    name = f"zeroops-test-stall-{os.getpid()}"
    a = LeaderLease(mysql_url, name, lease=LEASE, heartbeat=BEAT)
    b = LeaderLease(mysql_url, name, lease=LEASE, heartbeat=BEAT)
    try:
        assert a.poll() is True  # A's last heartbeat: nothing polls A after this
        t0 = time.monotonic()
        a_stopped = None
        while not b.poll():
            if a_stopped is None and not a.is_leader:
                a_stopped = time.monotonic() - t0
            assert time.monotonic() - t0 < LEASE + 5, "B never took over"
            time.sleep(0.02)
        assert not a.is_leader and a_stopped is not None, "A still believed it led when B took over"
        print(f"[ha] mysql: A stopped acting {a_stopped:.2f} s, B led {time.monotonic() - t0:.2f} s after A's "
              "last heartbeat")
    finally:
        a.close()
        b.close()
