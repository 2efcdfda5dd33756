"""Leader election for live mode: one acting controller per managed scope, through a tooz lock with a lease.

Two controllers configured for the same scope (same scope name, projects and cloud: :func:`lock_name`) may run
at once, on one host or several; only the holder of the scope's lock acts, the other runs its engines in
observe-only mode (every action denied with rule ``not-leader``) and takes over when the lock comes free.

The lock lives in an existing coordination backend, used through `tooz <https://docs.openstack.org/tooz>`_
as OpenStack services do:

* ``file:///var/lib/zeroops/ha`` — an ``fcntl`` lock file: controllers on one host.  The kernel drops the lock
  the moment the holder dies (``kill -9`` included).
* ``mysql://user:password@host/db`` — MariaDB/MySQL ``GET_LOCK``: controllers on several hosts.  The lock belongs
  to the holder's database connection: it is dropped when the holder dies (its connection closes), and when a
  hung or cut-off holder stops heartbeating, MariaDB closes the idle connection after ``wait_timeout``, which
  :class:`LeaderLease` sets to the lease on that connection.

:class:`LeaderLease` is the lease: a background thread acquires the lock (non-blocking, every ``heartbeat``
seconds) and, while held, confirms it (the connection still owns the lock).  The holder counts itself leader
only until ``lease - heartbeat`` seconds after the start of its last confirmation, so it stops acting before
the backend can hand the lock to another controller.  :class:`Leadership` ties the lease to a control loop:
on taking over it runs the loop's takeover (journal lock, reconciliation) before any action, the
:class:`LeaderGate` denies actions and the :class:`FencedAdapter` refuses executions while the controller is
not the reconciled leader, so losing the lease stops acting at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Action, ActionResult, AdapterError, Observation
from control.runtime import Gate, Verdict

log = logging.getLogger(__name__)

SCHEMES = ("file", "mysql")
DEFAULT_LEASE = 15.0


class HAError(ValueError):
    """A bad HA backend URL or lease, or a backend that cannot be used (one line, names the URL)."""


class NotLeader(AdapterError):
    """An execution attempted while this controller does not hold the scope's lease."""


def lock_name(scope: str, projects: Iterable[str] = (), cloud: str | None = None) -> str:
    """The lock of a managed scope: its name plus a digest of its projects and cloud (not of any local path, so
    two controllers for one scope contend for one lock whatever their journals or state directories)."""
    key = "|".join([cloud or "", *sorted(projects)])
    return f"zeroops-live-{scope}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def member_id() -> str:
    """This controller in the backend: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def redact(url: str) -> str:
    """``url`` without its password (for messages and /healthz)."""
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    if p.password is None:
        return url
    netloc = f"{p.username}:***@{p.hostname}" + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def check_url(url: str) -> str:
    """``url`` when it names a supported backend, else :class:`HAError` saying what is allowed."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise HAError(f"--ha-backend {redact(url)!r}: unsupported scheme {scheme or '(none)'!r}; allowed: "
                      "file:///DIR (one host) or mysql://USER:PASSWORD@HOST[:PORT]/DB (MariaDB/MySQL, several hosts)")
    if scheme == "file" and not url[len("file://"):].startswith("/"):
        raise HAError(f"--ha-backend {url!r}: a file backend needs an absolute directory, e.g. file:///var/lib/zeroops/ha")
    return url


@dataclass
class LeaseState:
    """What /healthz and the metrics show of the lease."""

    role: str = "standby"  # leader | standby | stopped
    since: float = field(default_factory=time.time)  # wall time of the last change of role
    acquisitions: int = 0
    losses: int = 0
    last_error: str = ""


