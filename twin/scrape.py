"""The scrape: per-service values (with measurement noise) and per-server rows into the metric store, and
the alert rules evaluated on them.

Mixed into :class:`twin.world.World`; called by the physics step every ``scrape_every`` ticks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.names import SERVER_METRICS, server_id

if TYPE_CHECKING:
    from twin.physics import _Groups, _Rows, _Structure


class Scrape:
    """Scraping of a :class:`twin.world.World`."""

    def _scrape_groups(self, t: float, g: _Groups, util: np.ndarray, served: np.ndarray, offered: np.ndarray,
                       good: np.ndarray, err: np.ndarray, p95: np.ndarray, pool_util: np.ndarray,
                       served_svc: np.ndarray, fail: np.ndarray) -> None:
        """Scrape a grouped tick: ``util``, ``served`` and ``fail`` (the share of what it serves that fails, 0
        where it serves nothing) are per group; per-server rows expand from the groups."""
        n, nsvc, cnt = self.n, self.n_svc, g.cnt
        active = np.bincount(g.svc, g.up * cnt, nsvc)
        cpu_sum = np.bincount(g.svc, np.minimum(util, 1.0) * g.up * cnt, nsvc)
        cpu = np.divide(cpu_sum, active, out=np.zeros(nsvc), where=active > 0)
        has_up = active > 0  # no server leaks memory or fills its disk: each at its service's base
        mem_max = np.where(has_up, np.maximum(self.svc_mem, 0.0), 0.0)
        disk_max = np.where(has_up, np.maximum(np.minimum(self.svc_disk, 1.0), 0.0), 0.0)
        if self._rowbuf is None or self._rowbuf.shape[1] < n:
            self._rowbuf = np.empty((len(SERVER_METRICS), self.cap))
        ng = len(cnt)
        # per group, plus a NaN column that rows outside any group (deleted servers) read; full-width rows are
        # one gather of the table by each row's group (``g.full`` is in range, so mode="clip" clips nothing and
        # gathers straight into the buffer)
        table = np.empty((3, ng + 1))
        table[:, ng] = np.nan
        tr = g.tracked
        table[0, :ng] = np.where(g.up, np.minimum(util, 1.0), np.where(tr, 0.0, np.nan))
        table[1, :ng] = np.where(tr, served * g.mbps, np.nan)
        table[2, :ng] = np.where(tr, fail, np.nan)
        rows = np.take(table, g.full, axis=1, out=self._rowbuf[:3, :n], mode="clip")
        if g.static_rows is None:  # rows that change only with the structure: expanded once per structure
            st = np.empty((3, ng + 1))
            st[:, ng] = np.nan
            st[0, :ng] = np.where(tr, g.mem, np.nan)
            st[1, :ng] = np.where(tr, np.minimum(g.disk, 1.0), np.nan)
            st[2, :ng] = np.where(tr, g.up.astype(float), np.nan)
            g.static_rows = np.take(st, g.full, axis=1, mode="clip")
        srv_vals = {
            "server_cpu_util": rows[0],
            "server_memory_util": g.static_rows[0],
            "server_disk_util": g.static_rows[1],
            "server_network_mbps": rows[1],
            "server_up": g.static_rows[2],
            "server_error_ratio": rows[2],
        }
        self._scrape(t, offered, good, err, p95, cpu, mem_max, disk_max, pool_util, active,
                     served_svc * self.svc_mbps_per_rps, srv_vals)

    def _scrape_rows(self, t: float, rc: _Rows, sc: _Structure, util: np.ndarray, disk: np.ndarray,
                     disk_extra: np.ndarray, served: np.ndarray, offered: np.ndarray, good: np.ndarray,
                     err: np.ndarray, p95: np.ndarray, pool_util: np.ndarray, served_svc: np.ndarray,
                     fail: np.ndarray) -> None:
        """Scrape a per-row tick: ``util``, ``disk``, ``disk_extra``, ``served`` and ``fail`` (the share of what
        it serves that fails, 0 where it serves nothing) are over ``rc``'s rows."""
        nsvc, svc_c, up = self.n_svc, rc.svc_c, sc.up
        active = np.bincount(svc_c, up.astype(float), nsvc)
        cpu_sum = np.bincount(svc_c, np.minimum(util, 1.0) * up, nsvc)
        cpu = np.divide(cpu_sum, active, out=np.zeros(nsvc), where=active > 0)
        leak = self.leak[rc.idx]
        mem_srv = self.svc_mem[svc_c] + leak
        fx = self.releases.effects(rc.idx)
        if fx is not None and fx.any_mem:  # a release that holds memory per request, on its servers
            leak = leak + fx.mem * np.minimum(util, 1.0)
            mem_srv = mem_srv + fx.mem * np.minimum(util, 1.0)
        has_up = active > 0
        if leak.any():
            mem_max = np.zeros(nsvc)
            np.maximum.at(mem_max, svc_c[up], mem_srv[up])
        else:  # every up server of a service is at its base: the same maximum without the scatter
            mem_max = np.where(has_up, np.maximum(self.svc_mem, 0.0), 0.0)
        if disk_extra.any():
            disk_max = np.zeros(nsvc)
            np.maximum.at(disk_max, svc_c[up], np.minimum(disk[up], 1.0))
        else:
            disk_max = np.where(has_up, np.maximum(np.minimum(self.svc_disk, 1.0), 0.0), 0.0)
        srv_vals = self._server_rows(rc, util, mem_srv, disk, up, sc.tracked, served * self.svc_mbps_per_rps[svc_c],
                                     fail)
        self._scrape(t, offered, good, err, p95, cpu, mem_max, disk_max, pool_util, active,
                     served_svc * self.svc_mbps_per_rps, srv_vals)

    def _scrape(self, t: float, offered: np.ndarray, good: np.ndarray, err: np.ndarray, p95: np.ndarray,
                cpu: np.ndarray, mem: np.ndarray, disk: np.ndarray, pool: np.ndarray, active: np.ndarray,
                net: np.ndarray, srv_vals: dict[str, np.ndarray]) -> None:
        """Scrape one snapshot: per-service values (with noise) and full-width per-server rows."""
        noise = self.cfg.telemetry.noise
        z = 1.0 + noise * self.rng_noise.standard_normal((4, self.n_svc))
        svc_vals = {
            "request_rate": offered * z[0],
            "served_rate": good * z[0],
            "error_ratio": np.clip(err * z[1] + noise * 1e-3 * np.abs(z[1] - 1.0), 0.0, 1.0),
            "latency_p95_ms": p95 * z[2],
            "cpu_util": np.clip((cpu if self.batch is None else self.batch.cpu_util(cpu)) * z[3], 0.0, 1.0),
            "memory_util": mem,
            "disk_util": disk,
            "pool_util": pool,
            "network_mbps": net * z[0],
            "queue_length": self._no_queue if self.batch is None else self.batch.queue_length.copy(),
            "active_servers": active,
        }
        self.last = svc_vals
        dep_vals = None
        if self._dep_now is not None:  # per dependency edge: the caller's noise on calls, the callee's on the rest
            calls, e_err, e_lat = self._dep_now
            src, dst = self.e_src, self.e_dst
            dep_vals = np.concatenate((calls * z[0][src], np.clip(e_err * z[1][dst], 0.0, 1.0), e_lat * z[2][dst]))
            self._dep_now = None
        self.metrics.scrape(t, svc_vals, srv_vals, dep_vals)
        before = len(self.alerting.alerts)
        self.alerting.evaluate(t, svc_vals, srv_vals, self._svc_labels(), self._server_labels)
        if len(self.alerting.alerts) > before:
            self.operator.on_alerts(self.alerting.alerts[before:])

    def _server_rows(self, rc: _Rows, util: np.ndarray, mem_srv: np.ndarray, disk_srv: np.ndarray, up: np.ndarray,
                     tracked: np.ndarray, net_srv: np.ndarray, err_srv: np.ndarray) -> dict[str, np.ndarray]:
        """Full-width per-server scrape rows from inputs over ``rc``'s rows (the rest read as NaN: deleted)."""
        n = self.n
        if rc.scratch is None and not isinstance(rc.idx, slice):
            # full-width rows, NaN outside rc's rows (deleted servers); one buffer reused across scrapes and row sets
            if self._scratch is None or self._scratch.shape[1] < n:
                self._scratch = np.full((len(SERVER_METRICS), self.cap), np.nan)
            else:
                self._scratch[:, :n] = np.nan
            rc.scratch = self._scratch[:, :n]

        def full(k: int, rows: np.ndarray) -> np.ndarray:
            if rc.scratch is None:
                return rows
            rc.scratch[k, rc.idx] = rows
            return rc.scratch[k]

        return {
            "server_cpu_util": full(0, np.where(up, np.minimum(util, 1.0), np.where(tracked, 0.0, np.nan))),
            "server_memory_util": full(1, np.where(tracked, mem_srv, np.nan)),
            "server_disk_util": full(2, np.where(tracked, np.minimum(disk_srv, 1.0), np.nan)),
            "server_network_mbps": full(3, np.where(tracked, net_srv, np.nan)),
            "server_up": full(4, np.where(tracked, up.astype(float), np.nan)),
            "server_error_ratio": full(5, np.where(tracked, err_srv, np.nan)),
        }

    def _svc_labels(self) -> list[dict[str, str]]:
        if not hasattr(self, "_svc_label_cache"):
            self._svc_label_cache = [{"service": s, "project": self.proj_names[self.svc_project[i]]}
                                     for i, s in enumerate(self.svc_names)]
        return self._svc_label_cache

    def _server_labels(self, i: int) -> dict[str, str]:
        s = int(self.svc[i])
        return {"server": server_id(i), "service": self.svc_names[s] if s >= 0 else "",
                "hypervisor": self.hv_names[self.hv[i]], "zone": self.zone_names[self.hv_zone[self.hv[i]]]}
