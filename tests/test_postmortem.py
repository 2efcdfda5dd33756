"""Post-mortems match the run's records: one per incident, ordered timelines, figures from result.json/actions.csv.

Two short runs of the same faults (a server crash, then db pool exhaustion that
shows first at the api): the ``reactive`` baseline, and a test responder (with
the reactive scaler) that declares incidents with root-cause candidates, tags
its fixes with the incident id, escalates with a page, and once declares an
incident that does not exist.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from adapters.base import Action, CreateServer, DeclareIncident, Observation, Page, RebootServer
from control.runtime import AllowAll
from engines.baselines import ReactiveScaler
from reports.incident_records import load_live, load_run, read_actions_csv
from reports.postmortem import Event, build_postmortems, write_postmortems
from scenarios.results import write_run
from scenarios.runner import check_targets, run_scenario
from tests.builders import make_scenario
from tests.gaming import installed

FAULTS = [{"type": "server_crash", "at": 300, "service": "api"},
          {"type": "db_pool_exhaustion", "at": 1200, "service": "db", "severity": 3}]


class Responder:
    """Declares what the inventory and the api's errors show, fixes crashed servers, pages for the rest."""

    name = "test-responder"
    cadence = 15.0

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.open: set[str] = set()
        self.false_done = False

    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        out: list[Action] = []
        if not self.false_done and now >= 60:  # nothing is wrong yet: a false incident, and a fix for it
            self.false_done = True
            out += [DeclareIncident(incident_id="fp-1", components=("api",), severity="P3",
                                    root_causes=({"component": "api", "score": 0.2},)),
                    CreateServer(service="api", incident="fp-1", reason="phantom")]
        for s in obs.servers(status="ERROR"):
            if s.id in self.open:
                continue
            self.open.add(s.id)
            iid = f"inc-{next(self._ids)}"
            ev = {"server_status": "ERROR", "expected_impact": "restores one api server"}
            out += [DeclareIncident(incident_id=iid, components=(s.service or "", s.id), severity="P2",
                                    evidence={"server_status": "ERROR"},
                                    root_causes=({"component": s.id, "score": 0.9, "fault_class": "server_crash",
                                                  "evidence": ["server in ERROR"]},)),
                    RebootServer(server_id=s.id, hard=True, incident=iid, confidence=0.8, evidence=ev,
                                 alternatives=("migrate_server", "create_server"), reason="server in ERROR")]
        if obs.latest("error_ratio").get("api", 0.0) > 0.05 and "db-symptom" not in self.open:
            self.open.add("db-symptom")
            iid = f"inc-{next(self._ids)}"
            out += [DeclareIncident(incident_id=iid, components=("api",), severity="P1",
                                    root_causes=({"component": "api", "score": 0.6},
                                                 {"component": "db", "score": 0.4})),
                    Page(who="oncall", why="api errors, no runbook", incident_id=iid, severity="P1",
                         components=("api",), incident=iid)]
        return out


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pm")
    scn = make_scenario(name="pm", duration=2400, faults=FAULTS)
    with installed("responder", lambda: [ReactiveScaler(), Responder()]):
        for engines in ("reactive", "responder"):
            r = run_scenario(scn, engines, gate=AllowAll(), audit_path=root / "pm" / engines / "audit.db")
            check_targets(r)
            write_run(r, root)
    return root


def _result(out: Path, engines: str) -> dict[str, Any]:
    return json.loads((out / "pm" / engines / "result.json").read_text())


def _pms(out: Path, engines: str) -> dict[str, Any]:
    return {p.id: p for p in build_postmortems(load_run(out / "pm" / engines))}


