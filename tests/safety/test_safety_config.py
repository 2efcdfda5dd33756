"""Safety configuration: design names and aliases, profiles, clear errors, and fuzzing malformed files."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from safety_settings import scaled

from adapters.base import ACTION_TYPES
from control.safety import SafetyConfig, SafetyConfigError, config_from_mapping, load_safety_config, profile
from control.safety.config import TB, field_names, parse_duration, parse_size

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str | bytes, name: str = "safety.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def test_design_defaults_match_the_production_configuration() -> None:
    c = SafetyConfig()
    assert (c.require_approval_above, c.max_vms_auto_provisioned, c.max_data_deleted, c.rate_limit_actions) == (
        1000, 1000, TB, 100)
    assert (c.max_scale_up_percent, c.max_scale_down_percent, c.require_multi_approval, c.business_hours_only,
            c.canary_regions_first, c.max_automated_cost) == (200, 50, True, False, True, 10_000)


def test_camel_case_snake_case_and_nested_design_block(tmp_path: Path) -> None:
    p = write(tmp_path, """
HumanApproval: false
MaxAutomatedCost: 5000
SafetyConstraints:
  RequireApprovalAbove: 500
  max_vms_auto_provisioned: 10
  MaxDataDeleted: 2TB
  AccountingWindow: 12h
