"""Per-tick fleet physics: which rows a tick looks at, the cached structural vectors, and ``tick``.

Mixed into :class:`twin.world.World`.  Vectorised with numpy over the fleet; see docs/performance.md for
the row selection, the structure cache and the grouped path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.names import ACTIVE, BUILD, DELETED, P95_OVER_MEAN, SHELVED, SHUTOFF, TIMEOUT_MS

if TYPE_CHECKING:
    from twin.releases import RowEffects

ROWS_AS_SLICE = 0.75  # a tick indexes live rows with a slice over all rows while at least this share is live
VERIFY_CACHE = os.environ.get("ZEROOPS_VERIFY_CACHE", "") not in ("", "0")  # recompute cached vectors and compare


@dataclass(slots=True)
class _Rows:
    """Rows of the server arrays a tick looks at, with their per-row constants (see ``World._tick_rows``)."""

    key: tuple[int, int]  # (server rows, deleted rows) when built
    idx: slice | np.ndarray
    rows: np.ndarray  # the row numbers idx selects
    svc_c: np.ndarray
    svc_ok: np.ndarray
    all_svc_ok: bool
    svc_proj: np.ndarray
    pricing: np.ndarray
    created: np.ndarray
    deleted: np.ndarray
    any_spot: bool
    any_reserved: bool
    any_spot_all: bool
    created_sorted: bool  # created is nondecreasing (rows are created in time order)
    finite_del: np.ndarray  # positions of rows with a deletion time (deleted within the step the rows were built)
    scratch: np.ndarray | None = None  # per-server scrape rows (see World._scrape)


@dataclass(slots=True)
class _Groups:
    """Rows of a ``_Structure`` grouped into identical servers: same service, serving state, scrape state,
    partition, LB share and capacity (see ``World._groups``).  Per-group arrays, one entry per group."""

    svc: np.ndarray
    cnt: np.ndarray  # rows in the group (float)
    share: np.ndarray
    cap: np.ndarray
    lat0: np.ndarray
    up: np.ndarray
    tracked: np.ndarray
    part: np.ndarray | None
    disk: np.ndarray
    mem: np.ndarray
    mbps: np.ndarray
    full: np.ndarray  # per row of the world (0..n): its group, or len(svc) (scraped as NaN) outside the rows
    static_rows: np.ndarray | None = None  # server_memory_util, server_disk_util, server_up rows (set at a scrape)

    def arrays(self) -> tuple[np.ndarray | None, ...]:
        return (self.svc, self.cnt, self.share, self.cap, self.lat0, self.up, self.tracked, self.part, self.disk,
                self.mem, self.mbps, self.full)


@dataclass(slots=True)
class _Structure:
    """Per-row vectors that change only when a server, host or fault changes (see ``World._structure``)."""

    rows: _Rows  # the row set they were computed over
    gen: int  # World._gen when computed
    valid_until: float  # the earliest down_until after the computation time: a server comes back up then
    st: np.ndarray
    hv: np.ndarray
    up: np.ndarray
    share: np.ndarray  # load-balancer share of its service's offered load
    cap: np.ndarray  # requests per second it can serve (throttling included)
    part: np.ndarray | None  # in a partitioned zone (None: no zone is partitioned)
    tracked: np.ndarray  # neither deleted nor building (scraped as a number, else NaN)
    fl: np.ndarray  # flavor
    od_rate: np.ndarray  # on-demand price per second of its flavor
    groups: _Groups | None  # None: rows not grouped (some service's servers differ in share or capacity)
    od_rate_proj: np.ndarray | None = None  # od_rate summed per project (set by _bill)
    bill: np.ndarray | None = None  # share of its rate each row pays (stopped, shelved); None: all of it
    supply: np.ndarray | None = None  # per service, serving capacity (requests/s at full utilisation) of up rows

    def diff(self, other: _Structure) -> list[str]:
        """Names of the vectors that differ from ``other``'s."""
        def eq(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))

        bad = [k for k in ("st", "hv", "up", "share", "cap", "part", "tracked", "fl", "od_rate")
               if not eq(getattr(self, k), getattr(other, k))]
        g, h = self.groups, other.groups
        if (g is None) != (h is None) or (g is not None and h is not None and not all(
                eq(a, b) for a, b in zip(g.arrays(), h.arrays(), strict=True))):
            bad.append("groups")
        return bad