def test_a_postmortem_file_per_incident_and_an_index(out: Path) -> None:
    for engines in ("reactive", "responder"):
        res = _result(out, engines)
        false = [d["id"] for d in res["declarations"] if d["verdict"] == "false"]
        files = sorted(p.stem for p in (out / "pm" / engines / "postmortems").glob("*.md"))
        assert files == sorted([i["id"] for i in res["incidents"]] + false + ["index"])
        index = (out / "pm" / engines / "postmortems" / "index.md").read_text()
        for i in res["incidents"]:
            assert f"[{i['id']}]({i['id']}.md)" in index
    assert _result(out, "responder")["declarations"][0]["verdict"] == "false"


def test_timeline_runs_from_onset_to_resolution_in_time_order(out: Path) -> None:
    for engines in ("reactive", "responder"):
        for inc in _result(out, engines)["incidents"]:
            text = (out / "pm" / engines / "postmortems" / f"{inc['id']}.md").read_text()
            rows = re.findall(r"^\| t=([0-9.e+]+) s \(\S+\) \| (.*) \|$", text, flags=re.M)
            times = [float(t) for t, _ in rows]
            assert times == sorted(times) and times[0] == inc["start"] and times[-1] == inc["end"]
            assert rows[0][1].startswith("Onset") and rows[-1][1].startswith(f"Resolved by {inc['resolved_by']}")
            if inc["detected_at"] is not None:
                det = next(k for k, (_, e) in enumerate(rows) if e.startswith("Detected"))
                assert float(rows[det][0]) == inc["detected_at"]


def _failed(ts: pd.DataFrame, svc: str, a: float, b: float) -> float:
    total = 0.0
    for t, row in ts.iterrows():
        lo, hi = max(float(t), a), min(float(t) + 60, b)
        if hi > lo:
            total += (hi - lo) * row[f"request_rate:{svc}"] * row[f"error_ratio:{svc}"]
    return total


def test_figures_are_the_records(out: Path) -> None:
    d = out / "pm" / "reactive"
    res, acts = _result(out, "reactive"), read_actions_csv(d / "actions.csv")
    ts = pd.read_csv(d / "timeseries.csv", index_col=0)
    pms = _pms(out, "reactive")
    for inc in res["incidents"]:
        pm, f = pms[inc["id"]], pms[inc["id"]].figures
        for k in ("start", "end", "ttd_s", "ttr_s", "ttm_s", "user_impact", "true_severity", "resolved_by",
                  "root_component", "root_cause_rank", "paged_at"):
            assert f[k] == inc[k], k
        # api calls db: the user-facing service is api, and its failed requests are summed from timeseries.csv
        assert f["user_facing"] == ["api"]
        assert f["failed_user_requests"] == pytest.approx(_failed(ts, "api", inc["start"], inc["end"]))
        spend = ts["spend_total"].dropna()
        assert f["cost"] == pytest.approx(np.interp(inc["end"], spend.index, spend) -
                                          np.interp(inc["start"], spend.index, spend))
        breaches = [b for b in res["slo_breaches"] if b["service"] == "api"]
        assert f["slo_minutes_user"] == pytest.approx(sum(
            max(0.0, min(b["end"], inc["end"]) - max(b["start"], inc["start"])) for b in breaches) / 60)
        md = pm.markdown()
        assert f"{100 * inc['user_impact']:.3f} %" in md and f"{f['failed_user_requests']:,.0f}" in md
        # every decision in the timeline is a row of actions.csv with its verdict and outcome
        for a in pm.actions:
            row = next(x for x in acts if x["seq"] == a["seq"])
            assert f"#{a['seq']} `{row['engine']}` {row['kind']} `{row['target']}`: gate {row['verdict']}" in md
            assert f"→ {row['outcome']}" in md
    crash = pms["F001-server_crash"]
    reboot = next(a for a in acts if a["kind"] == "reboot_server")
    assert reboot["seq"] in crash.figures["decisions"]  # untagged, tied by component and time
    assert all(a["seq"] not in crash.figures["decisions"] for a in acts if a["at"] > res["incidents"][0]["end"])


