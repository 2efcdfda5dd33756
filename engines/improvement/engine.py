"""Continuous improvement: canary rollouts with automatic rollback, A/B experiments, cost drift (docs/improvement.md).

Every deploy of a new version to part of a service (the pipeline's canary, or this engine's experiment) is
followed: once the canary servers run it (their version metadata), the judge (:mod:`.analysis`) compares
them with the baseline servers every step; a regression on any metric (errors, CPU or cost per request,
memory, availability, latency) rolls back at once (``RollbackDeploy`` with the comparison as evidence); a
canary that passes ``bake_s`` at a step is promoted to the next (5 % → 25 % → 50 % → 100 % by default).

A/B experiments (``experiments_per_week``): a new build goes to ``experiment_fraction`` of a service; an
mSPRT on the per-scrape log ratio of CPU per request (canary over baseline, paired by scrape time) decides,
valid however often it is looked at; a winner (cheaper by more than ``min_effect``) goes on through the
canary steps, a loser is rolled back, and one undecided after ``experiment_max_s`` (no difference found,
no guard metric worse) goes on through the canary steps too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.base import VERSION_KEY, Action, Deploy, Observation, RollbackDeploy, Server
from control.runtime import ActionRecord
from engines.improvement.analysis import Tolerances, Verdict, judge, rollout_steps, split
from engines.improvement.stats import MSPRT

TOP_UP_S = 300.0  # a step whose canary share fell short this long is topped up


class ContinuousImprovementConfig(BaseModel):
    """Canary steps, bake times, the judge's false-positive rate and tolerances, A/B experiments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cadence: float = Field(60.0, gt=0, le=3600, description="seconds between analyses (one analysis interval)")
    steps: tuple[float, ...] = Field((0.05, 0.25, 0.5, 1.0), description="canary fractions, increasing, ending at 1")
    bake_s: float = Field(600.0, ge=0, description="seconds a canary must pass at each step before promotion")
    warmup_s: float = Field(60.0, ge=0, description="seconds after the canary servers run the version before "
                                                     "their samples count")
    max_window_s: float = Field(1800.0, gt=0, description="longest window the judge compares")
    alpha: float = Field(0.01, gt=0, lt=0.5, description="false-positive rate of one analysis (Bonferroni "
                                                           "over the metrics)")
    min_samples: int = Field(8, ge=3, description="samples per group before a metric is judged")
    error_ratio_abs: float = Field(0.005, ge=0, description="tolerated rise of the canary's error ratio")
    cpu_rel: float = Field(0.10, ge=0, description="tolerated relative rise of CPU per request")
    cost_rel: float = Field(0.10, ge=0, description="tolerated relative rise of cost per request (cost drift)")
    memory_abs: float = Field(0.02, ge=0, description="tolerated rise of memory utilisation")
    leak_per_day: float = Field(0.10, ge=0, description="tolerated extra memory growth of the canary, per day")
    latency_rel: float = Field(0.15, ge=0, description="tolerated relative rise of the service's p95 latency")
    experiments_per_week: float = Field(0.0, ge=0, le=1000, description="A/B experiments started per week")
    experiment_fraction: float = Field(0.25, gt=0, lt=1, description="share of a service's servers on the variant")
    experiment_max_s: float = Field(2 * 3600.0, gt=0, description="an experiment undecided this long is stopped")
    experiment_alpha: float = Field(0.05, gt=0, lt=0.5, description="mSPRT false-positive rate (always valid)")
    experiment_tau: float = Field(0.05, gt=0, description="mSPRT mixing spread, in log CPU-per-request units")
    min_effect: float = Field(0.02, ge=0, description="smallest relative CPU-per-request saving that wins")
    min_servers: int = Field(4, ge=2, description="services with fewer active servers get no experiment")

    _steps = field_validator("steps")(staticmethod(rollout_steps))


@dataclass
class Rollout:
    """One version being rolled out (or experimented with) on one service."""

    service: str
    version: str
    previous: str
    started: float
    fraction: float
    kind: str = "release"  # "release" (someone else's canary) or "experiment" (ours)
    step_since: float | None = None  # when the current step's samples start counting
    step_started: float = 0.0
    latency_before: np.ndarray | None = None
    test: MSPRT | None = None
    fed_until: float = -math.inf
    topped_up: float = -math.inf
    cost_per_hour: float = 0.0  # the service's servers at on-demand prices, at the last analysis
    decided: str = ""  # experiment: "winner", "loser", "inconclusive"
    steps: list[dict[str, Any]] = field(default_factory=list)


