"""Scraped metrics in a columnar in-memory store, and Prometheus-style alerting rules.

Each metric family is one numpy ring buffer of shape ``(window, entities)``;
rollups keep per-minute and per-five-minute means for long runs and reports, and
bounded history rings of those means (by default 1-minute means for 2 days,
5-minute means for 35 days) serve ``metric_history``.  Families: per service,
per server and per dependency edge (caller → callee).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.config import AlertRule


class Ring:
    """A ring buffer of snapshots: ``push(t, row)``, ``window(seconds)``."""

    def __init__(self, length: int, width: int, dtype: type = np.float32) -> None:
        self.length = length
        self.t = np.full(length, np.nan)
        self.v = np.full((length, width), np.nan, dtype=dtype)
        self.n = 0  # snapshots pushed so far
        self.filled = 0  # columns any push has written: beyond them every slot is still NaN
        # per window length: (n when computed, the window's times, its slots), shared by every column's read
        self._win: dict[float, tuple[int, np.ndarray, np.ndarray]] = {}

    @property
    def width(self) -> int:
        return self.v.shape[1]

    def grow(self, width: int) -> None:
        if width > self.width:
            v = np.full((self.length, width), np.nan, dtype=self.v.dtype)
            v[:, : self.width] = self.v
            self.v = v

    def push(self, t: float, row: np.ndarray) -> None:
        i = self.n % self.length
        self.t[i] = t
        k = len(row)
        self.v[i, :k] = row
        if k < self.filled:  # columns a longer earlier row wrote; columns past ``filled`` were never written
            self.v[i, k : self.filled] = np.nan
        else:
            self.filled = k
        self.n += 1

    def last(self) -> np.ndarray:
        return self.v[(self.n - 1) % self.length] if self.n else np.full(self.width, np.nan)

    def window(self, seconds: float, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of column ``col`` within the last ``seconds``, oldest first."""
        k = min(self.n, self.length)
        if k == 0:
            return np.empty(0), np.empty(0)
        c = self._win.get(seconds)
        if c is None or c[0] != self.n:  # the slots and times change only with a push
            idx = (np.arange(self.n - k, self.n)) % self.length
            t = self.t[idx]
            keep = t > t[-1] - seconds - 1e-9
            if len(self._win) >= 32:  # callers with ever-changing lengths: keep the cache small
                self._win.clear()
            c = self._win[seconds] = (self.n, t[keep], idx[keep])
        return c[1].copy(), self.v[c[2], col].astype(np.float64)


