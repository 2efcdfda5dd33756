"""The real-Alertmanager peer: the raw alert stream kept with each run, its replay, and incident coverage.

Tests marked ``alertmanager`` start the real binary (Debian's ``prometheus-alertmanager``) and skip with
a reason when it is absent; the rest need nothing outside Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from scenarios.results import write_run
from scenarios.runner import run_scenario
from tests.builders import make_scenario
from zeroops.alerting_peer import Replay, Sent, am_sent, coverage, pipeline_sent
from zeroops.alerting_replay import (
    Episode,
    PeerInputError,
    Timeline,
    episodes,
    group_lifetimes,
    load_alerts,
    posts,
    replay_into,
)
from zeroops.alertmanager import Alertmanager, WebhookReceiver, find_binary, production_config
from zeroops.cli import main

needs_am = pytest.mark.skipif(find_binary() is None, reason="alertmanager binary not installed "
                              "(apt-get install prometheus-alertmanager; .ci/run installs it)")


def _alerts(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([{"at": at, "state": st, "name": name, "severity": sev,
                          "labels": json.dumps({"alertname": name, **labels}), "starts_at": at, "value": 1.0,
                          "fingerprint": f"{name}:{labels.get('server') or labels.get('service')}", "paged": False}
                         for at, st, name, sev, labels in rows])


# ------------------------------------------------------------------ results: alerts.csv
@pytest.fixture(scope="module")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    scn = make_scenario(duration=1800, faults=[{"type": "server_crash", "at": 300, "service": "api"}])
    r = run_scenario(scn, "static")
    return write_run(r, out)


def test_write_run_keeps_the_raw_alert_stream(crash_run: Path) -> None:
    df = load_alerts(crash_run / "alerts.csv")
    result = json.loads((crash_run / "result.json").read_text())
    assert list(df.columns) == ["at", "state", "name", "severity", "labels", "starts_at", "value", "fingerprint",
                                "paged"]
    assert (df["state"] == "firing").sum() == result["metrics"]["alerts_raw"] > 0
    assert df["paged"].sum() == result["metrics"]["pages_alerts"]  # the static route: raw alerts page the human
    assert df["at"].is_monotonic_increasing
    assert json.loads(df["labels"].iloc[0])["service"] == "api"
    assert result["dependencies"] == {"api": ["db"], "db": []}


def test_bad_alerts_file_is_a_one_line_error_naming_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(PeerInputError, match=r"alerts\.csv: missing"):
        load_alerts(tmp_path / "alerts.csv")
    pd.DataFrame({"at": [1.0]}).to_csv(tmp_path / "alerts.csv", index=False)
    with pytest.raises(PeerInputError, match=r"alerts\.csv: missing column\(s\) state"):
        load_alerts(tmp_path / "alerts.csv")
    assert main(["alerting", "compare", str(tmp_path / "nowhere")]) in (2, 4)


# ------------------------------------------------------------------ the stream as Prometheus sends it
def test_episodes_drop_repeats_and_keep_open_alerts_open() -> None:
    df = _alerts([(10, "firing", "A", "critical", {"service": "api"}), (310, "firing", "A", "critical", {"service": "api"}),
                  (400, "resolved", "A", "critical", {"service": "api"}), (500, "firing", "A", "critical", {"service": "api"}),
                  (20, "firing", "B", "warning", {"service": "db", "server": "srv-1"})])
    eps = episodes(df)
    assert [(e.fingerprint, e.start, e.end) for e in eps] == [("A:api", 10, 400), ("B:srv-1", 20, None),
                                                              ("A:api", 500, None)]
    assert eps[0].labels == {"alertname": "A", "service": "api", "severity": "critical"}


def test_posts_resend_firing_alerts_every_minute_and_post_the_resolution() -> None:
    e = Episode("A:api", {"alertname": "A"}, 100.0, 250.0)
    sent = posts([e], tail_end=1000.0)
    assert [t for t, _ in sent] == [100.0, 160.0, 220.0, 247.5]  # a resolution is posted half a scrape early
    assert sent[1][1][0]["ends"] == 160.0 + 240.0  # EndsAt four resends ahead, as Prometheus sets it
    assert sent[-1][1][0]["ends"] == 247.5  # resolved: EndsAt is the resolution


def test_a_resolution_at_exactly_group_wait_is_seen_by_that_flush() -> None:
    # fired at 0, resolved at the scrape at 30 s = group_wait: posted before the flush, never notified
    ((t0, _), (t1, batch)) = posts([Episode("A", {}, 0.0, 30.0)], tail_end=500.0)
    assert t0 == 0.0 and t1 < 30.0 and batch[0]["ends"] == t1


def test_timeline_skips_quiet_stretches_but_keeps_time_for_the_last_flush() -> None:
    eps = [Episode("A", {}, 100.0, 200.0), Episode("B", {}, 10_000.0, None)]
    line = Timeline.of(eps, tail_end=12_000.0, hold=400.0)
    assert line.segments.tolist() == [[100.0, 600.0], [10_000.0, 12_000.0]]
    assert line.length == 2500.0
    assert line.replay_time(5000.0) == line.replay_time(10_000.0) == 500.0  # a gap costs no replay time
    for t in (100.0, 350.0, 10_000.0, 11_500.0):
        assert line.sim_time(line.replay_time(t)) == pytest.approx(t)


def test_a_group_that_emptied_starts_a_new_life_only_after_alertmanager_would_drop_it() -> None:
    def ep(fp: str, start: float, end: float | None, service: str = "cache") -> Episode:
        return Episode(fp, {"alertname": "HighCPU", "service": service}, start, end)

    # created at 0: flushes at 30, 330, 630 ...; empty at the first flush after every alert resolved, gone 30 s later
    eps = [ep("a", 0, 50), ep("b", 200, 250), ep("a", 400, 420), ep("b", 440, 445), ep("c", 500, None),
           ep("a", 2000, 2100), ep("x", 0, 10, service="db")]
    lives = {(e.fingerprint, e.start): e.labels["zeroops_group_life"] for e in group_lifetimes(eps)}
    assert lives[("a", 0)] == lives[("b", 200)] == "1"  # b joined before the flush at 330 emptied the group
    assert lives[("a", 400)] == "2"  # 400 >= 330 + 30: the old group was gone
    assert lives[("b", 440)] == "2"  # life 2 emptied at its flush at 430, but is dropped only at 460
    assert lives[("c", 500)] == "2"  # b resolved at 445, after that flush: the group is not empty before 730
    assert lives[("a", 2000)] == "2"  # c never resolved: the group never emptied
    assert lives[("x", 0)] == "1"  # another service, another group


# ------------------------------------------------------------------ incidents each side reached
INCIDENT = {"id": "F1", "start": 1000.0, "end": 2000.0, "services": ["db"], "servers": [], "hypervisors": [],
            "zones": [], "resolved_by": "human"}


def test_a_notification_about_a_caller_covers_its_dependency_and_timing_matters() -> None:
    deps = {"api": ["db"], "db": []}
    assert coverage([INCIDENT], [Sent(1500.0, {"api"})], deps, 3600.0).notified == ["F1"]
    assert coverage([INCIDENT], [Sent(1500.0, {"web"})], deps, 3600.0).missed == ["F1"]
    assert coverage([INCIDENT], [Sent(900.0, {"db"})], deps, 3600.0).missed == ["F1"]  # before the onset
    assert coverage([INCIDENT], [Sent(2060.0, {"db"})], deps, 3600.0).notified == ["F1"]  # within the grace
    fixed = INCIDENT | {"resolved_by": "automation"}
    cov = coverage([fixed], [], deps, 3600.0)
    assert cov.missed == [] and cov.auto_resolved_silently == ["F1"]


def test_resolved_only_notifications_tell_nobody_to_act() -> None:
    rep = Replay(10.0, [(10.0, {"status": "resolved", "alerts": [{"status": "resolved", "labels": {"service": "db"}}]}),
                        (20.0, {"status": "firing", "alerts": [{"status": "firing", "labels": {"service": "api"}},
                                                               {"status": "resolved", "labels": {"service": "db"}}]})],
                 1.0, 0.0, 2)
    assert [(s.at, s.about) for s in am_sent(rep)] == [(20.0, {"api"})]


def test_pipeline_counts_executed_pages_and_notifies_and_alert_pages(tmp_path: Path) -> None:
    pd.DataFrame([
        {"at": 5.0, "kind": "page", "target": "oncall", "outcome": "executed",
         "params": json.dumps({"who": "oncall", "incident_id": "INC-1", "components": ["api"]})},
        {"at": 6.0, "kind": "notify", "target": "db", "outcome": "executed", "params": "{}"},
        {"at": 7.0, "kind": "page", "target": "oncall", "outcome": "denied", "params": "{}"},
        {"at": 8.0, "kind": "restart_service", "target": "db", "outcome": "executed", "params": "{}"},
    ]).to_csv(tmp_path / "actions.csv", index=False)
    alerts = _alerts([(9.0, "firing", "A", "critical", {"service": "cache"})])
    alerts.loc[0, "paged"] = True
    result = {"declarations": [{"id": "INC-1", "components": ["db", "srv-7"]}]}
    sent = pipeline_sent(tmp_path, result, alerts)
    assert [(s.at, s.source, s.about) for s in sent] == [
        (5.0, "page", {"oncall", "api", "db", "srv-7"}), (6.0, "notify", {"db"}), (9.0, "alert-page", {"cache"})]


# ------------------------------------------------------------------ the real Alertmanager
K = 100.0  # group_wait 0.3 s, group_interval 3 s of wall time


@pytest.fixture
def am() -> Iterator[tuple[Alertmanager, WebhookReceiver]]:
    if find_binary() is None:
        pytest.skip("alertmanager binary not installed (apt-get install prometheus-alertmanager; .ci/run installs it)")
    rx = WebhookReceiver()
    proc = Alertmanager(production_config(rx.url, K))  # waits for /-/ready
    yield proc, rx
    proc.close()
    rx.close()


@pytest.mark.alertmanager
def test_alertmanager_groups_waits_and_inhibits_as_documented(am: tuple[Alertmanager, WebhookReceiver]) -> None:
    proc, rx = am
    api = {"service": "api"}
    df = _alerts([(0, "firing", "HighErrorRate", "critical", api),
                  (0, "firing", "SlowResponses", "warning", api),  # inhibited: a critical fires on api
                  (100, "firing", "HighErrorRate", "critical", api | {"server": "srv-1"}),  # joins the group
                  (400, "resolved", "HighErrorRate", "critical", api),
                  (400, "resolved", "SlowResponses", "warning", api),
                  (400, "resolved", "HighErrorRate", "critical", api | {"server": "srv-1"})])
    rep = replay_into(proc.port, rx, episodes(df), tail_end=800.0, k=K)
    got = [(t, p["status"], sorted(a["labels"].get("server", "-") for a in p["alerts"])) for t, p in rep.notifications]
    assert [(s, a) for _, s, a in got] == [("firing", ["-"]),  # the group's first flush, after group_wait
                                           ("firing", ["-", "srv-1"]),  # the new alert, one group_interval later
                                           ("resolved", ["-", "srv-1"])]  # the resolution, at the next interval
    times = [t for t, _, _ in got]
    assert times[0] == pytest.approx(30.0, abs=40.0)
    assert times[1] == pytest.approx(330.0, abs=40.0)
    assert times[2] == pytest.approx(630.0, abs=40.0)
    assert not any(a["labels"]["alertname"] == "SlowResponses" for _, p in rep.notifications for a in p["alerts"])
    assert rep.max_lag_s < 40.0  # 0.4 s of wall time: a loaded CI machine


@pytest.mark.alertmanager
@needs_am
def test_compare_cli_on_a_real_run(crash_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = crash_run.parent.parent
    assert main(["alerting", "compare", str(root), "--k", "200"]) == 0
    assert "| small | static |" in capsys.readouterr().out
    (row,) = json.loads((root / "alerting_comparison.json").read_text())["runs"]
    assert (root / "alerting_comparison.md").read_text().startswith("| scenario | engines |")
    # one InstanceDown alert, fired once and resolved: one firing and one resolved notification
    assert (row["raw_alerts"], row["raw_alert_episodes"]) == (4, 1)
    assert (row["am_notifications"], row["am_notifications_firing"]) == (2, 1)
    assert row["am_incidents_missed"] == row["pipeline_incidents_missed"] == 0
    assert row["pipeline_notifications"] == 4  # static: every raw firing paged the human
