"""``zeroops decisions | audit | approvals | override | automation | limits``: the safety and audit commands.

Exit codes: 0 ok, 1 ``audit verify`` found tampering, 2 bad input (file,
field or id named in the message).  Paths default to ``$ZEROOPS_AUDIT_DB`` /
``$ZEROOPS_SAFETY_DB``, else ``audit.db`` / ``safety.db`` in the state directory (``control.statedir``).
The CLI is not an engine: it stamps votes and overrides with wall time.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_TAMPERED, EXIT_INPUT = 0, 1, 2


def _audit_db(a: argparse.Namespace) -> str:
    from control.compose import default_audit_path

    return a.db or default_audit_path()


def _state_db(a: argparse.Namespace) -> str:
    from control.compose import default_state_path

    return a.state or default_state_path()


MAX_PAUSE = 365 * 86400.0  # --for: a pause longer than a year is a typo, and past year 9999 no date can show it
_NAME = re.compile(r"^[\w][\w .@'-]{0,63}$")


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    if t > 1e8:  # POSIX seconds (live); smaller values are simulated seconds
        try:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):  # stored before --for was bounded
            return f"t={t:.6g}s (beyond any calendar)"
    return f"t={t:.1f}s"


def _person(name: str, flag: str = "--by") -> str:
    """An operator name as given, trimmed: letters, digits, spaces and . @ ' - _, at most 64 characters."""
    clean = " ".join(name.split())
    if not _NAME.match(clean):
        raise ValueError(f"{flag}: {name!r} is not an operator name (letters, digits, spaces and . @ ' - _, "
                         f"1 to 64 characters, starting with a letter or digit)")
    return clean


def _same_person(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _since(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since: expected seconds or an ISO time like 2026-01-31T12:00Z, got {text!r}") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _duration(text: str) -> float:
    from control.safety.config import parse_duration

    try:
        secs = parse_duration(text)
    except ValueError as e:
        raise ValueError(f"--for: {e}") from None
    if not secs > 0:
        raise ValueError(f"--for: must be > 0, got {text!r}")
    if secs > MAX_PAUSE:
        raise ValueError(f"--for: {text!r} is longer than the longest pause allowed, 365d; use a shorter one "
                         f"and renew it")
    return secs


def _state(a: argparse.Namespace, must_exist: bool = False) -> Any:
    from control.safety.store import SafetyStore

    path = _state_db(a)
    if must_exist and not Path(path).is_file():
        raise ValueError(f"{path}: no such safety state database (use --state PATH)")
    return SafetyStore(path)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) or "-"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) or "-"
    return str(v)


# ------------------------------------------------------------------ decisions
def cmd_decisions_list(a: argparse.Namespace) -> int:
    from control.audit import AuditReader

    since = _since(a.since) if a.since is not None else None
    entries = AuditReader(_audit_db(a)).list(since=since, engine=a.engine, limit=a.limit, outcome=a.outcome)
    if a.json:
        print(json.dumps([{"id": e.seq, **e.body} for e in entries], indent=1))
        return EXIT_OK
    print(f"{'ID':>7}  {'WHEN':<20}  {'ENGINE':<16} {'ACTION':<20} {'TARGET':<18} {'VERDICT':<34} {'OUTCOME':<9} COST/H")
    for e in entries:
        b = e.body
        cost = b.get("proposed_cost_per_hour")
        verdict = f"{b['decision']}:{b.get('rule') or ''}"
        print(f"{e.seq:>7}  {_when(b['at']):<20}  {b['engine'][:16]:<16} {b['kind'][:20]:<20} "
              f"{str(b.get('target') or '')[:18]:<18} {verdict[:34]:<34} {b['outcome']:<9} "
              f"{'' if cost is None else f'{cost:+.2f}'}")
    print(f"{len(entries)} decision(s)")
    return EXIT_OK


