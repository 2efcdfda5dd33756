"""Service-level actions of the OpenStack adapter without a cloud: Octavia weights, rolls, rebuilds, release config.

The Octavia path runs through openstacksdk's real ``Connection``, Keystone auth, catalog and ``load_balancer``
proxy; only the HTTP transport is replaced (a ``requests`` adapter mounted on the SDK's session, the narrow seam
``httpx.MockTransport`` is for httpx) by :class:`CloudHTTP`, which answers the few Keystone, Nova, Glance and
Octavia requests these tests make (Nova's actions keep a server in transit for a few reads, a "broken" server's
rebuild ends in ERROR).  Health comes from a Prometheus whose ``latest`` reads that cloud's state.  The
devcloud has no Octavia, so this is the only test of the Octavia path; tests/live/test_service_actions_live.py
covers detection and the fallback there.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import warnings
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from adapters import octavia, releases
from adapters.base import Conflict, CreateServer, Deploy, NotFound, RestartService, SetLBWeights
from adapters.journal import Journal
from adapters.live_config import ConfigError, parse_config
from adapters.openstack import OpenStackAdapter
from adapters.prometheus import Prometheus, PrometheusConfig
from adapters.releases import META_PREV_IMAGE, META_REBUILD

pytest.importorskip("openstack")
# openstacksdk's deprecation chatter (service_type, _compute_attributes) says nothing about zeroops
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

SERVERS = {
    "s1": {"addr": "10.0.0.5", "service": "web"},
    "s2": {"addr": "10.0.0.6", "service": "web"},
    "s3": {"addr": "10.0.0.7", "service": "web"},  # no member in the pool
}


class CloudHTTP(BaseAdapter):
    """A cloud at http://cloud.test as seen on the wire: a Keystone token (whose catalog has Octavia or not),
    Nova's server list and metadata, Octavia's pools and members.  Records every request."""

    def __init__(self, with_octavia: bool = True) -> None:
        super().__init__()
        self.with_octavia = with_octavia
        self.pools = {"p1": {"id": "p1", "name": "web-pool"}}
        self.members = {"p1": {
            "m1": {"id": "m1", "address": "10.0.0.5", "protocol_port": 80, "weight": 1},
            "m2": {"id": "m2", "address": "10.0.0.6", "protocol_port": 80, "weight": 1},
            "m9": {"id": "m9", "address": "10.0.0.99", "protocol_port": 80, "weight": 1},  # not a zeroops server
        }}
        self.metadata: dict[str, dict[str, str]] = {
            sid: {"zeroops_service": v["service"]} for sid, v in SERVERS.items()}
        self.log: list[tuple[str, str, Any]] = []
        # Nova: status, task state, image; an action keeps a server in transit for ``transit`` reads of it
        self.state = {sid: {"status": "ACTIVE", "task": None, "image": "img-a", "left": 0} for sid in SERVERS}
        self.transit = 2
        self.broken: set[str] = set()  # their rebuild ends in ERROR
        self.max_in_transit = 0
        self.actions: list[tuple[str, str]] = []  # (server, reboot|rebuild|start) in order
        self.created: list[dict[str, Any]] = []  # the bodies of server creates

    def _token(self) -> tuple[int, Any, dict[str, str]]:
        def svc(kind: str, url: str) -> dict[str, Any]:
            return {"type": kind, "name": kind, "id": kind, "endpoints": [
                {"id": kind, "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url}]}

        catalog = [svc("compute", "http://cloud.test/compute/v2.1"), svc("image", "http://cloud.test/image")]
        if self.with_octavia:
            catalog.append(svc("load-balancer", "http://cloud.test/lb"))
        dom = {"id": "default", "name": "Default"}
        token = {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
                 "issued_at": "2026-01-01T00:00:00.000000Z", "user": {"id": "u", "name": "demo", "domain": dom},
                 "project": {"id": "pr", "name": "demo", "domain": dom}, "roles": [{"id": "r", "name": "member"}],
                 "catalog": catalog}
        return 201, {"token": token}, {"X-Subject-Token": "tok"}

    def _server(self, sid: str, read: bool = False) -> dict[str, Any]:
        st = self.state[sid]
        if read and st["task"]:
            st["left"] -= 1
            if st["left"] <= 0:
                st["status"] = "ERROR" if st["task"] == "rebuilding" and sid in self.broken else "ACTIVE"
                st["task"] = None
        return {"id": sid, "name": f"web-{sid}", "status": st["status"], "OS-EXT-STS:task_state": st["task"],
                "tenant_id": "pr", "metadata": self.metadata[sid], "created": f"2026-01-01T00:00:0{sid[-1]}Z",
                "flavor": {"original_name": "m1.small"}, "image": {"id": st["image"]},
                "addresses": {"private": [{"addr": SERVERS[sid]["addr"], "version": 4}]}}

    def _act(self, sid: str, body: dict[str, Any]) -> None:
        st = self.state[sid]
        if "reboot" in body or "os-start" in body:
            st["task"], kind = "rebooting", "reboot" if "reboot" in body else "start"
        else:
            st["task"], st["status"], st["image"], kind = "rebuilding", "REBUILD", body["rebuild"]["imageRef"], "rebuild"
        st["left"] = self.transit
        self.actions.append((sid, kind))
        self.max_in_transit = max(self.max_in_transit, sum(bool(x["task"]) for x in self.state.values()))

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if path == "/v3/auth/tokens":
            return self._token()
        if path.startswith("/lb"):
            if not self.with_octavia:
                return 404, {}, {}
            return self._octavia(method, path.removeprefix("/lb/v2.0/lbaas"), body)
        if path in ("/image", "/image/"):  # Glance's version document (openstacksdk discovers the image API)
            return 300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                       "links": [{"rel": "self", "href": "http://cloud.test/image/v2/"}]}]}, {}
        if path == "/image/v2/images":
            return 200, {"images": [{"id": i, "name": n, "status": "active", "size": 1}
                                    for i, n in (("img-a", "app-1"), ("img-b", "app-2"))]}, {}
        if path == "/compute/v2.1/servers/detail":
            return 200, {"servers": [self._server(s) for s in SERVERS]}, {}
        if path == "/compute/v2.1/flavors/detail":
            return 200, {"flavors": [{"id": "f1", "name": "m1.small", "vcpus": 1, "ram": 512, "disk": 1}]}, {}
        if path == "/compute/v2.1/servers" and method == "POST":
            self.created.append(body["server"])
            return 202, {"server": {"id": f"new{len(self.created)}"}}, {}
        m = re.fullmatch(r"/compute/v2.1/servers/([^/]+)(/metadata|/action)?(?:/([^/]+))?", path)
        if m and m.group(1) in SERVERS:
            sid = m.group(1)
            if m.group(2) == "/action":
                self._act(sid, body)
                return 202, {"server": self._server(sid)}, {}
            if m.group(2) and method == "POST":
                self.metadata[sid].update(body["metadata"])
                return 200, {"metadata": self.metadata[sid]}, {}
            if m.group(2) and method == "DELETE":
                self.metadata[sid].pop(m.group(3), None)
                return 204, {}, {}
            return 200, {"server": self._server(sid, read=True)}, {}
        return 404, {"error": f"no route {method} {path}"}, {}

    def _octavia(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/pools/([^/]+)/members(?:/([^/]+))?", path)
        if m:
            members = self.members[m.group(1)]
            if m.group(2) is None:
                return 200, {"members": list(members.values())}, {}
            if method == "PUT":
                members[m.group(2)].update(body["member"])
            return 200, {"member": members[m.group(2)]}, {}
        m = re.fullmatch(r"/pools/([^/]+)", path)
        if m:
            pool = self.pools.get(m.group(1))
            return (200, {"pool": pool}, {}) if pool else (404, {"faultstring": "Pool not found"}, {})
        if path == "/pools":
            return 200, {"pools": list(self.pools.values())}, {}
        return 404, {"faultstring": f"no route {path}"}, {}

    def send(self, request: Any, **kw: Any) -> requests.Response:  # the requests transport API
        url = urllib.parse.urlparse(request.url)
        body = json.loads(request.body) if request.body else None
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/lb/v2.0/lbaas/pools" and "name" in query:  # find by name: a filtered listing
            status, out, headers = 200, {"pools": [p for p in self.pools.values() if p["name"] == query["name"]]}, {}
        else:
            status, out, headers = self.route(request.method, url.path, body)
        self.log.append((request.method, url.path, body))
        r = requests.Response()
        r.status_code, r.url, r.request = status, request.url, request
        r.headers.update({"Content-Type": "application/json", **headers})
        r._content = json.dumps(out).encode()
        return r

    def close(self) -> None:
        return None

    def puts(self) -> list[tuple[str, Any]]:
        return [(p, b) for m, p, b in self.log if m == "PUT"]


def connect(cloud: CloudHTTP) -> Any:
    import openstack

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = openstack.connection.Connection(
            auth_url="http://cloud.test/v3", username="demo", password="x", project_name="demo",
            user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")
    conn.session.session.mount("http://cloud.test", cloud)
    return conn


class Health(Prometheus):
    """Prometheus as the roll sees it: ``server_up`` 1 for every ACTIVE server of the cloud but the sick ones."""

    def __init__(self, cloud: CloudHTTP, sick: set[str]) -> None:
        super().__init__(PrometheusConfig(queries={"server_up": "max by (server_id) (up)"}))
        self.cloud, self.sick = cloud, sick

    def latest(self, metric: str) -> dict[str, float]:
        return {sid: 1.0 for sid, st in self.cloud.state.items()
                if st["status"] == "ACTIVE" and not st["task"] and sid not in self.sick}


def adapter(cloud: CloudHTTP, *, prometheus: Prometheus | None = None, journal: Journal | None = None,
            **service: Any) -> OpenStackAdapter:
    spec = {"name": "web", "flavor": "m1.small", "image": "img-a",
            "rollout": {"health_settle": 0, "health_timeout": 0.3}} | service
    cfg = parse_config({"services": [spec], "wait": {"create": 0, "rebuild": 1, "poll": 0.01}})
    return OpenStackAdapter(connect(cloud), cfg, sleep=lambda s: None, cache_ttl=0.0, prometheus=prometheus,
                            journal=journal)


# ------------------------------------------------------------------ Octavia
def test_octavia_detected_from_the_catalog() -> None:
    assert octavia.available(connect(CloudHTTP(with_octavia=True)))
    assert not octavia.available(connect(CloudHTTP(with_octavia=False)))


def test_set_weights_through_the_sdk_proxy_matches_members_by_address() -> None:
    cloud = CloudHTTP()
    lines = octavia.set_weights(connect(cloud).load_balancer, "web-pool", {"s1": 0, "s2": 5},
                                {"s1": {"10.0.0.5", "192.0.2.1"}, "s2": {"10.0.0.6"}})
    assert len(lines) == 2
    assert sorted(cloud.puts()) == [("/lb/v2.0/lbaas/pools/p1/members/m1", {"member": {"weight": 0}}),
                                    ("/lb/v2.0/lbaas/pools/p1/members/m2", {"member": {"weight": 5}})]
    assert cloud.members["p1"]["m9"]["weight"] == 1  # a member zeroops did not name is left alone


def test_set_weights_refuses_a_server_without_member_and_changes_nothing() -> None:
    cloud = CloudHTTP()
    with pytest.raises(Conflict, match="no member"):
        octavia.set_weights(connect(cloud).load_balancer, "p1", {"s1": 0, "s3": 0},
                            {"s1": {"10.0.0.5"}, "s3": {"10.0.0.7"}})
    assert cloud.puts() == []
    with pytest.raises(NotFound, match="web-pool"):
        octavia.set_weights(connect(cloud).load_balancer, "nope", {"s1": 0}, {"s1": {"10.0.0.5"}})


@pytest.mark.parametrize(("w", "scale", "want"), [(0.0, 10, 0), (1.0, 10, 10), (0.1, 10, 1), (0.01, 10, 1),
                                                   (0.5, 1, 1), (100.0, 10, 256), (-1.0, 10, 0)])
def test_octavia_weight(w: float, scale: int, want: int) -> None:
    assert octavia.octavia_weight(w, scale) == want


def test_adapter_sets_member_weights_and_metadata_with_octavia() -> None:
    cloud = CloudHTTP()
    a = adapter(cloud, lb_pool="web-pool")
    assert a.lb_mode("web").startswith("Octavia pool web-pool")
    r = a.execute(SetLBWeights(service="web", weights={"s1": 0.0, "s2": 0.5}))
    assert r.ok and "Octavia pool web-pool" in r.detail
    assert cloud.members["p1"]["m1"]["weight"] == 0 and cloud.members["p1"]["m2"]["weight"] == 5
    assert cloud.metadata["s1"]["zeroops_lb_weight"] == "0.0"  # engines keep reading the weight from metadata


def test_adapter_falls_back_to_metadata_without_octavia_or_pool() -> None:
    cloud = CloudHTTP(with_octavia=False)
    a = adapter(cloud, lb_pool="web-pool")
    assert "no load-balancer" in a.lb_mode("web")
    assert a.describe()["load_balancer"].startswith("none")
    assert "no load-balancer" in a.describe()["service_actions"]["web"]["lb_weights"]
    r = a.execute(SetLBWeights(service="web", weights={"s1": 0.0}))
    assert r.ok and "metadata zeroops_lb_weight only" in r.detail
    assert cloud.metadata["s1"]["zeroops_lb_weight"] == "0.0" and not [p for _, p, _ in cloud.log if "/lb" in p]
    with_lb = CloudHTTP()
    assert "sets no lb_pool" in adapter(with_lb).lb_mode("web")
    assert adapter(with_lb).execute(SetLBWeights(service="web", weights={"s1": 0.0})).ok and with_lb.puts() == []


# ------------------------------------------------------------------ releases config
def test_release_images() -> None:
    spec = parse_config({"services": [{"name": "web", "flavor": "f", "image": "base", "releases": {"1": "app-one"},
                                       "release_image": "app-{version}"}]}).services[0]
    assert releases.image_deployed(spec)
    assert releases.image_name(spec, "1") == "app-one" and releases.image_name(spec, "7") == "app-7"
    only = spec.model_copy(update={"release_image": None})
    with pytest.raises(Conflict, match=r"services\[web\]\.releases: no image for version '7'"):
        releases.image_name(only, "7")
    plain = spec.model_copy(update={"release_image": None, "releases": {}})
    assert not releases.image_deployed(plain) and releases.image_name(plain, "7") is None
    assert releases.parse_marker(releases.marker("v 2", "img-b")) == ("v 2", "img-b")
    assert releases.parse_marker("garbage") is None and releases.parse_marker(None) is None


@pytest.mark.parametrize(("extra", "message"), [
    ({"release_image": "app"}, r"release_image: .*must contain \{version\}"),
    ({"release_image": "app-{v}"}, r"release_image: .*found \['v'\]"),
    ({"releases": {"2": ""}}, r"releases: .*empty at version\(s\) \['2'\]"),
    ({"rollout": {"health_metric": "up"}}, r"rollout.health_metric: .*per-server metric"),
    ({"rollout": {"max_unavailable": 0}}, r"rollout.max_unavailable: .*greater than or equal to 1"),
    ({"rollout": {"batch": 2}}, r"rollout.batch: unknown field; allowed fields: health_metric, health_settle"),
    ({"lb_weight_scale": 300}, r"lb_weight_scale: .*less than or equal to 256"),
])
def test_bad_service_action_config_names_file_and_field(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"live\.yaml: services\[0\]\(web\)\." + message):
        parse_config({"services": [{"name": "web", "flavor": "f", "image": "i"} | extra]}, "live.yaml")


# ------------------------------------------------------------------ rolls over a Nova on the wire
def test_restart_max_unavailable_two_goes_in_batches_down_servers_first() -> None:
    cloud = CloudHTTP(with_octavia=False)
    cloud.state["s3"]["status"] = "SHUTOFF"
    r = adapter(cloud, prometheus=Health(cloud, set()), rollout={"max_unavailable": 2, "health_settle": 0,
                                                                  "health_timeout": 0.3}).execute(
        RestartService(service="web"))
    assert r.ok and "3 of 3 restarted, 2 at a time, health: server_up" in r.detail, r.detail
    assert cloud.actions == [("s3", "start"), ("s1", "reboot"), ("s2", "reboot")]
    assert cloud.max_in_transit == 2


def test_restart_one_at_a_time_stops_at_a_sick_server() -> None:
    cloud = CloudHTTP(with_octavia=False)
    r = adapter(cloud, prometheus=Health(cloud, {"s2"})).execute(RestartService(service="web"))
    assert not r.ok and "ABORTED after 1 of 3" in r.detail and "s2 not back: ACTIVE but not healthy" in r.detail
    assert cloud.actions == [("s1", "reboot"), ("s2", "reboot")] and cloud.max_in_transit == 1


def test_rebuild_that_fails_stops_the_roll_and_restores_the_rest() -> None:
    cloud = CloudHTTP(with_octavia=False)
    cloud.broken = {"s2"}
    cloud.metadata["s3"]["zeroops_version"] = "1"
    a = adapter(cloud, releases={"1": "app-1", "2": "app-2"})
    r = a.execute(Deploy(service="web", version="2", fraction=1.0))
    assert not r.ok and "ABORTED: s2 not back after its rebuild: ERROR" in r.detail, r.detail
    assert "not rebuilt: ['s3']" in r.detail
    assert cloud.actions == [("s1", "rebuild"), ("s2", "rebuild")]
    assert cloud.metadata["s1"]["zeroops_version"] == "2" and cloud.metadata["s1"][META_PREV_IMAGE] == "img-a"
    assert cloud.state["s1"]["image"] == "img-b"
    assert META_REBUILD not in cloud.metadata["s2"]
    # the server never rebuilt is as it was: its version back, no marker, no previous image
    assert cloud.metadata["s3"] == {"zeroops_service": "web", "zeroops_version": "1"}


def test_reconcile_finishes_a_planned_rebuild_and_observe_only_says_so(tmp_path: Any) -> None:
    cloud = CloudHTTP(with_octavia=False)
    journal = Journal(tmp_path / "j.sqlite")
    journal.begin("rid1", "deploy", "web", {"service": "web", "version": "2", "fraction": 0.5, "request_id": "rid1"})
    cloud.metadata["s2"] |= {"zeroops_version": "2", META_REBUILD: "2 img-b", META_PREV_IMAGE: "img-a"}
    a = adapter(cloud, journal=journal, releases={"2": "app-2"})
    assert any("would finish 1 rebuild(s): ['s2']" in n for n in a.reconcile(act=False))
    assert cloud.actions == [] and journal.open_entries()
    notes = a.reconcile()
    assert any("finished 1 rebuild(s) ['s2']" in n for n in notes), notes
    assert cloud.actions == [("s2", "rebuild")] and cloud.state["s2"]["image"] == "img-b"
    assert META_REBUILD not in cloud.metadata["s2"] and journal.get("rid1").state == "finished"  # type: ignore[union-attr]
    assert [d.version for d in a.deploys(0)] == ["2"]


def test_a_new_server_boots_the_image_of_the_version_it_inherits() -> None:
    cloud = CloudHTTP(with_octavia=False)
    for sid in SERVERS:
        cloud.metadata[sid]["zeroops_version"] = "2"
    adapter(cloud, releases={"2": "app-2"}).execute(CreateServer(service="web"))
    assert cloud.created[-1]["imageRef"] == "img-b" and cloud.created[-1]["metadata"]["zeroops_version"] == "2"
    adapter(cloud, releases={"1": "app-2"}).execute(CreateServer(service="web"))  # "2" has no image: the spec's
    assert cloud.created[-1]["imageRef"] == "img-a"
    adapter(cloud).execute(CreateServer(service="web"))  # tag-deployed: the spec's image
    assert cloud.created[-1]["imageRef"] == "img-a"
