"""The provisioner's arithmetic, free of any world: break-even, reservation sizing, flavor fit, run-out day.

Pure functions on numbers and numpy arrays, so each lever's decision can be checked by hand in tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from adapters.base import Flavor

HOUR = 3600.0
DAY = 86400.0


# ------------------------------------------------------------- reservations
def breakeven_utilisation(reserved_per_hour: float, on_demand_per_hour: float) -> float:
    """Share of a term a committed server must be in use for the commitment to cost no more than on-demand.

    A commitment is billed every hour of its term (``R`` per hour); the same server on demand costs ``D`` per
    hour it runs.  Over a term of ``H`` hours with use ``u``: reserved ``R·H`` vs on-demand ``D·u·H``, equal at
    ``u = R / D``.  ``inf`` when on-demand is free (a commitment never pays).
    """
    if on_demand_per_hour <= 0:
        return math.inf
    return max(reserved_per_hour, 0.0) / on_demand_per_hour


@dataclass(frozen=True)
class ReservationPlan:
    """How many servers to commit to, with the evidence: each slot's utilisation and the break-even."""

    count: int
    breakeven: float  # utilisation share
    breakeven_hours: float  # hours of the term a slot must be used
    slot_utilisation: tuple[float, ...]  # slot k (1-based at index k-1): share of time with >= k servers
    saving_per_hour: float  # expected, over the committed slots: sum(D·u_k − R)
    term_s: float


def reservation_plan(counts: Sequence[float] | np.ndarray, on_demand: float, reserved: float, term_s: float,
                     margin: float = 0.05, already: int = 0) -> ReservationPlan:
    """Servers worth committing to, from a history of the service's server count (evenly spaced samples).

    Slot ``k`` (the k-th server) is in use the share ``u_k`` of the samples with at least ``k`` servers; it
    pays to commit it when ``u_k >= breakeven + margin``.  Slots are nested (``u_k`` falls with ``k``), so the
    plan is the largest such ``k`` (the steady baseline).  ``already`` slots are covered by commitments held:
    the plan adds only slots above them.
    """
    c = np.asarray(counts, dtype=float)
    c = c[np.isfinite(c)]
    be = breakeven_utilisation(reserved, on_demand)
    top = int(np.floor(c.max())) if len(c) else 0
    util = tuple(float(np.mean(c >= k)) for k in range(1, top + 1))
    n = 0
    for k, u in enumerate(util, start=1):
        if u >= be + margin:
            n = k
    new = range(already, n)
    saving = float(sum(on_demand * util[k] - reserved for k in new))
    return ReservationPlan(max(n - already, 0), be, be * term_s / HOUR, util, saving, term_s)


# --------------------------------------------------------------- rightsizing
@dataclass(frozen=True)
class FlavorChoice:
    flavor: str
    price_per_hour: float
    need_vcpus: float
    need_ram_mb: float


def cheapest_fit(flavors: Mapping[str, Flavor], prices: Mapping[str, float], current: str, p95_cpu: float,
                 p95_mem: float, target_cpu: float, target_mem: float,
                 p95_disk: float = 0.0, target_disk: float = 0.9, same_vcpus: bool = False) -> FlavorChoice | None:
    """The cheapest flavor (by ``prices``, per hour) that holds the current flavor's p95 use with headroom.

    A server of ``current`` at utilisation ``p95_cpu`` uses ``p95_cpu × vcpus`` vCPUs; the new flavor must
    run that at no more than ``target_cpu`` (the same for memory and disk), and keep the GPUs.  None when
    no flavor with a price fits or the data is missing.

    ``same_vcpus``: only flavors of the current vCPU count (for an autoscaled service behind an equal-weight
    load balancer, where the scaler sets the count and a server of another size would take the same share
    of requests with different capacity); its CPU use then stays what it is.
    """
    cur = flavors.get(current)
    if cur is None or not all(math.isfinite(x) for x in (p95_cpu, p95_mem)):
        return None
    need_cpu = float(cur.vcpus) if same_vcpus else max(p95_cpu, 0.0) * cur.vcpus / target_cpu
    need_ram = max(p95_mem, 0.0) * cur.ram_mb / target_mem
    need_disk = max(p95_disk if math.isfinite(p95_disk) else 1.0, 0.0) * cur.disk_gb / target_disk
    best: FlavorChoice | None = None
    for f in flavors.values():
        price = prices.get(f.name)
        if price is None or f.gpus != cur.gpus:
            continue
        if f.vcpus < need_cpu or f.ram_mb < need_ram or f.disk_gb < need_disk or (same_vcpus and f.vcpus != cur.vcpus):
            continue
        if best is None or (price, f.vcpus, f.name) < (best.price_per_hour, flavors[best.flavor].vcpus, best.flavor):
            best = FlavorChoice(f.name, price, need_cpu, need_ram)
    return best


