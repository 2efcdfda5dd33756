"""Retries with exponential backoff and jitter, and the mapping of cloud errors to adapter errors.

Used by :mod:`adapters.openstack`; free of openstacksdk imports so it can be
unit-tested without a cloud.  Every attempt is written to a :class:`Trail`,
which ends up in the decision record (``ActionResult.attempts`` and ``detail``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from adapters.base import AdapterError, Conflict, NotFound, NoValidHost, QuotaExceeded, TransientAPIError

T = TypeVar("T")

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
# exception class names (of keystoneauth1, requests, urllib3, the stdlib) that mean "try again"
_TRANSIENT_NAMES = {
    "ConnectFailure",
    "ConnectTimeout",
    "ConnectionError",
    "RetriableConnectionFailure",
    "Timeout",
    "ReadTimeout",
    "ReadTimeoutError",
    "TimeoutError",
    "SSLError",
    "DiscoveryFailure",
    "UnknownConnectionError",
    "RemoteDisconnected",
    "ServiceUnavailable",
    "GatewayTimeout",
    "BadGateway",
    "InternalServerError",
}


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "http_status", "code"):
        v = getattr(exc, attr, None)
        if isinstance(v, int):
            return v
    resp = getattr(exc, "response", None)
    v = getattr(resp, "status_code", None)
    return v if isinstance(v, int) else None


def _text(exc: BaseException) -> str:
    parts = [str(exc)]
    for attr in ("details", "message"):
        v = getattr(exc, attr, None)
        if isinstance(v, str) and v not in parts[0]:
            parts.append(v)
    return " ".join(parts)


def classify(exc: BaseException) -> AdapterError:
    """The adapter error that ``exc`` (from openstacksdk or below) stands for."""
    if isinstance(exc, AdapterError):
        return exc
    status = _status(exc)
    msg = _text(exc)
    low = msg.lower()
    if "quota exceeded" in low or "quotaerror" in low or status == 413:
        return QuotaExceeded(msg)
    if "no valid host" in low:
        return NoValidHost(msg)
    if status == 409:
        return Conflict(msg)
    if status == 404 or type(exc).__name__ in ("NotFoundException", "ResourceNotFound"):
        return NotFound(msg)
    if status in _TRANSIENT_STATUS:
        return TransientAPIError(f"HTTP {status}: {msg}")
    names = {c.__name__ for c in type(exc).__mro__}
    if status is None and names & _TRANSIENT_NAMES:
        return TransientAPIError(f"{type(exc).__name__}: {msg}")
    return AdapterError(f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {msg}")


@dataclass
class Trail:
    """Every API attempt made for one action: what, how it ended, how long we waited."""

    lines: list[str] = field(default_factory=list)
    attempts: int = 0

    def note(self, line: str) -> None:
        self.lines.append(line)

    def text(self, limit: int = 40) -> str:
        lines = (
            self.lines if len(self.lines) <= limit else self.lines[: limit // 2] + ["..."] + self.lines[-limit // 2 :]
        )
        return "; ".join(lines)


def fail(err: AdapterError, trail: Trail) -> AdapterError:
    """``err`` with the trail appended to its message and ``attempts`` set, ready to raise."""
    out = type(err)(f"{err} [attempts: {trail.attempts}; {trail.text()}]" if trail.lines else str(err))
    out.attempts = trail.attempts  # type: ignore[attr-defined]
    out.trail = list(trail.lines)  # type: ignore[attr-defined]
    return out


@dataclass
class Retry:
    """Exponential backoff with jitter: delay_n = min(max_delay, base * 2**(n-1)) * (1 - jitter * U[0,1))."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        d = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return d * (1.0 - self.jitter * self.rng.random())

    def call(
        self,
        trail: Trail,
        what: str,
        fn: Callable[[], T],
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, retrying transient errors.

        ``recover`` runs before every retry: if it returns something, the
        earlier attempt evidently went through (a time-out after the cloud
        acted) and that value is returned instead of calling ``fn`` again.
        Non-transient errors are raised at once, mapped by :func:`classify`
        and carrying the trail.
        """
        for n in range(1, self.attempts + 1):
            if n > 1 and recover is not None:
                try:
                    found = recover()
                except Exception as e:  # the lookup itself failed: fall through to a retry
                    trail.note(f"{what}: recovery lookup failed ({classify(e).__class__.__name__})")
                    found = None
                if found is not None:
                    trail.note(f"{what}: found the result of an earlier attempt, not repeating")
                    return found
            trail.attempts += 1
            try:
                out = fn()
            except Exception as e:
                err = classify(e)
                if not isinstance(err, TransientAPIError):
                    trail.note(f"{what} attempt {n}: {type(err).__name__}: {_short(err)}")
                    raise fail(err, trail) from e
                if n == self.attempts:
                    trail.note(f"{what} attempt {n}: {_short(err)}; giving up")
                    raise fail(err, trail) from e
                d = self.delay(n)
                trail.note(f"{what} attempt {n}: {_short(err)}; retry in {d:.2f}s")
                self.sleep(d)
                continue
            if n > 1:
                trail.note(f"{what} attempt {n}: ok")
            return out
        raise AssertionError("unreachable")


def _short(err: BaseException, n: int = 160) -> str:
    s = " ".join(str(err).split())
    return s if len(s) <= n else s[: n - 3] + "..."
