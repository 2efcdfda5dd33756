"""SPEC Research Group elasticity metrics, from demanded and supplied resources over time.

The definitions follow the SPEC RG Cloud Working Group (Herbst et al., "Ready for Rain? A View from SPEC
Research on the Future of Cloud Metrics", SPEC-RG-2016-01, and Herbst et al., TOMPECS 2018).  For a run of
length ``T`` sampled at times with step ``Δt``, demanded resources ``d_t`` and supplied resources ``s_t``:

* under-provisioning accuracy ``θ_U = 100/T · Σ max(d_t − s_t, 0) / d_t · Δt``  (%; missing resources relative
  to the demand, averaged over time)
* over-provisioning accuracy ``θ_O = 100/T · Σ max(s_t − d_t, 0) / d_t · Δt``  (%; surplus relative to demand)
* under-provisioning timeshare ``τ_U = 100/T · Σ [d_t > s_t] · Δt``  (% of time under-provisioned)
* over-provisioning timeshare ``τ_O = 100/T · Σ [s_t > d_t] · Δt``  (% of time over-provisioned)
* instability ``υ = 100/(T − Δt_1) · Σ_{t≥2} min(|sgn Δs_t − sgn Δd_t|, 1) · Δt``  (% of time supply and demand
  do not move in the same direction)
* jitter ``j = (E_S − E_D) / T``: supply adaptations minus demand changes, per hour here (negative: the supply
  does not follow every change of demand; positive: it oscillates more than the demand does)

Lower is better for all but jitter (best at 0).  Where the demand is 0 (no load at all) the accuracies divide
by one resource unit instead (``max(d_t, 1)``): a server kept for no load counts as 100 % surplus.

In the twin (:func:`service_curves`) one resource unit is one server of the service's flavor; the demand is the
servers needed to serve the offered load within the latency SLO under the twin's true capacity model (per server
``vcpus × capacity_per_vcpu`` requests per second, p95 = ln 20 × (base / (1 − ρ) + dependency latency), so the
SLO holds up to utilisation ``ρ*``): ``d = ceil(offered / (capacity × ρ*))``; the supply is the serving capacity
(ACTIVE, up, not deleting; throttling counted) in the same units.  Only the scorer reads these curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from twin.world import World

EPS = 1e-6  # supply and demand within this of each other are equal (float rounding of capacity sums)
RHO_MIN, RHO_MAX = 0.05, 0.95  # the SLO utilisation ρ* is clipped to this (the twin's latency curve caps at 0.95)
UNSERVED = "unserved_demand_max_s"  # the longest stretch any interactive service had demand and no serving server
METRIC_NAMES = ("elasticity_under_accuracy", "elasticity_over_accuracy", "elasticity_under_timeshare",
                "elasticity_over_timeshare", "elasticity_instability", "elasticity_jitter_per_hour")


@dataclass(frozen=True)
class Elasticity:
    """SPEC RG elasticity metrics of one demand/supply pair (percentages; jitter per hour)."""

    under_accuracy: float
    over_accuracy: float
    under_timeshare: float
    over_timeshare: float
    instability: float
    jitter_per_hour: float

    def as_dict(self, prefix: str = "elasticity_") -> dict[str, float]:
        return {f"{prefix}under_accuracy": self.under_accuracy, f"{prefix}over_accuracy": self.over_accuracy,
                f"{prefix}under_timeshare": self.under_timeshare, f"{prefix}over_timeshare": self.over_timeshare,
                f"{prefix}instability": self.instability, f"{prefix}jitter_per_hour": self.jitter_per_hour}


def elasticity(demand: Sequence[float] | np.ndarray, supply: Sequence[float] | np.ndarray,
               dt: Sequence[float] | np.ndarray | float) -> Elasticity:
    """The metrics of step curves ``demand`` and ``supply`` (each value holding for its ``dt`` seconds)."""
    d = np.asarray(demand, dtype=float)
    s = np.asarray(supply, dtype=float)
    w = np.broadcast_to(np.asarray(dt, dtype=float), d.shape)
    if d.shape != s.shape or d.ndim != 1:
        raise ValueError(f"demand and supply must be 1-D curves of one length, got {d.shape} and {s.shape}")
    total = float(w.sum())
    if len(d) == 0 or total <= 0:
        return Elasticity(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    gap = d - s
    under = gap > EPS
    over = gap < -EPS
    norm = np.maximum(d, 1.0)
    theta_u = 100.0 * float(np.sum(np.where(under, gap, 0.0) / norm * w)) / total
    theta_o = 100.0 * float(np.sum(np.where(over, -gap, 0.0) / norm * w)) / total
    tau_u = 100.0 * float(np.sum(w[under])) / total
    tau_o = 100.0 * float(np.sum(w[over])) / total
    ds, dd = np.diff(s), np.diff(d)
    sgn_s = np.where(np.abs(ds) > EPS, np.sign(ds), 0.0)
    sgn_d = np.where(np.abs(dd) > EPS, np.sign(dd), 0.0)
    rest = total - float(w[0])
    inst = 100.0 * float(np.sum(np.minimum(np.abs(sgn_s - sgn_d), 1.0) * w[1:])) / rest if rest > 0 else 0.0
    jitter = (float(np.count_nonzero(sgn_s)) - float(np.count_nonzero(sgn_d))) / (total / 3600.0)
    return Elasticity(theta_u, theta_o, tau_u, tau_o, inst, jitter)


def slo_utilisation(world: World) -> np.ndarray:
    """Per service, the utilisation ρ* up to which one server meets the latency SLO (twin's latency model at
    light load of the dependencies): ``1 − base / (slo / ln 20 − dependency latency)``, clipped."""
    from twin.names import P95_OVER_MEAN

    nsvc = world.n_svc
    base = world.svc_lat * world.svc_lat_mult
    # nominal latency each service adds with its dependencies (callees first: iterate to a fixed point)
    chain = base.copy()
    for _ in range(nsvc):
        dep = np.bincount(world.e_src, world.e_ratio * chain[world.e_dst], nsvc) if len(world.e_src) \
            else np.zeros(nsvc)
        new = base + dep
        if np.allclose(new, chain):
            break
        chain = new
    dep_lat = chain - base
    room = world.svc_slo_lat / P95_OVER_MEAN - dep_lat
    rho = np.where(room > 0, 1.0 - base / np.maximum(room, 1e-9), RHO_MIN)
    return np.clip(rho, RHO_MIN, RHO_MAX)


def server_capacity(world: World) -> np.ndarray:
    """Per service, requests per second one server of its flavor serves at full utilisation."""
    return world.f_res[world.svc_flavor, 0].astype(float) * world.svc_cpv


def service_curves(world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per tick: (dt, demanded servers, supplied servers), each ticks × services; None if the twin kept no curves."""
    truth = world.truth
    k = int(getattr(truth, "curve_len", 0))
    if k == 0:
        return None
    cap = server_capacity(world)
    per_server = cap * slo_utilisation(world)
    offered = truth.curve_offered[:k].astype(float)
    demand = np.ceil(offered / per_server - EPS)
    demand = np.maximum(demand, 0.0)
    supply = truth.curve_supply[:k].astype(float) / cap
    return truth.curve_dt[:k].astype(float), demand, supply