class History:
    """A bounded ring of closed periods' means: ``length`` rows of ``width`` columns (float64)."""

    def __init__(self, length: int, width: int) -> None:
        self.length = max(1, length)
        self.t = np.full(self.length, np.nan)
        self.v = np.zeros((self.length, width))
        self.n = 0

    def push(self, t: float, row: np.ndarray) -> None:
        i = self.n % self.length
        self.t[i] = t
        self.v[i] = row
        self.n += 1

    def since(self, start: float, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Period starts ``>= start`` still held, and column ``col``'s means, oldest first."""
        k = min(self.n, self.length)
        idx = np.arange(self.n - k, self.n) % self.length
        t = self.t[idx]
        keep = t >= start - 1e-9
        return t[keep], self.v[idx[keep], col]


class Rollup:
    """Means over fixed periods (e.g. 60 s), appended as each period closes (and pushed to ``history``)."""

    def __init__(self, period: float, width: int, history: History | None = None) -> None:
        self.period = period
        self.sum = np.zeros(width)
        self.count = 0
        self.start = 0.0
        self.t: list[float] = []
        self.rows: list[np.ndarray] = []
        self.history = history

    def add(self, t: float, row: np.ndarray, clean: bool = False) -> None:
        """Add one snapshot; ``clean`` says ``row`` has already been through ``np.nan_to_num``."""
        if t >= self.start + self.period and self.count:
            self.flush()
            self.start = np.floor(t / self.period) * self.period
        self.sum += row if clean else np.nan_to_num(row)
        self.count += 1

    def flush(self) -> None:
        if self.count:
            self.t.append(self.start)
            self.rows.append(self.sum / self.count)
            if self.history is not None:
                self.history.push(self.start, self.rows[-1])
            self.sum = np.zeros_like(self.sum)
            self.count = 0

    def frame(self, columns: list[str]) -> pd.DataFrame:
        data = np.vstack(self.rows) if self.rows else np.empty((0, len(columns)))
        return pd.DataFrame(data, index=pd.Index(self.t, name="t"), columns=columns)


HISTORY_S = {60: 2 * 86400.0, 300: 35 * 86400.0}  # how long metric_history keeps each rollup's means


class MetricStore:
    """Named families: per-service (fixed width), per-server (growing width) and per dependency edge.

    ``edges`` are the (caller, callee) service pairs of the dependency families' columns; ``horizon`` (the
    run's length) bounds the history rings to what a run can fill."""

    def __init__(self, window_s: float, interval: float, service_names: list[str], service_metrics: list[str],
                 server_metrics: list[str], server_capacity: int, edges: list[tuple[str, str]] | None = None,
                 dependency_metrics: list[str] | None = None, horizon: float | None = None) -> None:
        length = max(2, int(round(window_s / interval)) + 1)
        self.interval = interval
        self.service_names = service_names
        self.service_metrics = list(service_metrics)
        self.server_metrics = list(server_metrics)
        self.svc = {m: Ring(length, len(service_names), np.float64) for m in service_metrics}
        self.srv = {m: Ring(length, server_capacity) for m in server_metrics}
        self.edges = list(edges or [])
        self.dep_metrics = list(dependency_metrics or []) if self.edges else []
        # one ring for every dependency metric, metric-major columns (one push per scrape)
        self.dep = Ring(length, len(self.dep_metrics) * len(self.edges), np.float64)

        def hist(period: int, width: int) -> History:
            keep = HISTORY_S[period] if horizon is None else min(HISTORY_S[period], horizon + period)
            return History(int(np.ceil(keep / period)) + 1, width)

        ncols = len(service_metrics) * len(service_names)
        self.rollups = {p: Rollup(float(p), ncols, hist(p, ncols)) for p in (60, 300)}
        ecols = len(self.dep_metrics) * len(self.edges)
        self.dep_rollups = {p: Rollup(float(p), ecols, hist(p, ecols)) for p in (60, 300)} if ecols else {}

    def grow_servers(self, capacity: int) -> None:
        for r in self.srv.values():
            r.grow(capacity)

    def scrape(self, t: float, services: dict[str, np.ndarray], servers: dict[str, np.ndarray],
               dependencies: np.ndarray | None = None) -> None:
        """One snapshot; ``dependencies`` is every dependency metric's row over the edges, concatenated in
        ``dep_metrics`` order (finite values)."""
        for m, row in services.items():
            self.svc[m].push(t, row)
        for m, row in servers.items():
            self.srv[m].push(t, row)
        flat = np.nan_to_num(np.concatenate([services[m] for m in self.service_metrics]))
        for r in self.rollups.values():
            r.add(t, flat, clean=True)
        if dependencies is not None and self.dep_rollups:
            self.dep.push(t, dependencies)
            for r in self.dep_rollups.values():
                r.add(t, dependencies, clean=True)

    def dep_window(self, metric: str, edge: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of a dependency metric on one edge within the last ``seconds``."""
        return self.dep.window(seconds, self.dep_metrics.index(metric) * len(self.edges) + edge)

    def close(self) -> None:
        for r in self.rollups.values():
            r.flush()
        for r in self.dep_rollups.values():
            r.flush()

    def history(self, metric: str, col: int, now: float, seconds: float, step: float,
                dependency: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Means per ``step`` seconds (a multiple of 60) over the last ``seconds`` before ``now``, from the
        closed 1-minute (or, for steps that are multiples of 300, 5-minute) periods held; times are the
        steps' starts (multiples of ``step``), oldest first.  The period still open is not included.
        ``col`` is the entity's column (a service, or an edge with ``dependency``)."""
        if not step >= 60 or step % 60:
            raise ValueError(f"step must be a multiple of 60 s, got {step}")
        period = 300 if step % 300 == 0 else 60
        if dependency:
            rollups, names, width = self.dep_rollups, self.dep_metrics, len(self.edges)
        else:
            rollups, names, width = self.rollups, self.service_metrics, len(self.service_names)
        h = rollups[period].history
        start = np.floor((now - seconds) / step) * step
        t, v = h.since(start, names.index(metric) * width + col)
        if step == period or not len(t):
            return t, v
        bucket = np.floor(t / step + 1e-9) * step
        keys, inv = np.unique(bucket, return_inverse=True)
        return keys, np.bincount(inv, v) / np.bincount(inv)

    def to_pandas(self, period: int = 60) -> pd.DataFrame:
        """Rollup means as a frame with (metric, service) columns, indexed by time in seconds."""
        cols = pd.MultiIndex.from_product([self.service_metrics, self.service_names], names=["metric", "service"])
        df = self.rollups[period].frame([f"{m}|{s}" for m, s in cols])
        df.columns = cols
        return df



# ------------------------------------------------------------------ alerting
_EXPR = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")
_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


def parse_expr(expr: str, known: set[str]) -> tuple[str, str, float]:
    """``'error_ratio > 0.05'`` → (metric, op, threshold); errors say what is allowed."""
    m = _EXPR.match(expr)
    if not m:
        raise ValueError(f"invalid alert expr {expr!r}: use '<metric> <op> <number>' with op one of > < >= <= == !=")
    metric, op, thr = m.group(1), m.group(2), float(m.group(3))
    if metric not in known:
        raise ValueError(f"alert expr {expr!r}: unknown metric {metric!r}; allowed: {', '.join(sorted(known))}")
    return metric, op, thr


@dataclass(slots=True)
class RawAlert:
    name: str
    severity: str
    labels: dict[str, str]
    state: str  # firing | resolved
    starts_at: float
    at: float
    value: float
    fingerprint: str


@dataclass
class RuleState:
    rule: AlertRule
    metric: str
    op: str
    threshold: float
    per_server: bool
    pending: np.ndarray = field(default_factory=lambda: np.empty(0))  # since when the condition holds
    firing: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    last_sent: np.ndarray = field(default_factory=lambda: np.empty(0))
    engaged: bool = False  # some entity is pending or firing (else a step with no true condition is a no-op)

    def ensure(self, width: int) -> None:
        if len(self.pending) < width:
            extra = width - len(self.pending)
            self.pending = np.concatenate([self.pending, np.full(extra, np.nan)])
            self.firing = np.concatenate([self.firing, np.zeros(extra, bool)])
            self.last_sent = np.concatenate([self.last_sent, np.full(extra, -np.inf)])


class AlertEvaluator:
    """Evaluates rules at each scrape, like Prometheus with Alertmanager's repeat_interval.

    No hysteresis: a noisy metric near its threshold flaps, and a firing alert
    is re-sent every ``repeat_interval`` — the noise that smart alerting must
    later suppress.
    """

    def __init__(self, rules: list[AlertRule], service_metrics: set[str], server_metrics: set[str],
                 repeat_interval: float) -> None:
        self.repeat = repeat_interval
        self.states: list[RuleState] = []
        for r in rules:
            metric, op, thr = parse_expr(r.expr, service_metrics | server_metrics)
            self.states.append(RuleState(r, metric, op, thr, metric in server_metrics))
        self.alerts: list[RawAlert] = []
        self.times: list[float] = []  # parallel to alerts, for bisecting

    def evaluate(self, t: float, services: dict[str, np.ndarray], servers: dict[str, np.ndarray],
                 service_labels: list[dict[str, str]], server_labels: callable) -> None:
        with np.errstate(invalid="ignore"):
            for s in self.states:
                values = servers[s.metric] if s.per_server else services[s.metric]
                s.ensure(len(values))
                cond = _OPS[s.op](values, s.threshold)
                if s.op == "!=":  # the only comparison that is true for NaN
                    cond &= ~np.isnan(values)
                if not s.engaged and not cond.any():
                    continue  # nothing pending or firing, and nothing starts: the state stays empty
                self._step(s, t, values, cond, service_labels, server_labels)
                # after a step, pending is set exactly where cond holds and firing implies cond
                s.engaged = bool(cond.any())

    def _step(self, s: RuleState, t: float, values: np.ndarray, cond: np.ndarray,
              service_labels: list[dict[str, str]], server_labels: callable) -> None:
        n = len(values)
        pending, firing, last = s.pending[:n], s.firing[:n], s.last_sent[:n]
        starting = cond & np.isnan(pending)
        pending[starting] = t
        ready = cond & (t - pending >= s.rule.for_ - 1e-9)
        new = ready & ~firing
        repeat = ready & firing & (t - last >= self.repeat - 1e-9)
        resolved = firing & ~cond
        pending[~cond] = np.nan
        for idx, state in ((np.flatnonzero(new), "firing"), (np.flatnonzero(repeat), "firing"),
                           (np.flatnonzero(resolved), "resolved")):
            for i in idx:
                labels = dict(server_labels(int(i)) if s.per_server else service_labels[i])
                labels.update(s.rule.labels)
                labels["alertname"] = s.rule.name
                fp = f"{s.rule.name}:{labels.get('server') or labels.get('service')}"
                start = float(pending[i]) if state == "firing" else float(t)
                self._emit(RawAlert(s.rule.name, s.rule.severity, labels, state, start, t, float(values[i]), fp))
        firing[new] = True
        firing[resolved] = False
        last[new | repeat] = t

    def _emit(self, a: RawAlert) -> None:
        self.alerts.append(a)
        self.times.append(a.at)
