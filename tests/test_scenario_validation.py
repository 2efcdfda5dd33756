"""Scenario files: clear errors naming the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scenarios.loader import ScenarioError, load_scenario
from scenarios.schema import json_schema
from tests.builders import scenario_dict

STANDARD = Path(__file__).resolve().parent.parent / "scenarios" / "standard"
EXTENDED = STANDARD.parent / "extended"


def write(tmp_path: Path, data: object, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    return str(e.value)


def test_standard_and_extended_suites_are_valid() -> None:
    files = sorted(STANDARD.glob("*.yaml")) + sorted(EXTENDED.glob("*.yaml"))
    names = {load_scenario(f).name for f in files}
    required = {"product-launch", "db-pool-exhaustion", "memory-leak-oom", "idle-workload", "diurnal-month",
                "hypervisor-failure", "az-outage"}
    assert required <= names


def test_unknown_field_names_file_field_and_allowed(tmp_path: Path) -> None:
    d = scenario_dict()
    d["services"][0]["capacity_per_cpu"] = 3
    msg = error_of(write(tmp_path, d))
    assert str(tmp_path / "s.yaml") in msg
    assert "services[0].capacity_per_cpu" in msg
    assert "capacity_per_vcpu" in msg  # the allowed fields are listed


def test_unknown_flavor_reference(tmp_path: Path) -> None:
    d = scenario_dict()
    d["services"][1]["flavor"] = "huge"
    msg = error_of(write(tmp_path, d))
    assert "services[1] (db).flavor" in msg and "'huge'" in msg and "large, small" in msg


def test_bad_duration_and_enum(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, scenario_dict(duration="ten minutes")))
    assert "duration" in msg and "'30s', '5m'" in msg
    d = scenario_dict(faults=[{"type": "meteor_strike", "at": 10}])
    msg = error_of(write(tmp_path, d))
    assert "faults[0]" in msg and "server_crash" in msg


def test_missing_field_and_wrong_type(tmp_path: Path) -> None:
    d = scenario_dict()
    del d["prices"]
    assert "prices: required field is missing" in error_of(write(tmp_path, d))
    d = scenario_dict()
    d["services"][0]["servers"] = "many"
    assert "services[0].servers" in error_of(write(tmp_path, d))


def test_invalid_yaml_points_at_line(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "name: x\nservices: [\n  - a: 1\n"))
    assert "s.yaml:" in msg and "invalid YAML" in msg


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    assert "must be a mapping" in error_of(write(tmp_path, "- 1\n- 2\n"))
    assert "no such file" in error_of(tmp_path / "nope.yaml")


def test_dependency_cycle_and_unknown_engine(tmp_path: Path) -> None:
    d = scenario_dict()
    d["services"][1]["dependencies"] = [{"service": "api"}]
    assert "dependency cycle" in error_of(write(tmp_path, d))
    assert "allowed: static, reactive" in error_of(write(tmp_path, scenario_dict(engines=["magic"])))


def test_fault_after_end_and_unknown_service(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, scenario_dict(faults=[{"type": "bad_deploy", "at": "2h", "service": "api"}])))
    assert "faults[0] (bad_deploy).at" in msg and "after the end" in msg
    msg = error_of(write(tmp_path, scenario_dict(faults=[{"type": "bad_deploy", "at": 10, "service": "web"}])))
    assert "allowed: api, db" in msg


def test_json_schema_is_exported_and_matches_the_committed_copy() -> None:
    schema = json_schema()
    assert schema["title"] == "zeroops scenario"
    assert "services" in schema["properties"] and "targets" in schema["properties"]
    import json

    committed = json.loads((STANDARD.parent / "scenario.schema.json").read_text())
    assert committed == json.loads(json.dumps(schema)), "run: zeroops schema -o scenarios/scenario.schema.json"


def test_example_scenarios_are_valid_and_their_trace_loads() -> None:
    from scenarios.runner import run_scenario

    examples = STANDARD.parent / "examples"
    for f in sorted(examples.glob("*.yaml")):
        scn = load_scenario(f).model_copy(update={"duration": 3600.0})
        r = run_scenario(scn, "static", base_dir=f.parent)
        assert r.score.metrics["availability"] is not None and r.score.metrics["availability"] > 0.9, f
