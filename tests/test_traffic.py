"""Arrival-rate generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.config import Traffic
from twin.traffic import load_trace, rate_series

T = np.arange(0, 2 * 86400, 60.0)
RNG = np.random.default_rng(0)


def series(components: list[dict], base: float = 100.0, t: np.ndarray = T) -> np.ndarray:
    return rate_series(Traffic.model_validate({"base": base, "components": components}), t, RNG)


def test_diurnal_peaks_at_its_hour() -> None:
    r = series([{"type": "diurnal", "amplitude": 0.5, "peak_hour": 14}])
    assert T[np.argmax(r[:1440])] == 14 * 3600
    assert r.max() == pytest.approx(150) and r.min() == pytest.approx(50)


def test_spike_is_plus_500_percent_with_ramps() -> None:
    r = series([{"type": "spike", "at": 3600, "duration": 3600, "factor": 6, "ramp": 600}])
    assert r[T == 3000][0] == 100 and r[T == 3600 + 600][0] == pytest.approx(600) and r[T == 9000][0] == 100


def test_idle_is_exactly_zero_and_weekend_dips() -> None:
    r = series([{"type": "idle", "start": 3600, "end": 7200}])
    assert (r[(T >= 3600) & (T < 7200)] == 0).all() and (r[T < 3600] == 100).all()
    week = np.arange(0, 7 * 86400, 3600.0)
    w = series([{"type": "weekly", "amplitude": 0.3}], t=week)
    assert w[week // 86400 == 5].max() == pytest.approx(70) and w[week // 86400 == 2].min() == 100


def test_ramp_and_noise_are_non_negative() -> None:
    r = series([{"type": "ramp", "start": 0, "end": 86400, "to_factor": 3},
                {"type": "noise", "sigma": 2.0}])
    assert (r >= 0).all()


def test_trace_replay_rescaled_resampled_and_looped(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("timestamp,value\n2026-01-01T00:00:00Z,10\n2026-01-01T01:00:00Z,30\n2026-01-01T02:00:00Z,20\n")
    # three hourly rows cover three hours: the last row plays at 2 h, the first comes round again at 3 h
    t = np.array([0, 1800, 3600, 7200, 9000, 10800, 10800 + 3600], dtype=float)
    r = series([{"type": "trace", "file": str(p), "scale": 2.0}], base=50, t=t)
    k = 50 * 2 / np.mean([10, 30, 20])
    assert r.tolist() == pytest.approx([k * 10, k * 20, k * 30, k * 20, k * 15, k * 10, k * 30])


@pytest.mark.parametrize("text,msg", [
    ("period,count\n0,1\n1,2\n", r"no time column; columns found: period, count; allowed: timestamp, time"),
    ("timestamp,value\n0,1\n", "at least two"),
    ("timestamp,value\n", "at least two"),
    ("timestamp,value\n0,1\n1,-5\n", "non-negative"),
    ("timestamp,value\n0,1\n1,inf\n", "non-negative numbers up to"),
    ("timestamp,value\n0,1\n1,1e308\n", "row 3 has '1e308'"),
    ("timestamp,value\n0,0\n1,0\n", "every replayed value is 0"),
    ("timestamp,value\n0,1\n0,2\n", "same time"),
    ("", "not a readable CSV"),
    ("timestamp,value\nyesterday,1\nnow,2\n", "seconds or ISO"),
])
def test_bad_trace_names_the_file(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg) as e:
        load_trace(p)
    assert str(p) in str(e.value)
