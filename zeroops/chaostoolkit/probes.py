"""Chaos Toolkit probes on a zeroops world (``provider: {type: python, module: zeroops.chaostoolkit.probes}``).

Each reads what the project's adapter shows (the twin or OpenStack: :mod:`zeroops.chaostoolkit.session`).
"""

from __future__ import annotations

import math
from typing import Any

from zeroops.chaostoolkit.session import session


def service_metric(metric: str, service: str, configuration: dict[str, Any] | None = None) -> float:
    """The latest value of a per-service metric (``error_ratio``, ``latency_p95_ms``, ...; NaN unknown: -1)."""
    obs = session(configuration).observe()
    try:
        v = float(obs.latest(metric).get(service, math.nan))
    finally:
        obs.close()
    return v if math.isfinite(v) else -1.0


def active_servers(service: str, configuration: dict[str, Any] | None = None) -> int:
    """ACTIVE servers of a service."""
    obs = session(configuration).observe()
    try:
        return sum(1 for s in obs.servers(service=service) if s.status == "ACTIVE")
    finally:
        obs.close()


def server_status(server_id: str, configuration: dict[str, Any] | None = None) -> str:
    """A server's status (``ACTIVE``, ``SHUTOFF``, ``ERROR``, ...; ``DELETED`` when gone)."""
    obs = session(configuration).observe()
    try:
        s = obs.server(server_id)
        return s.status if s is not None else "DELETED"
    finally:
        obs.close()
