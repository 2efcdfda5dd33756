"""/metrics speaks the Prometheus exposition format, its figures follow the audit trail, and the Grafana
dashboard only names metrics the server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "zeroops.json"


def _families(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    res = client.get("/metrics", headers=headers)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(res.text)}


def test_exposition_has_the_zero_ops_metrics(twin: Any, headers: Any) -> None:
    client, state = twin
    fams = _families(client, headers["viewer"])
    for name in ("zeroops_automation_rate", "zeroops_human_intervention_rate", "zeroops_mttd_seconds",
                 "zeroops_mttr_seconds", "zeroops_availability_ratio", "zeroops_change_success_rate",
                 "zeroops_false_alert_rate", "zeroops_alert_suppression_rate", "zeroops_decisions",
                 "zeroops_human_interventions", "zeroops_approvals_pending"):
        assert name in fams, name
    by_outcome = {s.labels["outcome"] + "/" + s.labels["verdict"]: s.value for s in fams["zeroops_decisions"].samples
                  if s.name == "zeroops_decisions_total"}
    trail = {}
    for e in state.reader(flush=True).list():
        k = f"{e.body['outcome']}/{e.body['decision']}"
        trail[k] = trail.get(k, 0) + 1
    # measured from the trail: every count the exposition gives is at most what the trail holds now (the loop runs)
    assert by_outcome and all(0 < v <= trail.get(k, 0) for k, v in by_outcome.items()), (by_outcome, trail)
    pending = fams["zeroops_approvals_pending"].samples[0].value
    assert pending >= 0


def test_metrics_move_with_people_acts(twin: Any, headers: Any) -> None:
    client, _ = twin
    before = client.get("/api/zeroops/operations/metrics", headers=headers["viewer"]).json()["human_interventions"]
    pending = client.get("/api/zeroops/approvals", headers=headers["viewer"]).json()
    assert pending
    client.post(f"/api/zeroops/approvals/{pending[0]['id']}/deny", headers=headers["approver"], json={"comment": "no"})
    import time

    time.sleep(0.6)  # past the 0.5 s figure cache
    after = client.get("/api/zeroops/operations/metrics", headers=headers["viewer"]).json()["human_interventions"]
    assert after == before + 1


def test_grafana_dashboard_uses_exposed_metrics(twin: Any, headers: Any) -> None:
    client, _ = twin
    fams = _families(client, headers["viewer"])
    exposed = set(fams) | {n + "_total" for n, f in fams.items() if f.type == "counter"}
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    names = {m for e in exprs for m in re.findall(r"\bzeroops_[a-z_]+", e)}
    assert names and names <= exposed, names - exposed


def test_incident_times_from_the_board_and_alerts() -> None:
    from adapters.base import Alert, IncidentInfo
    from zeroops.serve.figures import Tally, incident_times

    def alert(svc: str, start: float) -> Alert:
        return Alert("HighErrors", "critical", {"service": svc}, "firing", start, start + 30, 1.0, f"HighErrors:{svc}")

    inc = [IncidentInfo("INC-1", ("api", "db"), "P1", "resolved", 10000.0, "automation",
                        root_causes=({"component": "api", "score": 0.9},), resolved_at=10300.0),
           IncidentInfo("INC-2", ("db",), "P2", "open", 15000.0, "automation")]
    alerts = [alert("api", 9940.0), alert("api", 6000.0),  # the second is older than the hour before: not this one
              alert("db", 9900.0),  # db is not INC-1's top root cause
              alert("db", 14990.0)]
    ttd, ttr = incident_times(inc, alerts)
    assert ttd == [60.0, 10.0] and ttr == [300.0]

    t = Tally()
    base = {"decision": "allow", "rule": "within-limits", "outcome": "executed"}
    t.add({**base, "engine": "scaler", "kind": "create_server"})
    t.add({**base, "engine": "scaler", "kind": "notify"})  # record-only: no automated change
    t.add({**base, "engine": "executor", "kind": "create_server", "decision": "approval", "approved_by": ["a"]})
    t.add({**base, "engine": "api:alice", "kind": "approval_approve", "rule": "api"})
    t.add({**base, "engine": "api:team", "kind": "submit_request", "rule": "api"})  # a request, no intervention
    snap = t.snapshot()
    assert snap["automation_rate"] == 0.5 and snap["human_interventions"] == 1
    assert snap["human_intervention_rate"] == 0.5 and snap["decisions_total"] == 5
