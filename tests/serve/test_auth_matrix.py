"""Every data route, generated from the app's own routes (new ones are covered as they are added): no token → 401,
a bad or expired token → 401, a role one step too low → 403."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from zeroops.serve.auth import ROLES

PUBLIC = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def required_role(route: APIRoute) -> str | None:
    """The role a route's dependencies demand (the highest one found), or None."""
    found: list[str] = []

    def walk(dep: Any) -> None:
        role = getattr(dep.call, "zeroops_role", None)
        if role:
            found.append(role)
        for sub in dep.dependencies:
            walk(sub)

    walk(route.dependant)
    return max(found, key=ROLES.index) if found else None


def flat(routes_: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """(path, route) of every APIRoute, through included routers (FastAPI >= 0.16x keeps them nested)."""
    out: list[tuple[str, APIRoute]] = []
    for r in routes_:
        if isinstance(r, APIRoute):
            out.append((prefix + r.path, r))
        elif hasattr(r, "original_router"):
            ctx = getattr(r, "include_context", None)
            out += flat(r.original_router.routes, prefix + (getattr(ctx, "prefix", "") or ""))
    return out


def routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    out = []
    for path, r in flat(app.routes):
        if path not in PUBLIC:
            for m in sorted(r.methods - {"HEAD", "OPTIONS"}):
                out.append((m, path, r))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_data_route_needs_a_role(twin: Any) -> None:
    client, _ = twin
    found = routes(client.app)
    assert len(found) >= 25, [p for _, p, _ in found]  # the endpoints are all there
    missing = [f"{m} {p}" for m, p, r in found if required_role(r) is None and (p.startswith("/api/") or p == "/metrics")]
    assert not missing, f"routes without require_role: {missing}"


def test_no_token_is_401_everywhere(twin: Any) -> None:
    client, _ = twin
    bad = {}
    for m, p, r in routes(client.app):
        if required_role(r) is None:
            continue
        for hdr in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
            res = client.request(m, concrete(p), headers=hdr, json={} if m == "POST" else None)
            if res.status_code != 401:
                bad[f"{m} {p} {hdr}"] = res.status_code
            assert "traceback" not in res.text.lower()
    assert not bad


def test_role_one_step_too_low_is_403(twin: Any, headers: dict[str, dict[str, str]]) -> None:
    client, _ = twin
    checked, bad = 0, {}
    for m, p, r in routes(client.app):
        role = required_role(r)
        if role is None or role == "viewer":
            continue
        lower = ROLES[ROLES.index(role) - 1]
        res = client.request(m, concrete(p), headers=headers[lower], json={} if m == "POST" else None)
        checked += 1
        if res.status_code != 403:
            bad[f"{m} {p} as {lower}"] = res.status_code
    assert checked >= 8 and not bad, bad


def test_expired_and_foreign_tokens_are_401(twin: Any, authority: Any) -> None:
    import time

    import jwt

    from zeroops.serve.auth import TokenAuthority

    client, _ = twin
    expired = authority.mint("old", "admin", ttl_s=60, now=time.time() - 3600)
    foreign = TokenAuthority(b"another-key-" * 4).mint("mallory", "admin")
    unsigned = jwt.encode({"sub": "mallory", "role": "admin", "iss": "zeroops", "iat": 0, "exp": 2**40}, key=None,
                          algorithm="none")
    for tok in (expired, foreign, unsigned):
        res = client.get("/api/zeroops/operations/status", headers={"Authorization": f"Bearer {tok}"})
        assert res.status_code == 401, (tok[:20], res.text)
        assert res.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_status(twin: Any, headers: dict[str, dict[str, str]], role: str) -> None:
    client, _ = twin
    res = client.get("/api/zeroops/operations/status", headers=headers[role])
    assert res.status_code == 200 and res.json()["principal"] == {"name": f"{role}-user", "role": role}
