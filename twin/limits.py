"""Size limits of a world, checked before anything is built.

A scenario whose run would need more memory than the machine can give is
refused up front with the estimate, instead of allocating gigabytes (or
building for minutes) and failing half-way.  The estimate is deliberately
simple: the arrays the twin allocates per tick, per scrape, per server and per
hypervisor, from the figures measured on the twin (``tests/test_bad_input.py``
checks it stays within a factor of the real peak on small worlds).

``ZEROOPS_MAX_MEMORY`` (bytes, or ``512M``, ``4G``) overrides the bound, which
is otherwise half of the physical memory (or of the cgroup limit, if lower).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

MAX_HYPERVISORS = 1_000_000  # building is ~40 µs per host: beyond this the build alone takes minutes
MAX_SERVERS = 1_000_000  # initial servers, all services together
MAX_TICKS = 500_000_000  # physics steps in one run (duration / tick)
MAX_RATE = 1e12  # requests per second a service's traffic components may reach

# bytes, measured with tracemalloc on World builds (see the module docstring)
_PER_TICK = 28  # the times vector, its arange, the offered-load matrix's own row overhead, the curves' float32 step
_PER_TICK_SERVICE = 16  # one float64 of offered load per service per tick, two float32 elasticity curves (groundtruth)
_PER_ROLLUP_ROW = 160  # a numpy row object plus its time
_PER_ROLLUP_CELL = 8  # per (service metric, service)
_SERVICE_METRICS = 11
_SERVER_METRICS = 6
_PER_SERVER = 400  # per-row state vectors, metadata dict, placement lists
_PER_HYPERVISOR = 600  # capacity rows, names, index dict, validation
_PER_FAULT = 2_000  # a scheduled fault: spec, closure, simpy event
_ENV = "ZEROOPS_MAX_MEMORY"


@dataclass(frozen=True)
class Estimate:
    total: int  # bytes
    parts: dict[str, int]  # what needs it -> bytes
    field: str  # the scenario field that drives the largest part

    def describe(self) -> str:
        top = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{k} {human(v)}" for k, v in top if v)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(f"{_ENV}={text!r}: expected bytes or a size like 512M, 4G")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def physical_memory() -> int | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            raw = f.read().strip()
        if raw.isdigit():
            total = min(int(raw), total) if total else int(raw)
    except OSError:
        pass
    return total


def memory_limit() -> tuple[int, str]:
    """The bound in bytes and where it comes from."""
    env = os.environ.get(_ENV)
    if env:
        return parse_bytes(env), f"{_ENV}={env}"
    phys = physical_memory()
    if not phys:
        return 4 * 1024**3, "a default of 4 GB (physical memory unknown)"
    return phys // 2, f"half of this machine's {human(phys)}"


def estimate(cfg: Any) -> Estimate:
    """Bytes a run of ``cfg`` (a :class:`twin.config.WorldConfig`) needs, and the field that drives it."""
    tick = max(cfg.tick, 1e-9)
    ticks = cfg.duration / tick + 1  # floats: a huge duration gives a huge estimate, never an OverflowError
    n_svc = len(cfg.services)
    servers = sum(s.servers for s in cfg.services)
    cap = max(64, 2 * servers)
    hvs = sum(g.count for r in cfg.regions for z in r.zones for g in z.hypervisors)
    scrape = tick * max(1, round(cfg.telemetry.scrape_interval / tick))
    ring = max(2.0, cfg.telemetry.window / scrape + 1)
    minutes = cfg.duration / 60.0
    knots = sum(cfg.duration / max(c.period, tick) for s in cfg.services if s.traffic
                for c in s.traffic.components if c.type == "noise")
    random_faults = 0.0
    if cfg.random_faults is not None:
        random_faults = cfg.random_faults.rate_per_day * cfg.duration / 86400.0
    parts = {
        "duration/tick (traffic per tick)": ticks * (_PER_TICK + _PER_TICK_SERVICE * n_svc) + 16 * knots,
        "duration (per-minute rollups)": (minutes * 1.2) * (_PER_ROLLUP_ROW + _PER_ROLLUP_CELL * _SERVICE_METRICS * n_svc)
        + minutes * 120,
        "telemetry.window (raw ring buffers)": ring * (8 * _SERVICE_METRICS * n_svc + 4 * _SERVER_METRICS * cap + 8),
        "services[].servers (server state)": _PER_SERVER * cap,
        "regions[].zones[].hypervisors (hosts)": _PER_HYPERVISOR * hvs,
        "random_faults.rate_per_day (scheduled faults)": _PER_FAULT * random_faults,
    }
    fields = {
        "duration/tick (traffic per tick)": "duration",
        "duration (per-minute rollups)": "duration",
        # the rings are long because of the window, wide because of the servers: name what is unusual
        "telemetry.window (raw ring buffers)": "telemetry.window" if ring > 721 else "services[].servers",
        "services[].servers (server state)": "services[].servers",
        "regions[].zones[].hypervisors (hosts)": "regions[].zones[].hypervisors[].count",
        "random_faults.rate_per_day (scheduled faults)": "random_faults.rate_per_day",
    }
    top = max(parts, key=lambda k: parts[k])
    return Estimate(int(sum(parts.values())), {k: int(v) for k, v in parts.items()}, fields[top])


def check_size(cfg: Any) -> None:
    """Raise ValueError (naming the field, the estimate and the bound) if ``cfg`` is too big to run here."""
    hvs = sum(g.count for r in cfg.regions for z in r.zones for g in z.hypervisors)
    if hvs > MAX_HYPERVISORS:
        raise ValueError(f"regions[].zones[].hypervisors[].count: {hvs:,} hypervisors in all; at most "
                         f"{MAX_HYPERVISORS:,} are supported (building them alone would take minutes)")
    servers = sum(s.servers for s in cfg.services)
    if servers > MAX_SERVERS:
        raise ValueError(f"services[].servers: {servers:,} initial servers in all; at most {MAX_SERVERS:,} "
                         f"are supported")
    ticks = cfg.duration / max(cfg.tick, 1e-9)
    if ticks > MAX_TICKS:
        raise ValueError(f"duration: {cfg.duration:g} s at a tick of {cfg.tick:g} s is {ticks:,.0f} physics steps; "
                         f"at most {MAX_TICKS:,} are supported (shorten duration or lengthen tick)")
    check_traffic(cfg)
    est = estimate(cfg)
    limit, source = memory_limit()
    if est.total > limit:
        raise ValueError(f"{est.field}: this run would need about {human(est.total)} of memory ({est.describe()}), "
                         f"over the limit of {human(limit)} ({source}); shrink it or raise {_ENV}")


def peak_factor(c: Any) -> float:
    """An upper bound of one traffic component's multiplier (noise: ten sigmas; a trace: its scale)."""
    kind = c.type
    if kind == "diurnal":
        return 1.0 + c.amplitude
    if kind == "noise":
        return 1.0 + 10.0 * c.sigma
    if kind in ("spike", "bursts"):
        return max(1.0, c.factor)
    if kind == "ramp":
        return max(1.0, c.to_factor)
    if kind == "trace":
        return c.scale
    return 1.0  # weekly, idle


def check_traffic(cfg: Any) -> None:
    """Refuse traffic whose components multiply past any real rate (and, further on, past a float)."""
    for i, s in enumerate(cfg.services):
        if s.traffic is None:
            continue
        peak = s.traffic.base
        for c in s.traffic.components:
            peak *= peak_factor(c)
        if not peak <= MAX_RATE:
            raise ValueError(f"services[{i}] ({s.name}).traffic: base x the components' largest factors reaches "
                             f"{peak:.3g} requests/s; at most {MAX_RATE:g}")