class LeaderLease:
    """The scope's lock held as a lease; :meth:`start` runs the heartbeat thread, :meth:`poll` one round of it."""

    def __init__(self, url: str, name: str, *, lease: float = DEFAULT_LEASE, heartbeat: float | None = None,
                 member: str | None = None, on_change: Callable[[bool], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not lease > 0:
            raise HAError(f"lease must be > 0 seconds, got {lease}")
        self.url = check_url(url)
        self.name = name
        self.lease = float(lease)
        self.heartbeat = float(heartbeat) if heartbeat else self.lease / 3
        if not 0 < self.heartbeat < self.lease:
            raise HAError(f"heartbeat ({self.heartbeat:g} s) must be > 0 and shorter than the lease ({self.lease:g} s)")
        self.member = member or member_id()
        self.on_change = on_change
        self.state = LeaseState()
        self._mono = monotonic
        self._valid_until = -1.0
        self._held = False
        self._coord: Any = None
        self._lock: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    # ------------------------------------------------------------------ backend
    def _connect(self) -> None:
        if self._coord is not None:
            return
        try:
            from tooz import coordination
        except ImportError:
            raise HAError("high availability needs tooz: pip install 'zeroops[ha]' (tooz, PyMySQL)") from None
        try:
            self._coord = coordination.get_coordinator(self.url, self.member.encode())
            self._coord.start(start_heart=False)
            self._lock = self._coord.get_lock(self.name.encode())
        except Exception as e:  # tooz wraps driver errors in ToozError; a bad URL raises others
            self._coord = self._lock = None
            raise HAError(f"HA backend {redact(self.url)}: {type(e).__name__}: {str(e)[:300]}") from None

    def _confirm(self) -> bool:
        """Does this controller still own the lock?  MySQL: ask the server on the lock's own connection."""
        lk = self._lock
        if self.scheme == "mysql":
            conn = lk._conn  # tooz's MySQLLock keeps the GET_LOCK connection here
            cur = conn.cursor()
            cur.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name.encode(),))
            row = cur.fetchone()
            return bool(row and row[0] == 1)
        inner = getattr(lk, "_lock", None)  # fasteners' lock: the file we locked must still be the lock file
        f = getattr(inner, "lockfile", None)
        path = getattr(inner, "path", None)
        if f is not None and path is not None:
            try:
                if os.fstat(f.fileno()).st_ino != os.stat(path).st_ino:
                    return False
            except OSError:
                return False
        return bool(lk.is_still_owner())

    def _after_acquire(self) -> None:
        if self.scheme == "mysql":  # a holder that stops heartbeating loses the lock after the lease
            cur = self._lock._conn.cursor()
            cur.execute("SET SESSION wait_timeout = %s", (max(1, int(self.lease)),))

    # ------------------------------------------------------------------ the lease
    @property
    def is_leader(self) -> bool:
        """True while the lock is held and confirmed within the lease (minus one heartbeat of margin)."""
        return self._held and self._mono() < self._valid_until

    def poll(self) -> bool:
        """One heartbeat: confirm the lock if held, else try to take it (never blocks on another holder)."""
        with self._mutex:
            was = self.state.role == "leader"  # as last reported (the lease may have run out since, silently)
            sent = self._mono()
            try:
                self._connect()
                if self._held:
                    ok = self._confirm()
                else:  # a fresh lock object per attempt: tooz's file lock miscounts failed non-blocking tries
                    self._lock = self._coord.get_lock(self.name.encode())
                    ok = bool(self._lock.acquire(blocking=False))
                    if ok:
                        self._after_acquire()
                        self.state.acquisitions += 1
                self.state.last_error = ""
            except Exception as e:  # a backend that fails to answer: not confirmed (the lease runs out)
                ok = False
                self.state.last_error = f"{type(e).__name__}: {str(e)[:200]}"
                log.warning("HA backend %s: %s", redact(self.url), self.state.last_error)
            if ok:
                self._held = True
                self._valid_until = sent + self.lease - self.heartbeat
            elif self._held:  # a failed confirmation: the lock cannot be trusted any more
                self._drop()
            now_leader = self.is_leader
            if now_leader != was:
                self.state.role = "leader" if now_leader else "standby"
                self.state.since = time.time()
                if not now_leader:
                    self.state.losses += 1
        if now_leader != was and self.on_change is not None:
            self.on_change(now_leader)
        return now_leader

    def _drop(self) -> None:
        """Forget a lock that was lost (release what may remain; a fresh lock object for the next attempt)."""
        self._held = False
        self._valid_until = -1.0
        try:
            self._lock.release()
        except Exception as e:  # the connection is gone: the server released it already
            log.debug("release after loss: %s", e)
        try:
            self._lock = self._coord.get_lock(self.name.encode())
        except Exception:
            self._coord = self._lock = None

    def start(self) -> LeaderLease:
        """First poll now (a bad backend fails here as :class:`HAError`), then heartbeat in a daemon thread."""
        self._connect()
        self.poll()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zeroops-lease", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            self.poll()

    def close(self) -> None:
        """Stop heartbeating and release the lock (a standby takes over at its next heartbeat)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.heartbeat + 5)
        with self._mutex:
            was = self.state.role == "leader"
            if self._held and self._lock is not None:
                try:
                    self._lock.release()
                except Exception as e:
                    log.debug("release: %s", e)
            self._held = False
            self._valid_until = -1.0
            if self._coord is not None:
                try:
                    self._coord.stop()
                except Exception as e:
                    log.debug("stop: %s", e)
                self._coord = self._lock = None
            self.state.role = "stopped"
            self.state.since = time.time()
        if was and self.on_change is not None:
            self.on_change(False)

    def describe(self) -> dict[str, Any]:
        return {"backend": redact(self.url), "lock": self.name, "member": self.member, "role": self.state.role,
                "since": self.state.since, "lease_seconds": self.lease, "heartbeat_seconds": self.heartbeat,
                "acquisitions": self.state.acquisitions, "losses": self.state.losses,
                "last_error": self.state.last_error}


class Leadership:
    """A lease tied to one control loop: act only as the reconciled leader.

    :meth:`tick` runs on the loop's clock (the thread that runs engine steps): when the lease is newly held it
    runs ``takeover`` (take the journal, reconcile what is in flight) before the controller may act; when the
    lease is gone it is observe-only again (the gate already denies from the moment the lease lapsed).
    """

    def __init__(self, lease: LeaderLease, takeover: Callable[[], Any] = lambda: None,
                 say: Callable[[str], None] = print) -> None:
        self.lease = lease
        self.takeover = takeover
        self.say = say
        self.reconciled = False
        self.terms = 0
        self.denied = 0

    @property
    def acting(self) -> bool:
        """Leader now, and the takeover of this term is done."""
        return self.reconciled and self.lease.is_leader

    @property
    def role(self) -> str:
        return "leader" if self.acting else "standby"

    def tick(self, now: float = 0.0) -> None:
        leader = self.lease.is_leader
        if leader and not self.reconciled:
            self.say(f"[live] HA: leader of {self.lease.name} ({self.lease.member}); taking over")
            try:
                self.takeover()
            except Exception as e:  # e.g. the journal still held by a process that lost the lease: retry later
                self.say(f"[live] HA: takeover failed, staying standby: {type(e).__name__}: {str(e)[:300]}")
                return
            self.reconciled = self.lease.is_leader
            if self.reconciled:
                self.terms += 1
                self.say(f"[live] HA: acting as leader (term {self.terms})")
        elif not leader and self.reconciled:
            self.reconciled = False
            self.say(f"[live] HA: lease of {self.lease.name} lost: observe-only until it is held again")

    def attach(self, clock: Any) -> None:
        """Tick at every heartbeat, the first one at once (before any engine step)."""
        clock.every(self.lease.heartbeat, self.tick, offset=0.0)

    def verdict(self) -> Verdict:
        return Verdict("deny", rule="not-leader", detail={"role": "standby", "lock": self.lease.name,
                                                          "leader_elsewhere": not self.lease.is_leader})


class LeaderGate:
    """Fronts a gate: while not the acting leader every action is denied (rule ``not-leader``) and audited."""

    def __init__(self, inner: Gate, leadership: Leadership) -> None:
        self.inner = inner
        self.leadership = leadership

    def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Verdict:
        if not self.leadership.acting:
            self.leadership.denied += 1
            return self.leadership.verdict()
        return self.inner.review(now, engine, action, obs)

    def recheck(self, now: float, engine: str, action: Action, obs: Observation | None, **kw: Any) -> Verdict:
        """The approval executor's re-check: an approved action waits (stays approved) while standby."""
        if not self.leadership.acting:
            return self.leadership.verdict()
        return self.inner.recheck(now, engine, action, obs, **kw)

    def executed(self, now: float, engine: str, action: Action, result: ActionResult) -> None:
        self.inner.executed(now, engine, action, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FencedAdapter:
    """The adapter behind the choke point: reads pass, ``execute`` refuses unless the leader acts (the last fence,
    for any path that does not pass the gate's review)."""

    def __init__(self, inner: Any, leadership: Leadership) -> None:
        self._inner = inner
        self._leadership = leadership

    def execute(self, action: Action) -> ActionResult:
        if not self._leadership.acting:
            raise NotLeader(f"not the leader of {self._leadership.lease.name}: {action.kind} not executed")
        return self._inner.execute(action)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def attach_leadership(ctl: Any, lease: LeaderLease) -> Leadership:
    """Put a live controller under ``lease``: gate and fence its choke point, pause its approval executor while
    standby, and take over (journal lock, then reconcile) on the clock when the lease is held.

    ``ctl`` is duck-typed (a :class:`zeroops.live.LiveController`): ``choke``, ``clock``, ``plane``, ``lock()``,
    ``reconcile()``, ``_say``.  The lease is started here; the caller closes it.
    """

    def takeover() -> None:
        ctl.lock()
        ctl.reconcile()

    leadership = Leadership(lease, takeover, getattr(ctl, "_say", print))
    ctl.choke.gate = LeaderGate(ctl.choke.gate, leadership)
    ctl.choke.adapter = FencedAdapter(ctl.choke.adapter, leadership)
    kit = getattr(getattr(ctl, "plane", None), "kit", None)
    if kit is not None:
        kit.executor.gate = LeaderGate(kit.executor.gate, leadership)
    leadership.attach(ctl.clock)
    lease.start()
    return leadership


def lease_from(url: str, scope: str, projects: Iterable[str] = (), cloud: str | None = None,
               options: Mapping[str, Any] | None = None) -> LeaderLease:
    """The lease of a managed scope in the backend ``url`` (``options``: ``lease``, ``heartbeat``)."""
    opts = dict(options or {})
    return LeaderLease(url, lock_name(scope, projects, cloud), lease=float(opts.get("lease", DEFAULT_LEASE)),
                       heartbeat=opts.get("heartbeat"))


def run_with_leadership(ctl: Any, lease: LeaderLease, duration: float | None = None) -> Leadership:
    """Run a live controller under ``lease`` (instead of ``ctl.run``): standby until the lease is held, then
    journal lock and reconciliation, then acting; observe-only again whenever the lease is lost.  The lease is
    released when the run ends."""
    leadership = attach_leadership(ctl, lease)
    try:
        ctl.check_prometheus()
        ctl.clock.run(until=None if duration is None else ctl.clock.now() + duration)
    finally:
        lease.close()
    return leadership
