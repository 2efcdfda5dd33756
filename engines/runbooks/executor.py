"""The runbook library and executor: match an incident to runbooks, then run one, step by step.

API (the ops center's)::

    lib = RunbookLibrary.load(dirs)            # the built-in library, then $ZEROOPS_RUNBOOKS, then ``dirs``
    books = lib.match(ctx, obs)                # list[Runbook], best first; ``rb.why`` says why, ``rb.focus`` on what
    run = lib.start(books[0], ctx, now, obs)   # a RunbookRun (engines.ops.types)
    actions = run.step(now, obs)               # every tick; [] while waiting and once finished
    run.on_result(record)                      # each control.runtime.ActionRecord of the run's actions

A record is matched to the run's action by identity or, when the caller re-explained the action
(``dataclasses.replace`` of its reason, confidence, evidence or alternatives), by kind and params.

A run issues its steps in order, each step once (one action, or one per ``for_each`` item), and goes on
only when every action of the step has its result and the step's ``wait`` has passed: it never re-issues
an action still under way (a failed one is re-issued after its failure only if the step allows
``retries``). Then it verifies (``verifying``) against metrics read after the steps; verified is
``succeeded``. A denied action, a failed one (``on_failure: abort``), a verification that does not hold
within ``verify.within`` or the runbook's ``timeout`` passing make it roll back (``rolling_back``: the
rollback steps, each once, bounded in time) and then page (``escalated``, one ``Page`` action with who,
why and severity) — or end ``rolled_back`` when the runbook says ``escalate: {page: false}``. Every
state has a deadline, so a run always ends. Clock-agnostic: all times come from ``now`` and the records.
Every action carries ``incident=ctx.incident_id``, a reason, the focus candidate's score as confidence
and the evidence (runbook, step, why it matched, the for_each item).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters.base import Action, Observation, Page
from engines.ops.types import IncidentContext, RunStatus
from engines.runbooks import bindings as bnd
from engines.runbooks.loading import read_file
from engines.runbooks.matching import why_it_fits
from engines.runbooks.schema import WHEN, Runbook, RunbookError, Step
from engines.runbooks.templating import RenderError, build_action
from engines.runbooks.verify import OPS_FN, Checker

BUILTIN = Path(__file__).resolve().parent / "library"
ENV_VAR = "ZEROOPS_RUNBOOKS"
ROLLBACK_GRACE_S = 120.0  # the rollback steps' own deadline, beyond their waits
TERMINAL: frozenset[str] = frozenset({"succeeded", "rolled_back", "escalated"})


# ----------------------------------------------------------------------- runs
@dataclass
class _Sent:
    action: Action
    step: Step
    index: int
    attempts: int = 1
    approval: bool = False  # the gate asked for approval; its result comes later
    retry_at: float = 0.0  # when a failed action may be re-issued


@dataclass
class _Phase:
    """A sequence of steps: the next index, what awaits its result, what to re-issue, when to go on."""

    steps: Sequence[Step]
    i: int = 0
    sent: list[_Sent] = field(default_factory=list)
    retry: list[_Sent] = field(default_factory=list)
    wait_until: float = float("-inf")
    done_any: bool = False  # some action of this phase executed

    @property
    def finished(self) -> bool:
        return self.i >= len(self.steps) and not self.sent and not self.retry


class Run:
    """One runbook running for one incident (the :class:`engines.ops.types.RunbookRun` protocol)."""

    def __init__(self, book: Runbook, ctx: IncidentContext, now: float, obs: Observation) -> None:
        self.book = book
        self.runbook = book.name
        self.incident_id = ctx.incident_id
        self.status: RunStatus = "running"
        self.ctx = ctx
        self.started_at = now
        self.b = bnd.bind(ctx, obs, book.focus)
        cand = bnd.focus_candidate(ctx, book.focus)
        self.confidence = round(cand.score, 4) if cand is not None else 0.5
        self.phase = _Phase(book.steps)
        self.checker = Checker(self.b)
        self.verify_start: float | None = None
        self.last_check = ""  # the conditions that did not hold at the last verification
        self.rollback_deadline: float | None = None
        self.failure: str | None = None  # why the run failed (set by a result or a deadline)
        self.servers: list[str] = []  # servers the run acted on or created (server metrics verify them)
        self.failed_servers: list[str] = []  # servers whose action failed under on_failure: continue
        self.actions: list[Action] = []  # everything it issued, in order
        self.log: list[tuple[float, str]] = [(now, f"started {book.name} on {self.b.vars['component'] or '?'}"
                                                    f" ({'; '.join(book.why) or 'chosen by the caller'})")]
        self.verdicts: list[str] = []

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    # -------------------------------------------------------------- stepping
    def step(self, now: float, obs: Observation) -> list[Action]:
        if self.done:
            return []
        if self.status in ("running", "verifying") and self.failure is None and now - self.started_at > self.book.timeout:
            pending = f" (still failing: {self.last_check})" if self.status == "verifying" and self.last_check else ""
            self._fail(now, f"no verified fix within the runbook's timeout of {self.book.timeout:g} s{pending}")
        if self.failure is not None and self.status in ("running", "verifying"):
            return self._begin_rollback(now, obs)
        if self.status == "running":
            out = self._advance(now, obs)
            if self.failure is None and self.phase.finished and now >= self.phase.wait_until:
                if self.book.verify is None:
                    self._set(now, "succeeded", "steps done (the runbook has no verification)")
                else:
                    self.verify_start = now
                    self._set(now, "verifying", "steps done; verifying")
            return out
        if self.status == "verifying":
            self._verify(now, obs)
            if self.failure is not None:
                return self._begin_rollback(now, obs)
            return []
        if self.status == "rolling_back":
            out = self._advance(now, obs)
            if (self.phase.finished and now >= self.phase.wait_until) or now > (self.rollback_deadline or now):
                out += self._escalate(now)
            return out
        return []

    def on_result(self, rec: Any) -> None:
        """Track the choke point's record of one of this run's actions (others are ignored)."""
        sent = self._sent_for(rec.action)
        if sent is None:
            return
        outcome = rec.outcome
        if outcome == "proposed":
            sent.approval = True
            self.log.append((rec.at, f"{sent.action.kind} {sent.action.target()}: awaiting approval"))
            return
        self.phase.sent.remove(sent)
        self.verdicts.append(f"{sent.action.kind} {sent.action.target()}: {outcome}")
        if outcome == "executed":
            self.phase.done_any = True
            result = getattr(rec, "result", None)
            self.servers.extend(s for s in getattr(result, "server_ids", ()) if s not in self.servers)
            if not [s for s in self.phase.sent if s.index == sent.index]:
                self.phase.wait_until = max(self.phase.wait_until, rec.at + sent.step.wait)
            self.log.append((rec.at, f"{sent.action.kind} {sent.action.target()} executed"))
            return
        detail = getattr(getattr(rec, "result", None), "detail", "") or getattr(rec, "error", "") or ""
        rule = getattr(getattr(rec, "verdict", None), "rule", "")
        if outcome == "denied":
            why = f"{sent.action.kind} {sent.action.target()} denied by the safety gate ({rule or 'no rule given'})"
        else:
            why = f"{sent.action.kind} {sent.action.target()} failed: {detail}".rstrip(": ")
        if self.status == "rolling_back":
            self.log.append((rec.at, f"rollback: {why}"))
        elif outcome == "failed" and sent.attempts <= sent.step.retries:
            sent.retry_at = rec.at + sent.step.retry_delay
            self.phase.retry.append(sent)
            self.log.append((rec.at, f"{why}; will retry"))
        elif outcome == "failed" and sent.step.on_failure == "continue":
            self.log.append((rec.at, f"{why}; continuing (on_failure: continue)"))
            sid = sent.action.params().get("server_id")
            if sid and sid not in self.failed_servers:
                self.failed_servers.append(sid)
            if not [s for s in self.phase.sent if s.index == sent.index]:
                self.phase.wait_until = max(self.phase.wait_until, rec.at + sent.step.wait)
        else:
            self._fail(rec.at, why)

    def _sent_for(self, action: Action) -> _Sent | None:
        """The outstanding action a record is about: the very object, or one the caller re-explained
        (``dataclasses.replace`` of reason, confidence, evidence, alternatives: same kind and params)."""
        found = next((s for s in self.phase.sent if s.action is action), None)
        if found is None and action.incident in (None, self.incident_id):
            params = action.params()
            found = next((s for s in self.phase.sent
                          if s.action.kind == action.kind and s.action.params() == params), None)
        return found

    # --------------------------------------------------------------- phases
    def _advance(self, now: float, obs: Observation) -> list[Action]:
        ph = self.phase
        if ph.sent:
            return []  # results outstanding: never re-issue what is under way
        if ph.retry:
            if now < max(s.retry_at for s in ph.retry):
                return []
            out = []
            for s in ph.retry:
                a = replace(s.action)
                ph.sent.append(_Sent(a, s.step, s.index, s.attempts + 1))
                out.append(a)
            ph.retry = []
            self.actions.extend(out)
            return out
        while ph.i < len(ph.steps) and now >= ph.wait_until:
            step, idx = ph.steps[ph.i], ph.i
            ph.i += 1
            try:
                acts = self._actions_of(step, idx, len(ph.steps), obs)
            except RenderError as e:
                if self.status == "rolling_back":
                    self.log.append((now, f"rollback step {idx + 1} skipped: {e}"))
                    continue
                self._fail(now, f"step {idx + 1} ({step.action}): {e}")
                return []
            if not acts:
                self.log.append((now, f"step {idx + 1} ({step.action}): nothing to do"))
                continue
            # record-only actions (notify, page) change nothing: their records need not be waited for
            ph.sent = [_Sent(a, step, idx) for a in acts if a.changes_world]
            if not ph.sent:
                ph.wait_until = max(ph.wait_until, now + step.wait)
            self.actions.extend(acts)
            self.log.append((now, f"step {idx + 1}: {len(acts)} x {step.action}"))
            return acts
        return []

    def _actions_of(self, step: Step, idx: int, n: int, obs: Observation) -> list[Action]:
        items: list[dict[str, Any]] = [{}]
        if step.for_each == "failed_servers":
            items = bnd.server_items(obs, self.failed_servers)[: step.limit]
        elif step.for_each is not None:
            items = bnd.items(step.for_each, obs, self.b, step.by)
        if step.when is not None:
            items = [it for it in items if _holds(step.when, it)]
        items = items[: step.limit]
        out = []
        phase = "rollback" if self.status == "rolling_back" else "step"
        for item in items:
            env = {**self.b.vars, **item}
            ev = {"runbook": self.book.name, phase: idx + 1, "of": n, "component": self.b.vars["component"],
                  "fault_class": self.b.vars["fault_class"], "matched": list(self.book.why),
                  "item": {k: v for k, v in item.items() if isinstance(v, str | int | float)}}
            meta = {"reason": f"runbook {self.book.name} {phase} {idx + 1}/{n}: {step.name or step.action}"
                              + (f" {item.get('server') or item.get('service')}" if item else ""),
                    "confidence": self.confidence, "evidence": ev, "incident": self.incident_id}
            a = build_action(step, env, meta)
            if "server_id" in a.params() and a.params()["server_id"] not in self.servers:
                self.servers.append(a.params()["server_id"])
            out.append(a)
        return out

    def _verify(self, now: float, obs: Observation) -> None:
        assert self.book.verify is not None and self.verify_start is not None
        results = [self.checker.check(c, now, self.verify_start, obs, self.servers) for c in self.book.verify.conditions]
        self.last_check = "; ".join(d for ok, d in results if not ok)
        if all(ok for ok, _ in results):
            self._set(now, "succeeded", "verified: " + "; ".join(d for _, d in results))
        elif now - self.verify_start > self.book.verify.within:
            self._fail(now, f"verification did not hold within {self.book.verify.within:g} s: "
                            + "; ".join(d for ok, d in results if not ok))

    def _begin_rollback(self, now: float, obs: Observation) -> list[Action]:
        # roll back what may have changed the world: executed actions, or ones whose result never came
        # (a proposal still awaiting approval changed nothing)
        if self.book.rollback and (self.phase.done_any or any(not s.approval for s in self.phase.sent)):
            self.phase = _Phase(self.book.rollback)
            self.rollback_deadline = now + ROLLBACK_GRACE_S + sum(s.wait for s in self.book.rollback)
            self._set(now, "rolling_back", f"rolling back: {self.failure}")
            out = self._advance(now, obs)
            if self.phase.finished:
                out += self._escalate(now)
            return out
        return self._escalate(now)

    def _escalate(self, now: float) -> list[Action]:
        esc = self.book.escalate
        why = f"runbook {self.book.name} could not fix {self.b.vars['component'] or 'the incident'}: {self.failure}"
        if self.status == "rolling_back":
            why += "; rolled back"
        if not esc.page:
            self._set(now, "rolled_back", why + " (no page: escalate.page is false)")
            return []
        sev = esc.severity or self.ctx.severity
        page = Page(who=esc.who, why=why, incident_id=self.incident_id, severity=sev,
                    components=tuple(self.ctx.components), incident=self.incident_id, reason=why,
                    confidence=self.confidence, evidence={"runbook": self.book.name, "failure": self.failure,
                                                          "verdicts": list(self.verdicts[-10:])})
        self.actions.append(page)
        self._set(now, "escalated", f"paged {esc.who} ({sev})")
        return [page]

    def _fail(self, at: float, why: str) -> None:
        if self.failure is None:
            self.failure = why
            self.log.append((at, f"failed: {why}"))

    def _set(self, now: float, status: RunStatus, note: str) -> None:
        self.status = status
        self.log.append((now, f"{status}: {note}"))


def _holds(when: str, item: Mapping[str, Any]) -> bool:
    """A step's ``when`` ('VAR OP NUMBER') on one for_each item."""
    m = WHEN.match(when)
    if m is None or not isinstance(item.get(m.group(1)), int | float):
        return False
    return bool(OPS_FN[m.group(2)](float(item[m.group(1)]), float(m.group(3))))


