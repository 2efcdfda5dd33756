"""The real `chaos run` against the local OpenStack: a server kill on a throwaway service, through the project's
adapter and the safety gate, rolled back by starting the server again.  Every server it creates is deleted at
the end of the test."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.openstack, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

HERE = Path(__file__).parent
EXPERIMENT = HERE / "experiments" / "server-kill.json"


def test_chaos_run_kills_and_restarts_a_server_of_a_throwaway_service(tmp_path: Path) -> None:
    from tests.live.livekit import CLOUD, FLAVOR, IMAGE, NO_CLOUD, PREFIX, wait_until

    if not CLOUD:
        pytest.skip(NO_CLOUD)
    import openstack

    from adapters.base import CreateServer
    from adapters.live_config import parse_config
    from adapters.openstack import META_SERVICE, OpenStackAdapter, map_status

    conn = openstack.connect(cloud=CLOUD, api_timeout=30)
    name = f"{PREFIX}-chaos-{secrets.token_hex(2)}"
    data: dict[str, Any] = {"cloud": CLOUD, "network": "none", "services": [{"name": name, "flavor": FLAVOR,
                                                                               "image": IMAGE}],
                            "retry": {"attempts": 6, "base_delay": 0.1, "max_delay": 1.0},
                            "wait": {"create": 90, "resize": 120, "poll": 0.3}, "prices": {FLAVOR: 0.02}}
    config = tmp_path / "live.yaml"
    config.write_text(yaml.safe_dump(data))

    def mine() -> list[Any]:
        return [s for s in conn.compute.servers(details=True) if (s.metadata or {}).get(META_SERVICE) == name
                and map_status(s.status, s.task_state) != "DELETED"]

    try:
        a = OpenStackAdapter(conn, parse_config(data, str(config)), cache_ttl=0.5)
        ids = a.execute(CreateServer(service=name, count=2)).server_ids
        assert len(ids) == 2
        env = {**os.environ, "ZEROOPS_CHAOS_WORLD": "openstack", "ZEROOPS_CHAOS_LIVE_CONFIG": str(config),
               "CHAOS_SERVICE": name, "CHAOS_SETTLE_SECONDS": "15", "PYTHONPATH": str(HERE.parent.parent)}
        chaos = str(Path(sys.executable).parent / "chaos")
        p = subprocess.run([chaos, "--no-log-file", "run", "--journal-path", str(tmp_path / "journal.json"),
                            "--rollback-strategy", "always", str(EXPERIMENT)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        journal = json.loads((tmp_path / "journal.json").read_text())
        assert journal["status"] == "completed", journal
        kill = journal["run"][0]
        assert kill["status"] == "succeeded" and "stop" in kill["output"]["detail"]
        assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
        assert "start_server" in journal["rollbacks"][0]["output"][0]
        wait_until(lambda: sorted(map_status(s.status, s.task_state) for s in mine()) == ["ACTIVE", "ACTIVE"], 120,
                   "the killed server to be ACTIVE again after the rollback")
    finally:
        for s in mine():
            conn.compute.delete_server(s, ignore_missing=True)
        wait_until(lambda: not mine(), 180, "the test's servers to be deleted")
