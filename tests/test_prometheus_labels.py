"""The Prometheus adapter answers the seam's ``server=``/``service=`` windows from the site's label names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adapters.prometheus import Prometheus, PrometheusConfig

SERIES = [
    ({"server_id": "a", "service": "web"}, np.array([1.0, 2.0]), np.array([1.0, 1.0])),
    ({"server_id": "b", "service": "web"}, np.array([1.0, 2.0]), np.array([0.0, 0.0])),
]


@pytest.fixture
def prom(monkeypatch: pytest.MonkeyPatch) -> Prometheus:
    p = Prometheus(PrometheusConfig(queries={"server_up": "zeroops_server_up"}))
    monkeypatch.setattr(p, "query_range", lambda *a, **k: SERIES)
    monkeypatch.setattr(p, "_clock", lambda: 100.0)
    return p


@pytest.mark.parametrize("read", ["window", "history"])
def test_server_label_maps_to_the_configured_server_label(prom: Prometheus, read: str) -> None:
    def get(**labels: Any) -> Any:
        if read == "window":
            return prom.metric_window("server_up", labels, 10.0)
        return prom.metric_history("server_up", labels, 10.0, 1.0)

    assert list(get(server="b").v) == [0.0, 0.0]  # the seam's name for the series' server_id
    assert list(get(server_id="a").v) == [1.0, 1.0]  # the site's own name still works
    assert list(get(server="b", service="web").v) == [0.0, 0.0]
    assert len(get(server="c").v) == 0 and len(get(server="a", service="db").v) == 0
