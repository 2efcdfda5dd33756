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
runner uses.  Every decision lands in the hash-chained audit trail (default ``$ZEROOPS_AUDIT_DB`` or
``.zeroops/audit.db``, where ``zeroops audit verify`` looks) and in the JSON-lines decision record.

Level-triggered reconciliation: on start the controller rebuilds its view from
the cloud (servers carry ``zeroops_service`` and ``zeroops_request_id``
metadata) and from its SQLite journal of in-flight actions, and finishes or
abandons half-done work (:meth:`adapters.openstack.OpenStackAdapter.reconcile`).
``zeroops live status`` prints what it sees and what it would do.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from adapters.base import AdapterError, Observation
from adapters.journal import Journal, JournalLocked
from adapters.live_config import ConfigError, LiveConfig, load_config
from control.compose import ObserveOnlyGate
from control.runtime import ActionRecord, Engine, Gate, Runtime, TeeLog, WallClock
from control.safety import SafetyConfig
from engines.registry import EngineSetSpec

__all__ = ["MODES", "JsonlDecisionLog", "LiveController", "LiveRuntime", "ObserveOnlyGate", "TeeLog", "add_live_parser",
           "engine_set_spec", "live_main", "load_safety", "make_engines", "make_gate", "read_decisions",
           "status_report"]

