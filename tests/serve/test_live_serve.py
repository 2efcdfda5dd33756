"""``zeroops serve --live``'s loop: the live controller (on the fake adapter) behind the same app; a proposal is
approved through the API and executed by the controller's approval executor on its wall clock."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adapters.base import Action, CreateServer, Observation
from adapters.fake import FakeAdapter
from adapters.live_config import LiveConfig
from control.safety import profile


class ProposeOnce:
    name = "scaler"
    cadence = 0.05

    def __init__(self) -> None:
        self.done = False

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        if self.done:
            return []
        self.done = True
        return [CreateServer(service="web", count=1, reason="one more, please")]


def test_live_controller_served(tmp_path: Path, serve_env: Any, authority: Any, headers: Any) -> None:
    import threading

    from fastapi.testclient import TestClient

    from zeroops.live import LiveController
    from zeroops.serve.app import Settings, create_app
    from zeroops.serve.loop import LiveLoop, LockedWallClock

    fake = FakeAdapter(services={"web": ("small", 2)})
    lock = threading.RLock()
    ctl = LiveController(fake, LiveConfig(), "act", engines=[ProposeOnce()], decisions=tmp_path / "d.jsonl",
                         audit=tmp_path / "a.db", state=str(tmp_path / "s.db"), safety=profile("week1"),
                         executor_cadence=0.05, out=io.StringIO(), clock=LockedWallClock(lock))
    loop = LiveLoop.from_controller(ctl)
    assert loop.state.lock is lock
    app = create_app(loop.state, authority, Settings(rate_per_s=0))
    loop.reconcile()
    with TestClient(app) as c:
        st = c.get("/api/zeroops/operations/status", headers=headers["viewer"]).json()
        assert st["mode"] == "live" and st["mode"] == loop.state.mode and st["loop"]["running"]
        deadline = time.time() + 10
        pending: list[Any] = []
        while time.time() < deadline and not pending:
            pending = c.get("/api/zeroops/approvals", headers=headers["viewer"]).json()
            time.sleep(0.05)
        assert pending and pending[0]["kind"] == "create_server"
        r = c.post(f"/api/zeroops/approvals/{pending[0]['id']}/approve", headers=headers["approver"])
        assert r.status_code == 200 and r.json()["status"] == "approved"
        while time.time() < deadline and len(fake.servers(service="web")) < 3:
            time.sleep(0.05)
        assert len(fake.servers(service="web")) == 3  # executed by the controller, on its clock
    assert not loop.running  # the app's shutdown stopped the controller and closed its trail
    from control.audit import verify

    rep = verify(tmp_path / "a.db", ctl.audit.key.public if ctl.audit.key else None)
    assert rep.ok and rep.closed