def percentile(v: np.ndarray, q: float) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if len(v) else math.nan


# ------------------------------------------------------- capacity planning
@dataclass(frozen=True)
class RunOut:
    """A zone's capacity forecast: the trend, the peak above it, and when the peak reaches capacity."""

    capacity: float
    used: float  # the last sample
    slope_per_day: float
    peak_excess: float  # how far above the trend line the samples of the last day reach
    forecast: float  # trend + peak excess at ``now + horizon``
    full_at: float | None  # when the trend plus the peak excess first reaches ``capacity`` (None: not in horizon)

    def days_left(self, now: float) -> float | None:
        return None if self.full_at is None else max(self.full_at - now, 0.0) / DAY


def run_out(t: np.ndarray, used: np.ndarray, capacity: float, now: float, horizon_s: float) -> RunOut | None:
    """When a zone runs out, the earlier of two projections to ``now + horizon_s``:

    * a least-squares line through ``(t, used)`` plus the largest excess over it in the last day (daily peaks
      ride above a trend fitted through troughs and peaks alike);
    * with two days or more, a line through the daily peaks (the maximum of each day-long block ending at the
      last sample): peaks grow faster than the mean when the daily swing grows with the traffic.

    Full when a projection reaches ``capacity`` (already full, the last sample at capacity: ``now``); a line
    that crossed the capacity before ``now`` while the zone is not full overshoots and is not used.  None
    without 2 samples.
    """
    t = np.asarray(t, dtype=float)
    u = np.asarray(used, dtype=float)
    ok = np.isfinite(t) & np.isfinite(u)
    t, u = t[ok], u[ok]
    if len(t) < 2 or np.ptp(t) <= 0:
        return None
    slope, icpt = np.polyfit(t - t[0], u, 1)
    line = icpt + slope * (t - t[0])
    recent = t >= t[-1] - DAY
    excess = float(max(np.max(u[recent] - line[recent]), 0.0))
    lines = [(float(t[0]), float(icpt + excess), float(slope))]  # (origin, value there, slope per second)
    blocks = int(np.ptp(t) // DAY)
    if blocks >= 2:
        pk_t, pk_u = [], []
        for k in range(blocks):
            m = (t > t[-1] - (k + 1) * DAY) & (t <= t[-1] - k * DAY)
            i = int(np.argmax(np.where(m, u, -np.inf)))
            pk_t.append(t[i])
            pk_u.append(u[i])
        ps = float(np.polyfit(np.array(pk_t) - pk_t[0], pk_u, 1)[0])
        lines.append((float(pk_t[0]), float(pk_u[0]), ps))

    def at(x: float) -> float:
        return max(v + s * (x - o) for o, v, s in lines)

    end = now + horizon_s
    full: float | None = None
    if u[-1] >= capacity:
        full = now
    else:
        for o, v, s in lines:
            if s > 0:
                x = o + (capacity - v) / s
                # a line already past the capacity while the zone is not full overshoots: the other decides
                if now <= x <= end and (full is None or x < full):
                    full = float(x)
    best = max(lines, key=lambda ln: ln[2])
    return RunOut(float(capacity), float(u[-1]), float(best[2] * DAY), excess, at(end), full)
