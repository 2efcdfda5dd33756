"""The forecasting models: persistence, seasonal-naive, robust seasonal + damped trend, and the online ensemble."""

from __future__ import annotations

from collections.abc import Sequence

from engines.detection.seasonal import AUTO
from engines.forecasting.api import DAY, WEEK, Forecaster
from engines.forecasting.members import (
    Member,
    PersistenceMember,
    SeasonalDeltaMember,
    SeasonalNaiveMember,
    SeasonalTrendMember,
)


class Persistence(Forecaster):
    """The last window's mean, carried forward (the reactive assumption)."""

    name = "persistence"

    def _members(self, n: int) -> list[Member]:
        return [PersistenceMember(self.window)]


class SeasonalNaive(Forecaster):
    """The same window one ``period_s`` earlier (default a day); persistence until a period of history is known."""

    name = "snaive"

    def __init__(self, period_s: float = DAY, **options: float | str) -> None:
        if not period_s > 0:
            raise ValueError(f"snaive: period_s must be > 0, got {period_s}")
        self.period = float(period_s)
        options.setdefault("history_s", self.period + 2 * float(options.get("window_s", 300.0)))  # type: ignore[arg-type]
        super().__init__(**options)  # type: ignore[arg-type]
        self.combine = "best"

    def _members(self, n: int) -> list[Member]:
        assert self.history is not None
        return [SeasonalNaiveMember(self.history, self.period, self.window_s), PersistenceMember(self.window)]

    def _weights(self, pts):  # type: ignore[no-untyped-def]
        import numpy as np

        have = np.isfinite(pts[0])  # seasonal-naive whenever it has the window one period back
        return np.vstack([have, ~have]).astype(float)


class Seasonal(Forecaster):
    """Robust seasonal profiles (auto-detected daily/weekly) + damped Holt trend, with level-shift resets."""

    name = "seasonal"

    def __init__(self, periods: str | Sequence[float] = AUTO, level_halflife_s: float | None = 1800.0,
                 **options: float | str) -> None:
        self.periods, self.level_hl = periods, level_halflife_s
        super().__init__(**options)  # type: ignore[arg-type]

    def _members(self, n: int) -> list[Member]:
        return [SeasonalTrendMember(n, self.window_s, self.periods, self.level_hl)]


class Ensemble(Forecaster):
    """Persistence, seasonal-naive (a day and a week), the seasonal model and persistence + its seasonal change,
    weighted online by each one's recent squared error at the horizon (or the best of them, ``combine="best"``)."""

    name = "ensemble"

    def __init__(self, periods: str | Sequence[float] = AUTO, naive_periods: Sequence[float] = (DAY, WEEK),
                 level_halflife_s: float | None = 1800.0, **options: float | str) -> None:
        self.periods, self.naive_periods, self.level_hl = periods, tuple(float(p) for p in naive_periods), \
            level_halflife_s
        if self.naive_periods:
            options.setdefault("history_s", max(self.naive_periods) + 2 * float(options.get("window_s", 300.0)))  # type: ignore[arg-type]
        super().__init__(**options)  # type: ignore[arg-type]

    def _members(self, n: int) -> list[Member]:
        ms: list[Member] = [PersistenceMember(self.window)]
        if self.history is not None:
            ms += [SeasonalNaiveMember(self.history, p, self.window_s) for p in self.naive_periods]
        seasonal = SeasonalTrendMember(n, self.window_s, self.periods, self.level_hl)
        return [*ms, seasonal, SeasonalDeltaMember(self.window, seasonal)]