class Physics:
    """The physics step of a :class:`twin.world.World`."""

    def _physics(self):  # type: ignore[no-untyped-def]
        end = self.cfg.duration
        while self.now() < end - 1e-9:
            step = min(self.dt, end - self.now())
            yield self.env.timeout(step)
            self.tick(step)

    def _tick_rows(self, t: float, dt: float) -> _Rows:
        """The rows a tick must look at: servers not deleted, or deleted within this step (still billed).

        Rows deleted earlier contribute exact zeros to every sum, so skipping them changes no result.
        Cached until a server is created or deleted; while most rows are live it is a plain slice.
        Relies on: a row's service, pricing and creation time never change after ``_create``, and a
        deletion sets status DELETED together with ``deleted_at`` (as ``_release`` does).
        """
        n = self.n
        deleted = int(np.count_nonzero(self.status[:n] == DELETED))
        rc = self._rows
        if rc is not None and rc.key == (n, deleted):
            return rc
        keep = np.flatnonzero(self.deleted_at[:n] > t - dt)
        idx: slice | np.ndarray = slice(0, n) if len(keep) > ROWS_AS_SLICE * n else keep
        svc = self.svc[idx]
        pricing = self.pricing[idx]
        rc = _Rows(key=(n, deleted), idx=idx, rows=np.arange(n) if isinstance(idx, slice) else keep,
                   svc_c=np.maximum(svc, 0), svc_ok=svc >= 0, all_svc_ok=bool((svc >= 0).all()),
                   svc_proj=np.where(svc >= 0, self.svc_project[np.maximum(svc, 0)], 0),
                   pricing=pricing, created=self.created_at[idx], deleted=self.deleted_at[idx],
                   any_spot=bool((pricing == 1).any()), any_reserved=bool((pricing == 2).any()),
                   any_spot_all=bool((self.pricing[:n] == 1).any()),
                   created_sorted=bool((np.diff(self.created_at[idx]) >= 0).all()),
                   finite_del=np.flatnonzero(np.isfinite(self.deleted_at[idx])))
        self._rows = rc
        return rc

    def _structure(self, t: float, rc: _Rows) -> _Structure:
        """The tick's structural per-row vectors over ``rc``, cached until ``invalidate()`` or a server's
        ``down_until`` passes (computed exactly as they would be afresh, so caching changes no result)."""
        sc = self._struct
        if sc is None or sc.rows is not rc or sc.gen != self._gen or t >= sc.valid_until:
            sc = self._struct = self._compute_structure(t, rc)
        elif self.verify_cache and (bad := sc.diff(self._compute_structure(t, rc))):
            raise AssertionError(f"stale structural cache at t={t} ({', '.join(bad)}): "
                                 "a writer did not call World.invalidate()")
        return sc

    def _compute_structure(self, t: float, rc: _Rows) -> _Structure:
        idx, svc_c = rc.idx, rc.svc_c
        m = len(svc_c)
        nsvc = self.n_svc
        st = self.status[idx]
        hv = self.hv[idx]
        down = self.down_until[idx]
        # == serving() over the rows
        up = (st == ACTIVE) & (down <= t) & self.hv_up[hv] & ~self.deleting[idx]
        if not rc.all_svc_ok:
            up &= rc.svc_ok
        later = down[down > t]
        w = self.weight[idx] * up
        wsum = np.bincount(svc_c, w, nsvc)
        denom = wsum[svc_c]
        share = np.divide(w, denom, out=np.zeros(m), where=denom > 0)
        cap = self.vcpus[idx] * self.svc_cpv[svc_c]
        if (self.hv_throttle != 1.0).any():
            cap = cap * self.hv_throttle[hv]
        rel_cap = self.releases.cap_mult(idx)  # releases that cost more CPU per request, on their servers
        if rel_cap is not None:
            cap = cap * rel_cap
        part = self.zone_partitioned[self.hv_zone[hv]] if self.zone_partitioned.any() else None
        tracked = (st != DELETED) & (st != BUILD) & (st != SHELVED)  # a shelved server has no VM to scrape
        fl = self.flavor[idx]
        paused = (st == SHUTOFF) | (st == SHELVED)
        bill = np.where(st == SHUTOFF, self.cfg.prices.stopped, np.where(paused, 0.0, 1.0)) if paused.any() else None
        return _Structure(rows=rc, gen=self._gen, valid_until=float(later.min()) if len(later) else np.inf,
                          st=st, hv=hv, up=up, share=share, cap=cap, part=part, tracked=tracked, fl=fl,
                          od_rate=self.f_od[fl] if bill is None else self.f_od[fl] * bill, bill=bill,
                          supply=np.bincount(svc_c, cap * up, nsvc),
                          groups=self._groups(rc, up, tracked, part, share, cap))

    def _groups(self, rc: _Rows, up: np.ndarray, tracked: np.ndarray, part: np.ndarray | None, share: np.ndarray,
                cap: np.ndarray) -> _Groups | None:
        """Group ``rc``'s rows by (service, up, tracked, partitioned); None unless every group's rows have the
        same LB share and capacity (then each row's physics is its group's, computed once per group)."""
        key = rc.svc_c * 8 + up * 4 + tracked * 2
        if part is not None:
            key += part
        size = self.n_svc * 8
        cnt = np.bincount(key, minlength=size)
        rep_share = np.zeros(size)
        rep_share[key] = share
        if not np.array_equal(rep_share[key], share):
            return None
        rep_cap = np.zeros(size)
        rep_cap[key] = cap
        if not np.array_equal(rep_cap[key], cap):
            return None
        present = np.flatnonzero(cnt)
        remap = np.zeros(size, dtype=np.int64)
        remap[present] = np.arange(len(present))
        full = np.full(self.n, len(present), dtype=np.int64)
        full[rc.rows] = remap[key]
        svc = present // 8
        return _Groups(svc=svc, cnt=cnt[present].astype(float), share=rep_share[present], cap=rep_cap[present],
                       lat0=(self.svc_lat * self.svc_lat_mult)[svc], up=(present & 4) > 0, tracked=(present & 2) > 0,
                       part=(present & 1) > 0 if part is not None else None, disk=self.svc_disk[svc],
                       mem=self.svc_mem[svc], mbps=self.svc_mbps_per_rps[svc], full=full)

    @staticmethod
    def _fail_share(bad: np.ndarray, fx: RowEffects | None, ok: np.ndarray, svc: np.ndarray,
                    served: np.ndarray) -> np.ndarray:
        """Share of what each server (or group) of service ``svc`` serves that fails (0 where it serves
        nothing): all of it on a partitioned or full-disk server, a bad release's ``err`` share on its servers,
        and what fails service-wide (``1 - ok``: its own error ratio, its dependencies' errors, an exhausted
        pool) on every server of the service alike."""
        fail = (1.0 - ok)[svc]  # a fresh array: written in place below
        if fx is not None and fx.any_err:
            fail = 1.0 - (1.0 - fx.err) * (1.0 - fail)
        if bad.any():
            fail[bad] = 1.0
        fail[served <= 0] = 0.0
        return fail

    def tick(self, dt: float) -> None:
        """Advance the fleet by one physics step of ``dt`` seconds ending now."""
        t = self.now()
        k = min(int(round(t / self.dt)), len(self.traffic) - 1)
        self.ticks += 1
        n = self.n
        nsvc = self.n_svc
        ext = self.traffic[k]
        if len(self.e_src):
            calls = self.prev_good[self.e_src] * self.e_ratio  # per dependency edge, caller -> callee
            offered = ext + np.bincount(self.e_dst, calls, nsvc)
            if self.ticks % self.scrape_every == 0:  # what each caller sees of its callee, for the scrape
                self._dep_now = (calls, self.prev_err[self.e_dst], self.prev_lat[self.e_dst])
        else:
            offered = ext.copy()
        rc = self._tick_rows(t, dt)
        idx, svc_c = rc.idx, rc.svc_c
        m = len(svc_c)
        sc = self._structure(t, rc)
        up = sc.up
        g = sc.groups
        fx = self.releases.effects(idx)  # what bad releases do on the servers running them (None: nothing)
        if g is not None and (self.leak[:n].any() or self.disk_extra[:n].any() or fx is not None):
            g = None  # some server's memory, disk or release differs from its service's base: per row
        if g is not None:
            # every row is its group's: the same per-row values, computed once per group; the per-service sums
            # add cnt × value instead of cnt values one by one (equal to rounding)
            cnt = g.cnt
            assigned = offered[g.svc] * g.share
            util = np.divide(assigned, g.cap, out=np.zeros(len(cnt)), where=g.cap > 0)
            served = np.minimum(assigned, g.cap)
            bad = g.disk >= 1.0
            if g.part is not None:
                bad = g.part | bad
            bad &= g.up
            served_svc = np.bincount(g.svc, served * cnt, nsvc)
            failed_svc = np.bincount(g.svc, served * bad * cnt, nsvc) if bad.any() else np.zeros(nsvc)
            lat_srv = g.lat0 / (1.0 - np.minimum(util, 0.95))
            lat_sum = np.bincount(g.svc, served * lat_srv * cnt, nsvc)
        else:
            cnt = None
            assigned = offered[svc_c] * sc.share
            util = np.divide(assigned, sc.cap, out=np.zeros(m), where=sc.cap > 0)
            served = np.minimum(assigned, sc.cap)
            disk_extra = self.disk_extra[idx]
            disk = self.svc_disk[svc_c] + disk_extra
            bad = disk >= 1.0
            if sc.part is not None:
                bad = sc.part | bad
            bad &= up
            served_svc = np.bincount(svc_c, served, nsvc)
            failed_svc = np.bincount(svc_c, served * bad, nsvc) if bad.any() else np.zeros(nsvc)
            if fx is not None and fx.any_err:  # a bad release fails a share of what its servers serve
                failed_svc += np.bincount(svc_c, served * fx.err * (up & ~bad), nsvc)
            # latency: M/M/1-like growth with utilisation, plus what dependencies add
            lat_srv = (self.svc_lat * self.svc_lat_mult)[svc_c] / (1.0 - np.minimum(util, 0.95))
            if fx is not None and fx.any_lat:
                lat_srv = lat_srv * fx.lat
            lat_sum = np.bincount(svc_c, served * lat_srv, nsvc)
        own_lat = np.divide(lat_sum, served_svc, out=self.svc_lat * self.svc_lat_mult, where=served_svc > 0)
        dep_lat = np.bincount(self.e_src, self.e_ratio * self.prev_lat[self.e_dst], nsvc) if len(self.e_src) \
            else np.zeros(nsvc)
        mean_lat = own_lat + dep_lat
        # connection pools (Little's law), with leaked connections held
        self.svc_leaked += self.svc_conn_leak * dt
        in_use = served_svc * mean_lat / 1000.0 + self.svc_leaked
        has_pool = self.svc_pool > 0
        pool_util = np.divide(in_use, self.svc_pool, out=np.zeros(nsvc), where=has_pool)
        pool_fail = np.where(has_pool & (pool_util > 1.0), 1.0 - 1.0 / np.maximum(pool_util, 1.0), 0.0)
        mean_lat = mean_lat * (1.0 + 4.0 * np.clip(pool_util - 0.8, 0.0, None) * has_pool)
        # errors: own release, dependencies, pools, failing servers, drops
        dep_err = np.minimum(1.0, np.bincount(self.e_src, np.minimum(self.e_ratio, 1.0) * self.prev_err[self.e_dst],
                                              nsvc)) if len(self.e_src) else np.zeros(nsvc)
        own_err = np.minimum(1.0, self.svc_err)
        ok = (1.0 - own_err) * (1.0 - dep_err) * (1.0 - pool_fail)
        good = np.maximum(served_svc - failed_svc, 0.0) * ok
        err = np.divide(offered - good, offered, out=np.zeros(nsvc), where=offered > 0)
        p95 = np.where(served_svc > 0, mean_lat * P95_OVER_MEAN, np.where(offered > 0, TIMEOUT_MS, mean_lat * P95_OVER_MEAN))
        p95 = np.minimum(p95, TIMEOUT_MS)
        self.prev_good = np.maximum(served_svc - failed_svc, 0.0)
        self.prev_lat = np.minimum(mean_lat, TIMEOUT_MS)
        self.prev_err = err
        # memory leaks and OOM kills, disk growth
        if fx is not None and (fx.any_leak or fx.any_mem):  # a release leaking memory on its servers
            self.leak[idx] += fx.leak * dt * up
            mem = self.svc_mem[svc_c] + self.leak[idx]
            if fx is not None and fx.any_mem:
                mem = mem + fx.mem * np.minimum(util, 1.0)
            oom = rc.rows[np.flatnonzero(up & (mem >= 1.0))]
            if len(oom):
                self.truth.oom_kills += len(oom)
                for i in oom:
                    self.down_until[i] = t + self.draw(self.cfg.latencies.process_restart)
                    self.leak[i] = 0.0
                self.invalidate()
        if self.disk_rate[:n].any():
            self.disk_extra[:n] = np.minimum(self.disk_extra[:n] + self.disk_rate[:n] * dt, 1.0)
        # ground truth: every offered request is served by a server or dropped (overload or no server)
        if g is not None:
            routed = np.bincount(g.svc, assigned * cnt, nsvc)
            over = np.bincount(g.svc, (assigned - served) * cnt, nsvc)
        else:
            routed = np.bincount(svc_c, assigned, nsvc)
            over = np.bincount(svc_c, assigned - served, nsvc)
        self.truth.served += served_svc * dt
        self.truth.dropped += (over + (offered - routed)) * dt
        self.truth.offered += offered * dt
        self.truth.good += good * dt
        if self._edge_called:  # an edge service other services call too: its users' share of its answers
            # (otherwise an edge service's requests are all users': GroundTruth.edge_* read offered and good)
            user_in = self.svc_edge * ext
            self.truth._edge_offered += user_in * dt
            user = np.divide(user_in, offered, out=np.zeros(nsvc), where=offered > 0)
            self.truth._edge_good += good * user * dt
        breach = (offered > 0) & ((p95 > self.svc_slo_lat) | (err > self.svc_slo_err))
        self.truth.slo_step(t, dt, breach)
        self.truth.curve_step(dt, offered, sc.supply)
        if self.batch is not None:  # batch services work off their job queues with their serving vCPUs
            self.batch.step(t, dt, sc.supply / self.svc_cpv)
        self._bill(t, dt, rc, sc)
        if self.ticks % self.scrape_every == 0:
            if self.batch is not None:  # a batch service's servers are as busy as its job queue keeps them
                util = self.batch.row_util(util, g.svc if g is not None else svc_c)
            if g is not None:
                self._scrape_groups(t, g, util, served, offered, good, err, p95, pool_util, served_svc,
                                    self._fail_share(bad, None, ok, g.svc, served))
            else:
                self._scrape_rows(t, rc, sc, util, disk, disk_extra, served, offered, good, err, p95, pool_util,
                                  served_svc, self._fail_share(bad, fx, ok, svc_c, served))
        self.faults.tick(t)
