"""Load test of ``zeroops serve`` on 127.0.0.1: N concurrent clients (each its own principal) for D seconds.

Starts ``zeroops serve --scenario`` as a subprocess on a free port (the twin running meanwhile), then each client
loops over the read endpoints a dashboard and tools poll (status, the last 50 decisions, the approval queue, the
zero-ops metrics, /metrics).  Reports requests, throughput, latency percentiles and errors (any status other than
200, or a failed request), as one JSON object; the README's figures come from it::

    .venv/bin/python benchmarks/serve_load.py --clients 200 --duration 60

Client and server share the machine, so the figures are a floor for the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/api/zeroops/operations/status", "/api/zeroops/operations/decisions?limit=50", "/api/zeroops/approvals",
         "/api/zeroops/operations/metrics", "/metrics")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
               token: str) -> int:
    """One HTTP/1.1 keep-alive GET on an open connection; returns the status (the body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    if "content-length" in hdrs:
        await reader.readexactly(int(hdrs["content-length"]))
    elif hdrs.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def client(host: str, port: int, token: str, until: float, lat: list[float], errors: dict[str, int], k: int,
                 paths: tuple[str, ...] = PATHS) -> None:
    """One client: its own principal and keep-alive connection, one request at a time, round the paths.

    A plain asyncio HTTP/1.1 client: httpx's connection pool serialises 200 concurrent connections and would
    measure itself, not the server."""
    i = k
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < until:
        path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            code = await _get(*conn, f"{host}:{port}", path, token)
            ok, key = code == 200, f"HTTP {code}"
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            ok, key, conn = False, type(e).__name__, None
        lat.append(time.perf_counter() - t0)
        if not ok:
            errors[key] = errors.get(key, 0) + 1
    if conn is not None:
        conn[1].close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def load(host: str, port: int, tokens: list[str], duration: float,
               paths: tuple[str, ...] = PATHS) -> dict[str, object]:
    lat: list[float] = []
    errors: dict[str, int] = {}
    until = time.monotonic() + duration
    t0 = time.perf_counter()
    await asyncio.gather(*(client(host, port, t, until, lat, errors, k, paths) for k, t in enumerate(tokens)))
    wall = time.perf_counter() - t0
    return {"clients": len(tokens), "duration_s": round(wall, 1), "requests": len(lat),
            "rps": round(len(lat) / wall, 1), "p50_ms": round(pct(lat, 0.50) * 1000, 1),
            "p95_ms": round(pct(lat, 0.95) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
            "max_ms": round(max(lat, default=float("nan")) * 1000, 1), "errors": sum(errors.values()),
            "error_kinds": errors, "paths": list(paths)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--scenario", default=str(ROOT / "tests" / "serve" / "serve-twin.yaml"))
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--path", action="append", help="endpoint to poll (repeatable; default: the dashboard's reads)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from zeroops.serve.auth import TokenAuthority, load_key

    with tempfile.TemporaryDirectory() as d:
        key = Path(d) / "serve.key"
        ta = TokenAuthority(load_key(key, create=True))
        tokens = [ta.mint(f"load-{i}", "viewer") for i in range(a.clients)]
        port = free_port()
        env = {**os.environ, "ZEROOPS_AUDIT_KEY": str(Path(d) / "audit.key")}
        log = open(Path(d) / "server.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "zeroops.cli", "serve", "--scenario", a.scenario, "--speed",
                                 str(a.speed), "--port", str(port), "--state-dir", str(Path(d) / "state"),
                                 "--key-file", str(key), "--log-level", "warning"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            result = asyncio.run(load("127.0.0.1", port, tokens, a.duration, tuple(a.path or PATHS)))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            log.close()
        result["server_exit"] = code
        result["speed"] = a.speed
        print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
