"""The self-service API on a running twin: roles, submit, the engine's decision with its rule, approve, deny."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

HERE = Path(__file__).resolve().parent
KEY = b"selfservice-tests-key-" * 3
ROLES = ("viewer", "operator", "approver", "admin")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, dict[str, str]]]]:
    import os

    from fastapi.testclient import TestClient

    from zeroops.serve.app import Settings, create_app
    from zeroops.serve.auth import TokenAuthority
    from zeroops.serve.loop import TwinLoop

    d = tmp_path_factory.mktemp("ss-serve")
    old = {k: os.environ.get(k) for k in ("ZEROOPS_AUDIT_KEY", "ZEROOPS_STATE_DIR")}
    os.environ["ZEROOPS_AUDIT_KEY"] = str(d / "audit.key")
    os.environ["ZEROOPS_STATE_DIR"] = str(d / "state")
    auth = TokenAuthority(KEY)
    headers = {r: {"Authorization": f"Bearer {auth.mint(f'{r}-user', r)}"} for r in ROLES}
    loop = TwinLoop(HERE / "serve-selfservice.yaml", speed=60.0, state_dir=d / "twin")
    try:
        with TestClient(create_app(loop.state, auth, Settings(rate_per_s=0))) as client:
            yield client, headers
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _wait(client: Any, h: dict[str, str], rid: str, until: Any, timeout: float = 30.0) -> dict[str, Any]:
    end = time.time() + timeout
    while True:
        body = client.get(f"/api/selfservice/requests/{rid}", headers=h).json()
        if until(body) or time.time() > end:
            return body
        time.sleep(0.2)


def test_roles(api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    client, h = api
    body = {"kind": "vm_provision", "project": "shop", "params": {"service": "api", "count": 1}}
    assert client.post("/api/selfservice/requests", json=body).status_code == 401
    assert client.post("/api/selfservice/requests", json=body, headers=h["viewer"]).status_code == 403
    assert client.get("/api/selfservice/requests").status_code == 401
    assert client.get("/api/selfservice/requests", headers=h["viewer"]).status_code == 200
    assert client.post("/api/selfservice/requests/x/approve", headers=h["operator"]).status_code == 403
    bad = client.post("/api/selfservice/requests", json=body | {"kind": "teleport"}, headers=h["operator"])
    assert bad.status_code == 422 and "kind" in bad.text
    bad = client.post("/api/selfservice/requests", json=body | {"params": {"count": 0}}, headers=h["operator"])
    assert bad.status_code == 422
    assert client.get("/api/selfservice/requests/nope", headers=h["viewer"]).status_code == 404


def test_a_small_request_is_approved_by_policy_and_carried_out(api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    client, h = api
    r = client.post("/api/selfservice/requests", headers=h["operator"], json={
        "kind": "vm_provision", "project": "shop", "params": {"cpus": 2, "memory_gb": 4, "count": 2, "service": "api"}})
    assert r.status_code == 201
    rid = r.json()["id"]
    body = _wait(client, h["viewer"], rid, lambda b: b["status"] == "approved")
    assert body["status"] == "approved", body
    d = body["decision"]
    assert d["verdict"] == "approve" and d["rule"] == "within-policy" and d["latency_s"] <= 10
    assert d["plan"]["flavor"] == "m1.small" and d["cost_per_month"] == pytest.approx(2 * 0.05 * 730)
    assert body["requester"] == "operator-user"


def test_outside_policy_waits_for_an_approver_then_runs(api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    client, h = api
    rid = client.post("/api/selfservice/requests", headers=h["operator"], json={
        "kind": "vm_provision", "project": "shop", "params": {"service": "api", "count": 8}}).json()["id"]
    body = _wait(client, h["viewer"], rid, lambda b: b["decision"] is not None)
    assert body["decision"]["verdict"] == "approval" and body["decision"]["rule"] == "auto-limit:max_vms"
    time.sleep(1.0)
    assert client.get(f"/api/selfservice/requests/{rid}", headers=h["viewer"]).json()["status"] == "open"
    assert client.post(f"/api/selfservice/requests/{rid}/approve", headers=h["operator"]).status_code == 403
    ok = client.post(f"/api/selfservice/requests/{rid}/approve", headers=h["approver"], json={"note": "launch week"})
    assert ok.status_code == 200, ok.text
    body = _wait(client, h["viewer"], rid, lambda b: b["status"] == "approved")
    assert body["status"] == "approved" and body["decision"]["approved_by"] == "approver-user"
    again = client.post(f"/api/selfservice/requests/{rid}/approve", headers=h["approver"])
    assert again.status_code == 409


def test_deny(api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    client, h = api
    rid = client.post("/api/selfservice/requests", headers=h["operator"], json={
        "kind": "quota_increase", "project": "shop", "params": {"instances": 30}}).json()["id"]
    body = _wait(client, h["viewer"], rid, lambda b: b["decision"] is not None)
    assert body["decision"]["rule"] == "auto-limit:quota_instances"
    r = client.post(f"/api/selfservice/requests/{rid}/deny", headers=h["approver"], json={"note": "not this quarter"})
    assert r.status_code == 200 and r.json()["status"] == "denied"
    listed = client.get("/api/selfservice/requests", params={"status": "denied"}, headers=h["viewer"]).json()
    assert rid in [x["id"] for x in listed]


def test_fuzz_the_self_service_routes_no_5xx(api: tuple[Any, dict[str, dict[str, str]]]) -> None:
    """Property-based requests from the OpenAPI document to /api/selfservice only: never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings

    client, h = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).include(path_regex="^/api/selfservice")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) == 5
    failures: list[str] = []
    for op in ops:
        @settings(max_examples=25, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            res = case.call(headers=h["admin"])
            if res.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {res.status_code}: {res.text[:200]}")

        run()
    assert not failures, failures[:5]
