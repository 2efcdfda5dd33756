"""The twin's per-server error ratio: failed / served by that server, as a load balancer's member stats show it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scenarios.runner import run_scenario
from tests.builders import make_scenario


def test_a_partitioned_zone_fails_all_it_serves_and_dependency_errors_reach_every_peer_alike() -> None:
    scn = make_scenario(duration=900, faults=[{"type": "network_partition", "at": 300, "zone": "az-2",
                                               "duration": 5000}])
    w = run_scenario(scn, "static").world
    n = w.n
    err = w.metrics.srv["server_error_ratio"].last()[:n]
    up = w.metrics.srv["server_up"].last()[:n] == 1.0
    zone = np.array([w.zone_names[z] for z in w.hv_zone[w.hv[:n]]])
    svc = w.svc[:n]
    assert ((zone == "az-2") & up).any() and ((zone == "az-1") & up).any()
    assert np.all(err[(zone == "az-2") & up] == 1.0)  # cut off from its dependencies: every request fails
    for s in np.unique(svc):
        peers = err[(zone == "az-1") & up & (svc == s)]
        assert len(peers) and np.all(peers < 1.0)
        np.testing.assert_allclose(peers, peers[0], rtol=1e-6)  # what fails service-wide, alike on each
    assert np.all((err >= 0.0) & (err <= 1.0))


def test_before_any_fault_servers_show_only_the_base_error_ratio() -> None:
    w = run_scenario(make_scenario(duration=300), "static").world
    err = w.metrics.srv["server_error_ratio"].last()[: w.n]
    assert np.all(err < 0.01)
    rest = w.metrics.srv["server_error_ratio"].last()[w.n:]  # rows with no server
    assert len(rest) and np.isnan(rest).all()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed")
def test_the_default_prometheus_queries_are_valid_promql(tmp_path: Path) -> None:
    from adapters.prometheus import DEFAULT_QUERIES

    assert "server_error_ratio" in DEFAULT_QUERIES
    rules = {"groups": [{"name": "zeroops", "rules": [{"record": f"zeroops:{k}", "expr": v}
                                                      for k, v in DEFAULT_QUERIES.items()]}]}
    f = tmp_path / "rules.yml"
    f.write_text(json.dumps(rules))  # JSON is YAML
    out = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
