"""``zeroops serve``: the twin (``--scenario``) or the live controller (``--live``) behind the API; ``zeroops serve
token keygen|mint`` for bearer tokens.  docs/serve.md.

Exit codes: 0 stopped normally (SIGTERM, ^C), 2 bad input (scenario, config, key, arguments), 6 the state
directory is held by another server, 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_LOCKED = 0, 1, 2, 6
KEY_FILE = "serve-token.key"


def _state_dir(a: argparse.Namespace) -> Path:
    from control.statedir import state_dir

    if a.state_dir:
        return Path(a.state_dir).expanduser().absolute()
    if getattr(a, "scenario", None):
        return state_dir() / "serve" / Path(a.scenario).stem
    return state_dir()


def _key_file(a: argparse.Namespace) -> Path:
    from zeroops.serve.auth import KEY_ENV

    explicit = getattr(a, "key_file", None) or os.environ.get(KEY_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    from control.statedir import state_dir

    return state_dir() / KEY_FILE


def cmd_keygen(a: argparse.Namespace) -> int:
    from zeroops.serve.auth import load_key

    p = _key_file(a)
    if p.exists():
        print(f"error: {p} exists; remove it first (every token signed with it stops working)", file=sys.stderr)
        return EXIT_INPUT
    load_key(p, create=True)
    print(f"wrote the token signing key {p} (mode 0600; the server and `zeroops serve token mint` read it)")
    return EXIT_OK


def cmd_mint(a: argparse.Namespace) -> int:
    from control.safety.config import parse_duration
    from zeroops.serve.auth import TokenAuthority, load_key

    try:
        ttl = parse_duration(a.ttl)
    except ValueError as e:
        print(f"error: --ttl: {e}", file=sys.stderr)
        return EXIT_INPUT
    token = TokenAuthority(load_key(_key_file(a), create=a.create_key)).mint(a.name, a.role, ttl)
    print(token)
    return EXIT_OK


def _settings(a: argparse.Namespace) -> Any:
    from zeroops.serve.app import Settings

    return Settings(max_body_bytes=a.max_body, rate_per_s=a.rate_limit, burst=max(1.0, a.rate_limit * 4),
                    cors_origins=tuple(a.cors_origin or ()), metrics_public=a.metrics_public)


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from control.audit import AuditError
    from zeroops.serve import logs
    from zeroops.serve.app import create_app
    from zeroops.serve.auth import TokenAuthority, load_key
    from zeroops.serve.loop import LiveLoop, TwinLoop

    logs.setup(a.log_level)
    log = __import__("logging").getLogger("zeroops.serve")
    if bool(a.scenario) == bool(a.live):
        print("error: give exactly one of --scenario FILE (the twin) or --live CONFIG (the live controller)",
              file=sys.stderr)
        return EXIT_INPUT
    if bool(a.tls_cert) != bool(a.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_INPUT
    key_path = _key_file(a)
    created = not key_path.exists()
    tokens = TokenAuthority(load_key(key_path, create=True))
    if created:
        log.info("created a token signing key", extra={"fields": {"key_file": str(key_path)}})
    try:
        if a.scenario:
            loop: Any = TwinLoop(a.scenario, engines=a.engines, speed=a.speed, state_dir=_state_dir(a), seed=a.seed,
                                 simulated_approvers=a.simulated_approvers)
        else:
            ns = argparse.Namespace(config=a.live, prometheus=None, state_dir=a.state_dir, journal=None,
                                    decisions=None, audit=None, safety_db=None, cloud=a.cloud, mode=a.mode,
                                    safety=a.safety, profile=a.profile, prometheus_wait=None)
            loop = LiveLoop(ns)
    except AuditError as e:
        code = EXIT_LOCKED if "another process" in str(e) else EXIT_INPUT
        print(f"error: audit trail: {e}" + (" (another zeroops serve uses this --state-dir)" if code == 6 else ""),
              file=sys.stderr)
        return code
    app = create_app(loop.state, tokens, _settings(a))
    notes = loop.reconcile()
    if notes:
        log.info("reconciled on start", extra={"fields": {"items": [str(n) for n in notes]}})
    votes = loop.state.audit_unrecorded_votes()
    if votes:
        log.info("votes without audit records recorded now", extra={"fields": {"votes": votes}})
    config = uvicorn.Config(app, host=a.host, port=a.port, log_config=None, access_log=False,
                            ssl_certfile=a.tls_cert, ssl_keyfile=a.tls_key, ssl_ca_certs=a.tls_client_ca,
                            ssl_cert_reqs=2 if a.tls_client_ca else 0, timeout_graceful_shutdown=10,
                            limit_concurrency=a.max_connections, server_header=False)
    server = uvicorn.Server(config)
    log.info("listening", extra={"fields": {"url": f"{'https' if a.tls_cert else 'http'}://{a.host}:{a.port}",
                                            "state_dir": str(loop.state.state_dir), "tls": bool(a.tls_cert)}})
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn re-raises the signal it handled once it has shut down
        signal.signal(sig, lambda s, f: None)  # gracefully: that re-raise lands here, and the exit code stays 0
    try:
        server.run()  # SIGTERM / ^C: uvicorn stops accepting, the lifespan stops the loop and closes the trail
    except SystemExit:  # uvicorn could not start (the address is in use, a bad certificate): it logged why
        print(f"error: cannot serve on {a.host}:{a.port} (the log line above says why)", file=sys.stderr)
        return EXIT_INPUT
    finally:
        if loop.running:  # uvicorn failed before its lifespan ran (port in use): close what we opened
            loop.stop()
    return EXIT_OK if server.started or not server.should_exit else EXIT_INPUT


def serve_main(a: argparse.Namespace) -> int:
    """Handler of ``zeroops serve``: errors as one ``error:`` line, exit code 2."""
    from scenarios.loader import ScenarioError
    from zeroops.serve.auth import AuthError

    try:
        return int(a.serve_fn(a))
    except (ScenarioError, AuthError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as e:  # the live controller's own errors carry an exit code
        code = getattr(e, "code", None)
        if isinstance(code, int):
            print(f"zeroops serve: error: {e}", file=sys.stderr)
            return code
        raise


def add_serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the twin or the live controller behind the authenticated API",
                       description=(__doc__ or "").split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                       "  zeroops serve token mint --name alice --role admin\n"
                       "  zeroops serve --scenario scenarios/standard/az-outage.yaml --speed 60\n"
                       "  zeroops serve --live live.yaml --mode act --profile week1 --host 0.0.0.0 "
                       "--tls-cert c.pem --tls-key k.pem")
    p.add_argument("--scenario", metavar="FILE", help="run this scenario's twin in scaled real time")
    p.add_argument("--live", metavar="CONFIG", help="run the live controller with this live config YAML")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second (twin; default 60)")
    p.add_argument("--engines", help="engine set (twin; default: the scenario's last non-static set, its richest)")
    p.add_argument("--seed", type=int, help="override the scenario's seed (twin)")
    p.add_argument("--simulated-approvers", action="store_true", help="the scenario's simulated approvers vote too "
                   "(twin; default: only people vote, through the API)")
    p.add_argument("--mode", choices=("observe", "act"), default="observe", help="live mode (default observe)")
    p.add_argument("--cloud", help="clouds.yaml entry (live)")
    p.add_argument("--safety", help="safety limits YAML (live act mode)")
    p.add_argument("--profile", help="rollout profile (live act mode): week1..week4, production")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--state-dir", help="audit trail, safety state and journal (default: the state directory; the "
                   "twin's under serve/<scenario name>)")
    p.add_argument("--key-file", help="token signing key (default: $ZEROOPS_SERVE_KEY_FILE, else serve-token.key in "
                   "the state directory; created on first start)")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", help="PEM CA bundle: require client certificates signed by it (mTLS)")
    p.add_argument("--cors-origin", action="append", help="allow this browser origin (repeatable; default: none)")
    p.add_argument("--rate-limit", type=float, default=50.0, help="requests per second per principal (0: off)")
    p.add_argument("--max-body", type=int, default=64 * 1024, help="largest request body in bytes (default 64 KiB)")
    p.add_argument("--max-connections", type=int, default=1000, help="concurrent connections before 503")
    p.add_argument("--metrics-public", action="store_true", help="/metrics without a token (trusted network)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(fn=serve_main, serve_fn=cmd_serve)
    tsub = p.add_subparsers(dest="serve_cmd", metavar="{token}")
    t = tsub.add_parser("token", help="bearer tokens").add_subparsers(dest="token_cmd", metavar="{keygen,mint}",
                                                                      required=True)
    k = t.add_parser("keygen", help="create the token signing key")
    k.add_argument("--key-file", help="where (default: as for zeroops serve)")
    k.set_defaults(serve_fn=cmd_keygen)
    m = t.add_parser("mint", help="print a bearer token for a principal")
    m.add_argument("--name", required=True, help="the principal (the audit trail records it)")
    m.add_argument("--role", required=True, choices=("viewer", "operator", "approver", "admin"))
    m.add_argument("--ttl", default="12h", help="lifetime, e.g. 30m, 12h, 30d (default 12h)")
    m.add_argument("--key-file", help="signing key (default: as for zeroops serve)")
    m.add_argument("--create-key", action="store_true", help="create the key if it does not exist")
    m.set_defaults(serve_fn=cmd_mint)
    from zeroops.serve.client import add_client_mode

    add_client_mode(sub)  # zeroops.cli adds this parser after the safety commands: --server URL for them
