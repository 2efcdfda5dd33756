"""The whole ``ops`` engine set live (issue 13 item 1): the predictive scaler, provisioner and budget manager act on
the devcloud beside the ops center, through the same composition root as ``zeroops live --mode act``.

Approvals are real: with ``RequireApprovalAbove: 0`` every capacity increase waits in the approval queue, and the
test votes on it the way an operator does, with the ``zeroops approvals`` command in a separate process; the audit
trail then names that person as the approver.  A tiny (soft) budget makes the budget manager alert while the
controller runs.  Cadences are shortened so the test takes about two minutes; the engines are otherwise as
configured by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from livekit import LoadExporter, Watch, audit_bodies, servers_of, wait_until
from livekit import start as _start
from livekit import stop as _stop

from adapters.base import CreateServer
from adapters.journal import Journal
from control.audit import AuditReader
from control.safety.config import SafetyConfig
from zeroops.live import LiveController

pytestmark = pytest.mark.openstack
ROOT = Path(__file__).resolve().parents[2]

OPS_FAST = {
    "name": "ops-live-test",
    "handles_alerting": True,
    "engines": [
        {"engine": "ops_center"},
        {"engine": "predictive_scaler", "cadence": 2.0, "scale_down_window_s": 20.0, "scale_up_window_s": 10.0},
        {"engine": "provisioner", "cadence": 5.0},
        {"engine": "budget_manager", "cadence": 5.0},
        {"engine": "smart_alerting"},
        {"engine": "drain_prober"},
    ],
}


def _zeroops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zeroops.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)


def _pending(state: str) -> list[int]:
    from control.safety.approvals import ApprovalQueue
    from control.safety.store import SafetyStore

    return [p.id for p in ApprovalQueue(SafetyStore(state)).list("pending") if p.action.kind == "create_server"]


@pytest.mark.slow  # minutes of wall clock: `make test-live` runs it (quick pass: -m "openstack and not slow")
def test_the_ops_set_scales_out_with_a_human_approval_then_in_and_alerts_on_the_budget(
    make_adapter: Any, conn: Any, svc: Any, exporter: LoadExporter, tmp_path: Path
) -> None:
    name = svc("opsset")
    state = os.environ["ZEROOPS_SAFETY_DB"]  # the conftest gives each test its own safety state
    audit = tmp_path / "audit.sqlite"
    a = make_adapter([{"name": name, "min_servers": 1, "max_servers": 4}], journal=Journal(tmp_path / "j.sqlite"),
                     engines=OPS_FAST, budgets=[{"project": "*", "limit": 0.0005, "period_s": 86400.0}])
    a.execute(CreateServer(service=name, reason="initial server"))
    exporter.load[name] = 0.3
    watch = Watch(conn, name)
    ctl = LiveController(a, a.config, "act", decisions=tmp_path / "decisions.jsonl", audit=audit, state=state,
                         safety=SafetyConfig(require_approval_above=0.0), executor_cadence=1.0,
                         out=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    names = {e.name for e in ctl.engines}
    assert {"predictive-scaler", "provisioner", "budget-manager", "ops-center"} <= names, names
    t = _start(ctl)
    try:
        exporter.load[name] = 2.2  # about four servers' worth at the 0.6 target, on one server
        (pid, *_) = wait_until(lambda: _pending(state), 90, "the scaler's create to wait for approval")
        assert len(servers_of(conn, name)) == 1  # nothing was created before a person said yes
        shown = _zeroops("approvals", "list", "--state", state)
        assert shown.returncode == 0 and f"{pid}" in shown.stdout, shown.stdout + shown.stderr
        time.sleep(8.0)  # four scaler steps: the same intent re-proposed waits once (its request id aside)
        assert len(_pending(state)) <= 2, _zeroops("approvals", "list", "--state", state).stdout

        def approve_and_count() -> bool:
            for p in _pending(state):  # what an operator does: approve what waits, as themselves
                voted = _zeroops("approvals", "approve", str(p), "--by", "alice", "--state", state)
                assert voted.returncode == 0 or "not pending" in voted.stderr, voted.stderr
            return len([s for s in servers_of(conn, name) if s.status == "ACTIVE"]) >= 3

        try:
            wait_until(approve_and_count, 120, "the approved creates to run in Nova", interval=2.0)
        except BaseException:
            print(_zeroops("approvals", "list", "--state", state).stdout)
            for b in audit_bodies(audit)[-15:]:
                print(b.get("engine"), b.get("kind"), b.get("outcome"), b.get("rule"), b["action"]["params"],
                      b["approved_by"], (b.get("result") or {}).get("detail"), b.get("error"))
            raise
        exporter.load[name] = 0.1  # the surge is over: removing capacity needs nobody
        wait_until(lambda: len(servers_of(conn, name)) == 1, 150, "the scale-in back to min_servers")
        wait_until(lambda: any(b.get("engine") == "budget-manager" for b in audit_bodies(audit)), 60,
                   "the budget manager to alert on the tiny budget")
    finally:
        _stop(ctl, t)
        watch.stop()
    rows = audit_bodies(audit)
    by = Counter((b.get("engine"), b.get("kind"), b.get("outcome")) for b in rows)
    creates = [b for b in rows if b.get("kind") == "create_server" and b.get("outcome") == "executed"]
    assert creates and all(b["engine"] == "predictive-scaler" for b in creates), by
    assert all(b["approved_by"] == ["alice"] for b in creates), [b["approved_by"] for b in creates]
    assert all(b["action"]["reason"] for b in rows if b.get("action")), "every decision says why"
    deletes = [b for b in rows if b.get("kind") in ("delete_server", "shelve_server", "stop_server")
               and b.get("outcome") == "executed"]
    assert deletes and all(b["approved_by"] == [] for b in deletes), by
    assert any(b.get("engine") == "budget-manager" for b in rows), by
    assert watch.duplicates() == [] and watch.max_alive <= 4
    assert AuditReader(audit).verify().ok