def cmd_decisions_show(a: argparse.Namespace) -> int:
    from control.audit import AuditReader

    r = AuditReader(_audit_db(a))
    e = r.get(a.id)
    if e is None:
        raise ValueError(f"no decision {a.id} in {_audit_db(a)} (it holds {r.count()} records)")
    b = e.body
    if a.json:
        print(json.dumps({"id": e.seq, "hash": e.hash, "prev": e.prev, **b}, indent=1))
        return EXIT_OK
    act, v, res = b.get("action", {}), b.get("verdict", {}), b.get("result")
    detail = dict(v.get("detail") or {})
    approved = b.get("approved_by") or []
    evidence = dict(act.get("evidence") or {})
    impact = evidence.pop("expected_impact", None)  # engines put their expected impact in the evidence
    lines = [
        f"Decision {e.seq}  ({_when(b['at'])}, engine {b['engine']})",
        f"  action:        {b['kind']} {b.get('target') or ''}  {_fmt(act.get('params', {}))}",
        f"  incident:      {act.get('incident') or '-'}",
        f"  reason:        {act.get('reason') or '-'}",
        f"  confidence:    {_fmt(act.get('confidence'))}",
        f"  evidence:      {_fmt(evidence)}",
        f"  alternatives:  {_fmt(act.get('alternatives', []))}",
        f"  expected:      {'-' if impact is None else _fmt(impact)}",
        f"  verdict:       {v.get('decision')} by rule {v.get('rule') or '-'}"
        + (f", needs {v.get('approvers_needed')} approver(s)" if v.get("decision") == "approval" else ""),
        f"  figures:       {_fmt(detail)}",
        f"  approved by:   {_fmt(approved) if approved else '-'}",
        f"  outcome:       {b['outcome']}" + (f" ({b['error']})" if b.get("error") else ""),
    ]
    if res:
        lines.append(f"  result:        {'ok' if res['ok'] else 'FAILED'} {res.get('detail') or ''}"
                     + (f" servers: {_fmt(res['server_ids'])}" if res.get("server_ids") else ""))
    cost = b.get("cost_per_hour")
    proposed = b.get("proposed_cost_per_hour")
    lines.append("  cost impact:   " + (f"{cost:+.4g} per hour" if cost is not None else
                                        f"none executed (estimated {proposed:+.4g} per hour)" if proposed is not None
                                        else "-"))
    if b["outcome"] == "proposed":
        later = [x for x in r.list(since=b["at"]) if x.body.get("verdict", {}).get("detail", {})
                 .get("proposed_audit_id") == e.seq]
        follow = ", ".join(f"decision {x.seq} ({x.body['outcome']})" for x in later)
        lines.append(f"  followed by:   {follow or '-'}")
    lines.append(f"  chain:         hash {e.hash[:16]}…  prev {e.prev[:16]}…  (zeroops audit verify checks it)")
    print("\n".join(lines))
    return EXIT_OK


def cmd_audit_verify(a: argparse.Namespace) -> int:
    from control.audit import verify

    db = _audit_db(a)
    rep = verify(db, a.public_key, checkpoints=a.checkpoints, signed=not a.chain_only, anchors=a.anchor or ())
    if rep.ok:
        print(f"ok: {rep.records} records, chain intact, head {rep.head}")
        if not rep.signed:
            print("note: chain only; signed checkpoints NOT checked: a rewritten, truncated, wiped or swapped "
                  "trail passes this")
        if rep.signed:
            cover = f"all {rep.records} records" if not rep.unsigned else f"records 1..{rep.signed_seq}"
            print(f"signed: trail {rep.trail}, key {rep.key}: {rep.checkpoints} checkpoint(s) in "
                  f"{rep.checkpoint_log}; the last covers {cover}" + (", closed cleanly" if rep.closed else ""))
        if rep.unsigned:
            print(f"note: {rep.unsigned} records after the last signed checkpoint, verified by chain only (the "
                  "writer stopped before signing them, or is still writing)")
        for n in rep.notes:
            print(f"note: {n}")
        return EXIT_OK
    for p, f in zip(rep.problems, rep.files, strict=True):
        print(f"TAMPERED: {p}  [in {f}]")
    print(f"{len(rep.problems)} problem(s) in {rep.records} records of {db}"
          + (f" (checkpoint log {rep.checkpoint_log}, key {rep.key})" if rep.signed else ""), file=sys.stderr)
    return EXIT_TAMPERED


def cmd_audit_key(a: argparse.Namespace) -> int:
    from control.audit import AuditKey, public_key_path

    key = AuditKey.load(a.key)
    print(f"private key: {key.path} (keep it off the audit database's host or at least out of its reach)")
    print(f"public key:  {public_key_path(key.path)}  (verify with: zeroops audit verify --public-key FILE)")
    print(f"key id:      {key.id}")
    return EXIT_OK


