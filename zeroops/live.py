"""``zeroops live``: the engines on the wall clock against a real OpenStack cloud.

The same :class:`control.runtime.Runtime` and :class:`~control.runtime.ChokePoint`
as in the twin drive the engines; only the adapter (:mod:`adapters.openstack`)
and the clock (:class:`~control.runtime.WallClock`) differ.

* ``--mode observe`` (the default) turns every action into a proposal
  (:class:`ObserveOnlyGate`): nothing in the cloud changes.
* ``--mode act`` executes within the safety gate's limits (``--safety FILE`` or ``--profile week1..week4``,
  else the design's defaults).  What needs approval waits in the approval queue of the safety state
  database: ``zeroops approvals list/approve/deny`` vote, and the approved action runs through the same
  choke point in this loop.

The control plane is wired by :func:`control.compose.compose`, the same function the twin's scenario
runner uses.  Every decision lands in the hash-chained audit trail, always, and in the JSON-lines
decision record; both, the journal and the safety state live in one absolute state directory
(``--state-dir``, default :func:`control.statedir.state_dir`), where ``zeroops audit verify`` and
``zeroops approvals`` look too.  The controller acts only within its managed scope
(:mod:`adapters.scope`); everyday errors are one line ``zeroops live: error: ...`` with an exit code
of :data:`EXIT_CODES`.

Level-triggered reconciliation: on start the controller rebuilds its view from
the cloud (servers carry ``zeroops_service`` and ``zeroops_request_id``
metadata) and from its SQLite journal of in-flight actions, and finishes or
abandons half-done work (:meth:`adapters.openstack.OpenStackAdapter.reconcile`).
``zeroops live status`` prints what it sees and what it would do.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from adapters.base import AdapterError, Notify, Observation
from adapters.journal import Journal, JournalLocked
from adapters.live_config import ConfigError, LiveConfig, load_config
from adapters.scope import Scope, ScopeGate, scope_of_config
from control.compose import ObserveOnlyGate
from control.runtime import ActionRecord, Engine, Gate, Runtime, TeeLog, Verdict, WallClock
from control.safety import SafetyConfig
from control.statedir import DECISIONS_FILE, JOURNAL_FILE, in_state_dir, state_dir
from engines.registry import EngineSetSpec

__all__ = ["EXIT_CODES", "MODES", "JsonlDecisionLog", "LiveController", "LiveError", "LivePaths", "LiveRuntime",
           "ObserveOnlyGate", "TeeLog", "add_live_parser", "engine_set_spec", "live_main", "live_paths", "load_safety",
           "make_engines", "make_gate", "read_decisions", "status_report"]

MODES = ("observe", "act")

EXIT_OK, EXIT_INTERNAL, EXIT_CONFIG, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_PROMETHEUS, EXIT_LOCKED = 0, 1, 2, 3, 4, 5, 6
#: exit code -> meaning (docs/live-mode.md has the same table)
EXIT_CODES = {
    EXIT_OK: "stopped normally (--duration, SIGTERM, ^C)",
    EXIT_INTERNAL: "unexpected error (a bug: ZEROOPS_DEBUG=1 shows the traceback)",
    EXIT_CONFIG: "invalid config, engine settings or safety limits, or the config does not match the cloud",
    EXIT_AUTH: "authentication failed (wrong password or credential: HTTP 401/403)",
    EXIT_UNREACHABLE: "a cloud endpoint (Keystone, Nova, ...) cannot be reached or keeps failing",
    EXIT_PROMETHEUS: "Prometheus never answered within prometheus_wait after the start",
    EXIT_LOCKED: "another controller holds this state directory (journal or audit trail), or acts for the same scope "
                 "on this host (without --ha-backend)",
}


class LiveError(Exception):
    """An everyday error: printed as one line ``zeroops live: error: ...``; ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: object, limit: int = 400) -> str:
    """A message on one line (several lines joined with '; '), cut at ``limit`` characters."""
    out = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return out if len(out) <= limit else out[: limit - 1] + "…"


@dataclass(frozen=True)
class LivePaths:
    """Where one controller keeps its state (all absolute)."""

    state_dir: Path
    journal: Path
    decisions: Path
    audit: Path
    safety: Path


