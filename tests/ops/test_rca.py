"""Root-cause analysis (engines/ops/rca.py) on small in-memory worlds (adapters/fake.py)."""

from __future__ import annotations

import time

from adapters.base import Observation
from adapters.fake import FakeAdapter, FakeService
from engines.ops.rca import GraphRCA
from engines.ops.types import Anomaly

ONSET = 1000.0
NOW = 1040.0


def step(before: float, after: float, at: float = ONSET):
    """A series at ``before`` with a little deterministic wiggle, ``after`` from ``at`` on."""
    return lambda t: (after if t >= at else before) * (1.0 + 0.02 * ((int(t) // 5) % 3 - 1))


def chain() -> FakeAdapter:
    """api -> cache -> db, with calm metrics everywhere."""
    fake = FakeAdapter([FakeService("api", servers=4, dependencies=("cache",)),
                        FakeService("cache", servers=3, dependencies=("db",)),
                        FakeService("db", "medium", servers=3)])
    for s in ("api", "cache", "db"):
        fake.feed("error_ratio", {"service": s}, fn=step(0.001, 0.001))
        fake.feed("latency_p95_ms", {"service": s}, fn=step(40.0, 40.0))
        for m in ("pool_util", "cpu_util", "memory_util", "disk_util"):
            fake.feed(m, {"service": s}, fn=step(0.4, 0.4))
    for c, d in (("api", "cache"), ("cache", "db")):
        fake.feed("dep_error_ratio", {"service": c, "dependency": d}, fn=step(0.001, 0.001))
        fake.feed("dep_latency_ms", {"service": c, "dependency": d}, fn=step(20.0, 20.0))
    for sid in list(fake.servers_by_id):
        fake.feed("server_up", {"server": sid}, fn=lambda t: 1.0)
    return fake


def at(fake: FakeAdapter, t: float = NOW) -> Observation:
    fake.t = t
    return Observation(fake, t)


def anomaly(comp: str, metric: str, onset: float, value: float = 1.0, score: float = 0.9, **labels: str) -> Anomaly:
    return Anomaly(comp, metric, score, value, onset, NOW, labels=labels)


def cascade(fake: FakeAdapter) -> list[Anomaly]:
    """db's pool saturates; api's errors (through api -> cache -> db) are seen first."""
    fake.feed("pool_util", {"service": "db"}, fn=step(0.4, 1.0, ONSET - 30))
    fake.feed("error_ratio", {"service": "db"}, fn=step(0.001, 0.05, ONSET + 20))
    for s in ("api", "cache"):
        fake.feed("error_ratio", {"service": s}, fn=step(0.001, 0.08))
        fake.feed("latency_p95_ms", {"service": s}, fn=step(40.0, 200.0))
    for c, d in (("api", "cache"), ("cache", "db")):
        fake.feed("dep_error_ratio", {"service": c, "dependency": d}, fn=step(0.001, 0.08))
        fake.feed("dep_latency_ms", {"service": c, "dependency": d}, fn=step(20.0, 180.0))
    return [anomaly("api", "error_ratio", ONSET, 0.08, service="api"),
            anomaly("api", "latency_p95_ms", ONSET + 5, 200.0, service="api"),
            anomaly("cache", "error_ratio", ONSET + 5, 0.08, service="cache"),
            anomaly("db", "pool_util", ONSET + 10, 1.0, service="db")]


def test_cascade_ranks_the_saturated_db_first_though_the_api_erred_first() -> None:
    fake = chain()
    anoms = cascade(fake)
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "db", ranked
    assert ranked[0].fault_class == "db_pool_exhaustion"
    assert any("pool_util" in e for e in ranked[0].evidence)
    assert any("edge cache -> db" in e for e in ranked[0].evidence)
    api = next((c.score for c in ranked if c.component == "api"), 0.0)  # explained by its edge: little or nothing
    assert api < 0.5 * ranked[0].score


def test_cascade_from_edge_metrics_alone_blames_the_callee() -> None:
    """Without any anomaly on db itself, the edges that carry the errors into db point at it."""
    fake = chain()
    cascade(fake)
    fake.feed("pool_util", {"service": "db"}, fn=step(0.4, 0.4))  # nothing saturated: only the edges speak
    anoms = [anomaly("api", "error_ratio", ONSET, 0.08, service="api"),
             anomaly("api->cache", "dep_error_ratio", ONSET, 0.08, service="api", dependency="cache")]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "db", ranked


def test_a_healthy_dependency_leaves_the_blame_with_the_erring_service() -> None:
    fake = chain()
    fake.feed("error_ratio", {"service": "api"}, fn=step(0.001, 0.2))
    ranked = GraphRCA().rank(NOW, at(fake), [anomaly("api", "error_ratio", ONSET, 0.2, service="api")])
    assert ranked[0].component == "api"
    assert "db" not in [c.component for c in ranked]


def test_crashed_server_is_the_root_and_its_service_follows() -> None:
    fake = chain()
    victim = fake.servers(service="cache")[0].id
    fake.feed("server_up", {"server": victim}, fn=step(1.0, 0.0))
    fake.feed("active_servers", {"service": "cache"}, fn=step(3.0, 2.0))  # fewer answer than the inventory shows
    fake.feed("error_ratio", {"service": "cache"}, fn=step(0.001, 0.03))
    anoms = [anomaly("cache", "error_ratio", ONSET + 5, 0.03, service="cache")]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)  # no server anomaly in the feed: RCA reads server_up itself
    assert ranked[0].component == victim, ranked
    assert ranked[0].fault_class == "server_crash"
    assert "cache" in [c.component for c in ranked[:3]]
    # the inventory catching up (ERROR) says the same
    fake.set_status(victim, "ERROR")
    ranked = GraphRCA().rank(NOW, at(fake), anoms + [anomaly(victim, "server_status", ONSET, 0.0,
                                                             server=victim, service="cache")])
    assert ranked[0].component == victim


def test_dead_hypervisor_outranks_its_servers() -> None:
    fake = FakeAdapter([FakeService("web", servers=4), FakeService("db", servers=2)],
                       hypervisors=[("hv-a", "az-1", "r1", 64, 1 << 18, 5000), ("hv-b", "az-1", "r1", 64, 1 << 18, 5000),
                                    ("hv-c", "az-2", "r1", 64, 1 << 18, 5000)])
    on_c = [s.id for s in fake.servers() if s.hypervisor == "hv-c"]
    assert len(on_c) >= 2
    anoms = [anomaly(sid, "server_up", ONSET, 0.0, server=sid) for sid in on_c]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "hv-c", ranked
    assert ranked[0].fault_class == "hypervisor_failure"
    # later the inventory shows the host down: still the host, with that evidence
    fake.set_hypervisor_up("hv-c", False)
    ranked = GraphRCA().rank(NOW, at(fake), anoms + [anomaly("hv-c", "hypervisor_state", ONSET + 60, 0.0)])
    assert ranked[0].component == "hv-c"
    assert any("down in the inventory" in e for e in ranked[0].evidence)


def test_zone_with_most_hosts_down_is_the_root() -> None:
    hyps = [(f"hv-{z}{i}", f"az-{z}", "r1", 64, 1 << 18, 5000) for z in (1, 2) for i in range(3)]
    fake = FakeAdapter([FakeService("web", servers=6), FakeService("db", servers=6)], hypervisors=hyps)
    for h in ("hv-10", "hv-11", "hv-12"):
        fake.set_hypervisor_up(h, False)
    down = [s.id for s in fake.servers() if s.zone == "az-1"]
    anoms = [anomaly(sid, "server_up", ONSET, 0.0, server=sid) for sid in down]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "az-1", ranked
    assert ranked[0].fault_class == "az_outage"


def test_deploy_just_before_the_onset_makes_the_service_a_bad_deploy() -> None:
    fake = chain()
    fake.t = ONSET - 60
    fake.record_deploy("cache", "2")
    fake.feed("error_ratio", {"service": "cache"}, fn=step(0.001, 0.1))
    fake.feed("error_ratio", {"service": "api"}, fn=step(0.001, 0.1))
    fake.feed("dep_error_ratio", {"service": "api", "dependency": "cache"}, fn=step(0.001, 0.1))
    anoms = [anomaly("api", "error_ratio", ONSET, 0.1, service="api"),
             anomaly("cache", "error_ratio", ONSET + 5, 0.1, service="cache")]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "cache", ranked
    assert ranked[0].fault_class == "bad_deploy"
    assert any("deploy 1 -> 2" in e for e in ranked[0].evidence)


def test_an_old_deploy_is_not_a_suspect() -> None:
    fake = chain()
    fake.t = ONSET - 5000
    fake.record_deploy("api", "2")
    fake.feed("latency_p95_ms", {"service": "api"}, fn=step(40.0, 300.0))
    ranked = GraphRCA().rank(NOW, at(fake), [anomaly("api", "latency_p95_ms", ONSET, 300.0, service="api")])
    assert ranked[0].component == "api"
    assert ranked[0].fault_class == "latency_degradation"


def test_nothing_anomalous_ranks_nothing() -> None:
    assert GraphRCA().rank(NOW, at(chain()), []) == []


def test_ranks_are_deterministic_and_order_independent() -> None:
    fake = chain()
    anoms = cascade(fake)
    a = GraphRCA().rank(NOW, at(fake), anoms)
    b = GraphRCA().rank(NOW, at(fake), list(reversed(anoms)))
    assert a == b


def test_rank_is_cheap_for_fifty_services() -> None:
    """< 5 ms per call for 50 services with a cascade through a chain of them (median of repeated calls)."""
    n = 50
    svcs = [FakeService(f"s{i}", servers=2, dependencies=(f"s{i + 1}",) if i + 1 < n else ()) for i in range(n)]
    fake = FakeAdapter(svcs)
    for i in range(n):
        s = f"s{i}"
        fake.feed("error_ratio", {"service": s}, fn=step(0.001, 0.05 if i < 5 else 0.001))
        fake.feed("latency_p95_ms", {"service": s}, fn=step(40.0, 40.0))
        for m in ("pool_util", "cpu_util", "memory_util", "disk_util"):
            fake.feed(m, {"service": s}, fn=step(0.3, 1.0 if i == 4 and m == "pool_util" else 0.3))
        if i + 1 < n:
            fake.feed("dep_error_ratio", {"service": s, "dependency": f"s{i + 1}"},
                      fn=step(0.001, 0.05 if i < 4 else 0.001))
            fake.feed("dep_latency_ms", {"service": s, "dependency": f"s{i + 1}"}, fn=step(20.0, 20.0))
    for sid in list(fake.servers_by_id):
        fake.feed("server_up", {"server": sid}, fn=lambda t: 1.0)
    anoms = [anomaly(f"s{i}", "error_ratio", ONSET + i, 0.05, service=f"s{i}") for i in range(5)]
    rca = GraphRCA()
    obs = at(fake)
    assert rca.rank(NOW, obs, anoms)[0].component == "s4"
    times = []
    for _ in range(7):  # the observation's reads are cached now (the feed reads the same series each tick):
        t = time.perf_counter()  # this times RCA's own work, not the in-memory fake's slow series lookup
        rca.rank(NOW, obs, anoms)
        times.append(time.perf_counter() - t)
    assert sorted(times)[3] < 0.005, times


def test_disk_filling_on_one_server_names_that_server() -> None:
    """The service's disk figure is a max over servers: RCA finds the server it comes from."""
    fake = chain()
    servers = [s.id for s in fake.servers(service="api")]
    for sid in servers:
        fake.feed("server_disk_util", {"server": sid}, fn=step(0.3, 0.97 if sid == servers[2] else 0.3))
    fake.feed("disk_util", {"service": "api"}, fn=step(0.3, 0.97))
    anoms = [anomaly("api", "disk_util_trend", ONSET, 0.97, service="api")]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == servers[2], ranked
    assert ranked[0].fault_class == "disk_pressure"


def test_cpu_squeeze_confined_to_one_host_names_the_host() -> None:
    """One server of web is hot while its siblings are not, and so is its neighbour of db: the host."""
    fake = FakeAdapter([FakeService("web", servers=4, dependencies=("db",)), FakeService("db", servers=4)],
                       hypervisors=[(f"hv-{i}", "az-1", "r1", 64, 1 << 18, 5000) for i in range(4)])
    by_host: dict[str, list[str]] = {}
    for s in fake.servers():
        by_host.setdefault(s.hypervisor or "", []).append(s.id)
    host = next(h for h, ids in sorted(by_host.items()) if len(ids) >= 2)
    for s in fake.servers():
        hot = s.hypervisor == host
        fake.feed("server_cpu_util", {"server": s.id}, fn=step(0.3, (0.98 if s.service == "web" else 0.7) if hot
                                                                  else 0.3))
        fake.feed("server_up", {"server": s.id}, fn=lambda t: 1.0)
    fake.feed("latency_p95_ms", {"service": "web"}, fn=step(40.0, 160.0))
    anoms = [anomaly("web", "latency_p95_ms", ONSET, 160.0, service="web")]
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == host, ranked
    assert ranked[0].fault_class == "cpu_throttling"


def test_hot_survivors_of_a_zone_outage_do_not_make_the_other_zone_a_suspect() -> None:
    hyps = [(f"hv-{z}{i}", f"az-{z}", "r1", 64, 1 << 18, 5000) for z in (1, 2) for i in range(2)]
    fake = FakeAdapter([FakeService("web", servers=4), FakeService("db", servers=4)], hypervisors=hyps)
    down = [s.id for s in fake.servers() if s.zone == "az-1"]
    for s in fake.servers():
        dead = s.id in down
        fake.feed("server_up", {"server": s.id}, fn=step(1.0, 0.0 if dead else 1.0))
        fake.feed("server_cpu_util", {"server": s.id}, fn=step(0.4, 0.0 if dead else 0.98))  # survivors carry it all
    for name in ("web", "db"):
        fake.feed("active_servers", {"service": name}, fn=step(4.0, 2.0))
        fake.feed("latency_p95_ms", {"service": name}, fn=step(40.0, 150.0))
    anoms = [anomaly(sid, "server_up", ONSET, 0.0, server=sid) for sid in down]
    anoms += [anomaly(n, "latency_p95_ms", ONSET, 150.0, service=n) for n in ("web", "db")]
    anoms += [anomaly(s.id, "server_cpu_util", ONSET, 0.98, server=s.id, service=s.service or "")
              for s in fake.servers() if s.id not in down]  # a feed that scores per-server CPU flags them
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "az-1", ranked
    assert "az-2" not in [c.component for c in ranked]


def _partition(cut: str = "az-2", drained_since: float | None = None) -> tuple[FakeAdapter, list[Anomaly]]:
    """web -> db over two zones; the servers of zone ``cut`` fail all they serve from the onset on, their peers
    only the errors that reach every server alike (a db whose cut-off half fails); optionally drained later
    (weight 0: they serve nothing, and their ratio reads 0)."""
    hyps = [(f"hv-{z}{i}", f"az-{z}", "r1", 64, 1 << 18, 5000) for z in (1, 2) for i in range(3)]
    fake = FakeAdapter([FakeService("web", servers=6, dependencies=("db",)), FakeService("db", servers=6)],
                       hypervisors=hyps)
    for s in fake.servers():
        inside = s.zone == cut
        peer_err = 0.55 if s.service == "web" else 0.0001
        if inside and drained_since is not None:
            err = lambda t, d=drained_since: 0.0001 if t < ONSET else (1.0 if t < d else 0.0)  # noqa: E731
            net = lambda t, d=drained_since: 0.0 if t >= d else 5.0  # noqa: E731
        else:
            err = step(0.0001, 1.0 if inside else peer_err)
            net = step(5.0, 5.0)
        fake.feed("server_error_ratio", {"server": s.id}, fn=err)
        fake.feed("server_network_mbps", {"server": s.id}, fn=net)
        fake.feed("server_cpu_util", {"server": s.id}, fn=step(0.4, 0.4))
        fake.feed("server_up", {"server": s.id}, fn=lambda t: 1.0)
    for name, e in (("web", 0.6), ("db", 0.5)):
        fake.feed("error_ratio", {"service": name}, fn=step(0.001, e))
    anoms = [anomaly(n, "error_ratio", ONSET, 0.5, service=n) for n in ("web", "db")]
    return fake, anoms


def test_servers_failing_in_one_zone_while_their_peers_elsewhere_are_fine_name_the_zone() -> None:
    fake, anoms = _partition("az-2")
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert ranked[0].component == "az-2", ranked
    assert ranked[0].fault_class == "network_partition"
    assert "az-1" not in [c.component for c in ranked]
    fake, anoms = _partition("az-1")  # the same reasoning for the other zone: nothing is tied to a name
    assert GraphRCA().rank(NOW, at(fake), anoms)[0].component == "az-1"


def test_a_drained_partition_stays_the_root_and_idle_servers_are_no_peers() -> None:
    """After the drain (weight 0) the cut-off servers serve nothing and read 0: that hides nothing already
    seen, and makes no peer of theirs an outlier."""
    fake, anoms = _partition("az-2", drained_since=ONSET + 10)
    ranked = GraphRCA().rank(NOW + 60, at(fake, NOW + 60), anoms)
    assert ranked[0].component == "az-2", ranked
    assert not [c for c in ranked if c.component.startswith("srv-") and
                next(s for s in fake.servers() if s.id == c.component).zone == "az-1"]


def test_errors_alike_on_every_server_blame_no_zone() -> None:
    """A service whose every server fails alike (its own or a dependency's trouble) is no placement fault."""
    fake, anoms = _partition("az-2")
    for s in fake.servers():
        fake.feed("server_error_ratio", {"server": s.id}, fn=step(0.0001, 0.6))
    ranked = GraphRCA().rank(NOW, at(fake), anoms)
    assert not [c for c in ranked if c.component.startswith(("az-", "hv-", "srv-"))], ranked
