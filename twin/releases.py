"""Releases as ordinary events: versions per server, canaries, rollbacks and what a release does.

Every server carries a version (a row of :attr:`ReleaseManager.ver`: the index of a :class:`Release`); a
service has a current version and a history of earlier ones.  A deploy rolls a version onto a share of the
service's servers (⌈fraction × servers⌉, at least one; the others keep theirs).  The load balancer splits
traffic by server, so a canary on 5 % of the servers takes about 5 % of the requests, and a release's
*effect* shows only on the servers that run it:

==============  =====================================================================
effect          on a server running the release (severity ``x``, about 1)
==============  =====================================================================
``none``        nothing: a benign release (most of them)
``error_ratio`` fails ``min(1, 0.1 x)`` of the requests it serves
``latency``     its latency is multiplied by ``1 + 2 x``
``cpu``         each request costs ``1 + x`` times the CPU: its capacity divides by that
``memory``      memory per request: its memory utilisation rises by ``0.3 x`` at full load
``memory_leak`` leaks memory (full in ``900 / x`` s from its base), then OOM kills (flaps)
``slow_leak``   leaks memory slowly (full in ``8 h / x`` from its base): visible only after hours
``faster``      an improvement: its latency is divided by ``1 + 0.3 x``
``efficient``   an improvement: each request costs ``1 / (1 + 0.3 x)`` of the CPU (capacity times ``1 + 0.3 x``)
==============  =====================================================================

``cpu`` and ``memory`` show as latency, errors or OOM kills only under load (a server's utilisation scales
them); ``memory_leak`` only after a while.  The improvements are benign (not faults); ``Releases.improved``
sets their share.  Improvements are cumulative: a new build carries those of the service's stable version
(the code everyone runs), so a neutral release after a faster one stays as fast; harmful effects are the
release's own (the next build fixes them).

A bad release is a fault in the ground truth (``bad_deploy``, or ``memory_leak``): it goes through the fault
manager, which calls :meth:`ReleaseManager.ship`.  A benign release is not a fault, so "always roll back"
is wrong on it.  The scenario's ``releases:`` pipeline ships on its own (actor ``pipeline``), at times,
services and effects drawn when the world is built from their own random stream, so every engine set faces
the same releases.  New servers start on the service's stable version (the last one rolled out to all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twin import errors
from twin.config import Distribution, FaultSpec
from twin.names import ACTIVE, DELETED

if TYPE_CHECKING:
    from twin.world import World

EFFECTS = ("none", "error_ratio", "latency", "cpu", "memory", "memory_leak", "slow_leak", "faster", "efficient")
FAULT_TYPE = {"error_ratio": "bad_deploy", "latency": "bad_deploy", "cpu": "bad_deploy", "memory": "bad_deploy",
              "memory_leak": "memory_leak", "slow_leak": "bad_deploy"}
LEAK_FILL_S = 900.0  # a severity-1 leak fills a server's memory from its base in this long
SLOW_LEAK_FILL_S = 8 * 3600.0  # ... and a severity-1 slow leak in this long


@dataclass
class Release:
    idx: int  # row of the effect tables (and the value in ``ReleaseManager.ver``)
    service: int  # -1 for the placeholder of servers without a service
    version: str
    seq: int  # the service's release number (ServiceState.version)
    effect: str
    severity: float
    at: float
    actor: str
    fault: Any = None  # the Fault a bad release is (twin.faults)
    rolling: int = 0  # rollouts of it under way
    gain_lat: float = 1.0  # latency factor of the improvements it carries (its own and those it builds on)
    gain_cap: float = 1.0  # capacity factor of the improvements it carries


@dataclass(frozen=True)
class DeployRecord:
    at: float
    service: str
    version: str
    previous: str
    fraction: float  # the share of the service's servers asked for (at least one server gets it)
    actor: str


@dataclass(slots=True)
class RowEffects:
    """Per row of a tick: what the releases the servers run do (see the module's table)."""

    err: np.ndarray
    lat: np.ndarray
    mem: np.ndarray
    leak: np.ndarray
    any_err: bool
    any_lat: bool
    any_mem: bool
    any_leak: bool


def _improvement(u: float, improved: float) -> str:
    """A benign release's effect from its uniform draw ``u``: the first ``improved`` share improves."""
    return "faster" if u < improved / 2 else "efficient" if u < improved else "none"


def _draw(d: Distribution, rng: np.random.Generator) -> float:
    if d.dist == "const" or d.sigma == 0:
        return d.mean
    if d.dist == "uniform":
        return float(rng.uniform(d.mean * (1 - d.sigma), d.mean * (1 + d.sigma)))
    return float(rng.lognormal(np.log(d.mean) - d.sigma**2 / 2, d.sigma))


class ReleaseManager:
    """Versions per server, releases and their effects, deploys and rollbacks of one :class:`World`."""

    def __init__(self, world: World) -> None:
        self.w = world
        cfg = world.cfg
        # own streams (children 6 and 7 of the world's seed; the world uses 0..5): the pipeline's schedule and
        # the effects of builds engines deploy never shift the other streams, nor each other
        streams = np.random.SeedSequence(cfg.seed).spawn(8)[6:]
        self.rng_pipeline, self.rng_builds = (np.random.default_rng(s) for s in streams)
        self.releases: list[Release] = []
        self._tables = np.zeros((6, 16))  # err, lat mult, cap mult, mem, leak, bad (0/1) per release
        n_svc = world.n_svc
        self.seq = [0] * n_svc
        self._new(-1, "none", "none", 0.0, "pipeline")  # placeholder for rows without a service
        base = [self._new(s, "v1", "none", 0.0, "pipeline") for s in range(n_svc)]
        self.current = [r.idx for r in base]
        self.history: list[list[int]] = [[r.idx] for r in base]
        self.stable = np.array([r.idx for r in base] + [0], dtype=np.int64)  # [-1] -> the placeholder
        self.ver = np.zeros(max(world.cap, 16), dtype=np.int64)
        self.known = 0  # rows whose version is set
        self.events: list[DeployRecord] = []
        self.event_times: list[float] = []
        self.any_bad = False  # some release with an effect exists (else the physics never asks)
        self._pending: tuple[float, str, float | None, str | None] | None = None
        self._fx_key: tuple[int, int] | None = None
        self._fx: RowEffects | None = None
        self._sync()
        rc = cfg.releases
        if rc is not None and rc.rate_per_day > 0:
            self._schedule()

    # ------------------------------------------------------------ releases
    def _new(self, s: int, version: str, effect: str, severity: float, actor: str) -> Release:
        idx = len(self.releases)
        seq = 0
        if s >= 0:
            seq = self.seq[s] = self.seq[s] + 1
        rel = Release(idx, s, version, seq, effect, severity, self.w.now(), actor)
        stable = getattr(self, "stable", None)
        if s >= 0 and stable is not None:  # a build carries the improvements of the code everyone runs
            on = self.releases[int(stable[s])]
            rel.gain_lat, rel.gain_cap = on.gain_lat, on.gain_cap
        self.releases.append(rel)
        if idx >= self._tables.shape[1]:
            self._tables = np.concatenate((self._tables, np.zeros_like(self._tables)), axis=1)
        col = self._tables[:, idx]
        col[:] = (0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
        x = severity
        if effect == "error_ratio":
            col[0] = min(1.0, 0.1 * x)
        elif effect == "latency":
            col[1] = 1.0 + 2.0 * x
        elif effect == "cpu":
            col[2] = 1.0 / (1.0 + x)
        elif effect == "memory":
            col[3] = 0.3 * x
        elif effect in ("memory_leak", "slow_leak"):
            fill = LEAK_FILL_S if effect == "memory_leak" else SLOW_LEAK_FILL_S
            col[4] = (1.0 - float(self.w.svc_mem[s])) / (fill / max(x, 1e-9)) if s >= 0 else 0.0
        elif effect == "faster":
            rel.gain_lat /= 1.0 + 0.3 * x
        elif effect == "efficient":
            rel.gain_cap *= 1.0 + 0.3 * x
        col[1] *= rel.gain_lat
        col[2] *= rel.gain_cap
        if effect != "none" or rel.gain_lat != 1.0 or rel.gain_cap != 1.0:
            col[5] = 1.0
            self.any_bad = True
        return rel

    def _name(self, s: int) -> str:
        return f"v{self.seq[s] + 1}"

    def _service(self, service: str) -> int:
        if service not in self.w.svc_index:
            raise errors.NotFound(f"no service {service!r}")
        return self.w.svc_index[service]

    def find(self, s: int, version: str) -> Release | None:
        for r in reversed(self.releases):
            if r.service == s and r.version == version:
                return r
        return None

    def ship(self, service: str, effect: str, severity: float, fault: Any = None) -> Release:
        """A release with ``effect`` goes out on ``service`` (called by the release faults, twin/faults.py).

        Rolled out as the caller that arranged it asked (an engine's deploy of a new build, the pipeline's
        canary), else by the pipeline to every server.
        """
        s = self._service(service)
        fraction, actor, dur, version = self._pending or (1.0, "pipeline", None, None)
        self._pending = None
        if effect not in EFFECTS:
            raise ValueError(f"unknown release effect {effect!r}; allowed: {', '.join(EFFECTS)}")
        rel = self._new(s, version or self._name(s), effect, severity, actor)
        rel.fault = fault
        if fault is not None:
            fault.rec.release = {"service": service, "version": rel.version, "effect": effect, "severity": severity,
                                 "actor": actor}
        self._roll(s, rel, fraction, actor, dur if dur is not None else _draw(self.w.cfg.latencies.deploy,
                                                                               self.rng_pipeline))
        return rel

    def _release(self, s: int, effect: str, severity: float, fraction: float, actor: str, dur: float,
                 version: str | None = None) -> Release:
        """A new release: benign ones are rolled out here, bad ones become faults (which call ``ship``)."""
        if effect not in FAULT_TYPE:  # benign: no change, or an improvement
            rel = self._new(s, version or self._name(s), effect, severity, actor)
            self._roll(s, rel, fraction, actor, dur)
            return rel
        self._pending = (fraction, actor, dur, version)
        spec = FaultSpec(type=FAULT_TYPE[effect], at=self.w.now(), service=self.w.svc_names[s], severity=severity,
                         effect=None if effect == "memory_leak" else effect)
        try:
            self.w.faults.inject(spec)
        finally:
            self._pending = None
        return self.releases[-1]

    # ------------------------------------------------------------- pipeline
    def _schedule(self) -> None:
        w, rc, rng = self.w, self.w.cfg.releases, self.rng_pipeline
        assert rc is not None
        n = int(rng.poisson(rc.rate_per_day * w.cfg.duration / 86400.0))
        times = np.sort(rng.uniform(0.0, w.cfg.duration, n))
        names = rc.services or w.svc_names
        kinds = list(rc.bad)
        weights = np.array([rc.bad[k] for k in kinds], dtype=float)
        p = weights / weights.sum() if weights.sum() > 0 else None
        for t in times:  # every release draws the same numbers, bad or not: one stream, one schedule
            svc = w.svc_index[str(rng.choice(names))]
            u = float(rng.random())
            kind = str(rng.choice(kinds, p=p)) if kinds else "error_ratio"
            sev = float(rng.lognormal(0.0, rc.severity_sigma))
            durs = (_draw(w.cfg.latencies.deploy, rng), _draw(w.cfg.latencies.deploy, rng))
            effect = kind if (u >= rc.benign and p is not None) else _improvement(u, rc.improved)
            w.later(float(t), lambda s=svc, e=effect, x=sev, d=durs: self._pipeline(s, e, x, d))

    def _pipeline(self, s: int, effect: str, severity: float, durs: tuple[float, float]) -> None:
        rc = self.w.cfg.releases
        assert rc is not None
        fraction = rc.canary.fraction if rc.canary else 1.0
        rel = self._release(s, effect, severity, fraction, "pipeline", durs[0])
        if rc.canary:
            self.w.later(durs[0] * 2 + rc.canary.bake, lambda: self._promote(rel, durs[1]))

    def _promote(self, rel: Release, dur: float) -> None:
        """After the bake: the pipeline rolls the canary out to every server, unless it was rolled back."""
        s = rel.service
        if self.current[s] == rel.idx:
            self._roll(s, rel, 1.0, "pipeline", dur)

    # -------------------------------------------------------------- verbs
    def deploy(self, service: str, version: str, fraction: float = 1.0, actor: str = "automation") -> None:
        """Roll ``version`` onto ``fraction`` of the service's servers (a version it has not seen is a new build,
        its effect drawn like the pipeline's releases)."""
        s = self._service(service)
        if not 0.0 < fraction <= 1.0:
            raise errors.Conflict(f"fraction must be in (0, 1], got {fraction}")
        if not version:
            raise errors.Conflict("version must not be empty")
        dur = self.w.draw(self.w.cfg.latencies.deploy)
        rel = self.find(s, version)
        if rel is not None:
            self._roll(s, rel, fraction, actor, dur)
            return
        effect, severity = "none", 0.0
        rc = self.w.cfg.releases
        if rc is not None:
            rng = self.rng_builds
            kinds = list(rc.bad)
            weights = np.array([rc.bad[k] for k in kinds], dtype=float)
            u = float(rng.random())
            kind = str(rng.choice(kinds, p=weights / weights.sum())) if weights.sum() > 0 else "none"
            x = float(rng.lognormal(0.0, rc.severity_sigma))
            if u >= rc.benign and kind != "none":
                effect, severity = kind, x
            elif _improvement(u, rc.improved) != "none":
                effect, severity = _improvement(u, rc.improved), x
        self._release(s, effect, severity, fraction, actor, dur, version)

    def rollback(self, service: str, actor: str = "automation") -> None:
        """Every server of the service back on the version before the current one (a rolling restart)."""
        s = self._service(service)
        hist = self.history[s]
        if len(hist) <= 1:
            raise errors.Conflict(f"service {service} is at its first release; nothing to roll back")
        w = self.w
        self._sync()
        gone = self.releases[hist.pop()]
        target = self.releases[hist[-1]]
        self.current[s] = target.idx
        self.stable[s] = target.idx
        w.svc_version[s] = target.seq
        rows = self._rows_of(s)
        self._event(s, target.version, gone.version, 1.0, actor)
        w.truth.rollbacks.append((w.now(), service, gone.version, gone.effect in FAULT_TYPE, actor))
        d = w.draw(w.cfg.latencies.rollback)
        target.rolling += 1
        gone.rolling += 1

        def done() -> None:
            target.rolling -= 1
            gone.rolling -= 1
            if target.idx in self.history[s]:
                live = rows[(w.status[rows] != DELETED) & (w.svc[rows] == s)]
                self.ver[live] = target.idx
                w.invalidate()
            w._notify("rollback_deploy", -1, s, actor)

        self._bounce_then(rows[w.status[rows] == ACTIVE], d, done)

    # -------------------------------------------------------------- rollout
    def _rows_of(self, s: int) -> np.ndarray:
        w = self.w
        n = w.n
        return np.flatnonzero((w.svc[:n] == s) & (w.status[:n] != DELETED) & ~w.deleting[:n])

    def _roll(self, s: int, rel: Release, fraction: float, actor: str, dur: float) -> None:
        w = self.w
        self._sync()
        prev = self.releases[self.current[s]]
        if rel.idx != prev.idx:
            hist = self.history[s]
            if rel.idx in hist:
                hist.remove(rel.idx)
            hist.append(rel.idx)
            self.current[s] = rel.idx
            w.svc_version[s] = rel.seq
        rows = self._rows_of(s)
        n = len(rows)
        # ⌈fraction × n⌉ servers, as the fake and the OpenStack adapter take (docs/adapter-mapping.md)
        k = n if fraction >= 1.0 else min(n, max(1, math.ceil(fraction * n - 1e-9)))
        if fraction >= 1.0:
            self.stable[s] = rel.idx
        on = self.ver[rows] == rel.idx
        targets = rows[~on][: max(0, k - int(on.sum()))]
        self._event(s, rel.version, prev.version, fraction, actor)
        rel.rolling += 1

        def done() -> None:
            rel.rolling -= 1
            if rel.idx in self.history[s]:  # not rolled back meanwhile
                live = targets[(w.status[targets] != DELETED) & (w.svc[targets] == s)]
                self.ver[live] = rel.idx
                w.invalidate()
            w._notify("deploy", -1, s, actor)

        self._bounce_then(targets[w.status[targets] == ACTIVE], dur, done)

    def _bounce_then(self, rows: np.ndarray, d: float, done: Any) -> None:
        """Restart ``rows``' processes in two halves of ``d`` seconds each, then call ``done``."""
        w = self.w
        for k, i in enumerate(rows.tolist()):
            w.later((k % 2) * d, lambda i=i: w._bounce(i, d))
        w.later(2 * d if len(rows) > 1 else d, done)

    def _event(self, s: int, version: str, previous: str, fraction: float, actor: str) -> None:
        t = self.w.now()
        self.events.append(DeployRecord(t, self.w.svc_names[s], version, previous, float(fraction), actor))
        self.event_times.append(t)

    # ---------------------------------------------------------- observe
    def _sync(self) -> None:
        """Rows created since the last look start on their service's stable version."""
        w = self.w
        n = w.n
        if n <= self.known:
            return
        if len(self.ver) < n:
            self.ver = np.concatenate((self.ver, np.zeros(max(n, 2 * len(self.ver)) - len(self.ver), np.int64)))
        svc = w.svc[self.known:n]
        self.ver[self.known:n] = self.stable[svc]  # svc -1 reads the placeholder (the last entry)
        self.known = n

    def running(self, rel: Release) -> int:
        """Live servers of its service running ``rel``."""
        self._sync()
        rows = self._rows_of(rel.service)
        return int(np.count_nonzero(self.ver[rows] == rel.idx))

    def affected(self, rel: Release) -> bool:
        """Some server runs ``rel``, or a rollout of it is under way."""
        return rel.rolling > 0 or self.running(rel) > 0

    def version_of(self, i: int) -> str:
        if self.known < self.w.n:  # read once per server by every listing: sync only when rows were added
            self._sync()
        return self.releases[self.ver[i]].version

    def current_version(self, s: int) -> str:
        return self.releases[self.current[s]].version

    # ----------------------------------------------------------- physics
    def _bad_rows(self, idx: slice | np.ndarray) -> np.ndarray | None:
        """Release indices of ``idx``'s rows, or None when none runs a release with an effect."""
        if not self.any_bad:
            return None
        self._sync()
        v = self.ver[idx]
        if not self._tables[5, v].any():
            return None
        return v

    def cap_mult(self, idx: slice | np.ndarray) -> np.ndarray | None:
        """Per row, the capacity factor of its release (CPU per request), or None when all are 1."""
        v = self._bad_rows(idx)
        if v is None:
            return None
        c = self._tables[2, v]
        return c if (c != 1.0).any() else None

    def effects(self, idx: slice | np.ndarray) -> RowEffects | None:
        """Per row of a tick, what its release does; None when every server runs a benign release.

        Cached until the world's structure changes (every version change invalidates it)."""
        if not self.any_bad:
            return None
        key = (self.w._gen, self.w.n)
        if self._fx_key == key:
            return self._fx
        v = self._bad_rows(idx)
        fx = None
        if v is not None:
            t = self._tables
            err, lat, mem, leak = t[0, v], t[1, v], t[3, v], t[4, v]
            fx = RowEffects(err, lat, mem, leak, bool(err.any()), bool((lat != 1.0).any()), bool(mem.any()),
                            bool(leak.any()))
        self._fx_key, self._fx = key, fx
        return fx

    def since(self, t: float) -> list[DeployRecord]:
        import bisect

        return self.events[bisect.bisect_left(self.event_times, t):]  # at or after t
