"""The control API: what engines (through the adapter) and the on-call human do to the cloud.

Create, delete, reboot, start, stop, resize, migrate servers; restart, roll back and configure services;
load-balancer weights, metadata and quotas.  Each call has the twin's latencies and failure modes and, when
it completes, notifies the world's action listeners.  Mixed into :class:`twin.world.World`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin import errors
from twin.names import ACTIVE, BUILD, DELETED, ERROR, PRICING, SHELVED, SHUTOFF, STATUS, server_id, server_index


class Control:
    """The control API of a :class:`twin.world.World`."""

    def _check_api(self) -> None:
        rate = self.cfg.api.transient_error_rate
        if rate and self.rng_api.random() < rate:
            raise errors.TransientAPIError("503 Service Unavailable (simulated)")

    def _server(self, sid: str | int) -> int:
        i = server_index(sid) if isinstance(sid, str) else sid
        if i < 0 or i >= self.n or self.status[i] == DELETED:
            raise errors.NotFound(f"no server {server_id(i) if isinstance(sid, int) else sid!r}")
        return i

    def _idle(self, i: int) -> None:
        if self.busy_until[i] > self.now() or self.deleting[i]:
            raise errors.Conflict(f"server {server_id(i)} has a task in progress")
    def _create(self, svc: int, flavor: int, count: int, zone: int | None, pricing: int,
                check_quota: bool = True, metadata: dict[str, str] | None = None) -> list[int]:
        proj = int(self.svc_project[svc]) if svc >= 0 else 0
        res = self.f_res[flavor]
        if check_quota:
            want = self.proj_used[proj] + np.array([count, count * res[0], count * res[1]])
            over = [name for name, w, q in zip(("instances", "cores", "ram"), want, self.quota[proj], strict=True) if w > q]
            if over:
                raise errors.QuotaExceeded(f"Quota exceeded for {', '.join(over)} in project {self.proj_names[proj]}")
        placed: list[int] = []
        try:
            for _ in range(count):
                h = self.place(flavor, zone)
                self.hv_used[h] += res
                placed.append(h)
        except errors.NoValidHost:
            for h in placed:
                self.hv_used[h] -= res
            raise
        if self.n + count > self.cap:
            self._alloc(max(2 * self.cap, self.n + count))
        ids = list(range(self.n, self.n + count))
        self.n += count
        for i, h in zip(ids, placed, strict=True):
            self.status[i] = BUILD
            self.svc[i] = svc
            self.flavor[i] = flavor
            self.hv[i] = h
            self.pricing[i] = pricing
            self.created_at[i] = self.now()
            self.deleted_at[i] = np.inf
            self.weight[i] = 1.0
            self.vcpus[i] = res[0]
            self.metadata.append(dict(metadata or {}))
        self.proj_used[proj] += np.array([count, count * res[0], count * res[1]])
        self.invalidate()
        return ids

    def create_servers(self, service: str, count: int = 1, flavor: str | None = None, zone: str | None = None,
                       pricing: str = "on_demand", metadata: dict[str, str] | None = None,
                       actor: str = "automation") -> list[str]:
        self._check_api()
        if service not in self.svc_index:
            raise errors.NotFound(f"no service {service!r}")
        if count < 1:
            raise errors.Conflict(f"count must be >= 1, got {count}")
        s = self.svc_index[service]
        f = self.flavor_index.get(flavor or self.flavor_names[self.svc_flavor[s]])
        if f is None:
            raise errors.NotFound(f"no flavor {flavor!r}")
        z = None
        if zone is not None:
            if zone not in self.zone_names:
                raise errors.NotFound(f"no availability zone {zone!r}")
            z = self.zone_names.index(zone)
        if pricing not in PRICING:
            raise errors.Conflict(f"pricing must be one of {PRICING}")
        ids = self._create(s, f, count, z, PRICING.index(pricing), metadata=metadata)
        for i in ids:
            self.later(self.draw(self.cfg.latencies.boot), lambda i=i: self._booted(i, actor))
        return [server_id(i) for i in ids]

    def _booted(self, i: int, actor: str) -> None:
        if self.status[i] != BUILD or self.deleting[i]:
            return
        self.status[i] = ACTIVE if self.hv_up[self.hv[i]] else ERROR
        self.invalidate()
        self._notify("create_server", i, int(self.svc[i]), actor)

    def delete_server(self, sid: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        if self.deleting[i]:
            return
        self.deleting[i] = True
        self.invalidate()
        self.later(self.draw(self.cfg.latencies.delete), lambda: self._deleted(i, actor))

    def _deleted(self, i: int, actor: str) -> None:
        self._release(i)
        self._notify("delete_server", i, int(self.svc[i]), actor)

    def _release(self, i: int) -> None:
        """Mark a server DELETED now: billing stops, capacity and quota are freed."""
        if self.status[i] == DELETED:
            return
        held = self.status[i] != SHELVED  # a shelved server holds no host capacity (twin/shelving.py)
        self.status[i] = DELETED
        self.deleted_at[i] = self.now()
        self.invalidate()
        res = self.f_res[self.flavor[i]]
        if held:
            self.hv_used[self.hv[i]] -= res
        proj = int(self.svc_project[self.svc[i]]) if self.svc[i] >= 0 else 0
        self.proj_used[proj] -= np.array([1, res[0], res[1]])

    def reboot_server(self, sid: str, hard: bool = False, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] == BUILD:
            raise errors.Conflict(f"Cannot 'reboot' server {server_id(i)} while it is in vm_state building")
        if self.status[i] == SHELVED:
            raise errors.Conflict(f"Cannot 'reboot' server {server_id(i)} while it is SHELVED_OFFLOADED (start "
                                  "unshelves it)")
        if not self.hv_up[self.hv[i]]:
            raise errors.Conflict(f"Cannot 'reboot' server {server_id(i)}: compute host {self.hv_names[self.hv[i]]} "
                                  "is down (evacuate it with migrate)")
        if self.status[i] == ERROR and not hard:
            raise errors.Conflict(f"Cannot soft 'reboot' server {server_id(i)} in ERROR; use a hard reboot")
        d = self.draw(self.cfg.latencies.reboot)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()
        self.later(d, lambda: self._rebooted(i, actor, "reboot_server"))

    def start_server(self, sid: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] == SHELVED:
            from twin.shelving import unshelve_server

            unshelve_server(self, i, actor)
            return
        if self.status[i] != SHUTOFF:
            raise errors.Conflict(f"Cannot 'start' server {server_id(i)} while it is {STATUS[self.status[i]]}")
        if not self.hv_up[self.hv[i]]:
            raise errors.Conflict(f"Cannot 'start' server {server_id(i)}: its compute host is down")
        d = self.draw(self.cfg.latencies.reboot)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()
        self.later(d, lambda: self._rebooted(i, actor, "start_server"))

    def stop_server(self, sid: str, actor: str = "automation") -> None:
        """SHUTOFF after ``latencies.stop``, keeping its host (twin/shelving.py)."""
        from twin.shelving import stop_server

        stop_server(self, sid, actor)

    def shelve_server(self, sid: str, actor: str = "automation") -> None:
        """SHELVED_OFFLOADED after ``latencies.shelve``, off its host (twin/shelving.py)."""
        from twin.shelving import shelve_server

        shelve_server(self, sid, actor)

    def _rebooted(self, i: int, actor: str, kind: str) -> None:
        if self.status[i] == DELETED or self.deleting[i]:
            return
        if self.hv_up[self.hv[i]]:
            self.status[i] = ACTIVE
            self.leak[i] = 0.0
            self.disk_extra[i] = 0.0
            self.invalidate()
        self._notify(kind, i, int(self.svc[i]), actor)

    def resize_server(self, sid: str, flavor: str, actor: str = "automation") -> None:
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if flavor not in self.flavor_index:
            raise errors.NotFound(f"no flavor {flavor!r}")
        if self.status[i] not in (ACTIVE, SHUTOFF):
            raise errors.Conflict(f"Cannot 'resize' server {server_id(i)} while it is {STATUS[self.status[i]]}")
        f = self.flavor_index[flavor]
        old = self.f_res[self.flavor[i]]
        new = self.f_res[f]
        h = int(self.hv[i])
        free = np.array([self.hv_vcpus[h], self.hv_ram[h], self.hv_disk[h], self.hv_gpus[h]]) - self.hv_used[h] + old
        target = h if np.all(free >= new) else self.place(f, exclude=h)
        self.hv_used[target] += new  # both sizes are held until the resize is confirmed
        d = self.draw(self.cfg.latencies.resize)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()

        def done() -> None:
            self.hv_used[h] -= old
            if self.status[i] == DELETED:
                self.hv_used[target] -= new
                return
            self.hv[i] = target
            self.flavor[i] = f
            self.vcpus[i] = new[0]
            self.invalidate()
            proj = int(self.svc_project[self.svc[i]])
            self.proj_used[proj] += np.array([0, new[0] - old[0], new[1] - old[1]])
            self.leak[i] = 0.0
            self.disk_extra[i] = 0.0
            self._notify("resize_server", i, int(self.svc[i]), actor)

        self.later(d, done)

    def migrate_server(self, sid: str, hypervisor: str | None = None, actor: str = "automation") -> None:
        """Cold-migrate; from a host that is down this is an evacuation."""
        self._check_api()
        i = self._server(sid)
        self._idle(i)
        if self.status[i] in (BUILD, SHELVED):
            raise errors.Conflict(f"Cannot 'migrate' server {server_id(i)} while it is {STATUS[self.status[i]]}")
        h = int(self.hv[i])
        f = int(self.flavor[i])
        if hypervisor is not None:
            if hypervisor not in self.hv_index:
                raise errors.NotFound(f"no hypervisor {hypervisor!r}")
            target = self.hv_index[hypervisor]
            free = np.array([self.hv_vcpus[target], self.hv_ram[target], self.hv_disk[target],
                             self.hv_gpus[target]]) - self.hv_used[target]
            if target == h or not self.hv_up[target] or np.any(free < self.f_res[f]):
                raise errors.NoValidHost(f"hypervisor {hypervisor} cannot take server {server_id(i)}")
        else:
            target = self.place(f, exclude=h)
        self.hv_used[target] += self.f_res[f]
        d = self.draw(self.cfg.latencies.migrate)
        self.busy_until[i] = self.down_until[i] = self.now() + d
        self.invalidate()

        def done() -> None:
            self.hv_used[h] -= self.f_res[f]
            if self.status[i] == DELETED:
                self.hv_used[target] -= self.f_res[f]
                return
            self.hv[i] = target
            if self.status[i] == ERROR and self.hv_up[target]:
                self.status[i] = ACTIVE
            self.invalidate()
            self.leak[i] = 0.0
            self._notify("migrate_server", i, int(self.svc[i]), actor)

        self.later(d, done)

    def _rolling(self, s: int, d: float, kind: str, actor: str, effect: Callable[[], None]) -> None:
        """Bounce the service's serving servers in two halves, then apply ``effect``."""
        ids = self.servers_of(s, (ACTIVE,))
        t = self.now()
        for k, i in enumerate(ids):
            start = t + (k % 2) * d
            self.later(start - t, lambda i=i: self._bounce(i, d))
        total = 2 * d if len(ids) > 1 else d

        def done() -> None:
            effect()
            self._notify(kind, -1, s, actor)

        self.later(total, done)

    def _bounce(self, i: int, d: float) -> None:
        self.down_until[i] = max(self.down_until[i], self.now() + d)
        self.invalidate()
        self.leak[i] = 0.0

    def restart_service(self, service: str, actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        self._rolling(s, self.draw(self.cfg.latencies.restart_service), "restart_service", actor,
                      lambda: self.svc_leaked.__setitem__(s, 0.0))

    def rollback_deploy(self, service: str, actor: str = "automation") -> None:
        self._check_api()
        self.releases.rollback(service, actor)  # every server back on the previous version (twin/releases.py)

    def set_service_setting(self, service: str, key: str, value: float, actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        if not np.isfinite(value) or value < 0:
            raise errors.Conflict(f"setting {key} must be a finite number >= 0")
        self.svc_settings[s][key] = float(value)
        if key == "pool_size":
            self.svc_pool[s] = float(value)
        self._notify("set_service_setting", -1, s, actor)

    def set_lb_weights(self, service: str, weights: dict[str, float], actor: str = "automation") -> None:
        self._check_api()
        s = self._service(service)
        idx = []
        for sid, w in weights.items():
            i = self._server(sid)
            if self.svc[i] != s:
                raise errors.Conflict(f"server {sid} is not behind service {service}")
            if not np.isfinite(w) or w < 0:
                raise errors.Conflict(f"weight for {sid} must be a finite number >= 0")
            idx.append((i, w))
        for i, w in idx:
            self.weight[i] = w
            # the record a live load balancer's operators see (adapters/openstack.py writes the same key)
            self.metadata[i]["zeroops_lb_weight"] = repr(float(w))
        self.invalidate()
        self._notify("set_lb_weights", -1, s, actor)

    def set_metadata(self, sid: str, metadata: dict[str, str]) -> None:
        self._check_api()
        i = self._server(sid)
        self.metadata[i].update(metadata)

    def update_quota(self, project: str, instances: int | None, cores: int | None, ram_mb: int | None) -> None:
        self._check_api()
        if project not in self.proj_index:
            raise errors.NotFound(f"no project {project!r}")
        p = self.proj_index[project]
        for k, v in enumerate((instances, cores, ram_mb)):
            if v is not None:
                if v < 0:
                    raise errors.Conflict("quota values must be >= 0")
                self.quota[p, k] = v

    def _service(self, name: str) -> int:
        if name not in self.svc_index:
            raise errors.NotFound(f"no service {name!r}")
        return self.svc_index[name]
