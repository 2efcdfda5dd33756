"""Configuration: the system's names, durations with units, and one-line errors naming the setting."""

from __future__ import annotations

import pytest

from adapters.base import Alert
from engines.alerting.tracks import Tracks
from engines.registry import REGISTRY, RegistryError

ENGINE = REGISTRY.engine("smart_alerting")


def test_defaults_are_the_designs() -> None:
    c = ENGINE.validate({})
    assert (c.MLSuppressionEnabled, c.CorrelationWindow, c.MinAlertSeverity, c.AutoRemediateBeforeAlert,
            c.MaxAlertsPerHour, c.FalsePositiveThreshold, c.AlertOnlyP0) == (True, 300.0, "P1", True, 10, 0.01, False)


def test_durations_take_units() -> None:
    c = ENGINE.validate({"CorrelationWindow": "10m", "MaintenanceWindows": [{"start": "1.5h", "end": "2d"}]})
    assert c.CorrelationWindow == 600.0 and (c.MaintenanceWindows[0].start, c.MaintenanceWindows[0].end) == (5400.0,
                                                                                                             172800.0)


@pytest.mark.parametrize(("params", "message"), [
    ({"MaxAlertsPerHr": 3}, "smart_alerting.MaxAlertsPerHr: unknown setting of engine smart_alerting; did you mean "
                            "'MaxAlertsPerHour'?"),
    ({"MinAlertSeverity": "P9"}, "smart_alerting.MinAlertSeverity"),
    ({"CorrelationWindow": "soon"}, "'soon' is not a duration"),
    ({"MaintenanceWindows": [{"start": 50, "end": 10}]}, "end (10) must be after start (50)"),
    ({"P1ErrorRatio": 0.5}, "P1ErrorRatio (0.5) must not exceed P0ErrorRatio (0.25)"),
    ({"EscalationChannels": {"P0": []}}, "EscalationChannels.P0: give at least one"),
    ({"MaxAlertsPerHour": -1}, "smart_alerting.MaxAlertsPerHour"),
])
def test_bad_settings_name_the_setting(params: dict, message: str) -> None:
    with pytest.raises(RegistryError) as e:
        ENGINE.validate(params)
    assert message in str(e.value)


def test_rereading_the_same_alerts_counts_them_once() -> None:
    a = Alert("HighCPU", "warning", {"service": "api"}, "firing", 10.0, 70.0, 0.9, "HighCPU:api")
    t = Tracks(flap_window=900)
    t.ingest([a], 70.0)
    t.ingest([a], 75.0)  # the engine reads with a margin: the same notification comes again
    assert t.raw_firing == 1 and t.duplicates == 0 and len(t.by_fp["HighCPU:api"].changes) == 1
