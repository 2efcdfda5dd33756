"""Names and codes shared across the twin: server states, pricing models, metric families, server ids."""

from __future__ import annotations

import numpy as np

from twin import errors

BUILD, ACTIVE, SHUTOFF, ERROR, DELETED, SHELVED = range(6)
STATUS = ("BUILD", "ACTIVE", "SHUTOFF", "ERROR", "DELETED", "SHELVED_OFFLOADED")
PRICING = ("on_demand", "spot", "reserved")
SERVICE_METRICS = ["request_rate", "served_rate", "error_ratio", "latency_p95_ms", "cpu_util", "memory_util",
                   "disk_util", "pool_util", "network_mbps", "queue_length", "active_servers"]
DEPENDENCY_METRICS = ["dep_call_rate", "dep_error_ratio", "dep_latency_ms"]  # labels: service (caller), dependency
SERVER_METRICS = ["server_cpu_util", "server_memory_util", "server_disk_util", "server_network_mbps", "server_up",
                  "server_error_ratio"]
TIMEOUT_MS = 10_000.0
P95_OVER_MEAN = float(np.log(20.0))  # p95 of an exponential response time


def server_id(i: int) -> str:
    return f"srv-{i:06d}"


def server_index(sid: str) -> int:
    if not sid.startswith("srv-") or not sid[4:].isdigit():
        raise errors.NotFound(f"no server {sid!r}")
    return int(sid[4:])
