"""What one server carries, learnt online from what the adapter shows (never from a world's configuration).

For each resource dimension d and service, the utilisation of a serving server is modelled as
``u_d = a_d + b_d * x`` with ``x`` the requests per second per serving server: ``a_d`` the part that does not
move with load (a process's resident memory, a disk's data), ``b_d`` the part each request per second costs.
Both come from exponentially weighted moments of (x, u) per service, vectorised over N services.  While ``x``
has not varied enough to separate the two (less than ``MIN_SPREAD`` relative spread), the model is proportional
(``a = 0``, ``b = mean u / mean x``): the conservative choice, since it lets every unit of utilisation grow with load.

Servers needed for demand R at target utilisation ``thr``: ``ceil(b_d * R / (thr - a_d))``; a dimension whose
fixed part already reaches ``thr`` cannot be helped by more servers and is reported, not scaled for.
"""

from __future__ import annotations

import numpy as np

DIMENSIONS: tuple[str, ...] = ("cpu", "memory", "disk", "network")
METRICS: dict[str, str] = {"cpu": "cpu_util", "memory": "memory_util", "disk": "disk_util",
                           "network": "network_mbps"}
MIN_SPREAD = 0.05  # relative standard deviation of x below which the intercept is not trusted
SATURATED = 0.9  # at or above this a server is near saturation (clipped, queueing): not a sample of the line


class CapacityModel:
    """Per service and dimension, the fixed part ``a`` and the per-request part ``b`` of a server's utilisation."""

    def __init__(self, n: int, halflife_s: float = 7200.0) -> None:
        k = len(DIMENSIONS)
        self.n, self.halflife = n, float(halflife_s)
        self.w = np.zeros((k, n))  # summed weights
        self.mx = np.zeros((k, n))
        self.mu = np.zeros((k, n))
        self.mxx = np.zeros((k, n))
        self.mxu = np.zeros((k, n))
        self.t_prev: float | None = None

    def learn(self, t: float, x: np.ndarray, u: np.ndarray) -> None:
        """One observation per service: ``x`` (N) requests per second per serving server, ``u`` (K × N)."""
        dt = t - self.t_prev if self.t_prev is not None else 0.0
        self.t_prev = t
        decay = 0.5 ** (max(dt, 0.0) / self.halflife)  # time passes for every series alike
        ok = np.isfinite(u) & np.isfinite(x)[None, :] & (x[None, :] >= 0) & (u >= 0) & (u < SATURATED)
        xx = np.broadcast_to(np.where(np.isfinite(x), x, 0.0)[None, :], u.shape)
        uu = np.where(ok, u, 0.0)
        w_new = self.w * decay + ok
        f = np.divide(ok, w_new, out=np.zeros_like(w_new), where=w_new > 0)  # the new sample's share
        self.mx += f * (xx - self.mx)
        self.mu += f * (uu - self.mu)
        self.mxx += f * (xx * xx - self.mxx)
        self.mxu += f * (xx * uu - self.mxu)
        self.w = w_new

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each K × N; NaN where nothing was learnt yet."""
        var = self.mxx - self.mx ** 2
        cov = self.mxu - self.mx * self.mu
        spread = np.sqrt(np.maximum(var, 0.0)) / np.maximum(self.mx, 1e-12)
        fit = (spread >= MIN_SPREAD) & (self.w >= 10)
        slope = np.divide(cov, var, out=np.zeros_like(var), where=var > 0)
        prop = np.divide(self.mu, self.mx, out=np.zeros_like(self.mu), where=self.mx > 0)
        b = np.where(fit, np.clip(slope, 0.0, None), prop)
        a = np.where(fit, np.clip(self.mu - b * self.mx, 0.0, self.mu), 0.0)
        known = self.w > 0
        return np.where(known, a, np.nan), np.where(known, b, np.nan)

    @staticmethod
    def servers_needed(a: np.ndarray, b: np.ndarray, demand: np.ndarray, thr: np.ndarray) -> np.ndarray:
        """Servers per dimension (K × N) for request rate ``demand`` (N) at utilisation ``thr`` (N); 0 where the
        dimension does not grow with load, NaN where it is unknown, inf where its fixed part alone reaches ``thr``."""
        room = thr[None, :] - a
        load = b * np.maximum(demand, 0.0)[None, :]
        need = np.where(load <= 0, 0.0, np.where(room > 0.02, np.ceil(load / np.maximum(room, 1e-9) - 1e-9), np.inf))
        return np.where(np.isfinite(a) & np.isfinite(b), need, np.nan)
