"""Per-second billing by flavor and pricing model, attributed per project; the spend series.

Mixed into :class:`twin.world.World`; called once per tick by the physics step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.physics import _Rows, _Structure


class Billing:
    """Billing of a :class:`twin.world.World`."""

    def _bill(self, t: float, dt: float, rc: _Rows, sc: _Structure) -> None:
        lo = t - dt
        partial: np.ndarray | None = None
        if rc.created_sorted:
            # every row overlaps the whole step but those created within it (a suffix, rows being created in time
            # order) and those with a deletion time: the same per-row overlaps, computed only where they differ
            m = len(rc.created)
            k = int(np.searchsorted(rc.created, lo, side="right"))
            partial = rc.finite_del if k == m else np.concatenate((rc.finite_del[rc.finite_del < k], np.arange(k, m)))
            whole = float(np.maximum(np.float64(t) - np.float64(lo), 0.0))
            part_overlap = np.maximum(np.minimum(rc.deleted[partial], t) - np.maximum(rc.created[partial], lo), 0.0)
            if rc.any_reserved:
                overlap = np.full(m, whole)
                overlap[partial] = part_overlap
                partial = None
        else:
            start = np.maximum(rc.created, lo)
            end = np.minimum(rc.deleted, t)
            overlap = np.maximum(end - start, 0.0)
        if self.cfg.prices.spot.volatility > 0 and rc.any_spot_all:
            theta, vol = dt / 3600.0, self.cfg.prices.spot.volatility
            self._spot_x += -theta * self._spot_x + vol * np.sqrt(theta) * self.rng_spot.standard_normal(len(self._spot_x))
            self.f_spot = self.f_spot_mean * np.exp(self._spot_x)
        fl = sc.fl
        pr = rc.pricing
        rate = np.where(pr == 1, self.f_spot[fl] if sc.bill is None else self.f_spot[fl] * sc.bill,
                        sc.od_rate) if rc.any_spot else \
            sc.od_rate.copy() if rc.any_reserved else sc.od_rate
        if rc.any_reserved:
            # reserved servers are covered by commitments up to their count; the rest pay on-demand
            alive_res = (pr == 2) & (overlap > 0)
            covered_left = self.f_commit.copy()
            for i in np.flatnonzero(alive_res):
                if covered_left[fl[i]] > 0:
                    covered_left[fl[i]] -= 1
                    rate[i] = 0.0
        if partial is not None:  # every row overlaps the whole step but those at ``partial``
            cost = rate * whole
            if len(partial):
                cost[partial] = rate[partial] * part_overlap
            if not rc.any_spot:
                # on-demand rates: per project, the step times the sum of the rates, corrected for the partial
                # rows (equal to rounding)
                if sc.od_rate_proj is None:
                    sc.od_rate_proj = np.bincount(rc.svc_proj, sc.od_rate, len(self.proj_names))
                per_proj = sc.od_rate_proj * whole
                if len(partial):
                    per_proj += np.bincount(rc.svc_proj[partial], cost[partial] - rate[partial] * whole,
                                            len(self.proj_names))
            else:
                per_proj = np.bincount(rc.svc_proj, cost, len(self.proj_names))
        else:
            cost = rate * overlap
            per_proj = np.bincount(rc.svc_proj, cost, len(self.proj_names))
        self.billed[rc.idx] += cost
        per_proj = per_proj + self.reservations.rate_proj * dt  # commitments, used or not (twin/reservations.py)
        self.spend_project += per_proj
        total = float(per_proj.sum())
        self.spend_total += total
        self.spend_rate = total / dt * 3600.0 if dt > 0 else 0.0
        self.spend_rate_project = per_proj * (3600.0 / dt) if dt > 0 else per_proj * 0.0
        if int(t) // 60 != int(t - dt) // 60 or not self.spend_series:
            self.spend_series.append((t, self.spend_total))