""")
    c = load_safety_config(p)
    assert c.max_automated_cost == 5000 and c.require_approval_above == 500 and c.max_vms_auto_provisioned == 10
    assert c.max_data_deleted == 2 * TB and c.accounting_window_seconds == 12 * 3600
    assert SafetyConfig.model_validate(c.to_yaml_dict()) == c  # round trip through the design's names


def test_profiles_follow_the_rollout_weeks(tmp_path: Path) -> None:
    assert profile("week1").observation_mode
    w2, w3, w4 = profile("week2"), profile("week3"), profile("week4")
    assert (w2.max_vms_auto_provisioned, w3.max_vms_auto_provisioned, w4.max_vms_auto_provisioned) == (10, 100, 1000)
    # derived from each action class's declared risk: week2 low, week3 low and medium, week4 all
    assert set(w2.automated_kinds or ()) == {k for k, c in ACTION_TYPES.items() if c.risk == "low"}
    assert set(w3.automated_kinds or ()) == {k for k, c in ACTION_TYPES.items() if c.risk in ("low", "medium")}
    assert "restart_service" in (w2.automated_kinds or ()) and "resize_server" not in (w2.automated_kinds or ())
    assert "delete_server" not in (w3.automated_kinds or ())  # risk "high": approved by people until week4
    assert w4.automated_kinds is None and not w4.observation_mode
    c = load_safety_config(write(tmp_path, "profile: week2\nMaxVMsAutoProvisioned: 5\n"))
    assert c.max_vms_auto_provisioned == 5 and c.automated_kinds == w2.automated_kinds
    with pytest.raises(KeyError, match="allowed: week1"):
        profile("week9")


@pytest.mark.parametrize(("text", "needle"), [
    ("MaxVMsAutoProvisoned: 3\n", "MaxVMsAutoProvisoned: unknown field; did you mean 'MaxVMsAutoProvisioned'"),
    ("RateLimitActions: lots\n", "RateLimitActions: Input should be a valid integer"),
    ("MaxScaleDownPercent: 150\n", "MaxScaleDownPercent: Input should be less than or equal to 100"),
    ("MaxDataDeleted: 3 parsecs\n", "MaxDataDeleted: expected a size like '1TB'"),
    ("HighRiskKinds: [nuke_region]\n", "unknown action kind 'nuke_region'; allowed: create_server"),
    ("BusinessHours: [18, 9]\n", "BusinessHours must be [start, end)"),
    ("profile: week9\n", "profile: unknown profile 'week9'; allowed: week1"),
    ("- a\n- b\n", "expected a mapping of safety settings, got list"),
    ("a: [1, 2\n", "not valid YAML"),
    ("SafetyConstraints: 3\n", "SafetyConstraints: expected a mapping"),
])
def test_errors_name_the_file_the_field_and_what_is_allowed(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(SafetyConfigError) as e:
        load_safety_config(p)
    assert str(e.value).startswith(str(p)) and needle in str(e.value), str(e.value)


def test_sizes_and_durations() -> None:
    assert parse_size("1TB") == TB and parse_size("512 GiB") == 512 * 1024**3 and parse_size(10) == 10
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200 and parse_duration(5) == 5.0
    for bad in ("-1", "1 fortnight", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ----------------------------------------------------------------------- fuzzing
values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
keys = st.sampled_from(field_names() + ["profile", "SafetyConstraints"]) | st.text(max_size=10)
docs = st.dictionaries(keys, values, max_size=8)


def assert_clear(p: Path) -> None:
    try:
        cfg = load_safety_config(p)
    except SafetyConfigError as e:
        msg = str(e)
        assert msg.startswith(str(p)) and "Traceback" not in msg and msg.strip()
    else:
        assert isinstance(cfg, SafetyConfig)


@scaled(150)
@given(doc=docs)
@example(doc={"profile": "week1", "MaxDataDeleted": float("nan")})
@example(doc={"SafetyConstraints": {"RateLimitActions": -1}, "rate_limit_actions": 3})
@example(doc={"CanaryBakeSeconds": float("inf")})
def test_fuzz_structured_configs_give_clear_errors(tmp_path_factory: pytest.TempPathFactory, doc: dict) -> None:
    p = tmp_path_factory.mktemp("fz") / "safety.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert_clear(p)


@scaled(150)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
@example(raw=b"\xff\xfe\x00junk")
@example(raw="!!python/object:os.system ['echo hi']")
@example(raw="a: &x [*x]")
@example(raw="? [a, b]\n: 1\n")
def test_fuzz_raw_files_give_clear_errors(tmp_path_factory: pytest.TempPathFactory, raw: bytes | str) -> None:
    p = tmp_path_factory.mktemp("fz") / "safety.yaml"
    if isinstance(raw, bytes):
        p.write_bytes(raw)
    else:
        p.write_text(raw)
    assert_clear(p)


@scaled(40)
@given(doc=docs)
def test_fuzz_cli_limits_check_never_tracebacks(tmp_path_factory: pytest.TempPathFactory, doc: dict) -> None:
    from zeroops.safety_cli import _guard, cmd_limits_check

    p = tmp_path_factory.mktemp("fz") / "safety.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    err, out = io.StringIO(), io.StringIO()
    import argparse

    with redirect_stderr(err), redirect_stdout(out):
        rc = _guard(cmd_limits_check)(argparse.Namespace(file=str(p)))
    assert rc in (0, 2)
    assert (rc == 0) == (err.getvalue() == "") and "Traceback" not in err.getvalue()
    if rc == 2:
        assert err.getvalue().startswith(f"error: {p}")


# ---------------------------------------------------------------- scenario files
loader = pytest.importorskip("scenarios.loader")
STANDARD = sorted((ROOT / "scenarios" / "standard").glob("*.yaml")) + sorted((ROOT / "scenarios" / "extended").glob("*.yaml"))


def _mutations(doc: dict) -> st.SearchStrategy[dict]:
    paths = list(doc)

    def mutate(args: tuple[str, object, bool]) -> dict:
        key, val, drop = args
        d = dict(doc)
        if drop:
            d.pop(key, None)
        else:
            d[key] = val
        return d

    return st.tuples(st.sampled_from(paths + ["bogus_field"]), values, st.booleans()).map(mutate)


@pytest.mark.skipif(not STANDARD, reason="no standard scenarios yet")
@scaled(60)
@given(data=st.data())
def test_fuzz_malformed_scenarios_give_clear_errors(tmp_path_factory: pytest.TempPathFactory,
                                                    data: st.DataObject) -> None:
    src = data.draw(st.sampled_from(STANDARD))
    doc = yaml.safe_load(src.read_text())
    bad = data.draw(_mutations(doc))
    p = tmp_path_factory.mktemp("fz") / src.name
    p.write_text(yaml.safe_dump(bad, allow_unicode=True))
    try:
        scn = loader.load_scenario(p)
    except loader.ScenarioError as e:
        assert str(e).startswith(str(p)) and "Traceback" not in str(e)
        return
    if getattr(scn, "safety", None) is not None:  # a loaded scenario's safety block must also fail clearly
        try:
            config_from_mapping(scn.safety, f"{p}: safety")
        except SafetyConfigError as e:
            assert str(e).startswith(f"{p}: safety")


def test_scenario_safety_block_is_checked_clearly(tmp_path: Path) -> None:
    if not STANDARD:
        pytest.skip("no standard scenarios yet")
    doc = yaml.safe_load(STANDARD[0].read_text())
    doc["safety"] = {"MaxVMsAutoProvisioned": "many"}
    p = write(tmp_path, yaml.safe_dump(doc), STANDARD[0].name)
    try:
        scn = loader.load_scenario(p)
    except loader.ScenarioError as e:  # the schema may validate it at load time
        assert "MaxVMsAutoProvisioned" in str(e)
        return
    with pytest.raises(SafetyConfigError, match="MaxVMsAutoProvisioned: Input should be a valid integer"):
        config_from_mapping(scn.safety, f"{p}: safety")
