"""What happens to the cloud without anyone asking: faults, hardware, the provider's preemptions.

Faults (:mod:`twin.faults`) change the world only through these methods, never by writing its arrays, so
every structural change invalidates the physics' cached vectors (``World.invalidate``) and none is missed.
Mixed into :class:`twin.world.World`.
"""

from __future__ import annotations

import numpy as np

from twin.names import ACTIVE, BUILD, ERROR, SHELVED


class Effects:
    """Fault and hardware effects on a :class:`twin.world.World`."""

    # ------------------------------------------------------------ servers
    def crash(self, i: int) -> None:
        """Server ``i``'s guest dies: ERROR now (the inventory shows it at its next sync)."""
        self._hide_status(i)
        self.status[i] = ERROR
        self.invalidate()

    def recover(self, rows: np.ndarray) -> None:
        """Servers in ERROR among ``rows`` come back ACTIVE by themselves (their host returned)."""
        back = rows[self.status[rows] == ERROR]
        self._hide_status(back)
        self.status[back] = ACTIVE
        self.invalidate()

    def preempt(self, i: int) -> None:
        """The provider takes a spot server back: DELETED now, as a deletion shows at once."""
        self._release(i)

    def set_disk_rate(self, i: int, rate: float) -> None:
        """Runaway logs fill server ``i``'s disk at ``rate`` (fraction per second)."""
        self.disk_rate[i] = rate

    def clear_disk(self, i: int) -> None:
        """The logs are gone: server ``i``'s disk back at its base, no longer growing."""
        self.disk_rate[i] = 0.0
        self.disk_extra[i] = 0.0

    # ------------------------------------------------------------- hosts
    def servers_on(self, hosts: np.ndarray) -> np.ndarray:
        """Rows of the live (not deleted) servers on hypervisors ``hosts`` (a shelved server is on none)."""
        n = self.n
        return np.flatnonzero(np.isin(self.hv[:n], hosts) & self.alive() & (self.status[:n] != SHELVED))

    def fail_hosts(self, hosts: np.ndarray) -> np.ndarray:
        """Hypervisors ``hosts`` die: they go down and every server on them not building goes to ERROR.
        Returns the live server rows on them."""
        on = self.servers_on(hosts)
        self.hv_up[hosts] = False
        self.hv_down_at[hosts] = np.where(np.isnan(self.hv_down_at[hosts]), self.now(), self.hv_down_at[hosts])
        hit = on[self.status[on] != BUILD]
        self._hide_status(hit)
        self.status[hit] = ERROR
        self.invalidate()
        return on

    def repair_hosts(self, hosts: np.ndarray) -> None:
        """Hypervisors ``hosts`` are back up (their servers keep their state)."""
        self.hv_up[hosts] = True
        self.hv_down_at[hosts] = np.nan
        self.invalidate()

    def set_throttle(self, h: int, factor: float) -> None:
        """Servers on hypervisor ``h`` get ``factor`` of their CPU (1.0: all of it)."""
        self.hv_throttle[h] = factor
        self.invalidate()

    def set_partitioned(self, z: int, partitioned: bool) -> None:
        """Zone ``z``'s servers cannot (or can again) reach their dependencies."""
        self.zone_partitioned[z] = partitioned
        self.invalidate()

    # ----------------------------------------------------------- services
    def scale_latency(self, s: int, mult: float) -> None:
        """Service ``s``'s base latency is multiplied by ``mult`` (divide by it to undo)."""
        self.svc_lat_mult[s] *= mult
        self.invalidate()

    def ensure_pool(self, s: int, default: float = 100.0) -> float:
        """Service ``s``'s connection pool size, given ``default`` if it has none."""
        if self.svc_pool[s] <= 0:
            self.svc_pool[s] = self.svc_settings[s].setdefault("pool_size", default)
        return float(self.svc_pool[s])

    def set_conn_leak(self, s: int, rate: float) -> None:
        """Service ``s`` leaks ``rate`` connections per second; 0 also frees those already leaked."""
        self.svc_conn_leak[s] = rate
        if rate == 0:
            self.svc_leaked[s] = 0.0
