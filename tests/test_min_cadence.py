"""In the twin no engine steps more often than the world does: a default cadence below the tick is raised to
it; an explicit cadence, or one the engine's own bound forbids raising, is kept."""

from __future__ import annotations

from engines.registry import REGISTRY


def _cadences(ref: object, min_cadence: float) -> dict[str, float]:
    return {e.name: e.cadence for e in REGISTRY.resolve(ref).build(min_cadence)}


def test_a_default_cadence_below_the_tick_is_raised_to_it() -> None:
    base = _cadences("ops", 0.0)
    raised = _cadences("ops", 30.0)
    assert min(base.values()) < 30.0  # the ops center looks every 5 s by default
    for name, c in base.items():
        assert raised[name] == max(c, 30.0), name


def test_an_explicit_cadence_is_kept() -> None:
    ref = {"name": "x", "engines": [{"engine": "reactive_scaler", "cadence": 5.0}, {"engine": "crash_restarter"}]}
    got = _cadences(ref, 60.0)
    assert sorted(got.values()) == [5.0, 60.0]


def test_a_bound_below_the_tick_keeps_the_default() -> None:
    ref = {"name": "y", "engines": [{"engine": "provisioner"}]}  # its cadence is at most 60 s
    assert list(_cadences(ref, 120.0).values()) == [30.0]
    assert list(_cadences(ref, 45.0).values()) == [45.0]


def test_an_engine_that_answers_events_between_ticks_keeps_its_cadence() -> None:
    ref = {"name": "z", "engines": [{"engine": "self_service"}]}  # a decision within 10 s is its promise
    assert list(_cadences(ref, 60.0).values()) == [5.0]
