"""Reserved-capacity commitments: billed at the reserved rate from start to end, used or not.

The scenario's ``prices.reserved.commitments`` are commitments of the first project for the whole run;
``PurchaseReservation`` adds one for a project, a flavor, a count and a term.  While a commitment runs, it
covers that many servers of its flavor priced ``reserved`` (they pay nothing more); reserved servers beyond
the commitments pay on-demand (the billing in :mod:`twin.billing`).  Its cost is attributed to its project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin import errors

if TYPE_CHECKING:
    from twin.world import World


@dataclass(frozen=True)
class Commitment:
    id: str
    project: int
    flavor: int
    count: int
    per_hour: float  # per server
    start: float
    end: float
    actor: str


class ReservationBook:
    """The commitments of one :class:`World`; keeps ``World.f_commit`` (covered servers per flavor) current."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.items: list[Commitment] = []
        self.rate_proj = np.zeros(len(world.proj_names))  # commitments' cost per second, per project
        for f, name in enumerate(world.flavor_names):
            c = int(world.cfg.prices.reserved.commitments.get(name, 0))
            if c > 0:
                self._add(0, f, c, 0.0, np.inf, "scenario")
        self._apply()

    def _add(self, p: int, f: int, count: int, start: float, end: float, actor: str) -> Commitment:
        c = Commitment(f"res-{len(self.items) + 1:04d}", p, f, count, float(self.w.f_reserved_rate[f] * 3600.0),
                       start, end, actor)
        self.items.append(c)
        return c

    def purchase(self, project: str, flavor: str, count: int, term_s: float, actor: str = "automation") -> str:
        w = self.w
        w._check_api()
        if project not in w.proj_index:
            raise errors.NotFound(f"no project {project!r}")
        if flavor not in w.flavor_index:
            raise errors.NotFound(f"no flavor {flavor!r}")
        if count < 1:
            raise errors.Conflict(f"count must be >= 1, got {count}")
        if not np.isfinite(term_s) or term_s <= 0:
            raise errors.Conflict(f"term_s must be a positive number of seconds, got {term_s}")
        now = w.now()
        c = self._add(w.proj_index[project], w.flavor_index[flavor], int(count), now, now + float(term_s), actor)
        self._apply()
        w.later(float(term_s), self._apply)
        return c.id

    def _apply(self) -> None:
        """Commitments running now: covered servers per flavor, and the cost rate per project."""
        w = self.w
        now = w.now()
        run = [c for c in self.items if c.start <= now < c.end]
        commit = np.zeros(len(w.flavor_names), dtype=np.int64)
        rate = np.zeros(len(w.proj_names))
        for c in run:
            commit[c.flavor] += c.count
            rate[c.project] += c.count * c.per_hour / 3600.0
        w.f_commit = commit
        self.rate_proj = rate

    def active(self) -> list[Commitment]:
        now = self.w.now()
        return [c for c in self.items if c.end > now]
