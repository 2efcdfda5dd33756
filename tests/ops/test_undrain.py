"""The drain prober: probe one drained server, put the group back when it serves cleanly, back off when not."""

from __future__ import annotations

from adapters.base import LB_WEIGHT_KEY, DeclareIncident, Observation, SetLBWeights
from adapters.fake import FakeAdapter
from engines.ops.undrain import DrainProber, DrainProberConfig

CFG = DrainProberConfig(settle_s=300, probe_s=60, backoff_s=600)


def _world(error: float) -> tuple[FakeAdapter, list[str]]:
    fake = FakeAdapter(services={"web": ("small", 4)}, zones={"az-1": "region-1"})
    ids = sorted(s.id for s in fake.servers(service="web"))
    fake.execute(SetLBWeights(service="web", weights={ids[0]: 0.0, ids[1]: 0.0}))
    for sid in ids:
        fake.feed("server_error_ratio", {"server": sid}, fn=lambda t, e=error, s=sid: e if s == ids[0] else 0.0)
    return fake, ids


def _run(fake: FakeAdapter, eng: DrainProber, until: float) -> list[SetLBWeights]:
    out: list[SetLBWeights] = []
    while fake.now() < until:
        fake.advance(15)
        obs = Observation(fake, fake.now())
        for a in eng.step(fake.now(), obs):
            assert fake.execute(a).ok
            if isinstance(a, SetLBWeights):
                out.append(a)
        obs.close()
    return out


def test_the_probe_server_is_marked_as_planned_work_while_probed() -> None:
    from engines.maintenance import under_maintenance

    fake, ids = _world(error=0.5)
    eng = DrainProber(CFG)
    _run(fake, eng, until=315)  # the probe starts at 300 (settle_s)
    assert under_maintenance(fake.server(ids[0]), fake.now())  # type: ignore[arg-type]
    _run(fake, eng, until=400)  # it failed and was drained again: the mark is gone
    assert not under_maintenance(fake.server(ids[0]), fake.now())  # type: ignore[arg-type]


def _weights(fake: FakeAdapter, ids: list[str]) -> list[float]:
    return [float(fake.server(i).metadata.get(LB_WEIGHT_KEY, "1.0")) for i in ids]  # type: ignore[union-attr]


def test_a_healed_group_is_probed_after_settling_then_restored() -> None:
    fake, ids = _world(error=0.0)
    acts = _run(fake, DrainProber(CFG), until=900)
    probe, restore = acts[0], acts[1]
    assert probe.weights == {ids[0]: CFG.probe_weight}  # one server, a little traffic
    assert restore.weights == {ids[0]: 1.0, ids[1]: 1.0}
    assert len(acts) == 2 and _weights(fake, ids) == [1.0] * 4


def test_a_failing_probe_is_drained_again_and_the_next_probe_waits_longer() -> None:
    fake, ids = _world(error=0.5)
    eng = DrainProber(CFG)
    acts = _run(fake, eng, until=2400)
    drained_again = [a for a in acts if a.weights == {ids[0]: 0.0}]
    probes = [a for a in acts if a.weights == {ids[0]: CFG.probe_weight}]
    assert drained_again and len(probes) == len(drained_again) >= 2
    assert _weights(fake, ids)[:2] == [0.0, 0.0]  # never put back while its errors say it cannot serve
    assert "failed" in drained_again[0].reason


def test_servers_an_open_incident_owns_are_left_to_its_response() -> None:
    fake, ids = _world(error=0.0)
    fake.execute(DeclareIncident(incident_id="INC-1", components=("web",), severity="P2"))
    assert _run(fake, DrainProber(CFG), until=1200) == []