def live_paths(config: LiveConfig, directory: str | Path | None = None, *, journal: str | Path | None = None,
               decisions: str | Path | None = None, audit: str | Path | None = None,
               safety_db: str | Path | None = None) -> LivePaths:
    """The state paths: a path given here (a command-line flag) is taken as typed, made absolute; a relative path
    of the config lies in the state directory; otherwise the defaults there (``$ZEROOPS_AUDIT_DB`` and
    ``$ZEROOPS_SAFETY_DB`` still win over the state directory for the audit trail and the safety state)."""
    d = state_dir(directory)

    def pick(flag: str | Path | None, configured: str | None, env: str | None, default: str) -> Path:
        if flag:
            return Path(flag).expanduser().absolute()
        if configured:
            return in_state_dir(configured, default, d)
        if env and os.environ.get(env):
            return Path(os.environ[env]).expanduser().absolute()
        return d / default

    return LivePaths(
        d,
        pick(journal, config.journal, None, JOURNAL_FILE),
        pick(decisions, config.decisions, None, DECISIONS_FILE),
        pick(audit, config.audit, None if directory else "ZEROOPS_AUDIT_DB", "audit.db"),
        pick(safety_db, None, None if directory else "ZEROOPS_SAFETY_DB", "safety.db"),
    )


def last_seq(path: str | Path) -> int:
    """The highest ``seq`` in a decisions file (reads its tail only), 0 for none."""
    p = Path(path)
    if not p.exists():
        return 0
    with p.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read().decode("utf-8", "replace").splitlines()
    best = 0
    for line in tail:
        try:
            best = max(best, int(json.loads(line).get("seq", 0)))
        except (ValueError, AttributeError, TypeError):
            continue
    return best


