"""Security behaviour: TOTP-guarded override, one person one vote, audited principals, hardening (413, 422, 429,
CORS closed, no secrets in logs)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pyotp
import pytest

from adapters.base import CreateServer
from control.runtime import Verdict

SECRET = pyotp.random_base32()


def _audit_of(state: Any, principal: str, kind: str) -> list[dict[str, Any]]:
    return [{"id": e.seq, **e.body} for e in state.reader(flush=True).list() if e.body.get("engine") == f"api:{principal}"
            and e.body.get("kind") == kind]


@pytest.fixture(scope="module")
def enrolled(twin: Any) -> str:
    _, state = twin
    state.overrides.enroll("operator-user", time.time(), secret=SECRET)
    return SECRET


def _code(step_offset: int = 0) -> str:
    return pyotp.TOTP(SECRET).at(time.time() + 30 * step_offset)


def test_override_needs_a_valid_totp_and_is_audited(twin: Any, headers: Any, enrolled: str) -> None:
    client, state = twin
    body = {"incident_id": "inc-1", "justification": "manual investigation", "duration_s": 600}
    bad = client.post("/api/zeroops/operations/override", headers=headers["operator"], json={**body, "mfa_token": "000000"})
    assert bad.status_code == 403 and "MFA" in bad.json()["detail"]
    other = client.post("/api/zeroops/operations/override", headers=headers["operator"],
                        json={**body, "mfa_token": _code(), "operator_id": "someone-else"})
    assert other.status_code == 403
    # the approver is no operator-enrolled person: its token cannot use operator-user's code either
    assert client.post("/api/zeroops/operations/override", headers=headers["approver"],
                       json={**body, "mfa_token": _code()}).status_code == 403
    ok = client.post("/api/zeroops/operations/override", headers=headers["operator"], json={**body, "mfa_token": _code()})
    assert ok.status_code == 201, ok.text
    rec = client.get(f"/api/zeroops/audit/decisions/{ok.json()['audit_id']}", headers=headers["viewer"]).json()
    assert rec["engine"] == "api:operator-user" and rec["kind"] == "emergency_override"
    assert rec["action"]["reason"] == "manual investigation"
    replay = client.post("/api/zeroops/operations/override", headers=headers["operator"], json={**body, "mfa_token": _code()})
    assert replay.status_code == 403  # a TOTP code is accepted once
    status = client.get("/api/zeroops/operations/status", headers=headers["viewer"]).json()
    assert status["automation"]["paused"] is True

    # manual scaling works only under that override, through the choke point, audited with the principal
    before = [s for s in state.adapter.services() if s.name == "api"][0]
    n = before.active + before.building
    res = client.post("/api/zeroops/scaling/manual", headers=headers["operator"],
                      json={"workload_id": "api", "target_instances": n + 2, "justification": "spike expected"})
    assert res.status_code == 200, res.text
    acts = res.json()["actions"]
    assert acts and acts[0]["outcome"] == "executed" and acts[0]["kind"] == "create_server"
    rec = client.get(f"/api/zeroops/audit/decisions/{acts[0]['audit_id']}", headers=headers["viewer"]).json()
    assert rec["engine"] == "api:operator-user" and rec["rule"] == "manual-override"
    assert client.post("/api/zeroops/scaling/manual", headers=headers["operator"],
                       json={"workload_id": "nope", "target_instances": 1, "justification": "x"}).status_code == 404

    end = client.post("/api/zeroops/operations/override/end", headers=headers["operator"], json={"mfa_token": _code(1)})
    assert end.status_code == 200 and end.json()["ended"] >= 1
    again = client.post("/api/zeroops/scaling/manual", headers=headers["operator"],
                        json={"workload_id": "api", "target_instances": 1, "justification": "x"})
    assert again.status_code == 409 and "override" in again.json()["detail"]


def test_one_person_cannot_supply_two_approvals(twin: Any, headers: Any, authority: Any) -> None:
    client, state = twin
    with state.lock:
        pid = state.queue.enqueue(state.now(), "test-engine", CreateServer(service="api", count=1, reason="two-person"),
                                  Verdict("approval", "two-person-rule", approvers=2))
    first = client.post(f"/api/zeroops/approvals/{pid}/approve", headers=headers["approver"], json={"comment": "ok"})
    assert first.status_code == 200 and first.json()["status"] == "pending"
    same = client.post(f"/api/zeroops/approvals/{pid}/approve", headers=headers["approver"])
    assert same.status_code == 409
    # the same person under another spelling of the name, with a second token
    respelled = {"Authorization": f"Bearer {authority.mint('APPROVER-user', 'approver')}"}
    assert client.post(f"/api/zeroops/approvals/{pid}/approve", headers=respelled).status_code == 409
    other = {"Authorization": f"Bearer {authority.mint('bob', 'approver')}"}
    second = client.post(f"/api/zeroops/approvals/{pid}/approve", headers=other)
    assert second.status_code == 200 and second.json()["status"] == "approved"
    assert second.json()["approvers"] == ["approver-user", "bob"]
    votes = _audit_of(state, "bob", "approval_approve")
    assert votes and votes[-1]["action"]["params"]["proposal"] == pid
    assert client.post("/api/zeroops/approvals/999999/approve", headers=other).status_code == 404


def test_limit_change_needs_two_other_people(twin: Any, headers: Any, authority: Any) -> None:
    client, _ = twin
    r = client.post("/api/zeroops/limits", headers=headers["admin"],
                    json={"config": {"MaxVMsAutoProvisioned": 50}, "justification": "tighter", "approvers": 2})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    admin_as_approver = client.post(f"/api/zeroops/limits/{cid}/approve", headers=headers["admin"])
    assert admin_as_approver.status_code == 409  # the proposer cannot approve
    bad = client.post("/api/zeroops/limits", headers=headers["admin"],
                      json={"config": {"MaxVMsAutoProvisioned": "many"}, "justification": "x"})
    assert bad.status_code == 422


def test_hardening(twin: Any, headers: Any) -> None:
    client, _ = twin
    big = client.post("/api/zeroops/approvals/1/approve", headers=headers["approver"],
                      content=b'{"comment": "' + b"x" * 100_000 + b'"}', )
    assert big.status_code == 413
    bad = client.get("/api/zeroops/operations/decisions?limit=abc", headers=headers["viewer"])
    assert bad.status_code == 422 and "traceback" not in bad.text.lower()
    extra = client.post("/api/zeroops/scaling/manual", headers=headers["operator"],
                        json={"workload_id": "api", "target_instances": -1, "justification": "x", "evil": 1})
    assert extra.status_code == 422
    pre = client.options("/api/zeroops/operations/status", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in {k.lower() for k in pre.headers}


def test_rate_limit_per_principal(serve_env: Any, authority: Any) -> None:
    from fastapi.testclient import TestClient

    from tests.serve.conftest import make_loop
    from zeroops.serve.app import Settings, create_app

    loop = make_loop(serve_env / "ratelimited")
    app = create_app(loop.state, authority, Settings(rate_per_s=1, burst=3), manage_loop=False)
    a = {"Authorization": f"Bearer {authority.mint('alice', 'viewer')}"}
    b = {"Authorization": f"Bearer {authority.mint('bob', 'viewer')}"}
    try:
        with TestClient(app) as c:
            codes = [c.get("/api/zeroops/approvals", headers=a).status_code for _ in range(6)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
            assert c.get("/api/zeroops/approvals", headers=b).status_code == 200  # per principal
    finally:
        loop.plane.close()


def test_secrets_never_logged(twin: Any, headers: Any, caplog: pytest.LogCaptureFixture) -> None:
    from zeroops.serve.logs import JsonFormatter

    client, _ = twin
    token = headers["viewer"]["Authorization"].split()[1]
    caplog.set_level(logging.INFO, logger="zeroops")
    logging.getLogger("zeroops").propagate = True
    try:
        client.get(f"/api/zeroops/approvals?access_token={token}", headers=headers["viewer"])
        client.get("/api/zeroops/approvals", headers={"Authorization": f"Bearer {token}x"})
    finally:
        logging.getLogger("zeroops").propagate = False
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "/api/zeroops/approvals" in text and token not in text


def test_votes_without_audit_records_are_reconciled(twin: Any) -> None:
    """A vote committed but not audited (a crash between the two commits, or a local CLI vote) is audited on start."""
    _, state = twin
    with state.lock:
        pid = state.queue.enqueue(state.now(), "test-engine", CreateServer(service="api", count=3, reason="lost vote"),
                                  Verdict("approval", "two-person-rule", approvers=2))
    state.queue.vote(pid, "carol", "approve", state.now(), "voted, then the server died")
    done = state.audit_unrecorded_votes()
    assert (pid, "carol") in done
    rec = _audit_of(state, "carol", "approval_approve")[-1]
    assert rec["rule"] == "reconcile" and rec["action"]["params"]["proposal"] == pid
    assert (pid, "carol") not in state.audit_unrecorded_votes()  # once