def test_automation_and_human_split(out: Path) -> None:
    res = {i["id"]: i for i in _result(out, "reactive")["incidents"]}
    pms = _pms(out, "reactive")
    crash, db = pms["F001-server_crash"], pms["F002-db_pool_exhaustion"]
    assert res["F001-server_crash"]["resolved_by"] == "automation"
    assert any("crash-restarter" in line for line in crash.automation)
    assert any("Automation resolved it" in line for line in crash.automation)
    assert not any("fixed it" in line for line in crash.human)
    assert res["F002-db_pool_exhaustion"]["resolved_by"] == "human"
    assert any("human fixed it" in line for line in db.human)
    assert not any("Automation resolved" in line for line in db.automation)
    assert any("Missed detection" in x for x in db.follow_ups)
    assert any(x.startswith("- A human fixed it") for x in db.follow_ups)


def test_declared_incidents_root_cause_decisions_and_follow_ups(out: Path) -> None:
    res = {i["id"]: i for i in _result(out, "responder")["incidents"]}
    pms = _pms(out, "responder")
    crash, db = pms["F001-server_crash"], pms["F002-db_pool_exhaustion"]
    assert res["F001-server_crash"]["root_cause_rank"] == 1 and res["F001-server_crash"]["resolved_by"] == "automation"
    md = crash.markdown()
    root = res["F001-server_crash"]["root_component"]
    assert f"`{root}` ← true root" in md and "server in ERROR" in md
    declared = [e for e in crash.timeline if e.stage == "declaration"]
    assert len(declared) == 1 and declared[0].text.endswith("scored matched")
    tagged = [a for a in crash.actions if a["kind"] == "reboot_server"]
    assert tagged and tagged[0]["tied_by"] == "incident"
    assert "expected impact: restores one api server" in md
    assert "alternatives considered: migrate_server, create_server" in md
    assert not any("Missed detection" in x or "Root-cause" in x for x in crash.follow_ups)
    # db exhaustion, declared at its caller: the true root ranked second; escalated by a page; a human fixed it
    assert res["F002-db_pool_exhaustion"]["root_cause_rank"] == 2
    assert any("ranked the true root `db` 2" in x for x in db.follow_ups)
    assert any(x.startswith("- Escalated to a human") for x in db.follow_ups)
    assert any("human fixed it" in x for x in db.human)


def test_false_incident_gets_a_short_postmortem(out: Path) -> None:
    pm = _pms(out, "responder")["fp-1"]
    assert pm.kind == "false" and "matched it to no ground-truth fault" in pm.summary[0]
    assert any("1 world-changing decision(s)" in x and "create_server" in x for x in pm.follow_ups)
    assert [e.stage for e in sorted(pm.timeline, key=Event.key)] == ["declaration", "action"]


def test_live_postmortems_from_the_audit_trail_say_what_is_unknown(out: Path, tmp_path: Path) -> None:
    from adapters.base import IncidentInfo
    from adapters.journal import Journal

    journal = Journal(tmp_path / "journal.sqlite")
    journal.put_incident(IncidentInfo("inc-1", ("api",), "P1", "resolved", 600.0, "automation", resolved_at=650.0))
    journal.put_incident(IncidentInfo("board-only", ("db",), "P3", "open", 700.0, "automation"))
    journal.close()
    run = load_live(out / "pm" / "responder" / "audit.db", tmp_path / "journal.sqlite")
    pms = {p.id: p for p in build_postmortems(run)}
    assert {"fp-1", "inc-1", "inc-2"} <= set(pms)
    inc = pms["inc-1"]
    assert inc.figures["resolved_at"] == 650.0 and inc.figures["declared_severity"] == "P1"
    md = inc.markdown()
    assert "unknown (live: no ground truth)" in md and "expected impact: restores one api server" in md
    assert "only on the incident board" in pms["board-only"].summary[-1] and pms["board-only"].figures["status"] == "open"


