"""The runbook format: one-line errors naming file, field and what is allowed; the built-in library."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.ops.types import FAULT_CLASSES
from engines.runbooks import BUILTIN, RunbookError, RunbookLibrary, read_paths
from engines.runbooks.loading import parse_runbook
from engines.runbooks.schema import Condition
from twin.faults import CATALOG

GOOD = {"name": "ok", "fault_classes": ["server_crash"],
        "steps": [{"action": "reboot_server", "params": {"server_id": "{server}", "hard": True}}],
        "verify": {"conditions": ["error_ratio < 0.01 for 30s"]}}


def errors_of(data: dict) -> list[str]:
    with pytest.raises(RunbookError) as e:
        parse_runbook(data, "my.yaml")
    lines = str(e.value).splitlines()
    assert all(line.startswith("my.yaml: ") for line in lines), lines
    return lines


@pytest.mark.parametrize(("change", "expect"), [
    ({"steps": [{"action": "reboot"}]}, ["steps[0].action", "unknown action 'reboot'", "reboot_server"]),
    ({"steps": [{"action": "reboot_server", "params": {"server": "{server}"}}]},
     ["steps[0]", "no parameter 'server'", "allowed: server_id, hard"]),
    ({"steps": [{"action": "create_server"}]}, ["steps[0]", "create_server needs service"]),
    ({"steps": [{"action": "reboot_server", "params": {"server_id": "{srv}"}}]},
     ["steps[0]", "unknown variable {srv}", "server"]),
    ({"fault_classes": ["oom"]}, ["fault_classes", "unknown fault class 'oom'", "memory_leak"]),
    ({"verify": {"conditions": ["errors < 1"]}}, ["verify.conditions", "unknown metric 'errors'", "error_ratio"]),
    ({"verify": {"conditions": ["error_ratio about 1"]}}, ["verify.conditions", "cannot read condition"]),
    ({"verify": {"conditions": ["servers UP >= 1"]}}, ["unknown server status 'UP'", "ACTIVE"]),
    ({"timeout": "soon"}, ["timeout", "expected a duration like 30s"]),
    ({"escalate": {"who": "x", "pager": 1}}, ["escalate", "unknown field 'pager'", "who, severity, page"]),
    ({"colour": "red"}, ["runbook", "unknown field 'colour'", "fault_classes"]),
    ({"fault_classes": []}, ["needs fault_classes and/or match"]),
    ({"steps": [{"action": "migrate_server", "for_each": "worst_server", "params": {"server_id": "{server}"}}]},
     ["for_each worst_server needs 'by"]),
    ({"match": {"component_kind": "rack"}}, ["match.component_kind", "rack", "service"]),
])
def test_each_error_is_one_line_with_file_field_and_what_is_allowed(change: dict, expect: list[str]) -> None:
    lines = errors_of({**GOOD, **change})
    assert len(lines) == 1, lines
    for piece in expect:
        assert piece in lines[0], (piece, lines[0])


def test_several_errors_give_one_line_each() -> None:
    lines = errors_of({**GOOD, "fault_classes": ["oom"], "timeout": "soon", "colour": 1})
    assert len(lines) == 3


def test_conditions_parse() -> None:
    c = Condition.parse("latency_p95_ms <= 1.5*baseline for 2m")
    assert (c.metric, c.op, c.rhs, c.value, c.for_s) == ("latency_p95_ms", "<=", "baseline", 1.5, 120.0)
    c = Condition.parse("servers ACTIVE >= min")
    assert (c.metric, c.status, c.rhs) == (None, "ACTIVE", "min")


def test_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nfault_classes: [overload]\nsteps:\n"
                                     "  - {action: create_server, params: {service: '{service}'}}\n")
    (tmp_path / "b.yaml").write_text("name: a\nfault_classes: [overload]\nsteps: [{action: restart_service,"
                                     " params: {service: '{service}'}}]\n")
    (tmp_path / "c.yaml").write_text("name: [unclosed\n")
    with pytest.raises(RunbookError) as e:
        read_paths([tmp_path])
    msg = str(e.value).splitlines()
    assert any("b.yaml: name: 'a' is already used by" in m for m in msg)
    assert any("c.yaml" in m and "invalid YAML" in m for m in msg)
    (tmp_path / "c.yaml").unlink()
    (tmp_path / "b.yaml").unlink()
    lib = RunbookLibrary.load([tmp_path])
    assert lib.get("a").steps[0].action == "create_server"
    assert len(lib) > 10  # the built-in library, plus the user's


def test_a_users_runbook_replaces_a_builtin_of_the_same_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.yaml").write_text("name: overload-scale-out\nfault_classes: [overload]\nsteps:\n"
                                        "  - {action: restart_service, params: {service: '{service}'}}\n")
    monkeypatch.setenv("ZEROOPS_RUNBOOKS", str(tmp_path))
    assert RunbookLibrary.load().get("overload-scale-out").steps[0].action == "restart_service"


def test_the_library_validates_and_covers_the_whole_catalog() -> None:
    lib = RunbookLibrary.load([], builtin=True)
    assert {p.name for p in BUILTIN.glob("*.yaml")} and len(lib) >= len(FAULT_CLASSES)
    covered = {c for rb in lib for c in rb.fault_classes}
    assert covered == set(FAULT_CLASSES)
    for rb in lib:
        assert rb.description and rb.verify is not None, rb.name


@pytest.mark.parametrize("fault", sorted(CATALOG))
def test_the_first_runbook_of_each_fault_uses_a_verb_that_fixes_it(fault: str) -> None:
    """Cross-check against the twin's catalog: the preferred runbook does the fix, not only a relief."""
    lib = RunbookLibrary.load()
    books = sorted((rb for rb in lib if fault in rb.fault_classes), key=lambda rb: -rb.priority)
    verbs = {s.action for s in books[0].steps}
    assert verbs & set(CATALOG[fault].fixes), (books[0].name, verbs, CATALOG[fault].fixes)
