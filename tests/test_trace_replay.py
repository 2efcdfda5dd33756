"""Trace replay as a user needs it: what `base` means, a window into the file, no lost row when looping,
a calendar that follows the trace's dates, gaps reported, columns checked by validate, several engine sets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from scenarios.loader import ScenarioError, load_scenario
from tests.builders import scenario_dict
from twin.config import Traffic
from twin.traffic import TraceNotice, rate_series, read_trace
from zeroops.cli import main

RNG = np.random.default_rng(0)
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def csv(tmp_path: Path, rows: list[tuple[Any, float]], header: str = "timestamp,value", name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return p


def rates(components: list[dict[str, Any]], t: np.ndarray, base: float = 100.0, start_time: str | None = None,
          base_dir: Path | None = None) -> np.ndarray:
    """The offered load of one service, through a whole scenario (so start_time reaches the traffic)."""
    svcs = scenario_dict()["services"]
    svcs[0]["traffic"] = {"base": base, "components": components}
    from scenarios.schema import Scenario

    scn = Scenario.model_validate(scenario_dict(services=svcs, start_time=start_time, duration=30 * DAY))
    return rate_series(scn.services[0].traffic, t, RNG, base_dir)


def iso(day: int, hour: int = 0, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00Z"  # 2026-03-02 is a Monday


# ------------------------------------------------------------- normalisation
def test_normalize_mean_peak_and_none(tmp_path: Path) -> None:
    p = csv(tmp_path, [(0, 10), (60, 30), (120, 20)])
    t = np.array([0.0, 60.0, 120.0])
    mean = rates([{"type": "trace", "file": str(p)}], t)
    assert mean.tolist() == pytest.approx([50, 150, 100])  # default: base is the mean (backward compatible)
    peak = rates([{"type": "trace", "file": str(p), "normalize": "peak"}], t)
    assert peak.tolist() == pytest.approx([100 / 3, 100, 200 / 3])  # base is the peak
    none = rates([{"type": "trace", "file": str(p), "normalize": "none", "scale": 0.5}], t, base=1.0)
    assert none.tolist() == pytest.approx([5, 15, 10])  # requests/s = value x scale


def test_the_same_base_means_the_same_peak_on_different_files(tmp_path: Path) -> None:
    a = csv(tmp_path, [(0, 1), (60, 2), (120, 100)], name="a.csv")  # one spike, low mean
    b = csv(tmp_path, [(0, 50), (60, 80), (120, 100)], name="b.csv")
    t = np.arange(0, 180, 60.0)
    ra = rates([{"type": "trace", "file": str(a), "normalize": "peak"}], t)
    rb = rates([{"type": "trace", "file": str(b), "normalize": "peak"}], t)
    assert ra.max() == pytest.approx(100) and rb.max() == pytest.approx(100)


# ------------------------------------------------------------------- looping
def test_looping_plays_the_last_row(tmp_path: Path) -> None:
    rows = [(i * 60, v) for i, v in enumerate([1, 2, 3, 4])]
    p = csv(tmp_path, rows)
    t = np.arange(0, 3 * 240, 60.0)  # three loops of four minutes, sampled on the rows
    r = rates([{"type": "trace", "file": str(p), "normalize": "none"}], t, base=1.0)
    assert r.tolist() == [1, 2, 3, 4] * 3  # was: 1, 2, 3, 1, 2, 3, 1, ... (the last row never played)
    assert r.mean() == pytest.approx(np.mean([1, 2, 3, 4]))


# --------------------------------------------------------------------- window
@pytest.mark.parametrize("start,end", [
    (2 * HOUR, 4 * HOUR),
    ("2h", "4h"),
    (iso(2, 2), iso(2, 4)),
    ("@" + str(int(np.datetime64("2026-03-02T02:00:00").astype("datetime64[s]").astype(int))), iso(2, 4)),
])
def test_start_and_end_window(tmp_path: Path, start: Any, end: Any) -> None:
    p = csv(tmp_path, [(iso(2, h), h + 1) for h in range(6)])  # hourly rows, value = hour + 1
    t = np.array([0.0, HOUR, 2 * HOUR])
    r = rates([{"type": "trace", "file": str(p), "normalize": "none", "start": start, "end": end}], t, base=1.0)
    assert r.tolist() == pytest.approx([3, 4, 3])  # rows 02:00 and 03:00, looping


def test_window_errors_name_the_file(tmp_path: Path) -> None:
    rel = csv(tmp_path, [(0, 1), (60, 2), (120, 3)], name="rel.csv")
    with pytest.raises(ValueError, match=r"rel\.csv: start: .* relative seconds"):
        rates([{"type": "trace", "file": str(rel), "start": iso(2)}], np.zeros(2))
    with pytest.raises(ValueError, match=r"rel\.csv: the window .* holds 1 row\(s\).*the file spans 0 s \.\. 120 s"):
        rates([{"type": "trace", "file": str(rel), "start": 100}], np.zeros(2))
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be after start"):
        Traffic.model_validate({"base": 1, "components": [{"type": "trace", "file": "x", "start": "2h", "end": 60}]})
    with pytest.raises(ValidationError, match="neither an offset"):
        Traffic.model_validate({"base": 1, "components": [{"type": "trace", "file": "x", "start": "yesterday"}]})


# ------------------------------------------------------------------- calendar
def test_start_time_aligns_diurnal_and_weekly(tmp_path: Path) -> None:
    t = np.arange(0, 7 * DAY, HOUR)
    # default: t=0 is a Monday 00:00, so the 14:00 peak is at t=14h
    assert t[np.argmax(rates([{"type": "diurnal", "peak_hour": 14}], t)[:24])] == 14 * HOUR
    # a Wednesday 14:00 start: the peak is now, and Saturday comes after 2 days 10 hours
    r = rates([{"type": "diurnal", "peak_hour": 14}], t, start_time=iso(4, 14))
    assert np.argmax(r[:24]) == 0
    w = rates([{"type": "weekly", "amplitude": 0.5}], t, start_time=iso(4, 14))
    assert w[t == 0][0] == 100 and w[t == 2 * DAY + 10 * HOUR][0] == 50 and w[t == 2 * DAY + 9 * HOUR][0] == 100
    # a UTC offset: the calendar follows local time
    local = rates([{"type": "diurnal", "peak_hour": 14}], t, start_time="2026-03-04T14:00:00+02:00")
    assert np.argmax(local[:24]) == 0


def test_start_time_trace_takes_the_first_replayed_row(tmp_path: Path) -> None:
    # the trace starts on Saturday 2026-03-07 00:00: the weekend dip is at t=0, Monday is 2 days later
    p = csv(tmp_path, [(iso(7 + h // 24, h % 24), 10) for h in range(49)])
    t = np.array([0.0, DAY, 2 * DAY])
    r = rates([{"type": "trace", "file": str(p)}, {"type": "weekly", "amplitude": 0.5}], t, start_time="trace")
    assert r.tolist() == pytest.approx([50, 50, 100])
    # with a window, t=0 is the window's first row (Sunday 00:00)
    r = rates([{"type": "trace", "file": str(p), "start": "1d"}, {"type": "weekly", "amplitude": 0.5}],
              np.array([0.0, DAY]), start_time="trace")
    assert r.tolist() == pytest.approx([50, 100])


def test_start_time_trace_needs_dates(tmp_path: Path) -> None:
    rel = csv(tmp_path, [(0, 1), (60, 2)], name="rel.csv")
    svcs = scenario_dict()["services"]
    svcs[0]["traffic"] = {"base": 1, "components": [{"type": "trace", "file": "rel.csv"}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(services=svcs, start_time="trace")))
    with pytest.raises(ScenarioError, match=r"s\.yaml: start_time: 'trace': .*rel\.csv has relative timestamps"):
        load_scenario(p)
    assert rel.exists()


# ----------------------------------------------------------------------- gaps
def gappy(tmp_path: Path) -> Path:
    # per-minute rows 00:00..00:09, then nothing until 00:30..00:39
    rows = [(iso(2, 0, m), 5) for m in range(10)] + [(iso(2, 0, m), 5) for m in range(30, 40)]
    return csv(tmp_path, rows, header="time,count", name="gappy.csv")


def test_gaps_are_reported_not_filled_silently(tmp_path: Path) -> None:
    p = gappy(tmp_path)
    with pytest.warns(TraceNotice, match=r"gappy\.csv: 1 gap\(s\) .*usual step 1m.*linear interpolation: "
                                         r"2026-03-02T00:09:00Z to 2026-03-02T00:30:00Z \(20 row\(s\) missing\)"):
        read_trace(_trace(p), None)
    with pytest.warns(TraceNotice, match="counted as zero"):
        r = rates([{"type": "trace", "file": str(p), "gaps": "zero", "normalize": "none"}],
                  np.array([9 * MINUTE, 10 * MINUTE, 20 * MINUTE, 29 * MINUTE, 30 * MINUTE]), base=1.0)
    assert r.tolist() == [5, 0, 0, 0, 5]
    with pytest.raises(ValueError, match=r"gappy\.csv: 1 gap\(s\).*00:09:00Z to .*00:30:00Z.*gaps: interpolate or zero"):
        read_trace(_trace(p, gaps="error"), None)


def _trace(p: Path, **kw: Any) -> Any:
    from twin.config import Trace

    return Trace(type="trace", file=str(p), **kw)


def test_validate_prints_the_gap_notice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gappy(tmp_path)
    svcs = scenario_dict()["services"]
    svcs[0]["traffic"] = {"base": 100, "components": [{"type": "trace", "file": "gappy.csv"}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(services=svcs)))
    with warnings.catch_warnings():
        assert main(["validate", str(p)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok:") and err.count("notice:") == 1 and "gappy.csv: 1 gap(s)" in err


# -------------------------------------------------------------------- columns
def test_validate_checks_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv(tmp_path, [(0, 5), (60, 6)], header="period,count", name="log.csv")
    svcs = scenario_dict()["services"]
    svcs[0]["traffic"] = {"base": 100, "components": [{"type": "trace", "file": "log.csv"}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(services=svcs)))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "log.csv: no time column; columns found: period, count; allowed: timestamp, time, ts, datetime, date " \
           "(or set time_column)" in err
    svcs[0]["traffic"]["components"][0]["time_column"] = "period"
    p.write_text(yaml.safe_dump(scenario_dict(services=svcs)))
    assert main(["validate", str(p)]) == 0  # count is a known value column
    svcs[0]["traffic"]["components"][0]["value_column"] = "hits"
    p.write_text(yaml.safe_dump(scenario_dict(services=svcs)))
    assert main(["validate", str(p)]) == 2
    assert "no column 'hits' (value_column); columns found: period, count" in capsys.readouterr().err


def test_common_headers_and_epoch_seconds(tmp_path: Path) -> None:
    p = csv(tmp_path, [(1772409600 + 60 * i, i + 1) for i in range(3)], header="ts,requests")  # 2026-03-02 epoch
    d = read_trace(_trace(p), None)
    assert d.origin == 1772409600 and d.secs.tolist() == [0, 60, 120] and d.period == 180


# --------------------------------------------------------------- the world
def test_the_world_offers_the_trace(tmp_path: Path) -> None:
    from scenarios.schema import Scenario
    from twin.world import World

    csv(tmp_path, [(i * 300, 100 + 10 * i) for i in range(12)])
    svcs = scenario_dict()["services"]
    svcs[0]["traffic"] = {"base": 1, "components": [{"type": "trace", "file": "t.csv", "normalize": "none"}]}
    w = World(Scenario.model_validate(scenario_dict(services=svcs, duration=3600, tick=300)), base_dir=tmp_path)
    assert w.traffic[:12, 0].tolist() == [100 + 10 * i for i in range(12)]
    assert w.traffic[12, 0] == 100  # t = 1 h: the loop starts again after the last row played


# -------------------------------------------------------- several engine sets
@pytest.mark.parametrize("flags", [["--engines", "static,reactive"], ["--engines", "static", "--engines", "reactive"]])
def test_run_with_several_engine_sets_computes_savings(tmp_path: Path, flags: list[str]) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario_dict(duration=900, engines=["reactive"], targets={"cost_savings": {"min": 0}})))
    out = tmp_path / "o"
    assert main(["run", str(p), *flags, "--out", str(out), "-q"]) == 0
    runs = {r["engines"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    assert set(runs) == {"static", "reactive"}
    assert runs["reactive"]["metrics"].get("cost_savings") is not None