MODES = ("observe", "act")


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
        return REGISTRY.resolve(ref)
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
    from control.safety.gate import SafetyGate

    return SafetyGate.from_files(safety, state)


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
    safety state database (``state``, default ``$ZEROOPS_SAFETY_DB`` or ``.zeroops/safety.db``), people vote
    with ``zeroops approvals``, and the approval executor runs it through the same choke point.
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
    ) -> None:
        from control.compose import HumanApprovals, compose, default_audit_path

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.adapter = adapter
        self.config = config
        self.mode = mode
        self.out = out or sys.stdout
        self.log = JsonlDecisionLog(decisions or config.decisions)
        self.audit_path = Path(audit or config.audit or default_audit_path())
        self.plane = compose(
            adapter, list(engines) if engines is not None else engine_set_spec(config),
            safety=safety, approvals=HumanApprovals(state, executor_cadence=executor_cadence),
            audit_path=self.audit_path, audit_batch_size=1,  # committed before the next action starts
            logs=[self.log], gate=gate, observe_only=mode == "observe" and gate is None,
            runtime_factory=lambda a, e, c: LiveRuntime(a, e, c, on_error=self._say))
        self.engines = self.plane.engines
        self.gate = self.plane.gate
        self.choke = self.plane.choke
        self.runtime = self.plane.runtime
        self.audit = self.plane.audit
        self.queue = self.plane.queue
        self.clock = clock or WallClock()
        self.plane.attach(self.clock, on_error=self._say)
        self.choke.listeners.append(self._print_record)

    def _say(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    def _print_record(self, rec: ActionRecord) -> None:
        r = rec.result
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
        """Finish or abandon what a previous controller left in flight (only reports in observe mode)."""
        reconcile = getattr(self.adapter, "reconcile", None)
        notes = reconcile(act=self.mode == "act") if reconcile is not None else []
        for n in notes:
            self._say(f"[live] reconcile: {n}")
        return notes

    def run(self, duration: float | None = None) -> None:
        """Reconcile, then run the engines until ``duration`` seconds pass or :meth:`stop`."""
        self.lock()
        self.reconcile()
        self.clock.run(until=None if duration is None else self.clock.now() + duration)

    def stop(self) -> None:
        self.clock.stop()

    def close(self) -> None:
        self.plane.close()  # the decision record, the audit trail and the safety state


# ------------------------------------------------------------------ status
def status_report(
    adapter: Any, config: LiveConfig, engines: Sequence[Engine] | None = None, decisions: str | Path | None = None
) -> str:
    """What the controller sees in the cloud and what its engines would do now (nothing is executed)."""
    lines: list[str] = []
    d = adapter.describe()
    lines.append(
        f"cloud {d.get('cloud') or '(OS_* environment)'}: project {d.get('project')} region {d.get('region')} "
        f"at {d.get('auth_url')}; prometheus {d.get('prometheus') or '(none)'}"
    )
    for p in adapter.validate():
        lines.append(f"  CONFIG PROBLEM: {p}")
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
    recent = read_decisions(decisions or config.decisions)[-5:]
    if recent:
        lines.append(f"last decisions ({decisions or config.decisions}):")
        for r in recent:
            lines.append(
                f"  {time.strftime('%H:%M:%S', time.localtime(r.get('wall_time', 0)))} {r['outcome']:8s} "
                f"{r['engine']}: {r['kind']} {r['target']} — {r['reason']}"
            )
    lines.append("would do now:")
    engines = list(engines) if engines is not None else make_engines(config)
    any_action = False
    for eng in engines:
        try:
            actions = list(eng.step(now, obs) or ())
        except AdapterError as e:
            lines.append(f"  {eng.name}: cannot decide: {type(e).__name__}: {str(e)[:200]}")
            continue
        for a in actions:
            any_action = True
            lines.append(f"  {eng.name}: {a.kind} {a.target()} {a.params()} — {a.reason}")
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
    p.add_argument("--config", help="live config YAML (services, prometheus queries, retries)")
    p.add_argument("--safety", help="safety limits YAML for act mode (default: --profile, else the design's limits)")
    p.add_argument("--profile", help="rollout profile for act mode when no --safety file: week1 (every change waits "
                   "for approval) .. week4, observe, full, production")
    p.add_argument("--safety-db", help="safety state shared with `zeroops automation|override|limits` "
                   "(default: $ZEROOPS_SAFETY_DB or .zeroops/safety.db)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until SIGTERM/^C)")
    p.add_argument("--journal", help="SQLite journal of in-flight actions (default: from the config)")
    p.add_argument("--decisions", help="JSON-lines decision record (default: from the config)")
    p.add_argument("--audit", help="hash-chained SQLite audit trail of every decision (default: the config's 'audit', "
                   "else $ZEROOPS_AUDIT_DB or .zeroops/audit.db, where `zeroops audit verify` looks)")
    p.add_argument("--prometheus", help="Prometheus base URL (overrides the config)")
    p.set_defaults(fn=live_main, func=live_main)
    return p


def _build(args: argparse.Namespace) -> tuple[Any, LiveConfig]:
    from adapters.openstack import OpenStackAdapter
    from adapters.prometheus import PrometheusConfig

    config = load_config(args.config)
    engine_set_spec(config, args.config or "<config>")  # an unknown engine or setting fails before connecting
    if args.prometheus:
        base = config.prometheus or PrometheusConfig()
        config = config.model_copy(update={"prometheus": base.model_copy(update={"url": args.prometheus})})
    journal = Journal(args.journal or config.journal)
    adapter = OpenStackAdapter.connect(args.cloud, config, journal=journal)
    return adapter, config


def live_main(args: argparse.Namespace) -> int:
    """Handler of ``zeroops live``; returns the exit code."""
    try:
        adapter, config = _build(args)
    except ConfigError as e:
        print(f"zeroops live: invalid config:\n{e}", file=sys.stderr)
        return 2
    except Exception as e:  # openstacksdk config/auth errors: show the class and message, never credentials
        print(f"zeroops live: cannot connect: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    if args.live_command == "status":
        print(status_report(adapter, config, decisions=args.decisions))
        return 0
    problems = adapter.validate()
    if problems:
        print("zeroops live: the config does not match the cloud:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    try:
        safety = load_safety(args.safety, args.profile) if args.mode == "act" else None
        ctl = LiveController(adapter, config, args.mode, decisions=args.decisions, audit=args.audit, safety=safety,
                             state=args.safety_db)
    except (ConfigError, ValueError) as e:
        print(f"zeroops live: invalid config:\n{e}", file=sys.stderr)
        return 2
    d = adapter.describe()
    ctl._say(
        f"[live] mode {args.mode}: cloud {d['cloud'] or '(env)'} project {d['project']}; "
        f"engines {ctl.plane.name} {[e.name for e in ctl.engines]}; decisions -> {ctl.log.path}; "
        f"audit -> {ctl.audit_path}"
        + (f"; approvals: zeroops approvals list --state {ctl.plane.kit.store.path}" if ctl.plane.kit else "")
    )

    def _stop(signum: int, frame: Any) -> None:
        ctl._say(f"[live] signal {signum}: stopping after the current step")
        ctl.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        ctl.run(args.duration)
    except JournalLocked as e:
        print(f"zeroops live: {e}", file=sys.stderr)
        return 2
    finally:
        ctl.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zeroops.live ...`` without the main CLI."""
    parser = argparse.ArgumentParser(prog="zeroops")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_live_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