def longest_unserved(demand: np.ndarray, supply: np.ndarray, dt: np.ndarray) -> float:
    """Seconds of the longest run of ticks with demand (> 0 servers needed) and no serving capacity at all: a
    scale from zero's wait for its first server, or an outage of every server of the service."""
    bad = (demand > 0) & (supply <= EPS)
    best = cur = 0.0
    for b, d in zip(bad.tolist(), dt.tolist(), strict=True):
        cur = cur + d if b else 0.0
        best = max(best, cur)
    return best


def run_elasticity(world: World, services: Sequence[str] | None = None) -> dict[str, Any]:
    """The SPEC RG metrics per service and their unweighted mean over ``services`` (default: every interactive
    service, i.e. every service that is not a batch workload).  Keys of the mean: :data:`METRIC_NAMES`."""
    curves = service_curves(world)
    names = list(world.svc_names)
    batch = set(getattr(world, "batch_services", ()))
    chosen = [s for s in (services if services is not None else names) if s in names and s not in batch]
    out: dict[str, Any] = dict.fromkeys(METRIC_NAMES)
    out["elasticity_by_service"] = {}
    out[UNSERVED] = None
    if curves is None or not chosen:
        return out
    dt, demand, supply = curves
    cols = [names.index(s) for s in chosen]
    out[UNSERVED] = max(longest_unserved(demand[:, c], supply[:, c], dt) for c in cols)
    per = {s: elasticity(demand[:, names.index(s)], supply[:, names.index(s)], dt) for s in chosen}
    out["elasticity_by_service"] = {s: e.as_dict("") for s, e in per.items()}
    for key, field_ in zip(METRIC_NAMES, ("under_accuracy", "over_accuracy", "under_timeshare", "over_timeshare",
                                          "instability", "jitter_per_hour"), strict=True):
        out[key] = float(np.mean([getattr(e, field_) for e in per.values()]))
    return out
