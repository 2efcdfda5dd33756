"""Budgets engines can see: a limit per project (or ``*``, the whole account) per period, and the spend
in the current period.  Periods start at t=0 and repeat; the spend at each period's start is noted then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import BudgetSpec
    from twin.world import World


@dataclass(frozen=True)
class BudgetState:
    project: str
    period_s: float
    period_start: float
    limit: float
    spent: float
    alert_at: tuple[float, ...]
    hard: bool


class BudgetBook:
    def __init__(self, world: World) -> None:
        self.w = world
        self.specs: list[BudgetSpec] = list(world.cfg.budgets)
        self.base = [0.0] * len(self.specs)  # spend when the current period started
        self.start = [0.0] * len(self.specs)
        for i, b in enumerate(self.specs):
            if b.period < world.cfg.duration:
                self._later(b.period, i)

    def _later(self, delay: float, i: int) -> None:
        """Roll budget ``i`` after ``delay``, after every ordinary event of that instant (the tick that ends
        then bills the period that ends then)."""
        env = self.w.env
        ev = env.event()
        ev._ok, ev._value = True, None
        ev.callbacks.append(lambda _ev: self._roll(i))
        env.schedule(ev, priority=2, delay=delay)

    def _total(self, i: int) -> float:
        p = self.specs[i].project
        return float(self.w.spend_total) if p == "*" else float(self.w.spend_project[self.w.proj_index[p]])

    def _roll(self, i: int) -> None:
        """A new period of budget ``i`` starts now."""
        self.base[i] = self._total(i)
        self.start[i] = self.w.now()
        nxt = self.start[i] + self.specs[i].period
        if nxt < self.w.cfg.duration:
            self._later(self.specs[i].period, i)

    def states(self) -> list[BudgetState]:
        return [BudgetState(b.project, b.period, self.start[i], b.limit, self._total(i) - self.base[i],
                            tuple(b.alert_at), b.hard) for i, b in enumerate(self.specs)]
