"""Fixtures of the live tests: a real OpenStack (the devcloud) and a real Prometheus.

Configure with ``ZEROOPS_TEST_CLOUD=<clouds.yaml entry>`` and
``OS_CLIENT_CONFIG_FILE=<clouds.yaml>`` (``make devcloud-up`` prints both);
``ZEROOPS_TEST_PROMETHEUS`` (default http://127.0.0.1:9090) must scrape the
test exporter on ``ZEROOPS_TEST_EXPORTER`` (default 127.0.0.1:9477), as the
devcloud's Prometheus does.  Without a configured cloud every test here skips.
Each test uses fresh service names; every server of this session's services
is deleted at the end.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from livekit import CLOUD, NO_CLOUD, PREFIX, PROM_URL, LoadExporter, live_config, wait_until

from adapters.journal import Journal
from adapters.openstack import META_SERVICE, OpenStackAdapter
from adapters.prometheus import Prometheus, PrometheusConfig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """openstacksdk's deprecation chatter (influxdb, service_type, ...) says nothing about zeroops."""
    for item in items:
        if "tests/live/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"))


@pytest.fixture(scope="session")
def conn() -> Iterator[Any]:
    """A raw openstacksdk connection to the test cloud (the tests' own eyes, not the adapter's)."""
    if not CLOUD:
        pytest.skip(NO_CLOUD)
    import openstack

    c = openstack.connect(cloud=CLOUD, api_timeout=30)
    c.authorize()  # a configured but unreachable cloud fails here, loudly
    yield c
    with warnings.catch_warnings():  # session teardown: keep the SDK's deprecation chatter out of other tests
        warnings.simplefilter("ignore")
        for s in list(c.compute.servers(details=True)):
            if _ours(s):
                c.compute.delete_server(s, ignore_missing=True)


def _ours(s: Any) -> bool:
    """A server this session created: tagged with one of its services, or named after one."""
    return (s.metadata or {}).get(META_SERVICE, "").startswith(PREFIX) or (s.name or "").startswith(PREFIX)


@pytest.fixture(autouse=True)
def _delete_servers_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every server a test created is deleted when it ends, and the deletes are waited for.

    The test project's instance quota is shared by the whole session (and by the adapter contract
    tests after it): servers left until session end filled it and failed unrelated tests.
    """
    yield
    if not CLOUD or "conn" not in request.fixturenames:
        return
    c = request.getfixturevalue("conn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in [s for s in c.compute.servers(details=True) if _ours(s)]:
            c.compute.delete_server(s, ignore_missing=True)
        wait_until(lambda: not [s for s in c.compute.servers(details=True) if _ours(s)], 120,
                   "this test's servers to be deleted", interval=0.5)


@pytest.fixture
def svc() -> Callable[[str], str]:
    """Fresh service names for one test: ``svc('web')`` -> ``zt1a2b-web-9f3c``."""
    tag = secrets.token_hex(2)
    return lambda base: f"{PREFIX}-{base}-{tag}"


@pytest.fixture
def make_adapter(conn: Any) -> Callable[..., OpenStackAdapter]:
    """``make_adapter(services, connection=..., journal=..., **config)``: an adapter on the test cloud."""

    def make(
        services: list[dict[str, Any]], *, connection: Any = None, journal: Journal | None = None, **extra: Any
    ) -> OpenStackAdapter:
        return OpenStackAdapter(connection or conn, live_config(services, **extra), journal=journal, cache_ttl=0.5)

    return make


@pytest.fixture
def prometheus() -> Prometheus:
    p = Prometheus(PrometheusConfig(url=PROM_URL))
    if not p.ready():
        pytest.skip(f"Prometheus at {PROM_URL} is not reachable (make devcloud-up starts it)")
    return p


@pytest.fixture
def exporter(conn: Any, prometheus: Prometheus) -> Iterator[LoadExporter]:
    e = LoadExporter(conn)
    try:
        wait_until(lambda: prometheus.query('up{job="zeroops"} == 1'), 30, "Prometheus to scrape the test exporter")
        yield e
    finally:
        e.close()


@pytest.fixture(autouse=True)
def _own_safety_state(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Act-mode controllers use the safety gate; each test gets its own safety state database."""
    monkeypatch.setenv("ZEROOPS_SAFETY_DB", str(tmp_path / "safety.db"))
