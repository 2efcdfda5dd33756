"""Chaos Toolkit experiments: read as they are (clear errors otherwise), run unchanged by the real `chaos run`
against the twin, and by `zeroops chaos run` inside a scenario."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zeroops.chaostoolkit.experiment import ExperimentError, load_experiment, to_plan

HERE = Path(__file__).parent
EXPERIMENT = HERE / "experiments" / "api-server-kill.json"
SCENARIO = HERE / "chaos-small.yaml"
CHAOS = Path(sys.executable).parent / "chaos"


def write(tmp_path: Path, doc: object, name: str = "e.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc) if name.endswith(".yaml") else json.dumps(doc))
    return p


def test_the_experiment_reads_from_json_and_yaml_alike(tmp_path: Path) -> None:
    doc = json.loads(EXPERIMENT.read_text())
    a, b = load_experiment(EXPERIMENT), load_experiment(write(tmp_path, doc))
    pa, pb = to_plan(a), to_plan(b)
    assert [(s.kind.fault, s.target, s.duration) for s in pa] == [("server_crash", "api", 900.0)] == [
        (s.kind.fault, s.target, s.duration) for s in pb]
    assert [(p.metric, p.service, p.max) for p in pa[0].probes or ()] == [
        ("error_ratio", "api", 0.05), ("latency_p95_ms", "api", 500.0)]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("method"), "method: required"),
    (lambda d: d.update(title=""), "title: required"),
    (lambda d: d["method"][0].update(type="acton"), "method[0].type: 'acton'; allowed: action, probe"),
    (lambda d: d["method"][0]["provider"].pop("func"), "method[0].provider.func: required"),
    (lambda d: d["method"][0]["provider"].update(type="ssh"), "allowed: python, process, http"),
    (lambda d: d["steady-state-hypothesis"]["probes"][0].pop("tolerance"), "probes[0].tolerance: required"),
    (lambda d: d["method"][0]["provider"]["arguments"].update(fault="meteor"), None),
])
def test_bad_experiments_name_the_file_the_field_and_what_is_allowed(tmp_path: Path, mutate, message) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(EXPERIMENT.read_text())
    mutate(doc)
    p = write(tmp_path, doc, "bad.json")
    if message is None:  # a fine document for `chaos run`, but kill_server has no fault argument to be wrong
        assert to_plan(load_experiment(p))
        return
    with pytest.raises(ExperimentError) as e:
        to_plan(load_experiment(p))
    assert str(p) in str(e.value) and message in str(e.value)


def test_unknown_fault_and_foreign_activities_are_refused_inside_a_scenario(tmp_path: Path) -> None:
    doc = json.loads(EXPERIMENT.read_text())
    doc["method"][0]["provider"].update(func="inject_fault", arguments={"fault": "meteor", "target": "api"})
    with pytest.raises(ExperimentError, match=r"method\[0\]\.provider\.arguments\.fault: 'meteor'; allowed: az_outage"):
        to_plan(load_experiment(write(tmp_path, doc, "x.json")))
    doc["method"][0]["provider"].update(module="chaosk8s.pod.actions", func="terminate_pods")
    with pytest.raises(ExperimentError, match="cannot run inside a scenario; allowed: zeroops.chaostoolkit"):
        to_plan(load_experiment(write(tmp_path, doc, "y.json")))
    (tmp_path / "z.yaml").write_text("title: [unclosed")
    with pytest.raises(ExperimentError, match="z.yaml: not valid YAML"):
        load_experiment(tmp_path / "z.yaml")


@pytest.mark.skipif(not CHAOS.exists() and shutil.which("chaos") is None, reason="chaostoolkit not installed")
def test_the_real_chaos_run_drives_the_twin(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {**os.environ, "ZEROOPS_CHAOS_SCENARIO": str(SCENARIO), "ZEROOPS_CHAOS_REPORT": str(report),
           "ZEROOPS_CHAOS_WORLD": "twin", "PYTHONPATH": str(HERE.parent.parent)}
    chaos = str(CHAOS) if CHAOS.exists() else str(shutil.which("chaos"))
    p = subprocess.run([chaos, "--no-log-file", "run", "--journal-path", str(tmp_path / "journal.json"),
                        "--rollback-strategy", "always", str(EXPERIMENT)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    kill, wait = journal["run"]
    assert kill["status"] == "succeeded" and kill["output"]["rule"] == "within-limits"  # through the gate
    assert wait["output"] == kill["output"]["at"] + 300.0  # simulated time advanced
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
    out = json.loads(report.read_text())
    (f,) = out["chaos_faults"]
    assert f["type"] == "server_crash" and f["services"] == ["api"] and f["chaos"]
    assert f["end"] is not None  # nothing left behind
    assert any(d["engine"] == "chaostoolkit" and d["kind"] == "inject_fault" for d in out["decisions"])


def test_zeroops_chaos_run_runs_the_same_file_inside_a_scenario() -> None:
    from engines.registry import REGISTRY
    from zeroops.chaos_cli import PLAN_ENGINE, run_experiment

    out = run_experiment(str(EXPERIMENT), str(SCENARIO))
    (r,) = out["runs"]
    assert r["fault"] == "server_crash" and r["outcome"] in ("completed", "aborted")
    m = out["metrics"]
    assert m["chaos_experiments"] == 1 and m["chaos_faults_left"] == 0 and m["resilience_coverage"] == 1 / 8
    assert PLAN_ENGINE not in REGISTRY.engine_names()
