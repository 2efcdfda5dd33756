"""The system's endpoints: operations, interventions, scaling, budget, alerting, incidents, approvals, audit, limits.

Every route depends on :func:`zeroops.serve.auth.require_role`; every mutating one writes an audit record naming
the principal (:meth:`AppState.audit_event`, or the choke point's own record for manual actions).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import CreateServer, DeleteServer
from control.audit import AuditError
from control.safety.approvals import ApprovalError
from control.safety.override import OverrideError
from zeroops.serve.auth import Principal, require_role
from zeroops.serve.figures import jsonable, operations_metrics
from zeroops.serve.state import AppState
from zeroops.serve.views import entries as audit_entries
from zeroops.serve.views import entry_item, incident_item, pause_item, postmortem_markdown, proposal_item

Text = Field(min_length=1, max_length=500)
Ident = Field(min_length=1, max_length=128, pattern=r"^[\w.:@/ -]+$")
MAX_MANUAL_INSTANCES = 1000
CACHE_S = 0.5  # status and metrics are recomputed at most this often, however many clients poll


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OverrideIn(Strict):
    incident_id: str = Ident
    operator_id: str | None = Field(None, min_length=1, max_length=64)
    justification: str = Text
    mfa_token: str = Field(pattern=r"^\d{6,8}$")
    duration_s: float = Field(1800.0, gt=0, le=7 * 86400)


class OverrideEndIn(Strict):
    mfa_token: str = Field(pattern=r"^\d{6,8}$")


class ManualScaleIn(Strict):
    workload_id: str = Ident
    target_instances: int = Field(ge=0, le=MAX_MANUAL_INSTANCES)
    justification: str = Text


class VoteIn(Strict):
    comment: str = Field("", max_length=500)


class LimitsIn(Strict):
    config: dict[str, Any]
    justification: str = Text
    approvers: int = Field(2, ge=2, le=10)


def fast(content: Any) -> Response:
    """Already plain JSON (:func:`jsonable`): sent as is, without FastAPI's generic re-encoding of nested data."""
    return JSONResponse(content)