# ------------------------------------------------------------------ approvals
def cmd_approvals_list(a: argparse.Namespace) -> int:
    from control.safety.approvals import ApprovalQueue

    q = ApprovalQueue(_state(a, must_exist=True))
    items = q.list(None if a.all else a.status)
    print(f"{'ID':>5}  {'CREATED':<20}  {'ENGINE':<14} {'ACTION':<18} {'TARGET':<16} {'RULE':<26} {'STATUS':<9} VOTES")
    for p in items:
        votes = f"{len(p.approvers)}/{p.needed}" + (f" denied by {', '.join(p.deniers)}" if p.deniers else "")
        print(f"{p.id:>5}  {_when(p.created_at):<20}  {p.engine[:14]:<14} {p.kind[:18]:<18} "
              f"{p.action.target()[:16]:<16} {p.verdict.rule[:26]:<26} {p.status:<9} {votes}")
    print(f"{len(items)} proposal(s)")
    return EXIT_OK


def _vote(decision: str) -> Callable[[argparse.Namespace], int]:
    def run(a: argparse.Namespace) -> int:
        from control.safety.approvals import ApprovalQueue

        q = ApprovalQueue(_state(a, must_exist=True))
        by = _person(a.by)
        before = q.get(a.id)
        if any(_same_person(by, x) for x in (*before.approvers, *before.deniers)):
            raise ValueError(f"--by: {by!r} has already voted on proposal {a.id} (names are compared "
                             f"case-insensitively)")
        p = q.vote(a.id, by, decision, time.time(), a.comment or "")  # type: ignore[arg-type]
        print(f"proposal {p.id}: {p.status} ({len(p.approvers)}/{p.needed} approvals"
              + (f"; denied by {', '.join(p.deniers)}" if p.deniers else "") + ")")
        return EXIT_OK
    return run


