"""Usage-based quota adjustment: a project whose usage stays above ``high_usage`` of its quota for
``high_window_s`` gets ``raise_factor`` more (up to the hard quota limits); one below ``low_usage`` for
``low_window_s`` (30 days) gets ``lower_factor`` of it (never below its bounds nor its usage).  Usage is the
largest share over instances, cores and RAM.  Changes are ``UpdateQuota`` actions (live: Nova quota sets)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from adapters.base import Action, Quota, UpdateQuota
from engines.selfservice.policy import QuotaAdjust, QuotaIncreaseLimits


def usage_share(q: Quota) -> float | None:
    """The largest used share of the three quotas (None when unlimited or zero)."""
    shares = [u / lim for u, lim in ((q.instances_used, q.instances), (q.cores_used, q.cores),
                                     (q.ram_mb_used, q.ram_mb)) if lim > 0]
    return max(shares) if shares else None


class QuotaAdjuster:
    def __init__(self, cfg: QuotaAdjust, bounds: QuotaIncreaseLimits) -> None:
        self.cfg = cfg
        self.bounds = bounds
        self.high_since: dict[str, float] = {}
        self.low_since: dict[str, float] = {}
        self.changed_at: dict[str, float] = {}

    def observe(self, now: float, quotas: Mapping[str, Quota]) -> None:
        """Track since when each project has been above the high share / below the low share."""
        for name, q in quotas.items():
            share = usage_share(q)
            if share is None:
                self.high_since.pop(name, None)
                self.low_since.pop(name, None)
                continue
            if share > self.cfg.high_usage:
                self.high_since.setdefault(name, now)
            else:
                self.high_since.pop(name, None)
            if share < self.cfg.low_usage:
                self.low_since.setdefault(name, now)
            else:
                self.low_since.pop(name, None)

    def step(self, now: float, quotas: Mapping[str, Quota]) -> list[Action]:
        self.observe(now, quotas)
        c, b = self.cfg, self.bounds
        out: list[Action] = []
        for name, q in quotas.items():
            if c.projects is not None and name not in c.projects:
                continue
            if now - self.changed_at.get(name, -math.inf) < c.cooldown_s:
                continue
            share = usage_share(q)
            cur = (q.instances, q.cores, q.ram_mb)
            if cur[0] > b.max_instances or cur[1] > b.max_cores or cur[2] > b.max_ram_mb:
                continue  # a quota beyond the policy's bounds is not one it manages
            if name in self.high_since and now - self.high_since[name] >= c.high_window_s:
                new = tuple(min(lim, max(v + 1, math.ceil(v * c.raise_factor))) for v, lim in
                            zip(cur, (b.max_instances, b.max_cores, b.max_ram_mb), strict=True))
                why = f"usage above {c.high_usage:.0%} of quota for {(now - self.high_since[name]) / 86400:.1f} days"
            elif name in self.low_since and now - self.low_since[name] >= c.low_window_s:
                used = (q.instances_used, q.cores_used, q.ram_mb_used)
                new = tuple(max(lo, math.ceil(u / c.high_usage), math.floor(v * c.lower_factor)) for v, u, lo in
                            zip(cur, used, (c.min_instances, c.min_cores, c.min_ram_mb), strict=True))
                new = tuple(min(n, v) for n, v in zip(new, cur, strict=True))
                why = f"usage below {c.low_usage:.0%} of quota for {(now - self.low_since[name]) / 86400:.1f} days"
            else:
                continue
            if new == cur:
                continue
            self.changed_at[name] = now
            self.high_since.pop(name, None)
            self.low_since.pop(name, None)
            out.append(UpdateQuota(project=name, instances=new[0], cores=new[1], ram_mb=new[2],
                                   reason=f"quota adjustment: {why}",
                                   evidence={"rule": "quota-adjust", "usage_share": share, "from": list(cur),
                                             "to": list(new)}))
        return out
