"""The twin's clock for the runtime: periodic calls as SimPy processes."""

from __future__ import annotations

from collections.abc import Callable

import simpy


class SimClock:
    """Implements the runtime's ``Clock`` protocol on a SimPy environment."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def now(self) -> float:
        return float(self.env.now)

    def every(self, period: float, fn: Callable[[float], None], offset: float = 0.0) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")

        def loop():  # type: ignore[no-untyped-def]
            yield self.env.timeout(offset)
            while True:
                fn(float(self.env.now))
                yield self.env.timeout(period)

        self.env.process(loop())
