"""Throughput of the gated, audited choke point: at least 10,000 durable decisions per second.

Each decision: ``SafetyGate.review`` with the design's production guardrails
(rate limit lifted so every rule runs), the adapter call (the shipped fake
world, frozen: not what is measured), and an ``AuditLog`` record, hash-chained and group-committed
to a WAL database with ``synchronous=FULL``, each commit followed by an Ed25519
signed checkpoint in ``<db>.checkpoints``.  The timed region ends with
``flush()``, so every decision counted is committed (durable) and signed.

Run: ``make bench`` (or ``pytest -m benchmark_suite benchmarks/bench_audit.py -o addopts=''``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import (
    Action,
    ActionResult,
    CreateServer,
    DeleteServer,
    Flavor,
    Notify,
    Observation,
    Price,
    RebootServer,
    ResizeServer,
)
from adapters.fake import FakeAdapter, FakeService
from control.audit import AuditKey, AuditLog, verify
from control.runtime import ChokePoint
from control.safety import SafetyConfig, SafetyGate

N = 20_000
TARGET = 10_000.0


class StaticWorld(FakeAdapter):
    """The shipped fake (adapters/fake.py): 200 servers in 10 services over 3 zones, frozen.

    ``execute`` answers without changing the world: the world is not what is measured, and a world
    that grew by 4,000 servers would measure the fake, not the gate and the audit trail.
    """

    def __init__(self) -> None:
        super().__init__(
            [FakeService(f"svc{k}", "m1.small", 20) for k in range(10)],
            flavors=[Flavor("m1.small", 1, 2048, 20), Flavor("m1.medium", 2, 4096, 40)],
            prices=[Price("m1.small", "on_demand", 0.02), Price("m1.medium", "on_demand", 0.05)],
            zones={"az1": "region-az1", "az2": "region-az2", "az3": "region-az3"},
        )

    def execute(self, action: Action) -> ActionResult:
        return ActionResult(True, "ok", ("new",) if action.kind == "create_server" else ())


def workload() -> list[Action]:
    ev = {"cpu_util": 0.83, "latency_p95_ms": 412.0}
    mix: list[Action] = []
    for i in range(50):
        sid = f"srv-{i * 4 % 200 + 1}"
        mix += [CreateServer(service=f"svc{i % 10}", reason="cpu above target", confidence=0.9, evidence=ev,
                             alternatives=("wait", "resize")),
                RebootServer(server_id=sid, reason="unresponsive", confidence=0.7, incident=f"inc-{i}"),
                Notify(component=f"svc{i % 10}", message="latency high", evidence=ev),
                DeleteServer(server_id=sid, reason="idle", confidence=0.6),
                ResizeServer(server_id=sid, flavor="m1.medium", reason="memory pressure")]
    return mix


def run_decisions(path: Path, n: int = N, key: AuditKey | None = None) -> dict[str, int]:
    world = StaticWorld()
    cfg = SafetyConfig(rate_limit_actions=None)  # production limits; every rule evaluated
    log = AuditLog(path, batch_size=1024, flush_interval=0.05, synchronous="FULL", key=key or AuditKey.generate())
    choke = ChokePoint(world, SafetyGate(cfg), log)
    mix = workload()
    outcomes: dict[str, int] = {}
    obs = Observation(world, 0.0)
    for i in range(n):
        now = i * 0.01
        if i % 10 == 0:  # one engine step: ten decisions on one observation
            obs = Observation(world, now)
        rec = choke.submit(now, "bench", mix[i % len(mix)], obs)
        outcomes[rec.outcome] = outcomes.get(rec.outcome, 0) + 1
    committed = log.flush()
    log.close()
    assert committed == n
    return outcomes


@pytest.mark.benchmark_suite
def test_gated_audited_decisions_per_second(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = iter(range(1_000_000))
    result: dict[str, int] = {}
    key = AuditKey.generate()  # a throwaway signing key: the benchmark never touches ~/.config

    def once() -> None:
        result.update(run_decisions(tmp_path / f"audit-{next(counter)}.db", key=key))

    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=0)
    rate = N / benchmark.stats.stats.mean
    benchmark.extra_info.update(decisions=N, decisions_per_second=round(rate), outcomes=result)
    print(f"\n{rate:,.0f} gated and audited decisions/s (durable, synchronous=FULL, signed checkpoints); "
          f"outcomes {result}")
    rep = verify(tmp_path / "audit-0.db", key.public)
    assert rep.ok and rep.records == N and rep.closed and rep.unsigned == 0
    assert rate >= TARGET, f"{rate:.0f} decisions/s < {TARGET:.0f}"
