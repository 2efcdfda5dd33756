"""The world the safety tests act on: the shipped in-memory fake (:mod:`adapters.fake`), priced as these tests expect.

A test double of the world, not of the gate: the gate, the approvals and the
audit trail under test are the real ones.  ``FakeWorld`` keeps the small
surface the safety tests use (``servers_by_id``, ``t``, ``executed``,
``service_flavor``, ``price_of``, ``zones``); everything else is
:class:`adapters.fake.FakeAdapter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.base import Flavor, Price
from adapters.fake import FakeAdapter

# "xl" has no price: the gate must treat its cost as unknown
FLAVORS = (Flavor("small", 1, 2048, 20), Flavor("medium", 2, 4096, 80), Flavor("large", 8, 32768, 500),
           Flavor("xl", 16, 65536, 1000))
PRICES = (Price("small", "on_demand", 0.05), Price("medium", "on_demand", 0.2), Price("large", "on_demand", 1.6),
          Price("small", "spot", 0.02))
ZONES = {"az-canary": "canary", "az-east-1": "east", "az-west-1": "west"}


class FakeWorld(FakeAdapter):
    """Servers, services and prices in memory; ``execute`` applies actions at once (no boot or reboot delay)."""

    def __init__(self, services: Mapping[str, tuple[str, int]] | None = None, *,
                 flavors: Sequence[Flavor] = FLAVORS, prices: Sequence[Price] = PRICES,
                 zones: Mapping[str, str] | None = None, fail_every: int = 0) -> None:
        super().__init__(services or {"web": ("small", 4)}, flavors=flavors, prices=prices, zones=zones or ZONES,
                         fail_every=fail_every)