# ------------------------------------------------------------------ overrides
def cmd_override_enroll(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    ov = Overrides(_state(a))
    secret = ov.enroll(a.operator, time.time())
    print(f"operator {a.operator} enrolled. TOTP secret (shown once): {secret}")
    print(f"authenticator URI: {ov.provisioning_uri(a.operator, secret)}")
    return EXIT_OK


def cmd_override_start(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    p = Overrides(_state(a, must_exist=True)).emergency_override(
        time.time(), a.incident, a.operator, a.justification, a.code, _duration(a.for_))
    print(f"EMERGENCY OVERRIDE #{p.id} for incident {p.incident} by {p.operator}: all automation paused until "
          f"{_when(p.until)}; manual control restored")
    return EXIT_OK


def cmd_override_end(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    n = Overrides(_state(a, must_exist=True)).resume(time.time(), a.operator, a.code)
    print(f"ended {n} pause(s); automation resumes" if n else "nothing was paused")
    return EXIT_OK


def cmd_status(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    path = _state_db(a)
    if not Path(path).is_file():
        print(f"automation: running (no safety state at {path})")
        return EXIT_OK
    active = Overrides(_state(a)).active(time.time())
    if not active:
        print("automation: running")
    for p in active:
        what = f"emergency override, incident {p.incident}" if p.kind == "override" else "disabled"
        print(f"automation: PAUSED ({what}) by {p.operator or '-'} until {_when(p.until)}: {p.justification or ''}")
    return EXIT_OK


def cmd_automation_disable(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    p = Overrides(_state(a)).disable_automation(time.time(), _duration(a.for_), a.operator or "", a.reason or "")
    print(f"automation disabled until {_when(p.until)} (pause #{p.id})")
    return EXIT_OK


# --------------------------------------------------------------------- limits
def cmd_limits_check(a: argparse.Namespace) -> int:
    import yaml

    from control.safety.config import load_safety_config

    cfg = load_safety_config(a.file)
    print(f"ok: {a.file}")
    print(yaml.safe_dump(cfg.to_yaml_dict(), sort_keys=False).rstrip())
    return EXIT_OK


def cmd_limits_profile(a: argparse.Namespace) -> int:
    import yaml

    from control.safety.profiles import profile

    print(yaml.safe_dump(profile(a.name).to_yaml_dict(), sort_keys=False).rstrip())
    return EXIT_OK


def cmd_limits_propose(a: argparse.Namespace) -> int:
    from control.safety.config import load_safety_config
    from control.safety.override import Overrides

    by = _person(a.by)
    cfg = load_safety_config(a.file)
    cid = Overrides(_state(a)).propose_limits(time.time(), cfg, by, a.justification, needed=a.approvers)
    print(f"limit change #{cid} proposed by {by}; it applies after {max(2, a.approvers)} other operators approve "
          f"(zeroops limits approve {cid} --by NAME)")
    return EXIT_OK


def cmd_limits_approve(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    ov = Overrides(_state(a, must_exist=True))
    by = _person(a.by)
    before = ov.limit_change(a.id)
    # one person is one approver, however they spell their name: the proposer and each earlier approver
    if _same_person(by, before.proposed_by):
        raise ValueError(f"--by: {by!r} proposed limit change #{a.id}; the proposer cannot approve it "
                         f"(names are compared case-insensitively, spaces trimmed)")
    for x in before.approvers:
        if _same_person(by, x):
            raise ValueError(f"--by: {by!r} already approved limit change #{a.id} (as {x!r}); it needs "
                             f"{before.needed} distinct approvers")
    ch = ov.approve_limits(time.time(), a.id, by)
    print(f"limit change #{ch.id}: {ch.status} ({len(ch.approvers)}/{ch.needed} approvals: {', '.join(ch.approvers)})")
    return EXIT_OK


def cmd_limits_list(a: argparse.Namespace) -> int:
    from control.safety.override import Overrides

    for ch in Overrides(_state(a, must_exist=True)).limit_changes():
        print(f"#{ch.id}  {ch.status:<8} proposed by {ch.proposed_by:<12} approvals {len(ch.approvers)}/{ch.needed}"
              f" ({', '.join(ch.approvers) or '-'})")
    return EXIT_OK


# --------------------------------------------------------------------- wiring
def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every expected failure into one ``error:`` line and exit code 2, never a traceback."""

    def run(a: argparse.Namespace) -> int:
        from control.audit import AuditError
        from control.safety.approvals import ApprovalError
        from control.safety.config import SafetyConfigError
        from control.safety.override import OverrideError

        try:
            return fn(a)
        except BrokenPipeError:
            raise  # the reader went away (``| head``): zeroops.cli.main exits quietly
        except (AuditError, ApprovalError, OverrideError, SafetyConfigError, ValueError, KeyError, OSError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"error: {msg}", file=sys.stderr)
        except sqlite3.Error as e:
            print(f"error: database problem: {e}", file=sys.stderr)
        return EXIT_INPUT

    return run


def add_safety_parsers(sub: Any) -> None:
    """Add the safety and audit commands to the ``zeroops`` sub-parsers."""

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="audit database (default: $ZEROOPS_AUDIT_DB, else audit.db in the state "
                       "directory: $ZEROOPS_STATE_DIR, /var/lib/zeroops for root, ~/.local/state/zeroops)")

    def state(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state", help="safety state database (default: $ZEROOPS_SAFETY_DB, else safety.db in the "
                       "state directory, as for --db)")

    def leaf(parent: Any, name: str, fn: Callable[[argparse.Namespace], int], help_: str,
             *adders: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        for add in adders:
            add(p)
        p.set_defaults(fn=_guard(fn))
        return p

    d = sub.add_parser("decisions", help="review automated decisions (the audit trail)").add_subparsers(
        dest="decisions_cmd", metavar="{list,show}", required=True)
    p = leaf(d, "list", cmd_decisions_list, "list decisions, oldest first", db)
    p.add_argument("--since", help="only decisions at or after this time (seconds or ISO time)")
    p.add_argument("--engine", help="only this engine's decisions")
    p.add_argument("--outcome", choices=["executed", "failed", "denied", "proposed"])
    p.add_argument("--limit", type=int, help="only the last N")
    p.add_argument("--json", action="store_true", help="JSON output")
    p = leaf(d, "show", cmd_decisions_show, "show one decision: incident, confidence, evidence, alternatives "
             "considered, expected impact, verdict, approvers, result and cost impact", db)
    p.add_argument("id", type=int, help="decision id (see decisions list)")
    p.add_argument("--json", action="store_true", help="JSON output")

    au = sub.add_parser("audit", help="audit trail integrity").add_subparsers(dest="audit_cmd", metavar="{verify,key}",
                                                                               required=True)
    p = leaf(au, "verify", cmd_audit_verify, "check the hash chain against its signed checkpoints; exit 1 and "
             "name every edited, removed, reordered, rewritten or swapped record and its file", db)
    p.add_argument("--public-key", metavar="FILE", help="Ed25519 public key (PEM or hex) the checkpoints must verify "
                   "with (default: $ZEROOPS_AUDIT_PUBLIC_KEY, else the default key's .pub); the private key is "
                   "not needed")
    p.add_argument("--checkpoints", metavar="FILE", help="the signed checkpoint log (default: <db>.checkpoints)")
    p.add_argument("--anchor", metavar="FILE", action="append", help="checkpoint lines saved earlier where the "
                   "attacker cannot write (e.g. tail -n1 of the log); the trail must still hold what they sign, so "
                   "a rollback of the database and its log together is caught (repeatable)")
    p.add_argument("--chain-only", action="store_true", help="check the hash chain and columns only (trails made "
                   "before signed checkpoints); proves much less")
    p = leaf(au, "key", cmd_audit_key, "show (and on first use create) the audit signing key and its public half")
    p.add_argument("--key", metavar="FILE", help="private key file (default: $ZEROOPS_AUDIT_KEY or "
                   "~/.config/zeroops/audit-ed25519.key)")

    ap = sub.add_parser("approvals", help="the approval queue").add_subparsers(
        dest="approvals_cmd", metavar="{list,approve,deny}", required=True)
    p = leaf(ap, "list", cmd_approvals_list, "list proposals (pending by default)", state)
    p.add_argument("--status", default="pending",
                   choices=["pending", "approved", "denied", "executed", "failed", "expired"])
    p.add_argument("--all", action="store_true", help="every proposal")
    for name, decision in (("approve", "approve"), ("deny", "deny")):
        p = leaf(ap, name, _vote(decision), f"{name} a proposal", state)
        p.add_argument("id", type=int, help="proposal id")
        p.add_argument("--by", required=True, help="your operator name")
        p.add_argument("--comment", help="why")

    ov = sub.add_parser("override", help="emergency override (MFA)").add_subparsers(
        dest="override_cmd", metavar="{start,end,status,enroll}", required=True)
    p = leaf(ov, "start", cmd_override_start, "pause all automation for an incident (needs a TOTP code)", state)
    p.add_argument("--incident", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--justification", required=True)
    p.add_argument("--code", required=True, help="current TOTP code of the operator")
    p.add_argument("--for", dest="for_", default="30m", help="duration (default 30m)")
    p = leaf(ov, "end", cmd_override_end, "end every pause now (needs a TOTP code)", state)
    p.add_argument("--operator", required=True)
    p.add_argument("--code", required=True)
    leaf(ov, "status", cmd_status, "is automation paused?", state)
    p = leaf(ov, "enroll", cmd_override_enroll, "enroll an operator for MFA; prints the TOTP secret once", state)
    p.add_argument("--operator", required=True)

    am = sub.add_parser("automation", help="disable or inspect automation").add_subparsers(
        dest="automation_cmd", metavar="{disable,enable,status}", required=True)
    p = leaf(am, "disable", cmd_automation_disable, "pause automation for a while (no MFA needed)", state)
    p.add_argument("--for", dest="for_", required=True, help="duration, e.g. 30m, 2h")
    p.add_argument("--operator")
    p.add_argument("--reason")
    p = leaf(am, "enable", cmd_override_end, "end every pause now (needs a TOTP code)", state)
    p.add_argument("--operator", required=True)
    p.add_argument("--code", required=True)
    leaf(am, "status", cmd_status, "is automation paused?", state)

    li = sub.add_parser("limits", help="safety limits: check, profiles, multi-approved changes").add_subparsers(
        dest="limits_cmd", metavar="{check,profile,propose,approve,list}", required=True)
    p = leaf(li, "check", cmd_limits_check, "validate a safety configuration file and print it resolved")
    p.add_argument("file")
    p = leaf(li, "profile", cmd_limits_profile, "print a gradual-rollout profile (week1..week4)")
    p.add_argument("name")
    p = leaf(li, "propose", cmd_limits_propose, "propose new limits from a file (applies after multi-approval)",
             state)
    p.add_argument("file")
    p.add_argument("--by", required=True)
    p.add_argument("--justification", required=True)
    p.add_argument("--approvers", type=int, default=2, help="approvers needed besides the proposer (>= 2)")
    p = leaf(li, "approve", cmd_limits_approve, "approve a proposed limit change", state)
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True)
    leaf(li, "list", cmd_limits_list, "list limit changes", state)
