"""Bearer tokens, roles and per-principal rate limits for the API.

Tokens are JWTs (HS256, PyJWT) signed with a key from a file that only the server and the token minter read
(``zeroops serve token mint``).  Claims: ``sub`` (the principal's name, which the audit trail records),
``role``, ``jti``, ``iat``, ``exp``, ``iss`` = ``zeroops``.  Roles form a ladder: ``viewer`` < ``operator`` <
``approver`` < ``admin``; a principal holds its role and every lower one.

:func:`require_role` is the FastAPI dependency every ``/api`` route uses: 401 without a valid token, 403 when
the role is too low, 429 past the principal's rate limit.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from fastapi import HTTPException, Request

ROLES = ("viewer", "operator", "approver", "admin")
ISSUER = "zeroops"
ALGORITHM = "HS256"
MAX_TTL_S = 366 * 86400.0
KEY_ENV = "ZEROOPS_SERVE_KEY_FILE"


class AuthError(Exception):
    """A token cannot be minted or a key cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``name`` is what the audit trail records."""

    name: str
    role: str
    token_id: str = ""

    def has(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; allowed: {', '.join(ROLES)}")
    return role


def load_key(path: str | Path, *, create: bool = False) -> bytes:
    """The signing key in ``path`` (hex, 32 bytes or more); with ``create`` a new one is written (mode 0600)."""
    p = Path(path)
    if not p.exists():
        if not create:
            raise AuthError(f"{p}: no such token signing key (zeroops serve token keygen --key-file {p})")
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    try:
        text = p.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as e:
        raise AuthError(f"{p}: not a usable token signing key (hex, at least 32 bytes): {type(e).__name__}") from None
    if len(key) < 32:
        raise AuthError(f"{p}: the token signing key is {len(key)} bytes; at least 32 are needed")
    return key


class TokenAuthority:
    """Mints and checks JWTs with one symmetric key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise AuthError("the token signing key must be at least 32 bytes")
        self._key = key

    def mint(self, name: str, role: str, ttl_s: float = 12 * 3600.0, now: float | None = None) -> str:
        name = " ".join(name.split())
        if not name or len(name) > 64:
            raise AuthError("a token's name must be 1 to 64 characters")
        check_role(role)
        if not 0 < ttl_s <= MAX_TTL_S:
            raise AuthError(f"ttl must be between 1 s and 366 days, got {ttl_s:g} s")
        t = time.time() if now is None else now
        claims = {"sub": name, "role": role, "jti": uuid.uuid4().hex, "iat": int(t), "exp": int(t + ttl_s),
                  "iss": ISSUER}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises :class:`jwt.InvalidTokenError` otherwise."""
        claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["sub", "role", "exp", "iat", "iss"]})
        role = claims.get("role")
        sub = claims.get("sub")
        if role not in ROLES or not isinstance(sub, str) or not sub.strip():
            raise jwt.InvalidTokenError("bad claims")
        return Principal(sub, role, str(claims.get("jti", "")))


class RateLimiter:
    """A token bucket per principal: ``rate`` requests per second, bursts up to ``burst``; ``rate`` 0 disables."""

    def __init__(self, rate: float = 50.0, burst: float = 200.0) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, t)
                return 0.0
            self._buckets[key] = (tokens, t)
            return (1.0 - tokens) / self.rate


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer(request: Request) -> str | None:
    """The bearer token of a request: the Authorization header; the events stream also takes ``access_token``."""
    h = request.headers.get("authorization")
    if h:
        scheme, _, token = h.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if request.url.path == "/api/zeroops/events":
        return request.query_params.get("access_token") or None
    return None


def authenticate(request: Request) -> Principal:
    """The request's principal (cached on the request), or 401."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    auth: TokenAuthority | None = getattr(request.app.state, "tokens", None)
    token = bearer(request)
    if auth is None or token is None:
        raise _unauthorized("a bearer token is needed (zeroops serve token mint)")
    try:
        who = auth.verify(token)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("the token is not valid") from None
    request.state.principal = who
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    wait = limiter.allow(who.name) if limiter is not None else 0.0
    if wait > 0:
        raise HTTPException(429, f"rate limit for {who.name!r}: {limiter.rate:g} requests/s",  # type: ignore[union-attr]
                            headers={"Retry-After": str(max(1, round(wait)))})
    return who


def require_role(role: str) -> Callable[[Request], Principal]:
    """FastAPI dependency: the authenticated principal if it holds ``role``; 401 / 403 / 429 otherwise."""
    check_role(role)

    def dependency(request: Request) -> Principal:
        who = authenticate(request)
        if not who.has(role):
            raise HTTPException(403, f"this needs the role {role!r}; {who.name!r} has {who.role!r}")
        return who

    dependency.zeroops_role = role  # type: ignore[attr-defined]  # read by the route-walking auth tests
    return dependency
