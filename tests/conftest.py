"""Shared fixtures and the hypothesis profiles (HYPOTHESIS_PROFILE=ci|dev)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from scenarios.schema import Scenario
from tests.builders import make_scenario

settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode's default state directory (audit, safety state, journal): a fresh one per test, never ~/.local."""
    monkeypatch.setenv("ZEROOPS_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def small() -> Scenario:
    return make_scenario()
