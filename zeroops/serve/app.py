"""``create_app``: the ASGI app in front of a running loop (FastAPI).

Hardening here: a request body limit (413), JSON errors for every failure (never a traceback), closed CORS unless
origins are configured, an access log without query strings or headers, per-principal rate limits (in
:mod:`zeroops.serve.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zeroops.serve.auth import Principal, RateLimiter, TokenAuthority, require_role
from zeroops.serve.figures import Tally, ZeroOpsCollector, jsonable
from zeroops.serve.state import AppState
from zeroops.serve.views import incident_item, proposal_item

log = logging.getLogger("zeroops.serve")
access = logging.getLogger("zeroops.serve.access")


@dataclass
class Settings:
    max_body_bytes: int = 64 * 1024
    rate_per_s: float = 50.0
    burst: float = 200.0
    cors_origins: tuple[str, ...] = ()
    metrics_public: bool = False  # /metrics without a token (a scraper on a trusted network)
    status_every_s: float = 2.0
    keepalive_s: float = 15.0
    extra: dict[str, Any] = field(default_factory=dict)


class BodyLimit:
    """Refuses request bodies larger than ``limit`` bytes with 413, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, 413)
        try:
            if length is not None and int(length) > self.limit:
                await too_big(scope, receive, send)
                return
        except ValueError:
            await JSONResponse({"detail": "bad Content-Length"}, 400)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


class AccessLog:
    """One JSON log line per request: method, path (no query: tokens may ride there), status, ms, principal.
    An exception that escapes a route becomes a 500 with an error id and no traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 0}
        started = {"v": False}

        async def sending(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                started["v"] = True
            await send(msg)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            eid = uuid.uuid4().hex[:12]
            log.exception("unhandled error", extra={"fields": {"error_id": eid, "path": scope.get("path")}})
            if not started["v"]:
                await JSONResponse({"detail": "internal error", "error_id": eid}, 500)(scope, receive, send)
            status["code"] = 500
        state = scope.get("state") or {}
        who = state.get("principal") if isinstance(state, dict) else None
        access.info("request", extra={"fields": {
            "method": scope.get("method"), "path": scope.get("path"), "status": status["code"],
            "ms": round((time.perf_counter() - t0) * 1000, 2), "principal": getattr(who, "name", None)}})


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(jsonable(data), separators=(',', ':'))}\n\n".encode()


def _mount_optional(app: FastAPI, state: AppState) -> None:
    """The dashboard's ``router`` and the self-service ``build_router(require_role, app_state)``, if present."""
    try:
        dash = importlib.import_module("zeroops.serve.dashboard")
        router = getattr(dash, "router", None)
        if router is not None:
            app.include_router(router)
    except Exception as e:  # noqa: BLE001 - the API runs without a broken optional part
        if not (isinstance(e, ModuleNotFoundError) and e.name == "zeroops.serve.dashboard"):
            log.warning("dashboard not mounted", extra={"fields": {"error": f"{type(e).__name__}: {e}"}})
    try:
        ss = importlib.import_module("zeroops.serve.routes_selfservice")
        build = getattr(ss, "build_router", None)
        if build is not None:
            app.include_router(build(require_role, state))
    except Exception as e:  # noqa: BLE001
        if not (isinstance(e, ModuleNotFoundError) and e.name == "zeroops.serve.routes_selfservice"):
            log.warning("self-service not mounted", extra={"fields": {"error": f"{type(e).__name__}: {e}"}})