# -------------------------------------------------------------------- library
def default_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The built-in library, then each folder of ``$ZEROOPS_RUNBOOKS`` (os.pathsep-separated), then ``extra``."""
    env = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return [BUILTIN, *env, *(Path(p) for p in extra)]


def read_paths(paths: Iterable[str | Path]) -> list[Runbook]:
    """Every runbook in these files and folders (``*.yaml``, ``*.yml``); all problems in one RunbookError."""
    out: list[Runbook] = []
    errors: list[str] = []
    for p in map(Path, paths):
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
        if p.is_dir() and not files:
            errors.append(f"{p}: no runbook files (*.yaml) in the folder")
        if not p.exists():
            errors.append(f"{p}: no such file or folder")
            continue
        seen: dict[str, str] = {}
        for f in files:
            try:
                books = read_file(f)
            except RunbookError as e:
                errors.append(str(e))
                continue
            for rb in books:
                if rb.name in seen:
                    errors.append(f"{rb.source}: name: {rb.name!r} is already used by {seen[rb.name]} "
                                  f"(names must be unique within a folder)")
                seen[rb.name] = rb.source
                out.append(rb)
    if errors:
        raise RunbookError("\n".join(errors))
    return out


class RunbookLibrary:
    """Runbooks by name; a later source's runbook replaces an earlier one of the same name."""

    def __init__(self, runbooks: Iterable[Runbook]) -> None:
        self.books: dict[str, Runbook] = {}
        for rb in runbooks:
            self.books[rb.name] = rb

    @classmethod
    def load(cls, dirs: Iterable[str | Path] = (), *, builtin: bool = True) -> RunbookLibrary:
        """The built-in library (unless ``builtin=False``), ``$ZEROOPS_RUNBOOKS``, then ``dirs`` (the
        ``runbook_dirs`` setting)."""
        paths = default_dirs(dirs)
        return cls(read_paths(paths if builtin else paths[1:]))

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.books.values())

    def __len__(self) -> int:
        return len(self.books)

    def get(self, name: str) -> Runbook:
        try:
            return self.books[name]
        except KeyError:
            raise RunbookError(f"no runbook {name!r}; known: {', '.join(sorted(self.books))}") from None

    def match(self, ctx: IncidentContext, obs: Observation) -> list[Runbook]:
        """The runbooks that fit the incident, best first; each carries ``why`` and its ``focus`` component.

        Candidates are tried in their rank order (up to three): a runbook matching the top candidate
        ranks before one matching the second. Among one candidate's matches, the more specific (more
        conditions) and then the higher ``priority`` first. A runbook whose params need a variable the
        incident does not bind (a ``{server}`` when no server is known) does not match.
        """
        focuses: list[str | None] = [c.component for c in ctx.candidates[:3]] or [None]
        ranked: list[tuple[tuple[Any, ...], Runbook]] = []
        seen: set[str] = set()
        for rank, focus in enumerate(focuses):
            b = bnd.bind(ctx, obs, focus)
            for rb in self.books.values():
                if rb.name in seen:
                    continue
                why = why_it_fits(rb, ctx, obs, b, focus)
                if why is None:
                    continue
                seen.add(rb.name)
                spec = (1 if rb.fault_classes else 0) + (rb.match.size() if rb.match else 0)
                ranked.append(((rank, -spec, -rb.priority, rb.name), rb.with_match(why, focus)))
        return [rb for _, rb in sorted(ranked, key=lambda x: x[0])]

    def start(self, runbook: Runbook | str, ctx: IncidentContext, now: float, obs: Observation) -> Run:
        """Begin running ``runbook`` (a matched copy, a library runbook or its name) for ``ctx``."""
        rb = self.get(runbook) if isinstance(runbook, str) else runbook
        return Run(rb, ctx, now, obs)
