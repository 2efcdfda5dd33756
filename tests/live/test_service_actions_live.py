"""Service-level actions on the devcloud: a rolling restart that waits for health, rebuild-based deploys and
rollbacks (and an interrupted one finished by reconcile), and the load-balancer fallback.

The devcloud (Keystone, Nova with the fake driver, Glance, Placement) has no Octavia: only detection and the
metadata fallback of ``SetLBWeights`` can be tested here; the Octavia path is tested through openstacksdk's
real proxy in tests/test_service_actions.py.  The restart tests play the service's app with an exporter
(``zeroops_server_up``) that the devcloud's Prometheus scrapes: a server's app answers ``BOOT_S`` seconds
after Nova shows it ACTIVE again, and a "sick" server's app never comes back after its reboot.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import EXPORTER, IMAGE, PREFIX, servers_of, wait_until

from adapters.base import CreateServer, Deploy, RestartService, RollbackDeploy, SetLBWeights
from adapters.journal import Journal
from adapters.openstack import META_PREV_VERSION, META_SERVICE, META_VERSION
from adapters.prometheus import DEFAULT_QUERIES, Prometheus
from adapters.releases import META_PREV_IMAGE, META_REBUILD, marker
from tests.metrics_server import serve_metrics

pytestmark = pytest.mark.openstack
BOOT_S = 3.0  # the app's start time after Nova shows its server ACTIVE again
HEALTH = {"url": "", "queries": DEFAULT_QUERIES | {"server_up": "max by (server_id, service) (zeroops_server_up)"}}
WAIT = {"create": 60, "resize": 120, "rebuild": 120, "poll": 0.3}


def _down(s: Any) -> bool:
    return s.status != "ACTIVE" or bool(s.task_state)


class App:
    """The service's app on each server, as Prometheus scrapes it, and a poller that records how many servers
    were out of service at once (Nova not ACTIVE, or the app not answering yet)."""

    def __init__(self, conn: Any, service: str, sick: set[str] | None = None) -> None:
        self.conn, self.service, self.sick = conn, service, sick or set()
        self.back_at: dict[str, float] = {}  # server -> when its app answers (after Nova showed it ACTIVE)
        self.went_down: set[str] = set()
        self.updated: dict[str, str] = {}
        self.max_out = self.max_nova_down = 0
        self._servers: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        host, port = EXPORTER.rsplit(":", 1)
        try:
            self.httpd, _ = serve_metrics(self.render, host, int(port))
        except OSError as e:
            pytest.skip(f"the test exporter's address {EXPORTER} is taken ({e}): another live test runs")
        self.t = threading.Thread(target=self._poll, daemon=True)
        self.t.start()

    def _answers(self, s: Any, now: float) -> bool:
        if _down(s):
            return False
        if s.id in self.went_down and s.id in self.sick:
            return False
        return now >= self.back_at.get(s.id, 0.0)

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                servers = servers_of(self.conn, self.service)
                now = time.monotonic()
                with self._lock:
                    for s in servers:
                        # a fake-driver reboot can be over between two polls: Nova's updated_at still tells
                        changed = self.updated.setdefault(s.id, s.updated_at) != s.updated_at
                        self.updated[s.id] = s.updated_at
                        if _down(s) or changed:
                            self.went_down.add(s.id)
                            self.back_at[s.id] = float("inf")
                        if not _down(s) and self.back_at.get(s.id) == float("inf"):
                            self.back_at[s.id] = now + BOOT_S
                    self._servers = servers
                    self.max_nova_down = max(self.max_nova_down, sum(_down(s) for s in servers))
                    self.max_out = max(self.max_out, sum(not self._answers(s, now) for s in servers))
            self._stop.wait(0.2)

    def render(self) -> str:
        now = time.monotonic()
        with self._lock:
            up = [(s.id, self._answers(s, now)) for s in self._servers]
        lines = ["# TYPE zeroops_server_up gauge"]
        lines += [f'zeroops_server_up{{service="{self.service}",server_id="{sid}"}} {int(ok)}' for sid, ok in up if ok]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._stop.set()
        self.t.join()
        self.httpd.shutdown()
        self.httpd.server_close()


def _rebooted(conn: Any, server_id: str) -> bool:
    return any(a.action == "reboot" for a in conn.compute.server_actions(server_id))


def _make(a: Any, name: str, n: int) -> list[str]:
    r = a.execute(CreateServer(service=name, count=n, reason="test"))
    assert r.ok and len(r.server_ids) == n, r.detail
    a.invalidate()
    return [s.id for s in sorted(a.servers(service=name), key=lambda s: (s.created_at, s.id))]


def test_rolling_restart_waits_for_each_server_to_answer_again(
    make_adapter: Any, conn: Any, svc: Any, prometheus: Prometheus
) -> None:
    name = svc("roll")
    a = make_adapter([{"name": name, "max_servers": 3, "rollout": {"health_settle": 1.5, "health_timeout": 60}}],
                     prometheus=HEALTH | {"url": prometheus.config.url}, wait=WAIT)
    ids = _make(a, name, 3)
    app = App(conn, name)
    try:
        wait_until(lambda: all(a.latest("server_up").get(i) for i in ids), 30,
                   "Prometheus to scrape every server's app")
        t0 = time.monotonic()
        r = a.execute(RestartService(service=name))
        took = time.monotonic() - t0
        time.sleep(0.5)
    finally:
        app.close()
    assert r.ok, r.detail
    assert "3 of 3 restarted, 1 at a time, health: server_up" in r.detail
    assert all(_rebooted(conn, i) for i in ids)
    assert app.went_down == set(ids), "the poller saw every server go down"
    assert app.max_nova_down <= 1, f"{app.max_nova_down} servers were down in Nova at once"
    # the next reboot waited for the app of the previous server: never two out of service at once
    assert app.max_out <= 1, f"{app.max_out} servers were out of service at once"
    assert took >= 3 * BOOT_S, f"the roll took {took:.1f}s: it cannot have waited {BOOT_S}s for each app"


def test_restart_aborts_when_a_server_does_not_come_back_and_lb_falls_back_to_metadata(
    make_adapter: Any, conn: Any, svc: Any, prometheus: Prometheus
) -> None:
    name = svc("abort")
    a = make_adapter([{"name": name, "max_servers": 2, "lb_pool": "web-pool",
                       "rollout": {"health_settle": 1.5, "health_timeout": 8}}],
                     prometheus=HEALTH | {"url": prometheus.config.url}, wait=WAIT)
    first, second = _make(a, name, 2)
    # no Octavia on the devcloud: detected from the catalog, reported, and the weights go to metadata only
    d = a.describe()
    assert d["load_balancer"].startswith("none") and not conn.has_service("load-balancer")
    assert "no load-balancer (Octavia) service" in d["service_actions"][name]["lb_weights"]
    lb = a.execute(SetLBWeights(service=name, weights={second: 0.0}))
    assert lb.ok and "metadata zeroops_lb_weight only" in lb.detail
    assert conn.compute.get_server(second).metadata["zeroops_lb_weight"] == "0.0"

    app = App(conn, name, sick={first})
    try:
        wait_until(lambda: all(a.latest("server_up").get(i) for i in (first, second)), 30,
                   "Prometheus to scrape both apps")
        r = a.execute(RestartService(service=name))
    finally:
        app.close()
    assert not r.ok and "ABORTED after 0 of 2" in r.detail and f"{first} not back" in r.detail, r.detail
    assert f"not restarted: ['{second}']" in r.detail
    assert _rebooted(conn, first) and not _rebooted(conn, second), "the roll went on past a server that is not back"


@pytest.fixture
def image_b(conn: Any) -> Iterator[Any]:
    """A second Glance image (the devcloud's zeroops-tiny bytes under another name), deleted at the end."""
    tiny = conn.image.find_image(IMAGE, ignore_missing=False)
    data = conn.image.download_image(tiny).content
    img = conn.image.create_image(name=f"{PREFIX}-img-b-{secrets.token_hex(2)}", data=io.BytesIO(data),
                                  disk_format="raw", container_format="bare", allow_duplicates=True)
    try:
        wait_until(lambda: conn.image.get_image(img.id).status == "active", 60, "the second image to be active")
        yield conn.image.get_image(img.id)
    finally:
        conn.image.delete_image(img.id, ignore_missing=True)


def test_rebuild_deploy_rollback_and_an_interrupted_deploy_finished_by_reconcile(
    make_adapter: Any, conn: Any, svc: Any, image_b: Any, tmp_path: Any
) -> None:
    name = svc("rel")
    tiny = conn.image.find_image(IMAGE, ignore_missing=False).id
    spec = [{"name": name, "max_servers": 3, "releases": {"1": IMAGE, "2": image_b.name}}]
    a = make_adapter(spec, wait=WAIT)

    def image(i: str) -> str:
        return conn.compute.get_server(i).image.id

    ids = _make(a, name, 3)
    assert {image(i) for i in ids} == {tiny}
    rebuilding: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # Nova during the rolls: never two servers rebuilding at once
        while not stop.is_set():
            with contextlib.suppress(Exception):
                rebuilding.append(sum(_down(s) for s in servers_of(conn, name)))
            stop.wait(0.2)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    try:
        r = a.execute(Deploy(service=name, version="2", fraction=0.6))
        assert r.ok and "2 rebuilt one at a time" in r.detail, r.detail
        on_b = [i for i in ids if image(i) == image_b.id]
        assert on_b == ids[:2], "the canary fraction (oldest first) runs the release's image"
        assert all(conn.compute.get_server(i).metadata[META_VERSION] == "2" for i in on_b)
        assert all(conn.compute.get_server(i).metadata[META_PREV_IMAGE] == tiny for i in on_b)
        rb = a.execute(RollbackDeploy(service=name))
        assert rb.ok and "2 of 2 server(s) rebuilt" in rb.detail, rb.detail
    finally:
        stop.set()
        w.join()
    assert max(rebuilding) == 1, f"at most one server down during the rolls, saw {max(rebuilding)}"
    assert {image(i) for i in ids} == {tiny}, "the rollback left a server on the release's image"
    assert not [i for i in ids if META_REBUILD in conn.compute.get_server(i).metadata]
    assert [s.version for s in a.services() if s.name == name] == [0]

    # a deploy of "2" killed mid-roll: its plan (markers) written on two servers, the first one's rebuild begun
    journal = Journal(tmp_path / "journal.sqlite")
    rid = "killed-" + secrets.token_hex(4)
    journal.begin(rid, "deploy", name, {"service": name, "version": "2", "fraction": 0.6, "request_id": rid})
    for i in ids[:2]:
        conn.compute.set_server_metadata(i, **{META_VERSION: "2", META_PREV_VERSION: "0", META_PREV_IMAGE: tiny,
                                               META_REBUILD: marker("2", image_b.id)})
    conn.compute.rebuild_server(ids[0], image_b.id)
    notes = make_adapter(spec, wait=WAIT, journal=journal).reconcile()
    assert any("finished 2 rebuild(s)" in n for n in notes), notes
    assert [image(i) for i in ids] == [image_b.id, image_b.id, tiny]
    assert not [i for i in ids if META_REBUILD in conn.compute.get_server(i).metadata]
    assert journal.get(rid).state == "finished" and journal.open_entries() == []  # type: ignore[union-attr]
    assert all(conn.compute.get_server(i).metadata.get(META_SERVICE) == name for i in ids)
    journal.close()