def test_write_postmortems_replaces_stale_files(out: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "run"
    shutil.copytree(out / "pm" / "reactive", d)
    (d / "postmortems" / "stale.md").write_text("old")
    paths = write_postmortems(d)
    assert not (d / "postmortems" / "stale.md").exists() and all(p.exists() for p in paths)


def _act(seq: int, kind: str, outcome: str = "executed", **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "at": 100.0 + seq, "engine": "e", "kind": kind, "target": kw.pop("target", "db"),
            "params": kw.pop("params", {}), "reason": kw.pop("reason", ""), "confidence": 1.0, "incident": "i-1",
            "verdict": kw.pop("verdict", "allow"), "rule": kw.pop("rule", ""), "outcome": outcome,
            "detail": kw.pop("detail", ""), "error": kw.pop("error", None), "evidence": kw.pop("evidence", {}),
            "alternatives": [], "approved_by": kw.pop("approved_by", [])}


def test_follow_ups_name_failures_denials_verification_and_escalation() -> None:
    from reports.postmortem import people, problem_follow_ups

    acts = [_act(1, "restart_service", "failed", error="Conflict", detail="busy"),
            _act(2, "delete_server", "denied", rule="max-delete", target="srv-1"),
            _act(3, "update_incident", target="i-1", params={"note": "verification failed: errors still 20%"}),
            _act(4, "page", target="oncall", params={"why": "runbook r could not fix db: verification did not "
                                                             "hold within 60 s"}),
            _act(5, "page", target="oncall", params={"why": "open for 600 s"}),
            _act(6, "restart_service", verdict="approval", rule="week1", approved_by=["ana"]),
            _act(7, "update_incident", target="i-1", params={"note": "runbook r verified"})]
    fu = problem_follow_ups(acts)
    assert any("#1 restart_service `db` failed (Conflict: busy)" in x for x in fu)
    assert any("denied #2 delete_server `srv-1` (rule max-delete)" in x for x in fu)
    assert any(x.startswith("- Verification failed at") and "#3" in x for x in fu)
    assert any(x.startswith("- Verification failed, escalated to a human") and "#4" in x for x in fu)
    assert any(x.startswith("- Escalated to a human") and "#5" in x for x in fu)
    assert not any("#7" in x for x in fu) and len(fu) == 5
    auto, human = people(acts)
    assert [x.split(" (#")[1][:1] for x in human[:2]] == ["4", "5"] and human[0].startswith("- Paged `oncall` at")
    assert human[2:] == ["- approval by ana required by the safety gate (rule week1) for #6 restart_service `db`: "
                     "executed"]
    assert any(x.startswith("- `e`: 5 executed") for x in auto)


def test_an_open_incident_without_timeseries_says_what_is_missing() -> None:
    from reports.incident_records import RunRecords

    inc = {"id": "F1", "type": "memory_leak", "start": 100.0, "end": None, "detected_at": None,
           "detected_by": None, "resolved_by": None, "ttd_s": None, "ttr_s": None, "services": ["api"],
           "servers": [], "hypervisors": [], "zones": [], "root_cause": "memory_leak", "root_component": "api",
           "declared_id": None, "true_severity": "P1", "user_impact": 0.1, "root_cause_rank": None,
           "mitigated_at": None, "paged_at": None, "missed_deadline": True, "chaos": False}
    run = RunRecords("s/e", {"duration_s": 900.0, "incidents": [inc], "declarations": [], "slo_breaches": []}, [])
    pm = build_postmortems(run)[0]
    last = sorted(pm.timeline, key=Event.key)[-1]
    assert (last.at, last.text) == (900.0, "Still open at the end of the run")
    assert pm.figures["cost"] is None and pm.figures["failed_requests"] == {"api": None}
    assert any(x.startswith("- Unresolved at the end of the run") for x in pm.follow_ups)
    assert any("P0/P1" in x for x in pm.follow_ups) and any("Missed detection" in x for x in pm.follow_ups)
    assert "Spend during the incident: unknown (no `spend_total` in timeseries.csv)" in pm.markdown()
