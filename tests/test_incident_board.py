"""The incident board: what DeclareIncident/UpdateIncident/ResolveIncident keep, and the errors they raise."""

from __future__ import annotations

import pytest

from adapters.base import Conflict, DeclareIncident, NotFound, Page, ResolveIncident, UpdateIncident
from adapters.sim import SimAdapter
from control.runtime import ChokePoint
from tests.builders import make_scenario
from twin.world import World


def test_declare_update_resolve_through_the_choke_point() -> None:
    w = World(make_scenario(duration=600))
    a = SimAdapter(w)
    choke = ChokePoint(a)
    w.run(until=120)
    rc = ({"component": "db", "score": 0.8, "evidence": "pool_util 1.0"}, {"component": "api", "score": 0.2})
    assert choke.submit(120, "e", DeclareIncident(incident_id="i1", components=("api",), severity="P2",
                                                   root_causes=rc)).outcome == "executed"
    dup = choke.submit(120, "e", DeclareIncident(incident_id="i1", components=("api",)))
    assert dup.outcome == "failed" and dup.error == "Conflict"
    assert choke.submit(120, "e", UpdateIncident(incident_id="nope", note="x")).error == "NotFound"
    assert choke.submit(121, "e", Page(incident_id="i1", components=("api",))).outcome == "executed"
    (inc,) = a.incidents()
    assert (inc.severity, inc.status, inc.pages, inc.confidence) == ("P2", "open", 1, 0.8)
    assert inc.root_causes[0]["component"] == "db" and inc.declared_by == "automation"
    assert w.incident_board is a.board


def test_board_errors() -> None:
    w = World(make_scenario(duration=600))
    a = SimAdapter(w)
    with pytest.raises(Conflict):
        a.execute(DeclareIncident(incident_id="empty", components=()))
    with pytest.raises(Conflict):
        a.execute(DeclareIncident(incident_id="bad", components=("api",), severity="P9"))  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        a.execute(DeclareIncident(incident_id="rc", components=("api",), root_causes=({"score": 1},)))
    a.execute(DeclareIncident(incident_id="i", components=("api",)))
    a.execute(UpdateIncident(incident_id="i", severity="P1", status="mitigated", components=("api", "db")))
    a.execute(ResolveIncident(incident_id="i", postmortem="pm/i"))
    (inc,) = a.incidents()
    assert (inc.severity, inc.status, inc.components, inc.postmortem) == ("P1", "resolved", ("api", "db"), "pm/i")
    with pytest.raises(Conflict):
        a.execute(UpdateIncident(incident_id="i", note="after"))
    with pytest.raises(Conflict):
        a.execute(ResolveIncident(incident_id="i"))
    with pytest.raises(Conflict):
        a.execute(DeclareIncident(incident_id="i", components=("api",)))  # ids are never reused
    with pytest.raises(NotFound):
        a.execute(ResolveIncident(incident_id="unknown"))
    assert [h["what"] for h in w.incident_board.incidents["i"].history] == ["declared", "updated", "resolved"]
