"""The self-service inbox: teams ask for servers, quota or a resize; an engine answers with FulfillRequest.

Requests come at the scenario's times (``requests.items``) and at a rate (``requests.random``, drawn when the
world is built from their own random stream).  Approving one carries it out through the control API with
the answerer as actor ("automation" for engines); denying closes it.  If nobody answers within
``requests.human_delay``, a person approves it (actor "human") — the toil automation should take over.
Each request's submission, answer and outcome are recorded in the ground truth (``GroundTruth.requests``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin import errors
from twin.groundtruth import RequestRecord
from twin.names import DELETED, server_id

if TYPE_CHECKING:
    from twin.config import RequestSpec
    from twin.world import World

HUMAN_RETRY_S = 3600.0


class Inbox:
    def __init__(self, world: World) -> None:
        self.w = world
        self.items: list[RequestRecord] = []
        self.by_id: dict[str, RequestRecord] = {}
        cfg = world.cfg.requests
        self.rng = np.random.default_rng(np.random.SeedSequence(world.cfg.seed).spawn(9)[8])
        specs: list[tuple[float, dict]] = [(r.at, self._params(r)) for r in cfg.items]
        rr = cfg.random
        if rr is not None and rr.rate_per_day > 0:
            rng = self.rng
            n = int(rng.poisson(rr.rate_per_day * world.cfg.duration / 86400.0))
            times = np.sort(rng.uniform(0.0, world.cfg.duration, n))
            names = rr.services or world.svc_names
            for t in times:
                who = str(rng.choice(rr.requesters))
                kind = str(rng.choice(rr.kinds))
                svc = str(rng.choice(names)) if names else None
                count = int(rng.integers(1, 4))
                if svc is not None:
                    specs.append((float(t), self._random(who, kind, svc, count)))
        for t, p in sorted(specs, key=lambda x: x[0]):
            world.later(t, lambda p=p: self.submit(p))

    def _params(self, r: RequestSpec) -> dict:
        w = self.w
        project = r.project or (w.cfg.services[w.svc_index[r.service]].project if r.service else w.proj_names[0])
        p: dict = {"requester": r.requester, "kind": r.kind, "project": project}
        if r.kind == "create_servers":
            p["params"] = {"service": r.service, "count": r.count, "flavor": r.flavor}
        elif r.kind == "resize":
            p["params"] = {"service": r.service, "server": r.server, "flavor": r.flavor}
        else:
            p["params"] = {"instances": r.instances, "cores": r.cores, "ram_mb": r.ram_mb}
        return p

    def _random(self, who: str, kind: str, svc: str, count: int) -> dict:
        w = self.w
        s = w.cfg.services[w.svc_index[svc]]
        p: dict = {"requester": who, "kind": kind, "project": s.project}
        if kind == "resize":
            own = w.f_res[w.flavor_index[s.flavor]]
            bigger = [f for f in w.cfg.flavors if f.vcpus > own[0]]
            if bigger:
                p["params"] = {"service": svc, "server": None, "flavor": min(bigger, key=lambda f: f.vcpus).name}
                return p
            kind = p["kind"] = "create_servers"
        if kind == "create_servers":
            p["params"] = {"service": svc, "count": count, "flavor": None}
        else:
            p["params"] = {"instances": 5 * count, "cores": 20 * count, "ram_mb": 40960 * count}
        return p

    def submit(self, p: dict) -> RequestRecord:
        w = self.w
        params = dict(p["params"])
        if p["kind"] == "resize" and not params.get("server"):
            rows = w.servers_of(w.svc_index[params["service"]]) if params.get("service") in w.svc_index else []
            params["server"] = server_id(int(rows[0])) if len(rows) else None
        r = RequestRecord(f"REQ-{len(self.items) + 1:04d}", p["project"], p["requester"], p["kind"], params, w.now())
        self.items.append(r)
        self.by_id[r.id] = r
        w.truth.requests.append(r)
        delay = w.cfg.requests.human_delay
        if delay is not None:
            w.later(delay, lambda: self._human(r))
        return r

    def _human(self, r: RequestRecord) -> None:
        if r.status != "open":
            return
        try:
            self.fulfill(r.id, True, "approved by a person (nobody answered)", actor="human", check_api=False)
        except errors.TwinError as e:
            r.note = f"a person could not carry it out yet: {e}"
            self.w.later(HUMAN_RETRY_S, lambda: self._human(r))

    def fulfill(self, request_id: str, approve: bool, note: str = "", actor: str = "automation",
                check_api: bool = True, carried_out: bool = False) -> RequestRecord:
        """Answer a request; ``carried_out``: the answerer's own actions did it (the servers they created under the
        request's id are recorded), so approving only closes it."""
        w = self.w
        if check_api:
            w._check_api()
        r = self.by_id.get(request_id)
        if r is None:
            raise errors.NotFound(f"no request {request_id!r}")
        if r.status != "open":
            raise errors.Conflict(f"request {request_id} is already {r.status}")
        if approve and carried_out:
            ids = [server_id(i) for i in range(w.n) if w.metadata[i].get("zeroops_request_id") == r.id]
            r.result, r.server_ids = "carried out by the answerer's actions" + (f": {', '.join(ids)}" if ids else ""), ids
        elif approve:
            r.result, r.server_ids = self._carry_out(r, actor)  # raises (the request stays open) if it cannot be done
        r.status = "approved" if approve else "denied"
        r.answered_at = w.now()
        r.answered_by = actor
        r.note = note
        return r

    def _carry_out(self, r: RequestRecord, actor: str) -> tuple[str, list[str]]:
        w, p = self.w, r.params
        if r.kind == "vm_provision" and p.get("service"):  # a person provisions into the named service
            ids = w.create_servers(p["service"], int(p.get("count") or 1), p.get("flavor"), actor=actor)
            return "created " + ", ".join(ids), list(ids)
        if r.kind not in ("create_servers", "resize", "quota_increase"):
            return f"{r.kind}: done by hand (the twin does not model a person's steps for it)", []
        if r.kind == "create_servers":
            ids = w.create_servers(p["service"], int(p.get("count") or 1), p.get("flavor"), actor=actor)
            return "created " + ", ".join(ids), list(ids)
        if r.kind == "resize":
            sid = p.get("server")
            if not sid:
                raise errors.Conflict(f"request {r.id}: service {p.get('service')} has no server to resize")
            i = int(sid[4:])
            if i >= w.n or w.status[i] == DELETED:
                raise errors.NotFound(f"request {r.id}: server {sid} no longer exists")
            w.resize_server(sid, p["flavor"], actor=actor)
            return f"resized {sid} to {p['flavor']}", []
        pi = w.proj_index[r.project]
        q = w.quota[pi]
        new = (int(q[0]) + int(p.get("instances", 0)), int(q[1]) + int(p.get("cores", 0)),
               int(q[2]) + int(p.get("ram_mb", 0)))
        w.update_quota(r.project, *new)
        return f"quota of {r.project}: instances {new[0]}, cores {new[1]}, ram_mb {new[2]}", []
