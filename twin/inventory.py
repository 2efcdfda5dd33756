"""What the cloud's API shows, which lags the truth as in OpenStack Nova.

* A server whose state a *fault* changed (a guest crash, a dead host's servers going to ERROR, a zone coming
  back) keeps showing its old state until the next power-state sync — Nova's ``sync_power_state_interval``
  (``inventory.power_state_sync_interval``, default 600 s), a periodic task every interval from t=0.  The
  sync runs on compute hosts, so servers on a host that is down keep their old state until it is back.
* A completed API action (a boot, delete, reboot, start, stop, resize, migration — whoever asked) shows at
  once, as Nova updates its database when the action finishes.  A deletion shows at once.
* A dead hypervisor (its compute service) shows ``down`` only ``inventory.service_down_time`` (default 60 s)
  after it died — Nova's ``service_down_time`` since the last heartbeat — and ``up`` as soon as it is back.

The truth (``World.status``, ``World.hv_up``) drives the physics, the telemetry (``server_up``, errors,
latency, request rates show a symptom at the next scrape) and the ground truth; only the adapter reads the
shown view.  The cost is one SimPy event per sync interval.  Mixed into :class:`twin.world.World`.
"""

from __future__ import annotations

import numpy as np


class InventoryView:
    """The lagging inventory of a :class:`twin.world.World`."""

    def _hide_status(self, rows: np.ndarray | int) -> None:
        """A fault is about to change the state of ``rows``: the inventory keeps their current one for now."""
        fresh = ~self.status_lag[rows]
        if np.ndim(rows) == 0:
            if fresh:
                self.shown_old[rows] = self.status[rows]
                self.status_lag[rows] = True
            return
        rows = np.asarray(rows)[fresh]
        self.shown_old[rows] = self.status[rows]
        self.status_lag[rows] = True

    def shown_status(self) -> np.ndarray:
        """Per server row (``0..n``), the state the API shows now."""
        n = self.n
        lag = self.status_lag[:n]
        if not lag.any():
            return self.status[:n]
        return np.where(lag, self.shown_old[:n], self.status[:n])

    def shown_status_of(self, i: int) -> int:
        return int(self.shown_old[i] if self.status_lag[i] else self.status[i])

    def hv_shown_up(self) -> np.ndarray:
        """Per hypervisor, whether the API shows its compute service up."""
        down_for = self.now() - self.hv_down_at  # NaN while up
        with np.errstate(invalid="ignore"):
            return self.hv_up | ~(down_for >= self.cfg.inventory.service_down_time)

    def _power_state_sync(self):  # type: ignore[no-untyped-def]
        """Nova's periodic power-state sync: servers on hosts that are up show their true state."""
        period = self.cfg.inventory.power_state_sync_interval
        while True:
            yield self.env.timeout(period)
            n = self.n
            if self.status_lag[:n].any():
                self.status_lag[:n] &= ~self.hv_up[self.hv[:n]]
