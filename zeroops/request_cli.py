"""``zeroops request``: self-service requests from the command line (docs/self-service.md).

* ``submit KIND --project P --param k=v ...`` — to a running ``zeroops serve`` (``--server URL``: a scenario run's
  inbox or the live controller's) or straight into a live controller's journal (``--live CONFIG``);
* ``list`` / ``show ID`` — the requests, and one request's decision with the rule that decided (from the server,
  or from an audit trail: ``--live CONFIG`` or ``--audit FILE``);
* ``approve ID`` / ``deny ID`` — as the token's principal (``--server``; needs the approver role);
* ``report --scenario FILE`` — run a scenario and print the measured approval rate and decision latency beside
  the design's claims (92 % approved, < 10 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from engines.selfservice.decide import KINDS

EXIT_OK, EXIT_INPUT, EXIT_SERVER = 0, 2, 4
CLAIM_APPROVAL, CLAIM_LATENCY_S = 0.92, 10.0


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE (e.g. count=2, first_server='{{\"service\": \"api\"}}')")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _client(a: argparse.Namespace) -> Any:
    from zeroops.serve.client import Client

    return Client(a.server, a.token)


def _live_paths(a: argparse.Namespace) -> Any:
    from adapters.live_config import load_config
    from zeroops.live import live_paths

    return live_paths(load_config(a.live), a.state_dir)


def cmd_submit(a: argparse.Namespace) -> int:
    params = _params(a.param or [])
    if a.server:
        body = {"kind": a.kind, "project": a.project, "params": params} | ({"requester": a.requester} if a.requester else {})
        out = _client(a).call("POST", "/api/selfservice/requests", body)
        rid = out["id"]
    elif a.live:
        from adapters.journal import Journal

        j = Journal(_live_paths(a).journal)
        try:
            rid = j.submit_request(a.project, a.kind, params, a.requester or "cli", time.time())
        finally:
            j.close()
    else:
        raise ValueError("give --server URL (a running zeroops serve) or --live CONFIG")
    print(rid)
    return EXIT_OK


def _rows(a: argparse.Namespace) -> list[dict[str, Any]]:
    if a.server:
        return list(_client(a).call("GET", "/api/selfservice/requests", query={"status": a.status}))
    if a.live:
        from adapters.journal import Journal

        j = Journal(_live_paths(a).journal)
        try:
            reqs = j.requests()
        finally:
            j.close()
        return [{"id": r.id, "project": r.project, "requester": r.requester, "kind": r.kind, "params": dict(r.params),
                 "submitted_at": r.submitted_at, "status": r.status, "decision": None}
                for r in reqs if a.status is None or r.status == a.status]
    raise ValueError("give --server URL or --live CONFIG")


def cmd_list(a: argparse.Namespace) -> int:
    rows = _rows(a)
    if a.json:
        print(json.dumps(rows, indent=1, default=str))
        return EXIT_OK
    print(f"{'ID':18} {'KIND':16} {'PROJECT':12} {'STATUS':9} {'VERDICT':9} RULE")
    for r in rows:
        d = r.get("decision") or {}
        print(f"{r['id']:18} {r['kind']:16} {r['project']:12} {r['status']:9} {d.get('verdict', '-'):9} "
              f"{d.get('rule', '-')}")
    return EXIT_OK


def audit_trail_of(path: str | Path, rid: str) -> list[dict[str, Any]]:
    """Audit records about one request: actions tagged with it, answers to it, and API calls on it."""
    from control.audit import AuditReader

    out = []
    for e in AuditReader(path).list():
        b = e.body
        ev = (b.get("action") or {}).get("evidence") or {}
        if ev.get("request") == rid or b.get("target") == rid:
            out.append({"seq": e.seq, "at": b.get("at"), "engine": b.get("engine"), "kind": b.get("kind"),
                        "outcome": b.get("outcome"), "gate_rule": b.get("rule"), "policy_rule": ev.get("rule"),
                        "verdict": ev.get("verdict"), "cost_per_month": ev.get("cost_per_month"),
                        "reason": (b.get("action") or {}).get("reason")})
    return out


def cmd_show(a: argparse.Namespace) -> int:
    if a.server:
        out = _client(a).call("GET", f"/api/selfservice/requests/{a.id}")
    else:
        path = a.audit or (_live_paths(a).audit if a.live else None)
        if path is None:
            raise ValueError("give --server URL, --live CONFIG or --audit FILE")
        trail = audit_trail_of(path, a.id)
        if not trail:
            print(f"no audit record about request {a.id!r} in {path}", file=sys.stderr)
            return EXIT_INPUT
        first = next((t for t in trail if t["policy_rule"]), trail[0])
        out = {"id": a.id, "verdict": first["verdict"], "rule": first["policy_rule"], "decided_at": first["at"],
               "cost_per_month": first["cost_per_month"], "audit": trail}
    if a.json:
        print(json.dumps(out, indent=1, default=str))
        return EXIT_OK
    d = out.get("decision", out) or {}
    print(f"request {a.id}: {out.get('kind', '')} {out.get('project', '')} status {out.get('status', '?')}")
    print(f"  verdict {d.get('verdict')}  rule {d.get('rule')}  est. cost/month {d.get('cost_per_month')}")
    if d.get("latency_s") is not None:
        print(f"  decided {d['latency_s']:.1f} s after submission; phase {d.get('phase')}")
    for t in out.get("audit", []):
        print(f"  #{t['seq']} {t['kind']:18} {t['outcome']:9} gate:{t['gate_rule']}  {t['reason'] or ''}")
    return EXIT_OK


def cmd_answer(a: argparse.Namespace) -> int:
    out = _client(a).call("POST", f"/api/selfservice/requests/{a.id}/{a.answer}", {"note": a.note or ""})
    print(json.dumps(out))
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    """Run a scenario with a set and print the self-service figures beside the design's claims."""
    from scenarios.loader import load_scenario
    from scenarios.request_scoring import REQUEST_METRICS
    from scenarios.runner import run_scenario

    scn = load_scenario(a.scenario)
    name = a.engines or next((e for e in scn.engines if e != "static"), "static")
    seeds = a.seed or [scn.seed]
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        r = run_scenario(scn, name, seed=seed)
        m = {k: r.score.metrics.get(k) for k in REQUEST_METRICS}
        m |= {"seed": seed, "engines": name, "wall_s": round(time.perf_counter() - t0, 1),
              "budget_overruns": r.score.metrics.get("budget_overruns")}
        rows.append(m)
    if a.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    for m in rows:
        rate, p95 = m["request_auto_approval_rate"], m["request_decision_p95_s"]
        met_rate = "n/a" if rate is None else ("met" if rate >= CLAIM_APPROVAL else "missed")
        met_lat = "n/a" if p95 is None else ("met" if m["request_decision_max_s"] < CLAIM_LATENCY_S else "missed")
        print(f"{scn.name} seed {m['seed']} ({m['engines']}): {m['requests']} requests")
        print(f"  approved without a person: {_pct(rate)} (claim 92 %: {met_rate}); approved in all: "
              f"{_pct(m['request_approval_rate'])}; refused by policy: {m['requests_auto_denied']}; answered by a "
              f"person: {m['requests_human_answered']}; still open: {m['requests_open']}")
        print(f"  decision latency p50 {_s(m['request_decision_p50_s'])}, p95 {_s(p95)}, max "
              f"{_s(m['request_decision_max_s'])} (claim < 10 s: {met_lat}); answered p95 "
              f"{_s(m['request_answer_p95_s'])}")
        print(f"  hard limits broken: {m['requests_over_hard_limit']} requests, {m['quotas_over_hard_limit']} quotas; "
              f"budget overruns: {m['budget_overruns']}")
    return EXIT_OK


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def _run(fn: Any) -> Any:
    def wrapped(a: argparse.Namespace) -> int:
        from zeroops.serve.client import ClientError

        try:
            return int(fn(a))
        except ClientError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_SERVER
        except (ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INPUT

    return wrapped


def add_request_parser(sub: Any) -> None:
    p = sub.add_parser("request", help="self-service requests: submit, list, show the decision, approve, deny",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rs = p.add_subparsers(dest="request_cmd", required=True)

    def target(q: argparse.ArgumentParser, audit: bool = False) -> None:
        q.add_argument("--server", help="a running zeroops serve, http(s)://HOST:PORT")
        q.add_argument("--token", help="bearer token (default $ZEROOPS_TOKEN)")
        q.add_argument("--live", metavar="CONFIG", help="a live config: its journal (and audit trail)")
        q.add_argument("--state-dir", help="the live controller's state directory")
        if audit:
            q.add_argument("--audit", metavar="FILE", help="an audit trail (SQLite) to read the decision from")
        q.add_argument("--json", action="store_true")

    s = rs.add_parser("submit", help="file a request")
    s.add_argument("kind", choices=KINDS)
    s.add_argument("--project", required=True)
    s.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="repeatable: service, flavor, image, count, cpus, memory_gb, storage_gb, server, instances, "
                        "cores, ram_mb, budget, alert_route, first_server (JSON)")
    s.add_argument("--requester")
    target(s)
    s.set_defaults(fn=_run(cmd_submit))
    ls = rs.add_parser("list", help="list requests with their decisions")
    ls.add_argument("--status", choices=("open", "approved", "denied"))
    target(ls)
    ls.set_defaults(fn=_run(cmd_list))
    sh = rs.add_parser("show", help="one request: the decision and the rule that decided")
    sh.add_argument("id")
    target(sh, audit=True)
    sh.set_defaults(fn=_run(cmd_show))
    for answer in ("approve", "deny"):
        q = rs.add_parser(answer, help=f"{answer} a request routed to people (approver role)")
        q.add_argument("id")
        q.add_argument("--note")
        q.add_argument("--server", required=True)
        q.add_argument("--token")
        q.set_defaults(fn=_run(cmd_answer), answer=answer)
    r = rs.add_parser("report", help="run a scenario and print the approval rate and decision latency")
    r.add_argument("--scenario", required=True)
    r.add_argument("--engines", help="engine set (default: the scenario's first non-static set)")
    r.add_argument("--seed", type=int, action="append", help="repeatable")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=_run(cmd_report))
