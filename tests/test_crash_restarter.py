"""The baseline crash restarter starts crashed servers, never ones stopped on purpose (maintenance, warm pool)."""

from __future__ import annotations

from adapters.base import Observation, SetMetadata, StartServer, StopServer
from adapters.fake import FakeAdapter
from engines.baselines import WARM_POOL_KEY, CrashRestarter
from engines.maintenance import MAINTENANCE_KEY


def test_only_servers_stopped_by_accident_are_started() -> None:
    fake = FakeAdapter(services={"web": ("small", 3)})
    a, b, c = sorted(s.id for s in fake.servers(service="web"))
    for sid in (a, b, c):
        fake.execute(StopServer(server_id=sid))
    fake.execute(SetMetadata(server_id=b, metadata={MAINTENANCE_KEY: "CHG-1"}))
    fake.execute(SetMetadata(server_id=c, metadata={WARM_POOL_KEY: "1"}))
    acts = list(CrashRestarter().step(fake.now(), Observation(fake, fake.now())))
    assert [(type(x), x.server_id) for x in acts] == [(StartServer, a)]  # type: ignore[attr-defined]
