"""Self-service API (docs/self-service.md): submit, list and read requests with the policy's decision and the
rule behind it; approvers approve or deny the ones routed to them.

Mounted by ``zeroops serve`` through ``build_router(require_role, app_state)`` (docs/serve.md).  Submitting needs
``operator``; approving and denying ``approver``; reading ``viewer``.  Every mutating call writes an audit record
naming the principal.  An approval hands the request back to the ``self_service`` engine, which carries it out
through the safety gate at its next step; without that engine the world carries it out (``FulfillRequest``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import AdapterError, FulfillRequest
from engines.selfservice.decide import KINDS
from zeroops.serve.state import AppState

Kind = Literal["vm_provision", "create_servers", "resize", "quota_increase", "project_onboard", "project_offboard"]
assert set(Kind.__args__) == set(KINDS)  # type: ignore[attr-defined]  # noqa: S101 - one list of kinds
Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
RequestId = PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FirstServer(Strict):
    service: str = Name
    flavor: str | None = Field(None, min_length=1, max_length=64)


class Params(Strict):
    """What a request asks for; each kind reads its own fields (docs/self-service.md)."""

    service: str | None = Field(None, min_length=1, max_length=64)
    flavor: str | None = Field(None, min_length=1, max_length=64)
    image: str | None = Field(None, min_length=1, max_length=128)
    count: int | None = Field(None, ge=1, le=10_000)
    cpus: int | None = Field(None, ge=1, le=4096)
    memory_gb: float | None = Field(None, gt=0, le=65_536)
    storage_gb: float | None = Field(None, ge=0, le=1_000_000)
    server: str | None = Field(None, min_length=1, max_length=64)
    instances: int | None = Field(None, ge=0, le=1_000_000)
    cores: int | None = Field(None, ge=0, le=10_000_000)
    ram_mb: int | None = Field(None, ge=0, le=10**10)
    budget: float | None = Field(None, gt=0, le=10**9)
    alert_route: str | None = Field(None, min_length=1, max_length=128)
    first_server: FirstServer | None = None


class RequestIn(Strict):
    kind: Kind
    project: str = Name
    params: Params = Params()
    requester: str | None = Field(None, min_length=1, max_length=64, description="default: the principal")


class AnswerIn(Strict):
    note: str = Field("", max_length=500)


def engine_of(state: AppState) -> Any:
    """The running ``self_service`` engine, if the loop's engine set has one."""
    plane = getattr(state, "plane", None)
    return next((e for e in getattr(plane, "engines", ()) if getattr(e, "name", "") == "self_service"), None)


def request_item(r: Any, eng: Any) -> dict[str, Any]:
    d = eng.decision(r.id) if eng is not None else None
    return {"id": r.id, "project": r.project, "requester": r.requester, "kind": r.kind, "params": dict(r.params),
            "submitted_at": r.submitted_at, "status": r.status, "decision": d}


def build_router(require_role: Callable[[str], Any], app_state: AppState) -> APIRouter:
    router = APIRouter(prefix="/api/selfservice", tags=["self-service"])
    state = app_state

    def find(rid: str) -> Any:
        with state.lock:
            r = next((r for r in state.adapter.requests() if r.id == rid), None)
        if r is None:
            raise HTTPException(404, f"no request {rid!r}")
        return r

    @router.get("/requests")
    def list_requests(status: Literal["open", "approved", "denied"] | None = None,
                      who: Any = Depends(require_role("viewer"))) -> list[dict[str, Any]]:
        """Every request (newest last) with the policy's decision: verdict, rule, estimated cost, latency."""
        eng = engine_of(state)
        with state.lock:
            rows = [request_item(r, eng) for r in state.adapter.requests() if status is None or r.status == status]
        return rows

    @router.get("/requests/{rid}")
    def get_request(rid: str = RequestId, who: Any = Depends(require_role("viewer"))) -> dict[str, Any]:
        """One request with its decision and the rule that decided."""
        r = find(rid)
        with state.lock:
            return request_item(r, engine_of(state))

    @router.post("/requests", status_code=201)
    def submit(body: RequestIn, who: Any = Depends(require_role("operator"))) -> dict[str, Any]:
        """File a request; the ``self_service`` engine decides it within seconds (GET it to see the verdict)."""
        params = body.params.model_dump(exclude_none=True)
        requester = body.requester or who.name
        submit_fn = getattr(state.adapter, "submit_request", None)
        if submit_fn is None:
            raise HTTPException(409, "this world has no request inbox")
        with state.lock:
            rid = submit_fn(body.project, body.kind, params, requester)
        state.audit_event(who.name, "submit_request", rid, "submitted",
                          {"kind": body.kind, "project": body.project, "params": params, "requester": requester})
        return {"id": rid, "status": "open", "kind": body.kind, "project": body.project}

    @router.post("/requests/{rid}/approve")
    def approve(body: AnswerIn = AnswerIn(), rid: str = RequestId,
                who: Any = Depends(require_role("approver"))) -> dict[str, Any]:
        """Approve a request routed to people: the engine carries it out through the gate at its next step."""
        r = find(rid)
        if r.status != "open":
            raise HTTPException(409, f"request {rid} is {r.status} already")
        eng = engine_of(state)
        with state.lock:
            handed = eng.approve(rid, who.name) if eng is not None else False
        if handed:
            state.audit_event(who.name, "approve_request", rid, "approved", {"note": body.note, "by": "self_service"})
            return {"id": rid, "status": "approved", "carried_out_by": "self_service"}
        d = eng.decision(rid) if eng is not None else None
        if d is not None and d["phase"] != "waiting" and d["phase"] != "stalled":
            raise HTTPException(409, f"request {rid} is {d['phase']} by the engine (rule {d['rule']}): nothing to approve")
        rec = state.submit(f"api:{who.name}", FulfillRequest(request_id=rid, approve=True,
                                                            note=body.note or f"approved by {who.name}",
                                                            reason=f"approved by {who.name}"))
        state.audit_event(who.name, "approve_request", rid, rec.outcome, {"note": body.note, "by": "world"})
        if rec.outcome == "failed":
            raise HTTPException(409, f"request {rid} could not be carried out: {rec.error}")
        return {"id": rid, "status": "approved" if rec.outcome == "executed" else rec.outcome}

    @router.post("/requests/{rid}/deny")
    def deny(body: AnswerIn = AnswerIn(), rid: str = RequestId,
             who: Any = Depends(require_role("approver"))) -> dict[str, Any]:
        """Deny an open request (through the choke point: audited like every decision)."""
        r = find(rid)
        if r.status != "open":
            raise HTTPException(409, f"request {rid} is {r.status} already")
        try:
            rec = state.submit(f"api:{who.name}", FulfillRequest(request_id=rid, approve=False,
                                                                note=body.note or f"denied by {who.name}",
                                                                reason=f"denied by {who.name}"))
        except AdapterError as e:
            raise HTTPException(409, str(e)) from None
        state.audit_event(who.name, "deny_request", rid, rec.outcome, {"note": body.note})
        return {"id": rid, "status": "denied" if rec.outcome == "executed" else rec.outcome}

    return router
