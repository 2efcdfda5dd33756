"""CLI client mode: ``zeroops decisions|approvals|override|limits ... --server URL [--token T]`` against a running
``zeroops serve`` instead of the local database files.

The token comes from ``--token`` or ``$ZEROOPS_TOKEN``; votes and overrides are cast as the token's principal.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

TOKEN_ENV = "ZEROOPS_TOKEN"
EXIT_OK, EXIT_INPUT, EXIT_SERVER = 0, 2, 4


class ClientError(Exception):
    """The server refused or could not be reached; the message says why (never the token)."""


class Client:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        u = urllib.parse.urlsplit(server)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ClientError(f"--server: expected http(s)://HOST:PORT, got {server!r}")
        self.base = server.rstrip("/")
        self.token = token or os.environ.get(TOKEN_ENV)
        if not self.token:
            raise ClientError(f"--server needs a token: --token T or ${TOKEN_ENV} (zeroops serve token mint)")
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=os.environ.get("ZEROOPS_CA_FILE")) if u.scheme == "https" else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, Any] | None = None) -> Any:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.base + path + (f"?{urllib.parse.urlencode(q)}" if q else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ctx) as r:  # noqa: S310 - http(s) only
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("detail")
            except (ValueError, AttributeError):
                detail = e.reason
            raise ClientError(f"{self.base}: HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ClientError(f"{self.base}: cannot reach the server: {getattr(e, 'reason', e)}") from None


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str, int]]) -> str:
    head = "  ".join(h.ljust(w) for h, _, w in cols)
    lines = [head] + ["  ".join(str(r.get(k) if r.get(k) is not None else "-")[:w].ljust(w) for _, k, w in cols)
                      for r in rows]
    return "\n".join(lines)


def decisions_list(c: Client, a: argparse.Namespace) -> int:
    since = None
    if a.since is not None:
        from zeroops.safety_cli import _since

        since = _since(a.since)
    rows = c.call("GET", "/api/zeroops/operations/decisions", query={
        "limit": a.limit or 100, "engine": a.engine, "outcome": a.outcome, "since": since})
    if a.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    print(_table(rows, [("ID", "id", 7), ("AT", "at", 14), ("ENGINE", "engine", 18), ("ACTION", "kind", 18),
                        ("TARGET", "target", 18), ("VERDICT", "decision", 9), ("RULE", "rule", 22),
                        ("OUTCOME", "outcome", 9)]))
    print(f"{len(rows)} decision(s)")
    return EXIT_OK


def decisions_show(c: Client, a: argparse.Namespace) -> int:
    print(json.dumps(c.call("GET", f"/api/zeroops/audit/decisions/{int(a.id)}"), indent=1))
    return EXIT_OK


def approvals_list(c: Client, a: argparse.Namespace) -> int:
    rows = c.call("GET", "/api/zeroops/approvals", query={"status": "all" if a.all else a.status})
    for r in rows:
        r["votes"] = f"{len(r['approvers'])}/{r['needed']}" + (f" denied by {', '.join(r['deniers'])}"
                                                                if r["deniers"] else "")
    print(_table(rows, [("ID", "id", 5), ("CREATED", "created_at", 14), ("ENGINE", "engine", 16),
                        ("ACTION", "kind", 18), ("TARGET", "target", 16), ("RULE", "rule", 22),
                        ("STATUS", "status", 9), ("VOTES", "votes", 30)]))
    print(f"{len(rows)} proposal(s)")
    return EXIT_OK


def _me(c: Client) -> str:
    return str(c.call("GET", "/api/zeroops/operations/status")["principal"]["name"])


def _as_me(c: Client, given: str | None, flag: str) -> None:
    if given:
        me = _me(c)
        if " ".join(given.split()).casefold() != me.casefold():
            raise ClientError(f"{flag} {given!r}: with --server you act as your token's principal, {me!r}")


def vote(decision: str) -> Callable[[Client, argparse.Namespace], int]:
    def run(c: Client, a: argparse.Namespace) -> int:
        _as_me(c, a.by, "--by")
        p = c.call("POST", f"/api/zeroops/approvals/{int(a.id)}/{decision}", {"comment": a.comment or ""})
        print(f"proposal {p['id']}: {p['status']} ({len(p['approvers'])}/{p['needed']} approvals"
              + (f"; denied by {', '.join(p['deniers'])}" if p["deniers"] else "") + f"); audit record {p['audit_id']}")
        return EXIT_OK
    return run


def override_start(c: Client, a: argparse.Namespace) -> int:
    from zeroops.safety_cli import _duration

    _as_me(c, a.operator, "--operator")
    p = c.call("POST", "/api/zeroops/operations/override", {
        "incident_id": a.incident, "justification": a.justification, "mfa_token": a.code,
        "duration_s": _duration(a.for_)})
    print(f"EMERGENCY OVERRIDE #{p['id']} for incident {p['incident']} by {p['operator']}: all automation paused "
          f"until t={p['until']:.0f}; audit record {p['audit_id']}")
    return EXIT_OK


def override_end(c: Client, a: argparse.Namespace) -> int:
    _as_me(c, a.operator, "--operator")
    r = c.call("POST", "/api/zeroops/operations/override/end", {"mfa_token": a.code})
    print(f"ended {r['ended']} pause(s); automation resumes" if r["ended"] else "nothing was paused")
    return EXIT_OK


def override_status(c: Client, a: argparse.Namespace) -> int:
    r = c.call("GET", "/api/zeroops/operations/override")
    if not r["pauses"]:
        print("automation: running")
    for p in r["pauses"]:
        what = f"emergency override, incident {p['incident']}" if p["kind"] == "override" else "disabled"
        print(f"automation: PAUSED ({what}) by {p['operator'] or '-'} until t={p['until']:.0f}: "
              f"{p['justification'] or ''}")
    return EXIT_OK


def limits_list(c: Client, a: argparse.Namespace) -> int:
    for ch in c.call("GET", "/api/zeroops/limits")["changes"]:
        print(f"#{ch['id']}  {ch['status']:<8} proposed by {ch['proposed_by']:<12} approvals "
              f"{len(ch['approvers'])}/{ch['needed']} ({', '.join(ch['approvers']) or '-'})")
    return EXIT_OK


def limits_propose(c: Client, a: argparse.Namespace) -> int:
    import yaml

    _as_me(c, a.by, "--by")
    try:
        with open(a.file) as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ClientError(f"{a.file}: cannot read the limits file: {e}") from None
    if not isinstance(config, dict):
        raise ClientError(f"{a.file}: expected a mapping of limits")
    r = c.call("POST", "/api/zeroops/limits", {"config": config, "justification": a.justification,
                                               "approvers": a.approvers})
    print(f"limit change #{r['id']} proposed; audit record {r['audit_id']}")
    return EXIT_OK


def limits_approve(c: Client, a: argparse.Namespace) -> int:
    _as_me(c, a.by, "--by")
    r = c.call("POST", f"/api/zeroops/limits/{int(a.id)}/approve")
    print(f"limit change #{r['id']}: {r['status']} ({len(r['approvers'])}/{r['needed']} approvals: "
          f"{', '.join(r['approvers'])})")
    return EXIT_OK


HANDLERS: dict[tuple[str, str], Callable[[Client, argparse.Namespace], int]] = {
    ("decisions", "list"): decisions_list, ("decisions", "show"): decisions_show,
    ("approvals", "list"): approvals_list, ("approvals", "approve"): vote("approve"),
    ("approvals", "deny"): vote("deny"),
    ("override", "start"): override_start, ("override", "end"): override_end, ("override", "status"): override_status,
    ("limits", "list"): limits_list, ("limits", "propose"): limits_propose, ("limits", "approve"): limits_approve,
}


def _wrap(local: Callable[[argparse.Namespace], int],
          remote: Callable[[Client, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(a: argparse.Namespace) -> int:
        if not getattr(a, "server", None):
            return local(a)
        try:
            return remote(Client(a.server, a.token), a)
        except ClientError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_SERVER if "HTTP 5" in str(e) or "cannot reach" in str(e) else EXIT_INPUT
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INPUT
    return run


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for act in p._actions:  # argparse keeps its sub-parsers here; there is no public accessor
        if isinstance(act, argparse._SubParsersAction):
            return dict(act.choices)
    return {}


def add_client_mode(sub: Any) -> None:
    """Give the state-reading commands ``--server URL`` and ``--token T`` (call after they are added)."""
    groups = dict(sub.choices)
    for (group, leaf), remote in HANDLERS.items():
        gp = groups.get(group)
        lp = _subparsers(gp).get(leaf) if gp is not None else None
        if lp is None:
            continue
        lp.add_argument("--server", metavar="URL", help="talk to a running `zeroops serve` instead of local files")
        lp.add_argument("--token", help=f"bearer token for --server (default: ${TOKEN_ENV})")
        lp.set_defaults(fn=_wrap(lp.get_default("fn"), remote))
