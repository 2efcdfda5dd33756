"""Live mode without a cloud: retry/backoff, error mapping, config validation, journal, observe gate, CLI."""

from __future__ import annotations

import argparse
import random
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openstack import exceptions as osexc

from adapters.base import (
    ActionResult,
    AdapterError,
    Conflict,
    CreateServer,
    NotFound,
    NoValidHost,
    QuotaExceeded,
    TransientAPIError,
)
from adapters.journal import Journal
from adapters.live_config import ConfigError, load_config, parse_config
from adapters.openstack import map_status
from adapters.retry import Retry, Trail, classify
from control.runtime import ChokePoint
from zeroops.live import MODES, ObserveOnlyGate, add_live_parser, make_gate

# openstacksdk deprecates http_status= on its exceptions; the real classes are still what the cloud raises
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _http(cls: type[Exception], message: str, status: int) -> Exception:
    """A real openstacksdk HTTP exception with a status, without the SDK's deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(message, http_status=status)  # type: ignore[call-arg]


# ------------------------------------------------------------------ retry
def _retry(**kw: Any) -> tuple[Retry, list[float]]:
    slept: list[float] = []
    return Retry(sleep=slept.append, rng=random.Random(1), **kw), slept


@given(st.integers(1, 30), st.floats(0.001, 5), st.floats(0.01, 60), st.floats(0, 1))
def test_backoff_grows_is_capped_and_jittered(n: int, base: float, cap: float, jitter: float) -> None:
    r = Retry(base_delay=base, max_delay=cap, jitter=jitter, rng=random.Random(n))
    d = r.delay(n)
    nominal = min(cap, base * 2 ** (n - 1))
    assert nominal * (1 - jitter) - 1e-9 <= d <= nominal + 1e-9


def test_transient_errors_are_retried_and_every_attempt_recorded() -> None:
    r, slept = _retry(attempts=5, base_delay=0.1, max_delay=1.0, jitter=0.0)
    calls = iter([osexc.HttpException("boom", http_status=503), TimeoutError("slow"), "ok"])

    def fn() -> str:
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    trail = Trail()
    assert r.call(trail, "create x", fn) == "ok"
    assert trail.attempts == 3 and slept == [0.1, 0.2]
    assert "HTTP 503" in trail.lines[0] and "TimeoutError" in trail.lines[1] and "attempt 3: ok" in trail.lines[2]


def test_non_transient_errors_are_not_retried() -> None:
    r, slept = _retry()
    trail = Trail()

    def fn() -> None:
        raise osexc.ConflictException("Cannot 'resize' instance while it is in task_state rebooting", http_status=409)

    with pytest.raises(Conflict) as ei:
        r.call(trail, "resize", fn)
    assert slept == [] and ei.value.attempts == 1 and "task_state" in str(ei.value)  # type: ignore[attr-defined]


def test_giving_up_raises_transient_with_the_trail() -> None:
    r, slept = _retry(attempts=3, jitter=0.0)

    def fn() -> None:
        raise osexc.HttpException("Service Unavailable", http_status=503)

    with pytest.raises(TransientAPIError) as ei:
        r.call(Trail(), "list", fn)
    assert ei.value.attempts == 3 and len(slept) == 2 and "giving up" in str(ei.value)  # type: ignore[attr-defined]


def test_recover_stops_a_retry_that_would_duplicate() -> None:
    r, _ = _retry(attempts=5)
    posts: list[int] = []

    def post() -> str:
        posts.append(1)
        raise TimeoutError("response lost")  # the cloud acted, the answer never came

    trail = Trail()
    assert r.call(trail, "create", post, recover=lambda: "server-1") == "server-1"
    assert posts == [1] and "found the result of an earlier attempt" in trail.text()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            _http(osexc.HttpException, "Quota exceeded for instances: Requested 1, but already used 10 of 10", 403),
            QuotaExceeded,
        ),
        (_http(osexc.HttpException, "Maximum number of ports exceeded", 413), QuotaExceeded),
        (_http(osexc.BadRequestException, "No valid host was found. There are not enough hosts", 400), NoValidHost),
        (_http(osexc.ConflictException, "Instance is in task_state deleting", 409), Conflict),
        (_http(osexc.NotFoundException, "No Server found for x", 404), NotFound),
        (_http(osexc.HttpException, "Bad Gateway", 502), TransientAPIError),
        (_http(osexc.HttpException, "Too Many Requests", 429), TransientAPIError),
        (ConnectionResetError("reset by peer"), TransientAPIError),
        (_http(osexc.BadRequestException, "Invalid flavorRef", 400), AdapterError),
    ],
)
def test_classify_maps_cloud_errors(exc: Exception, expected: type[AdapterError]) -> None:
    err = classify(exc)
    assert type(err) is expected


def test_classify_keystoneauth_connect_failure_is_transient() -> None:
    from keystoneauth1 import exceptions as ksa

    assert isinstance(classify(ksa.ConnectFailure("refused")), TransientAPIError)
    assert isinstance(classify(ksa.ConnectTimeout("slow")), TransientAPIError)


# ------------------------------------------------------------- status map
@pytest.mark.parametrize(
    ("status", "task", "expected"),
    [
        ("ACTIVE", None, "ACTIVE"),
        ("BUILD", "spawning", "BUILD"),
        ("SHUTOFF", None, "SHUTOFF"),
        ("SHUTOFF", "powering-on", "BUILD"),  # a start is under way: do not start it again
        ("ERROR", None, "ERROR"),
        ("HARD_REBOOT", "rebooting_hard", "BUILD"),
        ("VERIFY_RESIZE", None, "ACTIVE"),
        ("ACTIVE", "deleting", "DELETED"),
        ("SOFT_DELETED", None, "DELETED"),
        ("PAUSED", None, "SHUTOFF"),
    ],
)
def test_map_status(status: str, task: str | None, expected: str) -> None:
    assert map_status(status, task) == expected


# ----------------------------------------------------------------- config
def test_config_defaults_and_services() -> None:
    cfg = parse_config({"services": [{"name": "web", "flavor": "m1", "image": "img", "max_servers": 3}]})
    assert cfg.network == "none" and cfg.retry.attempts == 5 and cfg.service("web").max_servers == 3
    assert cfg.engines == "reactive"  # the registered set, resolved in engines.registry
    from zeroops.live import engine_set_spec

    assert [u.engine for u in engine_set_spec(cfg).engines or ()] == ["reactive_scaler", "crash_restarter",
                                                                      "min_floor_keeper"]  # keep_min_servers


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (
            {"services": [{"name": "web", "flavor": "m1", "image": "i", "replicas": 3}]},
            ["live.yaml", "services[0](web).replicas", "unknown field", "max_servers"],
        ),
        ({"services": [{"name": "web", "image": "i"}]}, ["services[0](web).flavor", "Field required"]),
        (
            {"services": [{"name": "web", "flavor": "m", "image": "i", "min_servers": 5, "max_servers": 2}]},
            ["max_servers (2) must be >= min_servers (5)"],
        ),
        (
            {"services": [{"name": "a", "flavor": "m", "image": "i"}, {"name": "a", "flavor": "m", "image": "i"}]},
            ["repeated: ['a']"],
        ),
        (
            {"services": [{"name": "a", "flavor": "m", "image": "i", "dependencies": ["db"]}]},
            ["unknown ['db']", "known services: ['a']"],
        ),
        ({"prometheus": {"url": "http://x", "querys": {}}}, ["prometheus.querys", "allowed fields", "queries"]),
        ({"retry": {"attempts": 0}}, ["retry.attempts", "greater than or equal to 1"]),
        (["not", "a", "mapping"], ["top level must be a mapping"]),
    ],
)
def test_config_errors_name_file_field_and_allowed_values(data: Any, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "live.yaml")
    for n in needles:
        assert n in str(ei.value), (n, str(ei.value))


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("cloud: mycloud\nservices:\n  - {name: web, flavor: m1.small, image: ubuntu}\n")
    assert load_config(good).cloud == "mycloud"


def test_shipped_devcloud_config_is_valid() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "devcloud" / "zeroops-live.yaml")
    assert {s.name for s in cfg.services} == {"web", "api"} and cfg.prometheus is not None


# ---------------------------------------------------------------- journal
def test_journal_keeps_open_entries_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.begin("r1", "create_server", "web", {"count": 2})
    j.begin("r2", "delete_server", "s-1", {"server_id": "s-1"})
    j.finish("r2", "done", "deleted")
    j.close()  # a crash after this point leaves r1 open
    j2 = Journal(path)
    (e,) = j2.open_entries()
    assert (e.request_id, e.kind, e.params) == ("r1", "create_server", {"count": 2})
    assert j2.get("r2").state == "done"
    j2.finish("r1", "adopted")
    assert j2.open_entries() == []


def test_journal_lock_keeps_a_second_controller_out(tmp_path: Path) -> None:
    from adapters.journal import JournalLocked

    first, second = Journal(tmp_path / "j.sqlite"), Journal(tmp_path / "j.sqlite")
    first.lock()
    with pytest.raises(JournalLocked, match="another zeroops live controller"):
        second.lock()
    first.close()
    second.lock()  # free again once the first controller is gone
    second.close()


# ------------------------------------------------------------ observe mode
class _NoWorld:
    """An adapter that fails the test if anything reaches it."""

    name = "no-world"

    def execute(self, action: Any) -> ActionResult:
        raise AssertionError(f"observe mode executed {action}")


def test_observe_gate_turns_everything_into_proposals() -> None:
    choke = ChokePoint(_NoWorld(), ObserveOnlyGate())  # type: ignore[arg-type]
    rec = choke.submit(0.0, "reactive-scaler", CreateServer(service="web", count=3, reason="cpu"))
    assert rec.outcome == "proposed" and rec.verdict.decision == "approval" and rec.verdict.rule == "observe-only"
    assert isinstance(make_gate("observe"), ObserveOnlyGate)
    with pytest.raises(ValueError, match="allowed: observe, act"):
        make_gate("yolo")


def test_act_mode_always_acts_within_the_safety_gate(tmp_path: Path) -> None:
    from control.safety.gate import SafetyGate

    default = make_gate("act", state=str(tmp_path / "state.db"))
    assert isinstance(default, SafetyGate) and default.config.rate_limit_actions == 100  # the design's limits
    f = tmp_path / "safety.yaml"
    f.write_text("RateLimitActions: 5\nHumanApproval: true\n")
    gate = make_gate("act", str(f), str(tmp_path / "state.db"))
    assert isinstance(gate, SafetyGate)
    v = gate.review(0.0, "reactive-scaler", CreateServer(service="web"), None)
    assert v.decision in ("approval", "deny")  # HumanApproval: nothing runs unattended
    f.write_text("RateLimitActionz: 5\n")
    with pytest.raises(ValueError, match="RateLimitActions"):
        make_gate("act", str(f), str(tmp_path / "state.db"))


@pytest.mark.parametrize(
    ("engines", "needles"),
    [
        ([{"kind": "magic"}], ["live.yaml: engines[0]: unknown engine 'magic'", "allowed: ", "crash_restarter, ",
                               "reactive_scaler"]),
        ([{"engine": "reactive_scaler", "targett": 0.5}],
         ["live.yaml: engines[0]: reactive_scaler.targett: unknown setting", "did you mean 'target'?"]),
        ([{"kind": "reactive_scaler", "params": {"target": 3}}],
         ["live.yaml: engines[0]: reactive_scaler.target: Input should be less than or equal to 1 (got 3)"]),
        ("reactiv", ["live.yaml: engines: unknown engine set 'reactiv'; allowed: static, reactive"]),
        ({"name": "mine", "engines": [{"engine": "crash_restarter", "retry_s": -1}]},
         ["live.yaml: engines.engines[0]: crash_restarter.retry_s: Input should be greater than or equal to 0"]),
    ],
)
def test_live_engine_set_errors_name_file_field_and_allowed_values(engines: Any, needles: list[str]) -> None:
    from zeroops.live import engine_set_spec

    cfg = parse_config({"engines": engines}, "live.yaml")
    with pytest.raises(ConfigError) as ei:
        engine_set_spec(cfg, "live.yaml")
    for n in needles:
        assert n in str(ei.value), (n, str(ei.value))


def test_live_engines_come_from_the_one_registry() -> None:
    from zeroops.live import make_engines

    # the older {kind, params} form, the {engine, settings} form, a set name and an inline set: one registry
    bare = {"keep_min_servers": False}  # else min_floor_keeper joins every set
    (scaler,) = make_engines(parse_config(bare | {"engines": [{"kind": "reactive_scaler", "params": {
        "target": 0.5, "cadence": 5}}]}))
    assert scaler.cadence == 5 and scaler.target == 0.5
    (scaler,) = make_engines(parse_config(bare | {"engines": [{"engine": "reactive_scaler", "target": 0.4}]}))
    assert scaler.target == 0.4
    assert make_engines(parse_config(bare | {"engines": "static"})) == []
    assert [e.name for e in make_engines(parse_config({"engines": "static"}))] == ["min-floor-keeper"]
    inline = {"name": "mine", "engines": [{"engine": "crash_restarter", "retry_s": 5}]}
    (restarter,) = make_engines(parse_config(bare | {"engines": inline}))
    assert restarter.retry == 5


def test_live_parser() -> None:
    parser = argparse.ArgumentParser(prog="zeroops")
    add_live_parser(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["live", "--cloud", "devcloud"])
    assert (args.live_command, args.mode, args.cloud) == ("run", "observe", "devcloud") and callable(args.fn)
    args = parser.parse_args(["live", "status", "--mode", "act", "--config", "x.yaml"])
    assert (args.live_command, args.mode, args.config) == ("status", "act", "x.yaml")
    assert MODES == ("observe", "act")
    with pytest.raises(SystemExit):
        parser.parse_args(["live", "--mode", "auto"])


def test_main_cli_wires_live() -> None:
    from zeroops.cli import build_parser

    args = build_parser().parse_args(["live", "status", "--cloud", "devcloud"])
    assert args.live_command == "status" and args.fn.__name__ == "live_main"