class ContinuousImprovement:
    """Canary analysis with automatic promotion and rollback, plus A/B experiments through the same path."""

    name = "continuous_improvement"

    def __init__(self, config: ContinuousImprovementConfig | None = None) -> None:
        self.cfg = c = config or ContinuousImprovementConfig()
        self.cadence = c.cadence
        self.tol = Tolerances(c.error_ratio_abs, c.cpu_rel, c.cost_rel, c.memory_abs, 0.05, c.latency_rel,
                              c.leak_per_day)
        self.active: dict[str, Rollout] = {}
        self.done: list[Rollout] = []
        self._seen: set[tuple[float, str, str, float, str]] = set()
        self._own: list[tuple[str, str, float]] = []  # our deploys not yet seen as events
        self._since = 0.0
        self._full: dict[str, str] = {}  # service -> the version last deployed to all its servers
        self._next_exp: float | None = None
        self._exp_n = 0
        self._rr = 0

    # ------------------------------------------------------------------ events
    def _watch(self, now: float, obs: Observation) -> None:
        for e in obs.deploys(self._since):
            key = (e.at, e.service, e.version, e.fraction, e.previous)
            if key in self._seen:
                continue
            self._seen.add(key)
            if e.fraction >= 1.0:
                self._full[e.service] = e.version
            own = (e.service, e.version, e.fraction)
            if own in self._own:
                self._own.remove(own)
                continue
            r = self.active.get(e.service)
            if r is not None and e.version == r.version and e.fraction >= 1.0:
                self._close(r, "promoted_by_other")
            elif r is not None and e.previous == r.version and e.version != r.version and e.fraction >= 1.0:
                self._close(r, "rolled_back_by_other")
            elif e.fraction < 1.0 and (r is None or r.version != e.version):
                if r is not None:
                    self._close(r, "superseded")
                if e.service not in self._full:  # first sight: what most servers run is the last full version
                    self._full[e.service] = _majority(s for s in obs.servers(service=e.service)
                                                      if s.metadata.get(VERSION_KEY) != e.version) or e.previous
                self.active[e.service] = Rollout(e.service, e.version, e.previous, e.at, e.fraction,
                                                 latency_before=self._latency(obs, e.service), step_started=e.at)
        self._since = max(self._since, now - 3600.0)
        if len(self._seen) > 5000:
            self._seen = {k for k in self._seen if k[0] >= self._since}

    def _latency(self, obs: Observation, service: str) -> np.ndarray:
        return np.asarray(obs.window("latency_p95_ms", min(900.0, self.cfg.max_window_s), service=service).v, float)

    def _close(self, r: Rollout, outcome: str) -> None:
        r.steps.append({"outcome": outcome})
        self.active.pop(r.service, None)
        self.done.append(r)
        del self.done[:-500]

    # -------------------------------------------------------------------- step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        self._watch(now, obs)
        out: list[Action] = []
        for r in list(self.active.values()):
            a = self._analyse(now, obs, r)
            if a is not None:
                out.append(a)
        e = self._experiment(now, obs)
        if e is not None:
            out.append(e)
        return out

    def _analyse(self, now: float, obs: Observation, r: Rollout) -> Action | None:
        servers = obs.servers(service=r.service)
        canary, others = split(servers, r.version)
        live = len(canary) + len(others)
        prices = {p.flavor: p.per_hour for p in obs.prices if p.pricing == "on_demand"}
        r.cost_per_hour = sum(prices.get(s.flavor, 0.0) for s in canary + others)
        want = live if r.fraction >= 1.0 else min(live, max(1, math.ceil(r.fraction * live - 1e-9)))
        if r.step_since is None:
            if len(canary) < want or live == 0:
                if now - r.step_started > 3600.0:
                    self._close(r, "stalled")
                elif canary and now - max(r.step_started, r.topped_up) > TOP_UP_S:
                    # new servers start on the stable version: the share fell below the step's; top it up
                    r.topped_up = now
                    self._own.append((r.service, r.version, r.fraction))
                    return Deploy(service=r.service, version=r.version, fraction=r.fraction,
                                  reason=f"canary {r.version}: {len(canary)} of {live} servers, below "
                                         f"{r.fraction:.0%}; top up", evidence={"improvement": "canary_top_up"})
                return None
            r.step_since = now + self.cfg.warmup_s
        # the baseline: servers on the version the canary replaces (else every other version)
        base = [s for s in others if s.metadata.get(VERSION_KEY) == r.previous] or others
        if now < r.step_since or not base:
            return None
        seconds = min(now - r.step_since + self.cadence, self.cfg.max_window_s)
        v = judge(obs, canary, base, seconds, service=r.service, latency_before=r.latency_before,
                  alpha=self.cfg.alpha, tol=self.tol, min_samples=self.cfg.min_samples)
        if v.regressions:
            return self._rollback(now, r, v, canary)
        if r.kind == "experiment" and not r.decided:
            return self._experiment_step(now, obs, r, canary, base, v)
        if v.enough and now - r.step_since >= self.cfg.bake_s:
            return self._promote(now, obs, r, v)
        return None

    def _rollback(self, now: float, r: Rollout, v: Verdict, canary: list[Server]) -> Action:
        worst = ", ".join(f"{c.metric} {c.canary:.4g} vs {c.baseline:.4g} (p={c.p:.2g})" for c in v.regressions)
        if r.kind == "experiment" and not r.decided:
            r.decided = "loser"
        self._close(r, "rolled_back")
        good = self._full.get(r.service)
        evidence = {"improvement": "canary_rollback", "version": r.version, "previous": r.previous,
                      "fraction": r.fraction, "kind": r.kind, "canary_started": r.started,
                      "detected_after_s": now - r.started, "canary_servers": [s.id for s in canary],
                      **v.evidence(), **self._exp_evidence(r)}
        if good and good not in (r.previous, r.version):
            # the version before it never finished its own canary: back to the last one everyone ran
            self._own.append((r.service, good, 1.0))
            return Deploy(service=r.service, version=good, fraction=1.0,
                          reason=f"canary {r.version} at {r.fraction:.0%} regressed: {worst}; back to {good}, the "
                                 f"last version on every server ({r.previous} never finished its canary)",
                          evidence={**evidence, "rolled_back_to": good})
        return RollbackDeploy(service=r.service, reason=f"canary {r.version} at {r.fraction:.0%} regressed: {worst}",
                              evidence=evidence)

    def _promote(self, now: float, obs: Observation, r: Rollout, v: Verdict) -> Action | None:
        nxt = next((f for f in self.cfg.steps if f > r.fraction + 1e-9), None)
        if nxt is None:
            self._close(r, "promoted")
            return None
        r.steps.append({"fraction": r.fraction, "passed_at": now, **v.evidence()})
        prev = r.fraction
        r.fraction, r.step_since, r.step_started = nxt, None, now
        r.latency_before = self._latency(obs, r.service)
        self._own.append((r.service, r.version, nxt))
        if nxt >= 1.0:
            self._close(r, "promoted")
        return Deploy(service=r.service, version=r.version, fraction=nxt,
                      reason=f"canary {r.version} passed {prev:.0%} for {self.cfg.bake_s:.0f}s: promote to {nxt:.0%}",
                      evidence={"improvement": "canary_promote", "version": r.version, "from": prev, "to": nxt,
                                "kind": r.kind, "canary_started": r.started, **v.evidence(),
                                **self._exp_evidence(r)})

    # ------------------------------------------------------------- experiments
    def _experiment(self, now: float, obs: Observation) -> Action | None:
        c = self.cfg
        if c.experiments_per_week <= 0:
            return None
        period = 7 * 86400.0 / c.experiments_per_week
        if self._next_exp is None:
            self._next_exp = now + period / 2
        if now < self._next_exp:
            return None
        names = sorted(s.name for s in obs.services.values() if s.active >= c.min_servers and s.name not in self.active)
        if not names:
            return None
        self._next_exp = now + period
        svc = names[self._rr % len(names)]
        self._rr += 1
        self._exp_n += 1
        version = f"exp{self._exp_n}-{svc}"
        prev = _majority(obs.servers(service=svc))
        r = Rollout(svc, version, prev, now, c.experiment_fraction, kind="experiment",
                    latency_before=self._latency(obs, svc), step_started=now,
                    test=MSPRT(tau=c.experiment_tau, sigma_floor=1e-3))
        self.active[svc] = r
        self._own.append((svc, version, c.experiment_fraction))
        return Deploy(service=svc, version=version, fraction=c.experiment_fraction,
                      reason=f"A/B experiment {version}: {c.experiment_fraction:.0%} of {svc}",
                      evidence={"improvement": "experiment_start", "version": version, "previous": prev,
                                "fraction": c.experiment_fraction, "metric": "cpu_per_request"})

    def _experiment_step(self, now: float, obs: Observation, r: Rollout, canary: list[Server],
                         base: list[Server], v: Verdict) -> Action | None:
        assert r.test is not None
        seconds = min(now - r.step_since + self.cadence if r.step_since else self.cadence, self.cfg.max_window_s)
        d = _paired_log_ratio(obs, canary, base[:8], seconds, r.fed_until)
        if len(d):
            r.fed_until = float(d[-1, 0])
            r.test.add(d[:, 1])
        c = self.cfg
        p = r.test.p_value
        effect = math.expm1(r.test.mean)
        if p < c.experiment_alpha and effect < -c.min_effect:
            r.decided = "winner"  # on through the canary steps (bake and guard at each)
            return None
        if p < c.experiment_alpha and effect > 0:
            r.decided = "loser"
        elif now - r.started > c.experiment_max_s:
            r.decided = "no_difference"  # not worse on any guard metric: ship it through the canary steps
            return None
        else:
            return None
        self._close(r, "rolled_back")
        return RollbackDeploy(service=r.service, reason=f"A/B experiment {r.version}: {r.decided} "
                                                        f"(CPU per request {effect:+.1%}, p={p:.2g})",
                              evidence={"improvement": "experiment_end", "version": r.version, "kind": r.kind,
                                        **v.evidence(), **self._exp_evidence(r)})

    def _exp_evidence(self, r: Rollout) -> dict[str, Any]:
        if r.test is None:
            return {}
        lo, hi = r.test.interval(self.cfg.experiment_alpha)
        return {"experiment": {"version": r.version, "service": r.service, "decision": r.decided or "running",
                               "metric": "cpu_per_request", "effect": round(math.expm1(r.test.mean), 5),
                               "ci": [round(math.expm1(lo), 5) if math.isfinite(lo) else None,
                                      round(math.expm1(hi), 5) if math.isfinite(hi) else None],
                               "confidence": 1 - self.cfg.experiment_alpha, "p": r.test.p_value, "n": r.test.n,
                               "started": r.started, "service_cost_per_hour": round(r.cost_per_hour, 4)}}

    def on_result(self, rec: ActionRecord) -> None:
        a = rec.action
        if isinstance(a, Deploy) and rec.outcome != "executed":
            own = (a.service, a.version, a.fraction)
            if own in self._own:
                self._own.remove(own)
            r = self.active.get(a.service)
            if r is not None and r.version == a.version:
                self._close(r, f"deploy {rec.outcome}")


