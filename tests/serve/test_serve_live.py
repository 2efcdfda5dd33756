"""``zeroops serve --live`` against the local OpenStack (openstack-marked; skips without a cloud).

Observe mode with a service that has no servers: the controller runs behind the API, nothing in the cloud
changes, so nothing needs cleaning up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.serve.conftest import HERE, free_port
from zeroops.serve.auth import TokenAuthority, load_key

CLOUD = os.environ.get("ZEROOPS_TEST_CLOUD")
pytestmark = [pytest.mark.openstack,
              pytest.mark.skipif(not CLOUD, reason="no test cloud: set ZEROOPS_TEST_CLOUD=devcloud and "
                                                   "OS_CLIENT_CONFIG_FILE (make devcloud-up prints both)")]


def test_serve_live_observe(tmp_path: Path) -> None:
    from adapters.live_config import parse_config

    prom = os.environ.get("ZEROOPS_TEST_PROMETHEUS", "http://127.0.0.1:9090")
    cfg = parse_config({"cloud": CLOUD, "network": "none", "prometheus": {"url": prom},
                        "services": [{"name": f"zs{os.getpid()}-web", "flavor": "zeroops.small",
                                      "image": "zeroops-tiny", "max_servers": 2}]}, "<test>")
    cfg_file = tmp_path / "live.yaml"
    cfg_file.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    key = tmp_path / "serve.key"
    token = TokenAuthority(load_key(key, create=True)).mint("olga", "viewer")
    port = free_port()
    env = {**os.environ, "ZEROOPS_AUDIT_KEY": str(tmp_path / "audit.key")}
    proc = subprocess.Popen([sys.executable, "-m", "zeroops.cli", "serve", "--live", str(cfg_file), "--cloud", CLOUD,
                             "--port", str(port), "--state-dir", str(tmp_path / "state"), "--key-file", str(key)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=HERE.parent.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        h = {"Authorization": f"Bearer {token}"}
        st = httpx.get(url + "/api/zeroops/operations/status", headers=h, timeout=30).json()
        assert st["mode"] == "live" and st["live_mode"] == "observe" and st["loop"]["running"], st
        assert httpx.get(url + "/api/zeroops/approvals", headers=h, timeout=30).status_code == 409  # observe: none
        assert httpx.get(url + "/metrics", headers=h, timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