class JsonlDecisionLog:
    """Appends every decision (proposed, denied, executed, failed) as one JSON line, flushed at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.records: list[ActionRecord] = []

    def record(self, rec: ActionRecord) -> None:
        row = rec.as_row() | {"attempts": attempts_of(rec), "wall_time": time.time()}
        with self._lock:
            self.records.append(rec)
            self._f.write(json.dumps(row, default=str, sort_keys=True) + "\n")
            self._f.flush()

    def close(self) -> None:
        self._f.close()


def attempts_of(rec: ActionRecord) -> int:
    """API attempts behind a decision: from the result, or from the trail an adapter error carried."""
    if rec.result is None:
        return 0
    m = re.search(r"\[attempts: (\d+);", rec.result.detail)
    return max(rec.result.attempts, int(m.group(1))) if m else rec.result.attempts


def read_decisions(path: str | Path) -> list[dict[str, Any]]:
    """The rows a :class:`JsonlDecisionLog` wrote (an unfinished last line is skipped)."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class LiveRuntime(Runtime):
    """The twin's runtime, tolerant of a cloud that fails to answer: a failed observation skips one step."""

    def __init__(self, *args: Any, on_error: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_error = on_error or (lambda msg: print(msg, file=sys.stderr))
        self.errors = 0

    def step(self, engine: Engine, now: float) -> list[ActionRecord]:
        try:
            return super().step(engine, now)
        except AdapterError as e:
            self.errors += 1
            self.on_error(f"[live] {engine.name}: step skipped: {type(e).__name__}: {str(e)[:300]}")
            return []


def engine_set_spec(config: LiveConfig, source: str = "<config>") -> EngineSetSpec:
    """The live config's engine set, resolved in :mod:`engines.registry`; errors name the file and the field."""
    from engines.registry import REGISTRY, RegistryError

    ref: Any = config.engines
    if isinstance(ref, list):  # a bare list of engines: an unnamed set
        ref = {"name": "live", "engines": [_engine_entry(e) for e in ref]}
    try:
        return _with_floor(REGISTRY.resolve(ref), config)
    except RegistryError as e:
        lines = []
        for line in str(e).splitlines():
            m = re.match(r"^(\w+(?:\.\w+)*): (.*)$", line)
            if m is None:
                lines.append(f"{source}: engines: {line}")
                continue
            loc = m.group(1) if not isinstance(config.engines, list) else m.group(1).removeprefix("engines")
            where = re.sub(r"\.(\d+)", r"[\1]", f"engines.{loc}".replace("engines..", "engines."))
            lines.append(f"{source}: {where.replace('engines.[', 'engines[')}: {m.group(2)}")
        raise ConfigError("\n".join(lines)) from None


def _with_floor(spec: EngineSetSpec, config: LiveConfig) -> EngineSetSpec:
    """The set plus ``min_floor_keeper`` (``keep_min_servers``, unless it has one): a service below ``min_servers``
    is filled from zero and without metrics; measured services with servers stay the scaler's when it has one."""
    from engines.registry import EngineUse

    full = spec.resolved()
    uses = list(full.engines or ())
    names = [u.engine for u in uses]
    if not config.keep_min_servers or "min_floor_keeper" in names:
        return full
    floor = EngineUse(engine="min_floor_keeper", only_when_unmeasured="reactive_scaler" in names)
    return EngineSetSpec(name=f"{full.name}-floor", engines=(*uses, floor), handles_alerting=full.handles_alerting,
                         description=f"{full.description or full.name}, with the min_servers floor kept")


def _engine_entry(e: Any) -> Any:
    """``{kind: K, params: {...}}`` (the older form) as ``{engine: K, ...}``; anything else as it is."""
    if isinstance(e, dict) and "kind" in e and "engine" not in e and set(e) <= {"kind", "params"}:
        return {"engine": e["kind"], **(e.get("params") or {})}
    return e


def make_engines(config: LiveConfig, source: str = "<config>") -> list[Engine]:
    """Fresh engines of the live config's engine set (see :func:`engine_set_spec`)."""
    return engine_set_spec(config, source).build()


def make_gate(mode: str, safety: str | None = None, state: str | None = None) -> Gate:
    """A bare gate (tests, ``status``): observe → :class:`ObserveOnlyGate`; act → the safety gate with the limits of
    ``safety`` (a YAML file) or the design's defaults, sharing the state database ``state``.  The live controller
    itself wires its gate with the approval queue through :func:`control.compose.compose`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if mode == "observe":
        return ObserveOnlyGate()
    from control.compose import default_state_path
    from control.safety.gate import SafetyGate

    return SafetyGate.from_files(safety, state or default_state_path())


def load_safety(safety: str | None = None, profile_name: str | None = None) -> SafetyConfig:
    """The act-mode limits: a YAML file (it may name its own ``profile:``), else a profile, else the design's."""
    from control.safety import load_safety_config, profile

    if safety:
        return load_safety_config(safety)
    if profile_name:
        try:
            return profile(profile_name)
        except KeyError as e:
            raise ValueError(str(e).strip("'\"")) from None
    return SafetyConfig()


class LiveController:
    """Adapter + engine set + safety gate + approval queue + audit trail + journal, on a wall clock.

    Wired by :func:`control.compose.compose`: in act mode an action that needs approval is queued in the
    safety state database (``state``, default ``$ZEROOPS_SAFETY_DB`` or ``safety.db`` in the state directory),
    people vote with ``zeroops approvals``, and the approval executor runs it through the same choke point.
    The audit trail is always written (``audit``, else the config's, else the state directory's ``audit.db``);
    the choke point's gate is fronted by a :class:`~adapters.scope.ScopeGate`: an action on a server outside
    the managed scope is denied (rule ``out-of-scope``) and audited.  Decision sequence numbers continue
    those of the decisions file.
    """

    def __init__(
        self,
        adapter: Any,
        config: LiveConfig,
        mode: str = "observe",
        *,
        engines: Sequence[Engine] | None = None,
        gate: Gate | None = None,
        decisions: str | Path | None = None,
        audit: str | Path | None = None,
        safety: SafetyConfig | str | None = None,
        state: str | None = None,
        executor_cadence: float = 5.0,
        clock: WallClock | None = None,
        out: TextIO | None = None,
        state_dir: str | Path | None = None,
        prometheus_wait: float | None = None,
    ) -> None:
        from control.compose import HumanApprovals, compose

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.adapter = adapter
        self.config = config
        self.mode = mode
        self.out = out or sys.stdout
        self.paths = live_paths(config, state_dir, decisions=decisions, audit=audit, safety_db=state)
        state = state if state is not None else (str(self.paths.safety) if state_dir is not None else None)
        self.prometheus_wait = config.prometheus_wait if prometheus_wait is None else prometheus_wait
        self.degraded = False  # Prometheus not answering: the engines run without metrics
        self._refused_shown: set[tuple[str, str, str]] = set()
        self.exit_code = EXIT_OK
        self.log = JsonlDecisionLog(self.paths.decisions)
        self.audit_path = self.paths.audit
        try:
            self.plane = compose(
                adapter, list(engines) if engines is not None else engine_set_spec(config),
                safety=safety, approvals=HumanApprovals(state, executor_cadence=executor_cadence),
                audit_path=self.audit_path, audit_batch_size=1,  # committed before the next action starts
                logs=[self.log], gate=gate, observe_only=mode == "observe" and gate is None,
                runtime_factory=lambda a, e, c: LiveRuntime(a, e, c, on_error=self._say))
        except BaseException:
            self.log.close()  # the audit trail is held elsewhere, or the config is bad: nothing stays open
            raise
        self.engines = self.plane.engines
        self.gate = self.plane.gate
        self.choke = self.plane.choke
        self.scope = self._scope()
        own = isinstance(getattr(adapter, "scope", None), Scope)  # the OpenStack adapter: checks and filters itself
        lookup = getattr(adapter, "_lookup", None) or adapter.server
        members = None if own else (lambda svc: adapter.servers(service=svc))
        self.choke.gate = ScopeGate(self.choke.gate, self.scope, lookup, members)  # out of scope: denied, audited
        self.choke._seq = itertools.count(last_seq(self.paths.decisions) + 1)  # seq continues across runs
        self.runtime = self.plane.runtime
        self.audit = self.plane.audit
        self.queue = self.plane.queue
        self.clock = clock or WallClock()
        self.plane.attach(self.clock, on_error=self._say)
        self.choke.listeners.append(self._print_record)

    def _scope(self) -> Scope:
        scope = getattr(self.adapter, "scope", None)
        if isinstance(scope, Scope):
            return scope
        base = scope_of_config(self.config)  # an adapter without a scope of its own (the fake, in tests)
        return base if self.config.services else Scope(base.name, base.projects, base.managed_by, None)

    def _say(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    def _print_record(self, rec: ActionRecord) -> None:
        r = rec.result
        if rec.verdict.rule == "out-of-scope":  # every one is audited; the console says it once per target
            key = (rec.engine, rec.kind, rec.target)
            if key in self._refused_shown:
                return
            self._refused_shown.add(key)
            self._say(f"[live] denied   {rec.engine}: {rec.kind} {rec.target} — out of scope: "
                      f"{rec.verdict.detail.get('reason', '')} (said once; each attempt is in the audit trail)")
            return
        queued = " (queued: zeroops approvals list)" if rec.outcome == "proposed" and self.queue is not None else ""
        self._say(
            f"[live] {rec.outcome:8s} {rec.engine}: {rec.kind} {rec.target} — {rec.action.reason}{queued}"
            + (f" → {r.detail[:200]} (attempts {r.attempts})" if r else "")
        )

    def lock(self) -> None:
        """In act mode, hold the journal so that a second acting controller refuses to start."""
        if self.mode == "act" and getattr(self.adapter, "journal", None) is not None:
            self.adapter.journal.lock()

    def reconcile(self) -> list[str]:
        """Finish or abandon what a previous controller left in flight (only reports in observe mode); each
        adoption, abandonment or completion is a decision of the audit trail (engine ``reconcile``)."""
        reconcile = getattr(self.adapter, "reconcile", None)
        act = self.mode == "act"
        notes = reconcile(act=act) if reconcile is not None else []
        now = self.clock.now()
        for n in notes:
            self._say(f"[live] reconcile: {n}")
            target = n.split(" (", 1)[0].split(" ", 1)[-1] if " (" in n else "journal"
            note = Notify(component=target[:200], severity="info", message=n, reason=f"reconcile: {n}"[:500])
            self.choke.note(now, "reconcile", note, Verdict("allow" if act else "approval", rule="reconcile"),
                            "executed" if act else "proposed")
        return notes

    def check_prometheus(self) -> None:
        """At start: a Prometheus that does not answer puts the controller in degraded mode (announced); a watch
        every few seconds leaves it when Prometheus answers, or stops the controller (exit code 5) when it has
        not answered within ``prometheus_wait`` seconds."""
        prom = getattr(self.adapter, "prometheus", None)
        if prom is None or prom.ready():
            return
        self.degraded = True
        url = prom.config.url
        start = self.clock.now()
        self._say(f"[live] DEGRADED: Prometheus at {url} does not answer; the engines run without metrics; "
                  f"stopping with exit code {EXIT_PROMETHEUS} unless it answers within {self.prometheus_wait:.0f} s")

        def watch(now: float) -> None:
            if not self.degraded:
                return
            if prom.ready():
                self.degraded = False
                self._say(f"[live] Prometheus at {url} answers: leaving degraded mode")
            elif now - start >= self.prometheus_wait:
                print(f"zeroops live: error: Prometheus at {url} did not answer within {self.prometheus_wait:g} s "
                      "of the start (prometheus_wait / --prometheus-wait); stopping", file=sys.stderr, flush=True)
                self.exit_code = EXIT_PROMETHEUS
                self.stop()

        self.clock.every(min(5.0, max(0.05, self.prometheus_wait / 4)), watch, offset=0.0)

    def run(self, duration: float | None = None) -> None:
        """Reconcile, then run the engines until ``duration`` seconds pass or :meth:`stop`."""
        self.lock()
        self.reconcile()
        self.check_prometheus()
        self.clock.run(until=None if duration is None else self.clock.now() + duration)

    def stop(self) -> None:
        self.clock.stop()

    def close(self) -> None:
        self.plane.close()  # the decision record, the audit trail and the safety state


# ------------------------------------------------------------------ status
def status_report(
    adapter: Any, config: LiveConfig, engines: Sequence[Engine] | None = None, decisions: str | Path | None = None,
    state_dir: str | Path | None = None,
) -> str:
    """What the controller sees in the cloud and what its engines would do now (nothing is executed)."""
    lines: list[str] = []
    paths = live_paths(config, state_dir, decisions=decisions)
    d = adapter.describe()
    lines.append(
        f"cloud {d.get('cloud') or '(OS_* environment)'}: project {d.get('project')} region {d.get('region')} "
        f"at {d.get('auth_url')}; prometheus {d.get('prometheus') or '(none)'}"
    )
    prom = getattr(adapter, "prometheus", None)
    if prom is not None and not prom.ready():
        lines.append(f"  PROMETHEUS DOES NOT ANSWER at {prom.config.url}: a controller would start degraded "
                     f"(no metrics) and stop after prometheus_wait ({config.prometheus_wait:.0f} s)")
    lines.append(f"state directory {paths.state_dir}: audit {paths.audit}, journal {paths.journal}")
    for service, verbs in (d.get("service_actions") or {}).items():  # what the service-level verbs really do here
        lines.append(f"  {service}: " + "; ".join(f"{k}: {v}" for k, v in verbs.items()))
    for p in adapter.validate():
        lines.append(f"  CONFIG PROBLEM: {p}")
    scope = getattr(adapter, "scope", None)
    if isinstance(scope, Scope):
        servers = list(adapter.servers())
        mine = [s for s in servers if scope.manages(s)]
        lines.append(
            f"scope {scope.name}: projects {', '.join(sorted(scope.projects)) or '(any)'}; managed by "
            + (", ".join(f"{k}={v}" for k, v in sorted(scope.managed_by.items())) if scope.managed_by
               else f"zeroops_managed={scope.name} or zeroops_service of a configured service")
            + f"; {len(mine)} managed server(s), {len(servers) - len(mine)} read-only")
    now = adapter.now()
    obs = Observation(adapter, now)
    try:
        cpu = obs.latest("cpu_util")
    except AdapterError as e:
        cpu = {}
        lines.append(f"  metrics unavailable: {type(e).__name__}: {str(e)[:200]}")
    lines.append("services:")
    for s in obs.services.values():
        u = cpu.get(s.name, math.nan)
        lines.append(
            f"  {s.name:20s} active {s.active:3d} building {s.building:3d} failed {s.failed:3d} "
            f"(min {s.min_servers}, max {s.max_servers}) version {s.version} cpu_util "
            + ("n/a" if math.isnan(u) else f"{u:.2f}")
        )
    if not obs.services:
        lines.append("  (none configured: add services to the live config)")
    lines.append("hypervisors:")
    for h in obs.hypervisors:
        lines.append(
            f"  {h.name:20s} {h.state:4s} zone {h.zone}: vcpus {h.vcpus_used}/{h.vcpus} "
            f"ram {h.memory_mb_used}/{h.memory_mb} MB disk {h.disk_gb_used}/{h.disk_gb} GB"
        )
    lines.append("quotas:")
    for q in obs.quotas.values():
        lines.append(
            f"  {q.project:20s} instances {q.instances_used}/{q.instances} cores {q.cores_used}/{q.cores} "
            f"ram {q.ram_mb_used}/{q.ram_mb} MB"
        )
    if adapter.journal is not None:
        open_ = adapter.journal.open_entries()
        lines.append(f"in flight (journal {adapter.journal.path}): {len(open_)}")
        for e in open_:
            lines.append(f"  {e.kind} {e.target} request {e.request_id[:8]} since {time.ctime(e.started_at)}")
        for n in adapter.reconcile(act=False):
            lines.append(f"  would reconcile: {n}")
    recent = read_decisions(paths.decisions)[-5:]
    if recent:
        lines.append(f"last decisions ({paths.decisions}):")
        for r in recent:
            lines.append(
                f"  {time.strftime('%H:%M:%S', time.localtime(r.get('wall_time', 0)))} {r['outcome']:8s} "
                f"{r['engine']}: {r['kind']} {r['target']} — {r['reason']}"
            )
    lines.append("would do now:")
    engines = list(engines) if engines is not None else make_engines(config)
    any_action = False
    lookup = getattr(adapter, "_lookup", None) or adapter.server
    for eng in engines:
        try:
            actions = list(eng.step(now, obs) or ())
        except AdapterError as e:
            lines.append(f"  {eng.name}: cannot decide: {type(e).__name__}: {str(e)[:200]}")
            continue
        for a in actions:
            any_action = True
            why = scope.refusal(a, lookup) if isinstance(scope, Scope) else None
            lines.append(f"  {eng.name}: {a.kind} {a.target()} {a.params()} — {a.reason}"
                         + (f" [REFUSED, out of scope: {why}]" if why else ""))
    if not any_action:
        lines.append("  nothing")
    obs.close()  # like a runtime step: the engines keep no reading handle
    return "\n".join(lines)


# --------------------------------------------------------------------- CLI
def add_live_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``zeroops live [run|status]`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "live",
        help="run the engines against a real OpenStack cloud (observe first, then act)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    p.add_argument(
        "live_command",
        nargs="?",
        choices=("run", "status"),
        default="run",
        metavar="{run,status}",
        help="run the controller (default) or show what it sees and would do",
    )
    p.add_argument("--cloud", help="clouds.yaml entry (default: the config's 'cloud', else the OS_* environment)")
    p.add_argument(
        "--mode", choices=MODES, default="observe", help="observe: propose only (default); act: execute through the gate"
    )
    p.add_argument("--config", help="live config YAML (services, scope, prometheus queries, retries)")
    p.add_argument("--safety", help="safety limits YAML for act mode (default: --profile, else the design's limits)")
    p.add_argument("--profile", help="rollout profile for act mode when no --safety file: week1 (every change waits "
                   "for approval) .. week4, observe, full, production")
    p.add_argument("--state-dir", help="absolute home of the audit trail, journal, safety state and decisions "
                   "(default: $ZEROOPS_STATE_DIR, else /var/lib/zeroops for root, else $XDG_STATE_HOME/zeroops or "
                   "~/.local/state/zeroops)")
    p.add_argument("--safety-db", help="safety state shared with `zeroops automation|override|limits|approvals` "
                   "(default: $ZEROOPS_SAFETY_DB, else safety.db in the state directory)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until SIGTERM/^C)")
    p.add_argument("--journal", help="SQLite journal of in-flight actions (default: the config's, else "
                   "live-journal.sqlite in the state directory)")
    p.add_argument("--decisions", help="JSON-lines decision record (default: the config's, else live-decisions.jsonl "
                   "in the state directory)")
    p.add_argument("--audit", help="hash-chained SQLite audit trail of every decision, always written (default: the "
                   "config's 'audit', else $ZEROOPS_AUDIT_DB, else audit.db in the state directory, where "
                   "`zeroops audit verify` looks)")
    p.add_argument("--prometheus", help="Prometheus base URL (overrides the config)")
    p.add_argument("--prometheus-wait", type=float, help="seconds Prometheus may stay unreachable after the start "
                   "(degraded mode) before the controller stops with exit code 5 (default: the config's "
                   "prometheus_wait, 120)")
    from zeroops.live_prod import add_production_arguments

    add_production_arguments(p)  # --ha-backend, --ha-lease, --webhook-port, --metrics-port (docs/live-mode.md 8-10)
    p.set_defaults(fn=live_main, func=live_main)
    return p


def _where(conn: Any, cloud: str | None) -> str:
    """Where a connection points, for an error message (no secrets): cloud, auth URL, user, project."""
    cfg = getattr(conn, "config", None)
    auth = dict(getattr(cfg, "config", {}).get("auth", {}) or {}) if cfg is not None else {}
    parts = [f"cloud {getattr(cfg, 'name', None) or cloud or '(OS_* environment)'}"]
    if auth.get("auth_url"):
        parts.append(f"Keystone {auth['auth_url']}")
    if auth.get("username"):
        parts.append(f"user {auth['username']}")
    if auth.get("project_name") or auth.get("project_id"):
        parts.append(f"project {auth.get('project_name') or auth.get('project_id')}")
    return ", ".join(parts)


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def connect_error(e: BaseException, where: str) -> LiveError:
    """An exception of openstacksdk/keystoneauth while connecting, as a one-line :class:`LiveError`."""
    chain = _chain(e)
    names = {type(x).__name__ for x in chain}
    status = next((getattr(x, "http_status", None) or getattr(x, "status_code", None) for x in chain
                   if getattr(x, "http_status", None) or getattr(x, "status_code", None)), None)
    last = one_line(chain[0], 240)
    if status in (401, 403) or (names & {"Unauthorized", "Forbidden", "AuthorizationFailure"} and status != 404):
        what = "authentication failed" if status != 403 and "Forbidden" not in names else "access denied"
        return LiveError(f"{what} ({where}): HTTP {status or 401}: check the password or application credential "
                         f"in clouds.yaml / OS_*", EXIT_AUTH)
    unreachable = {"ConnectFailure", "ConnectTimeout", "ConnectionError", "ConnectionRefusedError", "DiscoveryFailure",
                   "EndpointNotFound", "SSLError", "UnknownConnectionError", "TimeoutError", "TransientAPIError",
                   "ReadTimeout", "NewConnectionError", "MaxRetryError"}
    if names & unreachable:
        hit = next(x for x in chain if type(x).__name__ in unreachable)  # the cause, not the SDK's wrapper
        return LiveError(f"cannot reach the cloud ({where}): {type(hit).__name__}: {_network_reason(hit)}",
                         EXIT_UNREACHABLE)
    if names & {"ConfigException", "OpenStackConfigException", "MissingRequiredOptions", "MissingAuthPlugin",
                "NoMatchingPlugin"}:
        return LiveError(f"cannot use the cloud configuration ({where}): {last}", EXIT_CONFIG)
    if isinstance(e, AdapterError):
        return LiveError(f"the cloud fails ({where}): {type(e).__name__}: {last}", EXIT_UNREACHABLE)
    return LiveError(f"cannot connect ({where}): {type(e).__name__}: {last}", EXIT_UNREACHABLE)


_REASONS = (("connection refused", "connection refused"), ("timed out", "timed out"),
            ("name or service not known", "unknown host"), ("no route to host", "no route to host"),
            ("temporary failure in name resolution", "unknown host"), ("certificate verify failed", "TLS certificate "
             "not trusted"), ("network is unreachable", "network unreachable"))


def _network_reason(e: BaseException) -> str:
    """urllib3's nested retry text, as what happened and to which URL."""
    text = str(e)
    url = re.search(r"https?://[^\s:'\"]+(?::\d+)?[^\s'\":]*", text)
    low = text.lower()
    why = next((short for needle, short in _REASONS if needle in low), None)
    if why is None:
        return one_line(text, 240)
    return f"{why}" + (f" at {url.group(0)}" if url else "")


def _quiet_sdk_logs() -> None:
    """keystoneauth and openstacksdk warn through logging (version discovery, ...): not ours to print, unless
    ``ZEROOPS_DEBUG`` asks for everything."""
    import logging

    if not os.environ.get("ZEROOPS_DEBUG"):
        for name in ("keystoneauth", "openstack", "urllib3"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _build(args: argparse.Namespace) -> tuple[Any, LiveConfig, LivePaths]:
    """Config, engines (built once, so a bad setting fails here), adapter, authenticated; errors as LiveError."""
    from adapters.openstack import OpenStackAdapter
    from adapters.prometheus import PrometheusConfig

    source = args.config or "<config>"
    try:
        config = load_config(args.config)
        engine_set_spec(config, source).build()  # an unknown engine or a bad setting fails before connecting
    except (ConfigError, ValueError, TypeError) as e:
        raise LiveError(f"invalid config: {one_line(e)}", EXIT_CONFIG) from None
    if args.prometheus:
        base = config.prometheus or PrometheusConfig()
        config = config.model_copy(update={"prometheus": base.model_copy(update={"url": args.prometheus})})
    paths = live_paths(config, getattr(args, "state_dir", None), journal=args.journal, decisions=args.decisions,
                       audit=args.audit, safety_db=args.safety_db)
    cloud = args.cloud or config.cloud
    try:
        adapter = OpenStackAdapter.connect(args.cloud, config, journal=Journal(paths.journal))
    except Exception as e:  # openstacksdk config errors: class and message, never credentials
        raise connect_error(e, _where(None, cloud)) from None
    try:
        adapter.conn.authorize()  # a wrong password or a dead Keystone shows here, not mid-run
    except Exception as e:
        raise connect_error(e, _where(adapter.conn, cloud)) from None
    return adapter, config, paths


def live_main(args: argparse.Namespace) -> int:
    """Handler of ``zeroops live``; returns the exit code (:data:`EXIT_CODES`).  Everyday errors are one line
    ``zeroops live: error: ...``; an unexpected one too, with its traceback under ``ZEROOPS_DEBUG=1``."""
    _quiet_sdk_logs()
    try:
        return _live(args)
    except LiveError as e:
        print(f"zeroops live: error: {one_line(e, 1000)}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if os.environ.get("ZEROOPS_DEBUG"):
            raise
        print(f"zeroops live: error: unexpected {type(e).__name__}: {one_line(e)} (ZEROOPS_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _live(args: argparse.Namespace) -> int:
    from control.audit import AuditError

    try:  # the limits first: a bad --safety file or --profile fails before connecting
        safety = load_safety(args.safety, args.profile) if args.mode == "act" else None
    except ValueError as e:
        raise LiveError(f"invalid safety limits: {one_line(e)}", EXIT_CONFIG) from None
    adapter, config, paths = _build(args)
    where = _where(adapter.conn, args.cloud or config.cloud)
    if args.live_command == "status":
        try:
            print(status_report(adapter, config, decisions=paths.decisions, state_dir=paths.state_dir))
        except AdapterError as e:
            raise connect_error(e, where) from None
        except (ConfigError, ValueError, TypeError) as e:
            raise LiveError(f"invalid config: {one_line(e)}", EXIT_CONFIG) from None
        return EXIT_OK
    try:
        problems = adapter.validate()
    except AdapterError as e:
        raise connect_error(e, where) from None
    if problems:
        raise LiveError(f"the config does not match the cloud ({where}): " + "; ".join(problems), EXIT_CONFIG)
    if args.mode == "act":
        try:
            adapter.journal.lock()  # before the audit trail opens: a second acting controller stops here
        except JournalLocked:
            raise LiveError(f"another zeroops live controller is acting with the journal {paths.journal} "
                            f"(state directory {paths.state_dir}); stop it first", EXIT_LOCKED) from None
    try:
        ctl = LiveController(adapter, config, args.mode, decisions=paths.decisions, audit=paths.audit, safety=safety,
                             state=str(paths.safety), state_dir=paths.state_dir,
                             prometheus_wait=getattr(args, "prometheus_wait", None))
    except AuditError as e:
        if "another process" in str(e):
            raise LiveError(f"another zeroops live controller holds the audit trail {paths.audit} (state directory "
                            f"{paths.state_dir}); stop it first", EXIT_LOCKED) from None
        raise LiveError(f"audit trail: {one_line(e)}", EXIT_CONFIG) from None
    except (ConfigError, ValueError) as e:
        raise LiveError(f"invalid config: {one_line(e)}", EXIT_CONFIG) from None
    d = adapter.describe()
    ctl._say(
        f"[live] mode {args.mode}: cloud {d['cloud'] or '(env)'} project {d['project']}; scope {ctl.scope.name}; "
        f"engines {ctl.plane.name} {[e.name for e in ctl.engines]}; state {paths.state_dir}; "
        f"decisions -> {ctl.log.path}; audit -> {ctl.audit_path}"
        + (f"; approvals: zeroops approvals list --state {ctl.plane.kit.store.path}" if ctl.plane.kit else "")
    )

    from zeroops.live_prod import run_production, start_production

    try:
        prod = start_production(ctl, args)  # sinks, webhook, leader election or the scope lock, /metrics
    except BaseException:
        ctl.close()
        raise

    def _stop(signum: int, frame: Any) -> None:
        ctl._say(f"[live] signal {signum}: stopping after the current step")
        ctl.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        run_production(ctl, prod, args.duration)  # under the scope's lease with --ha-backend, else ctl.run
    except JournalLocked:
        raise LiveError(f"another zeroops live controller is acting with the journal {paths.journal}; stop it first",
                        EXIT_LOCKED) from None
    finally:
        prod.close()
        ctl.close()
    return ctl.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zeroops.live ...`` without the main CLI."""
    parser = argparse.ArgumentParser(prog="zeroops")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_live_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