def attach_feeds(state: AppState) -> None:
    """The tally from the whole trail, then a choke-point listener for what follows (events too)."""
    if state.tally is not None:
        return
    tally = Tally()
    state.audit.flush()
    tally.add_all({"seq": e.seq, **e.body} for e in state.reader().list())
    state.tally = tally

    def listener(rec: Any) -> None:
        state.on_record(rec)
        detail = rec.verdict.detail or {}
        q = state.queue
        try:
            if q is not None and (rec.outcome == "proposed" or "proposal" in detail):
                pid = detail.get("proposal")
                if pid is None:
                    pid = next((p.id for p in reversed(q.list("pending")) if p.audit_id == rec.audit_id), None)
                if pid is not None:
                    state.events.publish("approval", proposal_item(q.get(int(pid))))
            if rec.kind in ("declare_incident", "update_incident", "resolve_incident") and rec.outcome == "executed":
                iid = rec.action.target()
                found = next((i for i in state.adapter.incidents() if i.id == iid), None)
                if found is not None:
                    state.events.publish("incident", incident_item(found))
        except Exception:  # noqa: BLE001 - an event is never worth a failed engine step
            log.exception("event feed")

    state.plane.choke.listeners.append(listener)


def create_app(state: AppState, tokens: TokenAuthority, settings: Settings | None = None, *,
               manage_loop: bool = True) -> FastAPI:
    """The app for ``state``; with ``manage_loop`` its lifespan starts the loop and stops it on shutdown."""
    from zeroops.serve.routes_ops import build_router

    cfg = settings or Settings()
    attach_feeds(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.events.bind(asyncio.get_running_loop())
        ticker = asyncio.create_task(_status_ticker(state, cfg.status_every_s))
        if manage_loop and state.loop is not None and not state.loop.running:
            state.loop.start()
        log.info("serving", extra={"fields": {"mode": state.mode, **jsonable(state.info)}})
        try:
            yield
        finally:
            ticker.cancel()
            if manage_loop and state.loop is not None:
                log.info("shutting down: stopping the loop after its current step")
                await asyncio.to_thread(state.loop.stop)
                log.info("stopped", extra={"fields": {"decisions": state.tally.records}})

    app = FastAPI(title="zeroops", version="1", lifespan=lifespan,
                  description="The zero-ops control loop's API: operations, scaling, budget, alerting, incidents, "
                              "approvals, audit. Bearer tokens (JWT) with roles viewer < operator < approver < admin.")
    app.state.tokens = tokens
    app.state.limiter = RateLimiter(cfg.rate_per_s, cfg.burst)
    app.state.zeroops = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()][:20]  # the offending input is not echoed back
        return JSONResponse({"detail": errors}, 422)

    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    app.add_middleware(AccessLog)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, Any]:
        loop = state.loop
        ok = loop is None or loop.running or loop.finished
        return {"status": "ok" if ok and not getattr(loop, "error", None) else "degraded", "mode": state.mode}

    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()

    def extra() -> dict[str, Any]:
        q, ov = state.queue, state.overrides
        return {"pending_approvals": len(q.list("pending")) if q is not None else 0,
                "automation_paused": 1.0 if ov is not None and ov.active(state.now()) else 0.0}

    registry.register(ZeroOpsCollector(state, extra))
    metrics_auth = [] if cfg.metrics_public else [Depends(require_role("viewer"))]

    @app.get("/metrics", tags=["meta"], dependencies=metrics_auth, response_class=Response)
    def metrics() -> Response:
        body = state.cached("exposition", 0.5, lambda: generate_latest(registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/zeroops/events", tags=["operations"], response_class=StreamingResponse)
    async def events(request: Request, who: Principal = Depends(require_role("viewer"))) -> StreamingResponse:
        q = state.events.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        kind, data = await asyncio.wait_for(q.get(), cfg.keepalive_s)
                        yield _sse(kind, data)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                    if await request.is_disconnected():
                        return
            finally:
                state.events.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app.include_router(build_router(state))
    _mount_optional(app, state)
    return app


async def _status_ticker(state: AppState, every: float) -> None:
    """Publish a ``status`` event every ``every`` seconds while someone listens."""
    from zeroops.serve.routes_ops import status_body

    while True:
        await asyncio.sleep(every)
        if not state.events.subscribers:
            continue
        try:
            state.events.publish("status", await asyncio.to_thread(status_body, state))
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("status event")