def _paired_log_ratio(obs: Observation, canary: list[Server], base: list[Server], seconds: float,
                      after: float) -> np.ndarray:
    """Rows (t, log(canary CPU per request / baseline CPU per request)) for scrape times after ``after``."""

    def per_t(group: list[Server]) -> dict[float, list[float]]:
        out: dict[float, list[float]] = {}
        for s in group:
            c = obs.window("server_cpu_util", seconds, server=s.id)
            n = obs.window("server_network_mbps", seconds, server=s.id)
            rate = dict(zip(n.t.tolist(), n.v.tolist(), strict=False))
            for t, v in zip(c.t.tolist(), c.v.tolist(), strict=False):
                q = rate.get(t)
                if t > after and q and q > 1e-9 and math.isfinite(v) and v > 0:
                    out.setdefault(t, []).append(v / q)
        return out

    a, b = per_t(canary), per_t(base)
    ts = sorted(set(a) & set(b))
    return np.array([(t, math.log(np.mean(a[t]) / np.mean(b[t]))) for t in ts]).reshape(-1, 2)


def _majority(servers: Iterable[Server]) -> str:
    """The version most of the servers run."""
    count: dict[str, int] = {}
    for s in servers:
        v = s.metadata.get(VERSION_KEY)
        if v is not None:
            count[v] = count.get(v, 0) + 1
    return max(count, key=lambda v: count[v]) if count else ""
