"""Fault injection between the OpenStack adapter and the cloud.

:class:`FaultyConnection` wraps an openstacksdk ``Connection``: every call on
its service proxies (``compute``, ``placement``, ``image``, ``identity``,
``network``) may fail before reaching the cloud (an HTTP 503), reach the cloud
and lose its response (a time-out after the cloud acted: the case that makes
naive retries create duplicates), or be delayed.  It can also SIGKILL the
process right after a named call went through, to test reconciliation after a
controller crash.  Used by the live tests and usable against any cloud.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

PROXIES = ("compute", "placement", "image", "identity", "network")


class InjectedServerError(Exception):
    """A 503 that never reached the cloud."""

    status_code = 503


class InjectedTimeout(TimeoutError):
    """The call reached the cloud, but its response was lost."""


class FaultyConnection:
    """A ``Connection`` look-alike that injects faults into a share of the calls.

    ``failure_rate``: share of calls that fail, half before the cloud (503),
    half after it (lost response) unless ``lost_share`` says otherwise.
    ``delay``: (min, max) seconds added to the other calls.
    ``script``: per method name, the first outcomes in order ("fail", "lose",
    "ok"); random draws follow.  ``kill_after``: SIGKILL this process right
    after the first successful call of that method.
    """

    def __init__(
        self,
        conn: Any,
        failure_rate: float = 0.3,
        delay: tuple[float, float] = (0.0, 0.0),
        *,
        lost_share: float = 0.5,
        seed: int | None = None,
        script: Mapping[str, Iterable[str]] | None = None,
        kill_after: str | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        self._conn = conn
        self.failure_rate = failure_rate
        self.delay = delay
        self.lost_share = lost_share
        self.rng = random.Random(seed)
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.kill_after = kill_after
        self.methods = set(methods) if methods is not None else None
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._conn, name)
        return _FaultyProxy(self, target) if name in PROXIES else target

    def _outcome(self, method: str) -> str:
        with self._lock:
            if self.script.get(method):
                return self.script[method].pop(0)
            if self.methods is not None and method not in self.methods:
                return "ok"
            if self.rng.random() < self.failure_rate:
                return "lose" if self.rng.random() < self.lost_share else "fail"
            return "ok"

    def _call(self, method: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        outcome = self._outcome(method)
        self.stats["calls"] += 1
        if outcome == "fail":
            self.stats["failed"] += 1
            self.stats[f"failed:{method}"] += 1
            raise InjectedServerError(f"injected 503 on {method}")
        lo, hi = self.delay
        if hi > 0:
            time.sleep(self.rng.uniform(lo, hi))
        out = fn(*args, **kwargs)
        if hasattr(out, "__next__"):  # generators: run them now, so a lost response loses all of it
            out = list(out)
        if self.kill_after == method:
            os.kill(os.getpid(), signal.SIGKILL)
        if outcome == "lose":
            self.stats["lost"] += 1
            self.stats[f"lost:{method}"] += 1
            raise InjectedTimeout(f"injected time-out after {method} reached the cloud")
        return out


class _FaultyProxy:
    def __init__(self, owner: FaultyConnection, target: Any) -> None:
        self._owner = owner
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._owner._call(name, attr, args, kwargs)

        return call
