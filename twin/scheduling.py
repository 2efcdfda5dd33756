"""Placement: the scheduler that picks a hypervisor (spread by free RAM) and the initial placement.

Mixed into :class:`twin.world.World`.
"""

from __future__ import annotations

import heapq

import numpy as np

from twin import errors
from twin.names import ACTIVE, PRICING


class Scheduling:
    """Placement of a :class:`twin.world.World`'s servers."""

    def place(self, flavor: int, zone: int | None = None, exclude: int | None = None) -> int:
        """Pick a hypervisor with room (spread by free RAM); raises NoValidHost."""
        need = self.f_res[flavor]
        free = self._hv_total - self.hv_used
        ok = (free >= need).all(axis=1)
        ok &= self.hv_up
        if zone is not None:
            ok &= self._zone_hv[zone]
        if exclude is not None:
            ok[exclude] = False
        score = np.where(ok, free[:, 1], -1)  # free RAM where it fits (>= 0), else -1
        h = int(score.argmax())
        if not ok[h]:
            where = f" in zone {self.zone_names[zone]}" if zone is not None else ""
            raise errors.NoValidHost(f"No valid host was found{where} for flavor {self.flavor_names[flavor]}")
        return h
    def _build_servers(self) -> None:
        """The initial servers, ACTIVE from t=0, placed one by one exactly as ``place()`` would place them."""
        total = sum(s.servers for s in self.cfg.services)
        self.cap = 0
        self.n = 0
        self._alloc(max(64, 2 * total))
        free = (self._hv_total - self.hv_used).tolist()
        # per zone, a heap of (-free RAM, host) over its up hosts: its first host that fits is place()'s argmax
        heaps = [[(-free[h][1], h) for h in np.flatnonzero(self._zone_hv[z] & self.hv_up).tolist()]
                 for z in range(len(self.zone_names))]
        for hp in heaps:
            heapq.heapify(hp)
        svc, hosts = [], []
        for i, s in enumerate(self.cfg.services):
            zones = [self.zone_names.index(z) for z in s.zones] if s.zones else list(range(len(self.zone_names)))
            need = self.f_res[self.svc_flavor[i]].tolist()
            for k in range(s.servers):
                hp = heaps[zones[k % len(zones)]]
                skipped = []
                while hp and not all(f >= r for f, r in zip(free[hp[0][1]], need, strict=True)):
                    skipped.append(heapq.heappop(hp))
                if not hp:
                    raise ValueError(f"services[{i}] ({s.name}): the topology has no room for its {s.servers} "
                                     f"initial servers; add hypervisors")
                h = heapq.heappop(hp)[1]
                fh = free[h]
                for j in range(4):
                    fh[j] -= need[j]
                heapq.heappush(hp, (-fh[1], h))
                for e in skipped:
                    heapq.heappush(hp, e)
                svc.append(i)
                hosts.append(h)
        if not svc:
            return
        rows = slice(0, len(svc))
        sv, hv = np.array(svc, dtype=np.int64), np.array(hosts, dtype=np.int64)
        fl = self.svc_flavor[sv]
        res = self.f_res[fl]
        np.add.at(self.hv_used, hv, res)
        self.status[rows] = ACTIVE
        self.svc[rows] = sv
        self.flavor[rows] = fl
        self.hv[rows] = hv
        self.pricing[rows] = [PRICING.index(self.cfg.services[i].pricing) for i in svc]
        self.created_at[rows] = 0.0
        self.deleted_at[rows] = np.inf
        self.weight[rows] = 1.0
        self.vcpus[rows] = res[:, 0]
        self.metadata.extend({} for _ in svc)
        np.add.at(self.proj_used, self.svc_project[sv], np.stack([np.ones(len(svc), dtype=np.int64), res[:, 0],
                                                                  res[:, 1]], axis=1))
        self.n = len(svc)
        self.invalidate()

    def _build_servers_one_by_one(self) -> None:
        """Reference for ``_build_servers`` (tests): each server through ``_create``, i.e. ``place()``."""
        total = sum(s.servers for s in self.cfg.services)
        self.cap = 0
        self.n = 0
        self._alloc(max(64, 2 * total))
        for i, s in enumerate(self.cfg.services):
            zones = [self.zone_names.index(z) for z in s.zones] if s.zones else list(range(len(self.zone_names)))
            for k in range(s.servers):
                try:
                    (idx,) = self._create(i, int(self.svc_flavor[i]), 1, zones[k % len(zones)], PRICING.index(s.pricing),
                                          check_quota=False)
                except errors.NoValidHost:
                    raise ValueError(f"services[{i}] ({s.name}): the topology has no room for its {s.servers} "
                                     f"initial servers; add hypervisors") from None
                self.status[idx] = ACTIVE
                self.created_at[idx] = 0.0
        self.invalidate()