def _same_person(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _pauses(state: AppState) -> list[dict[str, Any]]:
    ov = state.overrides
    return [pause_item(p) for p in ov.active(state.now())] if ov is not None else []


def status_body(state: AppState) -> dict[str, Any]:
    """The loop's status now (also the ``status`` server-sent event)."""
    loop = state.loop
    with state.lock:
        services = list(state.adapter.services())
        incidents = list(state.adapter.incidents())
    q = state.queue
    pauses = _pauses(state)
    return jsonable({
        "mode": state.mode, **state.info, "now": state.now(),
        "loop": {"running": bool(loop and loop.running), "finished": bool(loop and loop.finished),
                 "error": getattr(loop, "error", None)},
        "engines": [e.name for e in state.plane.engines],
        "automation": {"paused": bool(pauses), "pauses": pauses},
        "approvals_pending": len(q.list("pending")) if q is not None else 0,
        "incidents_open": sum(1 for i in incidents if i.status != "resolved"),
        "services": len(services), "servers_active": sum(s.active for s in services),
        "decisions_total": state.tally.snapshot()["decisions_total"],
    })


def build_router(state: AppState) -> APIRouter:  # noqa: C901 - one closure per route
    r = APIRouter()
    viewer, operator, approver, admin = (Depends(require_role(x)) for x in ("viewer", "operator", "approver", "admin"))

    def need(obj: Any, what: str) -> Any:
        if obj is None:
            raise HTTPException(409, f"{what} is not available in this mode ({state.mode}"
                                     f"{', observe' if state.info.get('live_mode') == 'observe' else ''})")
        return obj

    def entries(limit: int | None = None, **kw: Any) -> list[dict[str, Any]]:
        return audit_entries(state.reader(), limit, **kw)

    def pending_count() -> int:
        q = state.queue
        return len(q.list("pending")) if q is not None else 0

    def paused() -> list[dict[str, Any]]:
        return _pauses(state)

    # ----------------------------------------------------------- operations
    @r.get("/api/zeroops/operations/status", tags=["operations"])
    def status(who: Principal = viewer) -> dict[str, Any]:
        return {**state.cached("status", CACHE_S, lambda: status_body(state)),
                "principal": {"name": who.name, "role": who.role}}

    @r.get("/api/zeroops/operations/decisions", tags=["operations"], response_model=list[dict[str, Any]])
    def decisions(limit: int = Query(100, ge=1, le=1000), engine: str | None = Query(None, max_length=128),
                  outcome: Literal["executed", "failed", "denied", "proposed"] | None = None,
                  since: float | None = Query(None, ge=0, le=1e12), q: str | None = Query(None, max_length=200),
                  who: Principal = viewer) -> Response:
        if q:  # search: the newest `limit` decisions whose kind, target, engine, rule or reason mention q
            needle = q.casefold()
            hits = [d for d in entries(None, engine=engine, outcome=outcome, since=since)
                    if needle in " ".join(str(d.get(k) or "") for k in ("kind", "target", "engine", "rule")).casefold()
                    or needle in str((d.get("action") or {}).get("reason") or "").casefold()]
            return fast(hits[-limit:])
        return fast(entries(limit, engine=engine, outcome=outcome, since=since))

    @r.get("/api/zeroops/operations/metrics", tags=["operations"])
    def metrics(who: Principal = viewer) -> dict[str, Any]:
        return state.cached("metrics", CACHE_S, lambda: {**operations_metrics(state), "approvals_pending": pending_count(),
                                                         "automation_paused": bool(paused())})

    @r.get("/api/zeroops/operations/override", tags=["operations"])
    def override_status(who: Principal = viewer) -> dict[str, Any]:
        return {"paused": bool(paused()), "pauses": paused()}

    @r.post("/api/zeroops/operations/override", tags=["operations"], status_code=201)
    def override(body: OverrideIn, who: Principal = operator) -> dict[str, Any]:
        ov = need(state.overrides, "the emergency override")
        op = body.operator_id or who.name
        if not _same_person(op, who.name):
            raise HTTPException(403, f"operator_id {op!r} is not you ({who.name!r}): an override is started as "
                                     "yourself, with your own TOTP code")
        try:
            ov.verify_mfa(who.name, body.mfa_token, time.time())  # TOTP runs on wall time, in both modes
        except OverrideError as e:
            raise HTTPException(403, str(e)) from None
        now = state.now()
        p = ov.store.add_pause("override", now, now + body.duration_s, incident=body.incident_id, operator=who.name,
                               justification=body.justification)
        aid = state.audit_event(who.name, "emergency_override", body.incident_id, "executed",
                                {"incident": body.incident_id, "pause": p.id, "until": p.until,
                                 "duration_s": body.duration_s}, reason=body.justification)
        return {**pause_item(p), "audit_id": aid}

    @r.post("/api/zeroops/operations/override/end", tags=["operations"])
    def override_end(body: OverrideEndIn, who: Principal = operator) -> dict[str, Any]:
        ov = need(state.overrides, "the emergency override")
        try:
            ov.verify_mfa(who.name, body.mfa_token, time.time())
        except OverrideError as e:
            raise HTTPException(403, str(e)) from None
        n = ov.store.end_pauses(state.now(), who.name)
        aid = state.audit_event(who.name, "end_override", "automation", "executed", {"ended": n})
        return {"ended": n, "audit_id": aid}

    @r.get("/api/zeroops/interventions", tags=["operations"])
    def interventions(limit: int = Query(100, ge=1, le=1000), who: Principal = viewer) -> list[dict[str, Any]]:
        """People's acts: API actions (votes, overrides, manual scaling, limits) and executions they approved."""
        return entries(limit, where="engine LIKE 'api:%' OR (decision = 'approval' AND outcome = 'executed')")

    # --------------------------------------------------------------- scaling
    @r.get("/api/zeroops/scaling/metrics", tags=["scaling"])
    def scaling_metrics(who: Principal = viewer) -> dict[str, Any]:
        with state.lock:
            a = state.adapter
            services = list(a.services())
            cpu, req, err = a.latest("cpu_util"), a.latest("request_rate"), a.latest("error_ratio")
        t = state.tally.snapshot()
        return jsonable({
            "services": [{"name": s.name, "project": s.project, "active": s.active, "building": s.building,
                          "failed": s.failed, "min": s.min_servers, "max": s.max_servers, "cpu_util": cpu.get(s.name),
                          "request_rate": req.get(s.name), "error_ratio": err.get(s.name)} for s in services],
            "scale_actions": {k: state.tally.by_kind.get(k, 0) for k in ("create_server", "delete_server")},
            "manual_actions": t["manual_actions"],
        })

    @r.get("/api/zeroops/scaling/predictions", tags=["scaling"])
    def predictions(who: Principal = viewer) -> dict[str, Any]:
        """The predictive scaler's last step, per service (its forecast and sizing evidence)."""
        out: dict[str, Any] = {}
        with state.lock:
            for e in state.plane.engines:
                last = getattr(e, "last", None)
                if last is None or not hasattr(last, "items"):
                    continue
                try:
                    out[e.name] = {name: jsonable(v) for name, v in last.items()}
                except (KeyError, IndexError, ValueError, TypeError):
                    out[e.name] = {}
        return {"engines": out, "note": None if out else "no running engine forecasts (no predictive scaler in "
                                                          "this engine set, or it has not stepped yet)"}

    @r.post("/api/zeroops/scaling/manual", tags=["scaling"])
    def manual_scale(body: ManualScaleIn, who: Principal = operator) -> dict[str, Any]:
        """Set a service's server count by hand; only under an active emergency override (automation paused)."""
        ov = need(state.overrides, "manual scaling")
        active = [p for p in ov.active(state.now()) if p.kind == "override"]
        if not active:
            raise HTTPException(409, "manual scaling needs an active emergency override "
                                     "(POST /api/zeroops/operations/override)")
        with state.lock:
            svc = next((s for s in state.adapter.services() if s.name == body.workload_id), None)
            if svc is None:
                names = sorted(s.name for s in state.adapter.services())
                raise HTTPException(404, f"no workload {body.workload_id!r}; known: {', '.join(names[:30])}")
            servers = [s for s in state.adapter.servers(service=svc.name) if s.status in ("ACTIVE", "BUILD")]
        have = len(servers)
        detail = {"pause": active[0].id, "incident": active[0].incident, "principal": who.name,
                  "justification": body.justification, "from": have, "to": body.target_instances}
        records = []
        reason = f"manual scale by {who.name}: {body.justification}"
        if body.target_instances > have:
            records.append(state.execute_manual(who.name, CreateServer(
                service=svc.name, count=body.target_instances - have, reason=reason,
                incident=active[0].incident), detail))
        else:
            newest = sorted(servers, key=lambda s: -s.created_at)[: have - body.target_instances]
            records += [state.execute_manual(who.name, DeleteServer(server_id=s.id, reason=reason,
                                                                    incident=active[0].incident), detail)
                        for s in newest]
        return jsonable({"workload_id": svc.name, "from": have, "to": body.target_instances,
                         "actions": [{"audit_id": x.audit_id, "kind": x.kind, "target": x.target,
                                      "outcome": x.outcome, "detail": x.result.detail if x.result else ""}
                                     for x in records]})

    # ---------------------------------------------------------------- budget
    @r.get("/api/budget/status", tags=["budget"])
    def budget_status(who: Principal = viewer) -> dict[str, Any]:
        with state.lock:
            spend, budgets = state.adapter.spend(), list(state.adapter.budgets())
        return jsonable({
            "spend": {"total": spend.total, "rate_per_hour": spend.rate_per_hour, "per_project": spend.per_project,
                      "per_service": spend.per_service},
            "budgets": [{"project": b.project, "limit": b.limit, "spent": b.spent, "period_s": b.period_s,
                         "period_start": b.period_start, "hard": b.hard,
                         "used": b.spent / b.limit if b.limit > 0 else None} for b in budgets],
        })

    @r.get("/api/budget/anomalies", tags=["budget"])
    def budget_anomalies(limit: int = Query(100, ge=1, le=1000), who: Principal = viewer) -> list[dict[str, Any]]:
        out = []
        for d in entries(limit * 4, where="kind = 'notify' AND body LIKE '%\"cost_anomaly\"%'"):
            ev = ((d.get("action") or {}).get("evidence") or {}).get("cost_anomaly")
            if ev:
                out.append({"id": d["id"], "at": d.get("at"), "engine": d.get("engine"), **ev})
        return jsonable(out[-limit:])

    # -------------------------------------------------------------- alerting
    @r.get("/api/alerting/metrics", tags=["alerting"])
    def alerting_metrics(who: Principal = viewer) -> dict[str, Any]:
        m = operations_metrics(state)
        return {k: m.get(k) for k in ("alerts_fired", "pages", "pages_without_incident", "notifications",
                                      "suppression_rate", "false_alert_rate", "mttd_s", "incidents_total")}

    @r.get("/api/alerting/false-positives", tags=["alerting"])
    def false_positives(limit: int = Query(100, ge=1, le=1000), who: Principal = viewer) -> dict[str, Any]:
        """Pages tied to no declared incident, and alert fingerprints the alerting engine has learnt are noise."""
        pages = [d for d in entries(None, outcome="executed", where="kind = 'page'")
                 if not (d.get("action") or {}).get("incident")
                 and not ((d.get("action") or {}).get("params") or {}).get("incident_id")]
        noisy: list[dict[str, Any]] = []
        with state.lock:
            for e in state.plane.engines:
                model = getattr(e, "noise", None)
                counts = getattr(model, "counts", None)
                if not isinstance(counts, dict):
                    continue
                for fp in counts:
                    if model.noisy(fp):
                        noisy.append({"engine": e.name, "fingerprint": fp, "actionable_share": model.share(fp)})
        return jsonable({"pages_without_incident": pages[-limit:], "noisy_alerts": noisy[:limit]})

    # ------------------------------------------------------------- incidents
    def incident(iid: str) -> dict[str, Any]:
        with state.lock:
            found = next((i for i in state.adapter.incidents() if i.id == iid), None)
        if found is None:
            raise HTTPException(404, f"no incident {iid!r}")
        return incident_item(found)

    def timeline(iid: str) -> list[dict[str, Any]]:
        like = "%" + json.dumps(iid)[1:-1].replace("%", "").replace("_", "") + "%"
        return [d for d in entries(None, where="target = ? OR body LIKE ?", args=(iid, like))
                if (d.get("action") or {}).get("incident") == iid or d.get("target") == iid]

    @r.get("/api/zeroops/incidents", tags=["incidents"])
    def incidents(status: Literal["open", "resolved", "all"] = "all", who: Principal = viewer) -> list[dict[str, Any]]:
        with state.lock:
            items = [incident_item(i) for i in state.adapter.incidents()]
        if status == "open":
            return [i for i in items if i["status"] != "resolved"]
        return [i for i in items if i["status"] == "resolved"] if status == "resolved" else items

    @r.get("/api/zeroops/incidents/{incident_id}", tags=["incidents"])
    def incident_show(incident_id: str = PathParam(min_length=1, max_length=128), who: Principal = viewer) -> dict[str, Any]:
        return {**incident(incident_id), "timeline": timeline(incident_id)}

    @r.get("/api/zeroops/incidents/{incident_id}/postmortem", tags=["incidents"])
    def postmortem(incident_id: str = PathParam(min_length=1, max_length=128), who: Principal = viewer) -> dict[str, Any]:
        inc = incident(incident_id)
        return {"incident": incident_id, "markdown": postmortem_markdown(inc, timeline(incident_id))}

    # ------------------------------------------------------------- approvals
    @r.get("/api/zeroops/approvals", tags=["approvals"])
    def approvals(status: Literal["pending", "approved", "denied", "executed", "failed", "expired", "all"] = "pending",
                  who: Principal = viewer) -> list[dict[str, Any]]:
        q = need(state.queue, "the approval queue")
        return [proposal_item(p) for p in q.list(None if status == "all" else status)]

    def vote(pid: int, decision: Literal["approve", "deny"], body: VoteIn, who: Principal) -> dict[str, Any]:
        q = need(state.queue, "the approval queue")
        try:
            before = q.get(pid)
        except ApprovalError as e:
            raise HTTPException(404, str(e)) from None
        if before.status != "pending":
            raise HTTPException(409, f"proposal #{pid} is {before.status}, not pending")
        if any(_same_person(who.name, x) for x in (*before.approvers, *before.deniers)):
            raise HTTPException(409, f"{who.name!r} has already voted on proposal #{pid}: one person is one vote")
        try:
            with state.lock:
                p = q.vote(pid, who.name, decision, state.now(), body.comment)
        except ApprovalError as e:
            raise HTTPException(409, str(e)) from None
        aid = state.audit_event(who.name, f"approval_{decision}", f"proposal:{pid}", "executed",
                                {"proposal": pid, "vote": decision, "status": p.status, "kind": p.kind,
                                 "target": p.action.target(), "proposal_audit_id": p.audit_id}, reason=body.comment)
        item = proposal_item(p)
        state.events.publish("approval", item)
        return {**item, "audit_id": aid}

    @r.post("/api/zeroops/approvals/{proposal_id}/approve", tags=["approvals"])
    def approve(proposal_id: int = PathParam(ge=1, le=2**62), body: VoteIn | None = None,
                who: Principal = approver) -> dict[str, Any]:
        return vote(proposal_id, "approve", body or VoteIn(), who)

    @r.post("/api/zeroops/approvals/{proposal_id}/deny", tags=["approvals"])
    def deny(proposal_id: int = PathParam(ge=1, le=2**62), body: VoteIn | None = None,
             who: Principal = approver) -> dict[str, Any]:
        return vote(proposal_id, "deny", body or VoteIn(), who)

    # ----------------------------------------------------------------- audit
    @r.get("/api/zeroops/audit/decisions/{decision_id}", tags=["audit"])
    def audit_decision(decision_id: int = PathParam(ge=1, le=2**62), who: Principal = viewer) -> dict[str, Any]:
        e = state.reader().get(decision_id)
        if e is None:
            raise HTTPException(404, f"no decision {decision_id} in the audit trail")
        return {**entry_item(e), "hash": e.hash, "prev": e.prev}

    @r.get("/api/zeroops/audit/verify", tags=["audit"])
    def audit_verify(who: Principal = operator) -> dict[str, Any]:
        from control.audit import verify

        audit = state.audit
        audit.flush()
        try:
            rep = verify(audit.path, audit.key.public if audit.key else None, checkpoints=audit.checkpoints_path,
                         signed=audit.key is not None)
        except AuditError as e:
            raise HTTPException(409, str(e)) from None
        return jsonable({"ok": rep.ok, "records": rep.records, "head": rep.head, "signed": rep.signed,
                         "checkpoints": rep.checkpoints, "signed_seq": rep.signed_seq, "unsigned": rep.unsigned,
                         "problems": rep.problems, "notes": rep.notes})

    # ---------------------------------------------------------------- limits
    @r.get("/api/zeroops/limits", tags=["limits"])
    def limits(who: Principal = viewer) -> dict[str, Any]:
        ov = need(state.overrides, "safety limits")
        cfg = getattr(state.plane.kit.gate, "config", None)
        return jsonable({"current": cfg.to_yaml_dict() if cfg is not None else None,
                         "changes": [{"id": c.id, "proposed_by": c.proposed_by, "needed": c.needed,
                                      "approvers": list(c.approvers), "status": c.status}
                                     for c in ov.limit_changes()]})

    @r.post("/api/zeroops/limits", tags=["limits"], status_code=201)
    def limits_propose(body: LimitsIn, who: Principal = admin) -> dict[str, Any]:
        from control.safety.config import SafetyConfigError, config_from_mapping

        ov = need(state.overrides, "safety limits")
        try:
            cfg = config_from_mapping(body.config)
        except (SafetyConfigError, ValueError, TypeError) as e:
            raise HTTPException(422, f"config: {e}") from None
        cid = ov.propose_limits(state.now(), cfg, who.name, body.justification, needed=body.approvers)
        aid = state.audit_event(who.name, "limits_propose", f"limits:{cid}", "executed",
                                {"change": cid, "needed": max(2, body.approvers)}, reason=body.justification)
        return {"id": cid, "audit_id": aid}

    @r.post("/api/zeroops/limits/{change_id}/approve", tags=["limits"])
    def limits_approve(change_id: int = PathParam(ge=1, le=2**62), who: Principal = approver) -> dict[str, Any]:
        ov = need(state.overrides, "safety limits")
        try:
            before = ov.limit_change(change_id)
        except OverrideError as e:
            raise HTTPException(404, str(e)) from None
        if _same_person(who.name, before.proposed_by) or any(_same_person(who.name, x) for x in before.approvers):
            raise HTTPException(409, f"{who.name!r} proposed or already approved limit change #{change_id}: one "
                                     "person is one approval")
        try:
            ch = ov.approve_limits(state.now(), change_id, who.name)
        except OverrideError as e:
            raise HTTPException(409, str(e)) from None
        aid = state.audit_event(who.name, "limits_approve", f"limits:{change_id}", "executed",
                                {"change": change_id, "status": ch.status})
        return {"id": ch.id, "status": ch.status, "approvers": list(ch.approvers), "needed": ch.needed,
                "audit_id": aid}

    return r
