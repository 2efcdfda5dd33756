"""``zeroops serve --scenario`` as a real process: end to end over HTTP, the CLI's client mode, SIGTERM, and a
SIGKILL during approvals with nothing lost on restart."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.conftest import HERE, Server
from zeroops.serve.auth import TokenAuthority, load_key


def _tokens(key_file: Path) -> dict[str, str]:
    ta = TokenAuthority(load_key(key_file, create=True))
    return {n: ta.mint(n, r) for n, r in (("vera", "viewer"), ("alice", "approver"), ("bob", "approver"),
                                          ("root", "admin"))}


def _h(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def _wait_for(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_serve_the_twin_end_to_end(tmp_path: Path) -> None:
    key = tmp_path / "serve.key"
    tok = _tokens(key)
    srv = Server(tmp_path / "state", key, speed=120)  # the 1 h ApprovalTTL is 30 s of wall time
    try:
        srv.wait_ready()
        c = httpx.Client(base_url=srv.url, timeout=10)
        assert c.get("/api/zeroops/operations/status").status_code == 401
        st = c.get("/api/zeroops/operations/status", headers=_h(tok["vera"])).json()
        assert st["mode"] == "twin" and st["scenario"] == "serve-twin" and st["loop"]["running"]
        pending = _wait_for(lambda: c.get("/api/zeroops/approvals", headers=_h(tok["vera"])).json())
        # the trail's writer commits decisions in batches (within 50 ms, later on a loaded box); the queue at once
        decisions = _wait_for(lambda: c.get("/api/zeroops/operations/decisions?limit=5", headers=_h(tok["vera"])).json())
        assert all(d["id"] for d in decisions)
        _wait_for(lambda: c.get("/api/zeroops/operations/status", headers=_h(tok["vera"])).json()["now"] > st["now"])

        kinds: set[str] = set()  # the event stream, token in the query as a browser's EventSource sends it
        with httpx.stream("GET", srv.url + "/api/zeroops/events", params={"access_token": tok["vera"]},
                          timeout=15) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kinds.add(line[7:])
                if {"decision", "status"} <= kinds:
                    break

        pid = pending[-1]["id"]
        env = {"ZEROOPS_TOKEN": tok["alice"], "PATH": "/usr/bin:/bin"}
        cli = subprocess.run([sys.executable, "-m", "zeroops.cli", "approvals", "approve", str(pid), "--by", "alice",
                              "--server", srv.url, "--comment", "from the CLI"], capture_output=True, text=True,
                             env=env, cwd=HERE.parent.parent, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert f"proposal {pid}: approved" in cli.stdout
        # the approval executor runs it through the choke point: an executed decision citing the proposal
        executed = _wait_for(lambda: [d for d in c.get("/api/zeroops/operations/decisions?limit=1000&outcome=executed",
                                                       headers=_h(tok["vera"])).json()
                                      if d["verdict"]["detail"].get("proposal") == pid])
        assert executed[0]["approved_by"] == ["alice"]
        listed = subprocess.run([sys.executable, "-m", "zeroops.cli", "decisions", "list", "--limit", "3", "--server",
                                 srv.url, "--token", tok["vera"]], capture_output=True, text=True,
                                cwd=HERE.parent.parent, timeout=60)
        assert listed.returncode == 0 and "decision(s)" in listed.stdout, listed.stderr
        wrong = subprocess.run([sys.executable, "-m", "zeroops.cli", "approvals", "deny", str(pid), "--by", "mallory",
                                "--server", srv.url, "--token", tok["alice"]], capture_output=True, text=True,
                               cwd=HERE.parent.parent, timeout=60)
        assert wrong.returncode == 2 and "principal" in wrong.stderr

        metrics = c.get("/metrics", headers=_h(tok["vera"]))
        assert metrics.status_code == 200 and "zeroops_automation_rate" in metrics.text
        assert 'zeroops_decisions_total{outcome="executed"' in metrics.text
        verify = c.get("/api/zeroops/audit/verify", headers=_h(tok["root"])).json()
        assert verify["ok"], verify
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0, srv.output()
    assert '"msg": "stopped"' in srv.output()
    assert '"path": "/api/zeroops/events"' in srv.output() and not any(t in srv.output() for t in tok.values())
    out = subprocess.run([sys.executable, "-m", "zeroops.cli", "audit", "verify", "--db",
                          str(tmp_path / "state" / "audit.db")], capture_output=True, text=True, timeout=60,
                         cwd=HERE.parent.parent, env={"ZEROOPS_AUDIT_KEY": str(tmp_path / "audit.key"),
                                                      "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and "closed cleanly" in out.stdout, out.stdout + out.stderr


def test_sigkill_during_approvals_loses_nothing(tmp_path: Path) -> None:
    """Votes race a SIGKILL; after a restart every vote the server acknowledged is in the queue and the audit trail,
    and the trail still verifies."""
    key = tmp_path / "serve.key"
    tok = _tokens(key)
    state = tmp_path / "state"
    srv = Server(state, key, speed=1200)
    acked: list[tuple[str, int, int]] = []  # (voter, proposal, audit id)
    try:
        srv.wait_ready()
        c = httpx.Client(base_url=srv.url, timeout=5)
        _wait_for(lambda: len(c.get("/api/zeroops/approvals", headers=_h(tok["vera"])).json()) >= 3)
        stop = threading.Event()

        def voter(name: str) -> None:
            with httpx.Client(base_url=srv.url, timeout=5) as vc:
                while not stop.is_set():
                    try:
                        for p in vc.get("/api/zeroops/approvals", headers=_h(tok[name])).json():
                            r = vc.post(f"/api/zeroops/approvals/{p['id']}/approve", headers=_h(tok[name]),
                                        json={"comment": "race"})
                            if r.status_code == 200:
                                acked.append((name, p["id"], r.json()["audit_id"]))
                    except (httpx.HTTPError, ValueError, KeyError):
                        return  # the server died under us

        threads = [threading.Thread(target=voter, args=(n,)) for n in ("alice", "bob")]
        for t in threads:
            t.start()
        _wait_for(lambda: len(acked) >= 3, timeout=30)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        srv.stop(signal.SIGKILL)
    assert acked
    print(f"crash test: {len(acked)} acknowledged votes before the SIGKILL")
    again = Server(state, key, speed=1200)
    try:
        again.wait_ready()
        c = httpx.Client(base_url=again.url, timeout=10)
        props = {p["id"]: p for p in c.get("/api/zeroops/approvals?status=all", headers=_h(tok["vera"])).json()}
        for name, pid, aid in acked:
            assert name in props[pid]["approvers"], (name, pid, props[pid])
            rec = c.get(f"/api/zeroops/audit/decisions/{aid}", headers=_h(tok["vera"])).json()
            assert rec["engine"] == f"api:{name}" and rec["action"]["params"]["proposal"] == pid
        # what the first run left waiting was expired on start, each expiry audited
        before = max(pid for _, pid, _ in acked)
        left = [p for p in props.values() if p["id"] <= before and p["status"] in ("pending", "approved")]
        assert not left, left
        verify = c.get("/api/zeroops/audit/verify", headers=_h(tok["root"])).json()
        assert verify["ok"], verify
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.output()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    c, k = tmp_path / "cert.pem", tmp_path / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def test_tls_and_a_token_minted_by_the_cli(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    key_file = tmp_path / "serve.key"
    mint = subprocess.run([sys.executable, "-m", "zeroops.cli", "serve", "token", "mint", "--name", "tess", "--role",
                           "viewer", "--ttl", "10m", "--key-file", str(key_file), "--create-key"],
                          capture_output=True, text=True, cwd=HERE.parent.parent, timeout=60)
    assert mint.returncode == 0, mint.stderr
    token = mint.stdout.strip()
    assert (key_file.stat().st_mode & 0o777) == 0o600
    srv = Server(tmp_path / "state", key_file, extra=("--tls-cert", str(cert), "--tls-key", str(key)))
    srv.url = srv.url.replace("http://", "https://")
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(srv.url + "/healthz", verify=ctx, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        r = httpx.get(srv.url + "/api/zeroops/operations/status", headers=_h(token), verify=ctx, timeout=10)
        assert r.status_code == 200 and r.json()["principal"]["name"] == "tess"
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets nothing
            httpx.get(srv.url.replace("https://", "http://") + "/healthz", timeout=2).raise_for_status()
    finally:
        assert srv.stop() == 0, srv.output()
