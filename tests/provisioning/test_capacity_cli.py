"""``zeroops capacity``: per-zone lines on a short run; bad input exits 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from zeroops.cli import main

SCENARIO = """
name: cap-tiny
seed: 1
duration: 2h
regions:
  - name: r
    zones:
      - {name: az-1, hypervisors: [{count: 1, vcpus: 32, ram_mb: 131072, disk_gb: 2000}]}
      - {name: az-2, hypervisors: [{count: 1, vcpus: 64, ram_mb: 131072, disk_gb: 2000}]}
flavors:
  - {name: m1.large, vcpus: 8, ram_mb: 16384, disk_gb: 160}
prices:
  on_demand: {m1.large: 0.2}
services:
  - name: api
    flavor: m1.large
    servers: 2
    min_servers: 2
    capacity_per_vcpu: 50
    traffic:
      base: 300
      components: [{type: ramp, start: 0s, end: 2h, to_factor: 8}]
"""


def test_capacity_prints_each_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO)
    assert main(["capacity", str(f), "--at", "1h", "--fit", "1h", "--days", "1"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines()[2:]}
    assert set(lines) == {"az-1", "az-2"}
    assert " 32 " in lines["az-1"] and " 64 " in lines["az-2"]
    assert "day 1" in lines["az-1"]  # growing 8x in 2 h: az-1 (32 vCPUs) runs out the first day


def test_capacity_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO)
    assert main(["capacity", str(f), "--engines", "nope"]) == 2
    assert main(["capacity", str(f), "--at", "5h"]) == 2
