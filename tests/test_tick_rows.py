"""The tick's live-row compaction changes no result: compacted and full-width runs are identical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import twin.physics
from scenarios.runner import run_scenario
from tests.builders import SPIKY_SERVICES, make_scenario


def _run(monkeypatch: pytest.MonkeyPatch, share: float) -> tuple[dict, pd.DataFrame, np.ndarray, list, bool]:
    monkeypatch.setattr(twin.physics, "ROWS_AS_SLICE", share)
    scn = make_scenario(
        duration=2400,
        services=SPIKY_SERVICES,
        faults=[{"type": "memory_leak", "at": 500, "service": "api"},
                {"type": "disk_pressure", "at": 700, "service": "api"},
                {"type": "server_crash", "at": 900, "service": "api"}])
    r = run_scenario(scn, "reactive")
    w = r.world
    srv = w.metrics.srv["server_cpu_util"]
    compacted = w._rows is not None and not isinstance(w._rows.idx, slice) and len(w._rows.rows) < w.n
    return r.score.metrics, w.metrics.to_pandas(60), np.array(srv.v, copy=True), w.spend_series, compacted


def test_compacted_rows_match_full_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    full = _run(monkeypatch, 0.0)  # always a slice over every row, deleted ones included
    compact = _run(monkeypatch, 2.0)  # always only the live rows
    assert full[0]["actions_taken"] > 0 and full[0]["oom_kills"] > 0
    assert compact[4] and not full[4]  # the compacted run did skip deleted rows
    # spend is equal to rounding only: per-project billing sums the on-demand rates of the tick's rows, and
    # the full-width rows include deleted ones (their rates added, then subtracted as partial rows)
    money = {k for k, v in full[0].items() if k.startswith("cost") and isinstance(v, float)}
    assert {k: v for k, v in full[0].items() if k not in money} == {
        k: v for k, v in compact[0].items() if k not in money}
    assert {k: full[0][k] for k in money} == pytest.approx({k: compact[0][k] for k in money}, rel=1e-12)
    pd.testing.assert_frame_equal(full[1], compact[1], check_exact=True)
    np.testing.assert_array_equal(full[2], compact[2])
    np.testing.assert_allclose(np.array(full[3]), np.array(compact[3]), rtol=1e-12)
