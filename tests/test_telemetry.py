"""Metric store and Prometheus-style alerting rules."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import make_scenario
from twin.config import AlertRule
from twin.telemetry import AlertEvaluator, Ring, Rollup, parse_expr
from twin.world import World


def test_ring_keeps_the_last_window_in_order() -> None:
    r = Ring(length=4, width=2)
    for t in range(10):
        r.push(float(t), np.array([t, -t]))
    t, v = r.window(seconds=2.5, col=0)
    assert t.tolist() == [7.0, 8.0, 9.0] and v.tolist() == [7.0, 8.0, 9.0]
    t, v = r.window(seconds=100, col=1)
    assert t.tolist() == [6.0, 7.0, 8.0, 9.0] and v.tolist() == [-6.0, -7.0, -8.0, -9.0]


def test_rollup_means_per_period() -> None:
    ru = Rollup(60.0, 1)
    for t in range(0, 180, 5):
        ru.add(float(t), np.array([1.0 if t < 60 else 3.0]))
    ru.flush()
    assert ru.t == [0.0, 60.0, 120.0]
    assert [float(x[0]) for x in ru.rows] == [1.0, 3.0, 3.0]


def rule(expr: str, for_: float, severity: str = "critical") -> AlertRule:
    return AlertRule(name="R", expr=expr, **{"for": for_}, severity=severity)


def test_alert_waits_for_its_for_then_repeats_then_resolves() -> None:
    ev = AlertEvaluator([rule("error_ratio > 0.05", 30)], {"error_ratio"}, set(), repeat_interval=60)
    labels = [{"service": "api"}]
    series = [0.0] + [0.1] * 30 + [0.0]
    for k, x in enumerate(series):
        ev.evaluate(5.0 * k, {"error_ratio": np.array([x])}, {}, labels, lambda i: {})
    states = [(a.state, a.at) for a in ev.alerts]
    assert states[0] == ("firing", 35.0)  # condition from t=5, fires once it held 30 s
    assert [s for s, _ in states].count("firing") == 1 + (150 - 35) // 60  # plus re-notifications
    assert states[-1] == ("resolved", 155.0)
    assert ev.alerts[0].starts_at == 5.0


def test_noisy_metric_near_threshold_flaps() -> None:
    ev = AlertEvaluator([rule("cpu_util > 0.8", 0)], {"cpu_util"}, set(), repeat_interval=1e9)
    rng = np.random.default_rng(0)
    for k in range(200):
        ev.evaluate(5.0 * k, {"cpu_util": np.array([0.8 + 0.02 * rng.standard_normal()])}, {}, [{"service": "a"}],
                    lambda i: {})
    assert sum(a.state == "firing" for a in ev.alerts) > 20  # no hysteresis: real rules flap


def test_bad_expr_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown metric 'cpu'; allowed: cpu_util"):
        parse_expr("cpu > 1", {"cpu_util"})
    with pytest.raises(ValueError, match="'<metric> <op> <number>'"):
        parse_expr("rate(x[5m]) > 1", {"x"})


def test_world_scrapes_at_the_interval_and_exports_pandas() -> None:
    scn = make_scenario(duration=900, telemetry={"scrape_interval": "15s"})
    w = World(scn)
    w.run()
    w.finish()
    t, v = w.metrics.svc["request_rate"].window(120, 0)
    assert np.allclose(np.diff(t), 15.0) and len(t) == 9
    df = w.metrics.to_pandas(60)
    assert ("request_rate", "api") in df.columns and len(df) == 16  # minutes 0..14, and the sample at 900 s
    assert df[("request_rate", "api")].mean() == pytest.approx(200, rel=0.1)
    assert df[("active_servers", "db")].iloc[-1] == 2


def test_crash_fires_instance_down_with_server_labels() -> None:
    scn = make_scenario(duration=900, faults=[{"type": "server_crash", "at": 100, "service": "api"}],
                        operator={"enabled": False})
    w = World(scn)
    w.run()
    down = [a for a in w.alerting.alerts if a.name == "InstanceDown" and a.state == "firing"]
    assert down and down[0].labels["service"] == "api" and down[0].labels["server"] in w.truth.faults[0].servers
    assert 150 <= down[0].at <= 175


# ------------------------------------------------------- dependency metrics and long history
def test_dependency_metrics_are_scraped_per_edge() -> None:
    from adapters.sim import SimAdapter
    from tests.builders import make_scenario

    w = World(make_scenario(duration=900, telemetry={"noise": 0.0},
                            faults=[{"type": "bad_deploy", "at": 600, "service": "db", "severity": 2}]))
    a = SimAdapter(w)
    w.run(until=590)
    labels = {"service": "api", "dependency": "db"}
    calls = a.metric_window("dep_call_rate", labels, 60)
    db_load = a.metric_window("request_rate", {"service": "db"}, 60)
    # the db's only callers are api's calls (0.5 per request api served)
    assert len(calls.v) == len(db_load.v) > 5
    np.testing.assert_allclose(calls.v, db_load.v, rtol=1e-9)
    np.testing.assert_allclose(calls.v, 0.5 * a.metric_window("request_rate", {"service": "api"}, 60).v, rtol=0.02)
    assert a.metric_window("dep_error_ratio", labels, 60).v.max() < 0.01
    np.testing.assert_allclose(a.metric_window("dep_latency_ms", labels, 60).v[-1],
                               w.prev_lat[w.svc_index["db"]], rtol=0.05)
    w.run(until=700)
    err = a.metric_window("dep_error_ratio", labels, 60)
    assert err.v[-1] > 0.15  # what api sees of db's bad release
    with pytest.raises(ValueError, match="dependency"):
        a.metric_window("dep_call_rate", {"service": "db", "dependency": "api"}, 60)


def test_metric_history_returns_the_rollup_means() -> None:
    from adapters.sim import SimAdapter
    from tests.builders import make_scenario

    w = World(make_scenario(duration=4 * 3600))
    a = SimAdapter(w)
    w.run(until=3 * 3600 + 30)
    raw = w.metrics.to_pandas(60)[("cpu_util", "api")]
    h = a.metric_history("cpu_util", {"service": "api"}, 3600, 60)
    assert len(h.t) == 60 and h.t[-1] == 3 * 3600 - 60
    np.testing.assert_allclose(h.v, raw.loc[h.t].to_numpy())
    h5 = a.metric_history("cpu_util", {"service": "api"}, 3600, 300)
    assert list(np.diff(h5.t)) == [300.0] * (len(h5.t) - 1) and h5.t[-1] == 3 * 3600 - 300
    np.testing.assert_allclose(h5.v, [raw.loc[t:t + 299].mean() for t in h5.t])  # five 1-minute means each
    h15 = a.metric_history("cpu_util", {"service": "api"}, 7200, 900)
    np.testing.assert_allclose(h15.v, [raw.loc[t:t + 899].mean() for t in h15.t])
    dep = a.metric_history("dep_call_rate", {"service": "api", "dependency": "db"}, 3600, 60)
    assert len(dep.t) == 60 and (dep.v > 0).all()
    with pytest.raises(ValueError, match="multiple of 60"):
        a.metric_history("cpu_util", {"service": "api"}, 3600, 30)


def test_history_is_bounded() -> None:
    from twin.telemetry import History, MetricStore

    h = History(3, 2)
    for k in range(5):
        h.push(60.0 * k, np.array([k, 10 * k]))
    t, v = h.since(0.0, 1)
    assert list(t) == [120.0, 180.0, 240.0] and list(v) == [20.0, 30.0, 40.0]
    long = MetricStore(3600, 5, ["a"], ["cpu_util"], ["server_up"], 4, horizon=90 * 86400)
    assert long.rollups[60].history.length == 2 * 1440 + 1 and long.rollups[300].history.length == 35 * 288 + 1
    short = MetricStore(3600, 5, ["a"], ["cpu_util"], ["server_up"], 4, horizon=3600)
    assert short.rollups[60].history.length == 62
