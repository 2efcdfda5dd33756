"""The control loop ``zeroops serve`` hosts: the twin in scaled real time, or the live controller.

Both are built by :func:`control.compose.compose` (the twin here, the live controller through
:class:`zeroops.live.LiveController`) with people's approvals in the serve state directory's ``safety.db`` and
the audit trail in its ``audit.db``, so a restart finds every vote, override and decision again.

The twin advances in small wall-clock ticks, ``speed`` simulated seconds per wall second, each tick under
:attr:`AppState.lock`; the API reads the world between ticks.  On restart the twin begins its scenario again
(a simulated world cannot be resumed); proposals a previous run left pending or approved refer to that run's
world, so reconciliation expires them, each expiry an audit record (rule ``restart-expired``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from control.compose import HumanApprovals, SimulatedApprovals, compose
from control.runtime import Verdict, WallClock
from zeroops.serve.state import AppState

log = logging.getLogger("zeroops.serve")
TICK_S = 0.1  # wall seconds between twin advances
SLICE_S = 15.0  # simulated seconds advanced per hold of the lock


class TwinLoop:
    """Runs a scenario's world in scaled real time in a background thread."""

    def __init__(self, scenario_path: str | Path, *, engines: str | None = None, speed: float = 60.0,
                 state_dir: str | Path, seed: int | None = None, simulated_approvers: bool = False) -> None:
        from adapters.sim import SimAdapter
        from control.audit import AuditLog  # noqa: F401 - fail early when the audit trail is unusable
        from scenarios.loader import load_scenario
        from scenarios.runner import safety_config, set_operator_route
        from twin.clock import SimClock
        from twin.world import World

        if not speed > 0:
            raise ValueError(f"--speed must be > 0, got {speed}")
        path = Path(scenario_path)
        scn = load_scenario(path)
        if seed is not None:
            scn = scn.model_copy(update={"seed": seed})
        names = [e if isinstance(e, str) else getattr(e, "name", str(e)) for e in scn.engines]
        # the richest set by default: scenarios list the baselines first, then the sets that build on them
        name = engines or next((e for e in reversed(names) if e != "static"), names[0] if names else "static")
        spec = scn.engine_set(name)
        self.scenario = scn
        self.speed = float(speed)
        self.world = World(scn, base_dir=path.parent)
        set_operator_route(self.world, spec)
        self.state_dir = Path(state_dir).absolute()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        approvals: Any = (SimulatedApprovals(scn.approvers.count, scn.approvers.delay, scn.approvers.cadence,
                                             state_path=str(self.state_dir / "safety.db"))
                          if simulated_approvers else HumanApprovals(str(self.state_dir / "safety.db")))
        adapter = SimAdapter(self.world)
        self.plane = compose(adapter, spec, clock=SimClock(self.world.env), safety=safety_config(scn),
                             approvals=approvals, audit_path=self.state_dir / "audit.db", audit_batch_size=64,
                             min_cadence=scn.tick)
        self.state = AppState("twin", self.plane, self.world.now, self.state_dir)
        self.state.loop = self
        self.run_id = uuid.uuid4().hex[:12]
        self.state.info.update({"scenario": scn.name, "scenario_file": str(path), "engines": spec.name,
                                "speed": self.speed, "duration_s": scn.duration, "seed": scn.seed,
                                "run_id": self.run_id, "started_at": time.time()})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = False
        self.error: str | None = None

    def reconcile(self) -> list[int]:
        """Expire proposals an earlier run of the twin left waiting; returns their ids (each one audited)."""
        q = self.plane.queue
        if q is None:
            return []
        stale = [p for p in q.list() if p.status in ("pending", "approved")]
        now = self.world.now()
        for p in stale:
            v = Verdict("deny", "restart-expired", {"proposal": p.id, "approved_by": list(p.approvers),
                                                    "why": "the twin began its scenario again after a restart"})
            rec = self.plane.choke.note(now, p.engine, p.action, v, "denied")
            q.set_status(p.id, "expired", now, exec_audit_id=rec.audit_id, note="restart")
        if stale:
            log.info("reconcile", extra={"fields": {"expired_proposals": [p.id for p in stale]}})
        return [p.id for p in stale]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zeroops-twin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        end = float(self.scenario.duration)
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                target = min(end, self.world.now() + (t - last) * self.speed)
                last = t
                while target > self.world.now() and not self._stop.is_set():
                    with self.state.lock:  # in slices, so API readers wait one slice at most
                        self.world.run(until=min(target, self.world.now() + SLICE_S))
                    time.sleep(0)  # let a waiting request thread take the lock
                if self.world.now() >= end:
                    self.finished = True
                    log.info("scenario finished", extra={"fields": {"sim_s": self.world.now()}})
                    return
                self._stop.wait(TICK_S)
        except Exception as e:  # noqa: BLE001 - report it on /status and in the log; the API stays up
            self.error = f"{type(e).__name__}: {str(e)[:300]}"
            log.exception("twin loop failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current tick (its engine steps finish under the lock), then close the control plane."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self.state.lock:
            self.plane.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class LockedWallClock(WallClock):
    """A wall clock whose calls run under the API's lock (the API reads the adapter between steps)."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__()
        self._api_lock = lock

    def every(self, period: float, fn: Any, offset: float = 0.0) -> None:
        def locked(now: float) -> None:
            with self._api_lock:
                fn(now)

        super().every(period, locked, offset)


class LiveLoop:
    """The live controller (``zeroops live --mode act|observe``) in a background thread."""

    def __init__(self, args: Any) -> None:
        from zeroops.live import LiveController, LiveError, load_safety

        try:
            safety = load_safety(args.safety, args.profile) if args.mode == "act" else None
        except ValueError as e:
            raise LiveError(f"invalid safety limits: {e}", 2) from None
        from zeroops.live import _build, _quiet_sdk_logs

        _quiet_sdk_logs()
        adapter, config, paths = _build(args)
        problems = adapter.validate()
        if problems:
            raise LiveError("the config does not match the cloud: " + "; ".join(problems), 2)
        if args.mode == "act":
            from adapters.journal import JournalLocked

            try:
                adapter.journal.lock()  # a second acting controller (or server) on this state stops here
            except JournalLocked:
                raise LiveError(f"another controller is acting with the journal {paths.journal}; stop it first",
                                6) from None
        lock = threading.RLock()
        self.ctl = LiveController(adapter, config, args.mode, decisions=paths.decisions, audit=paths.audit,
                                  safety=safety, state=str(paths.safety), state_dir=paths.state_dir,
                                  clock=LockedWallClock(lock), prometheus_wait=getattr(args, "prometheus_wait", None))
        self.plane = self.ctl.plane
        self.state = AppState("live", self.plane, self.ctl.clock.now, Path(paths.state_dir), lock=lock)
        self.state.loop = self
        self.state.info.update({"config": args.config, "live_mode": args.mode, "engines": self.plane.name,
                                "started_at": time.time(), "run_id": uuid.uuid4().hex[:12]})
        self._thread: threading.Thread | None = None
        self.finished = False
        self.error: str | None = None

    @classmethod
    def from_controller(cls, ctl: Any) -> LiveLoop:
        """Around a ready :class:`zeroops.live.LiveController` (tests: a fake adapter)."""
        self = cls.__new__(cls)
        self.ctl, self.plane = ctl, ctl.plane
        lock = getattr(ctl.clock, "_api_lock", None) or threading.RLock()  # a LockedWallClock's, to share it
        self.state = AppState("live", self.plane, ctl.clock.now, Path(ctl.paths.state_dir), lock=lock)
        self.state.loop = self
        self.state.info.update({"live_mode": ctl.mode, "engines": self.plane.name, "started_at": time.time(),
                                "run_id": uuid.uuid4().hex[:12]})
        self._thread, self.finished, self.error = None, False, None
        return self

    def reconcile(self) -> list[str]:
        with self.state.lock:
            self.ctl.lock()
            return list(self.ctl.reconcile())

    def start(self) -> None:
        def run() -> None:
            try:
                self.ctl.check_prometheus()
                self.ctl.clock.run()
            except Exception as e:  # noqa: BLE001 - shown on /status and in the log
                self.error = f"{type(e).__name__}: {str(e)[:300]}"
                log.exception("live loop failed")
            self.finished = True

        self._thread = threading.Thread(target=run, name="zeroops-live", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step (the adapter's journal holds anything in flight), then close."""
        self.ctl.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        with self.state.lock:
            self.ctl.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
