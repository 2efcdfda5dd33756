"""Our detectors and two well-known peers, side by side on the same labelled synthetic series.

Run: ``.venv/bin/python -m benchmarks.compare_detectors [--per-family N] [--seed S] [--no-river]``

Methods
  ours: ensemble          the default ``ensemble`` detector, no hints (what ``zeroops detect`` runs)
  ours: ensemble + hints  the same, told the limit of utilisation series (1.0) and the SLO of error-ratio
                          series (99.9 %) — knowledge a user has and a generic detector does not
  peer: windowed Gaussian z over the previous day (288 samples) or hour (12 samples), alarm at |z| ≥ 4
  peer: river HST         ``river.anomaly.HalfSpaceTrees`` with river's defaults (10 trees, height 8, window
                          250) behind an online ``MinMaxScaler`` (river's documented usage); alarm from
                          ``river.anomaly.QuantileFilter(q=0.995)``, a running quantile of its own scores;
                          "+ context" adds features a user might add: the change from the previous
                          value and the hour of day (sin, cos)

Scoring (NAB-style, by windows): an alarm is the rising edge of score ≥ threshold.
A labelled window with an alarm inside it is detected (TP) and its delay is the
first such alarm − the window's start; further alarms in the same window are
ignored; alarms outside every window are false positives.  The first 15 % of
every series (2.1 days) is a probation period in which alarms are not counted
(as in NAB).  Precision = TP / (TP + FP), recall = TP / windows.  "best F1" is
each method's F1 at its best single threshold over all series (an oracle: it
shows the ranking quality without each method's own alarm rule).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from benchmarks.detection_data import N_SAMPLES, Labelled, generate
from engines.detection import EnsembleDetector, WindowedGaussian

PROBATION = 0.15


def onsets(t: np.ndarray, alarm: np.ndarray) -> np.ndarray:
    a = np.asarray(alarm, dtype=bool)
    return t[a & ~np.r_[False, a[:-1]]]


def evaluate(s: Labelled, alarm: np.ndarray) -> dict[str, object]:
    """TP/FN/FP and delays of one series' alarms against its windows."""
    start = s.t[0] + PROBATION * (s.t[-1] - s.t[0])
    on = onsets(s.t, alarm)
    on = on[on >= start]
    used = np.zeros(len(on), dtype=bool)
    delays: list[float] = []
    for a, b in s.windows:
        inside = (on >= a) & (on <= b)
        used |= inside
        if inside.any():
            delays.append(float(on[inside][0] - a))
    return {"tp": len(delays), "fn": len(s.windows) - len(delays), "fp": int((~used).sum()), "delays": delays}


def summarise(rows: list[dict[str, object]]) -> dict[str, float]:
    tp = sum(int(r["tp"]) for r in rows)  # type: ignore[call-overload]
    fn = sum(int(r["fn"]) for r in rows)  # type: ignore[call-overload]
    fp = sum(int(r["fp"]) for r in rows)  # type: ignore[call-overload]
    d = [x for r in rows for x in r["delays"]]  # type: ignore[attr-defined]
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fn": fn, "fp": fp, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "median_delay_min": float(np.median(d)) / 60 if d else float("nan"),
            "mean_delay_min": float(np.mean(d)) / 60 if d else float("nan")}


def best_f1(series: list[Labelled], scores: list[np.ndarray]) -> tuple[float, float]:
    allv = np.concatenate(scores)
    grid = np.unique(np.quantile(allv[np.isfinite(allv)], np.linspace(0.9, 0.99999, 60)))
    best = (0.0, float("nan"))
    for thr in grid:
        if thr <= 0:
            continue
        f1 = summarise([evaluate(s, sc >= thr) for s, sc in zip(series, scores, strict=True)])["f1"]
        best = max(best, (f1, float(thr)))
    return best


# ------------------------------------------------------------------ runners
def run_batched(series: list[Labelled], make: Callable[[Labelled], object]) -> list[np.ndarray]:
    """Run a numpy detector over all series at once (one update_many per sample index, per-series times)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(series):
        groups[(s.limit, s.slo)].append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(series)
    for idx in groups.values():
        det = make(series[idx[0]])
        T = np.stack([series[i].t for i in idx], axis=1)
        X = np.stack([series[i].x for i in idx], axis=1)
        S = np.empty_like(X)
        for k in range(N_SAMPLES):
            S[k] = det.update_many(T[k], X[k])  # type: ignore[attr-defined]
        for j, i in enumerate(idx):
            out[i] = S[:, j]
    return out


def run_river(series: list[Labelled], q: float = 0.995, context: bool = False) -> tuple[list[np.ndarray],
                                                                                      list[np.ndarray]]:
    """HST per series; with ``context`` the features also hold the change from the last value and the hour of day."""
    from river import anomaly, compose, preprocessing

    raw, alarms = [], []
    for s in series:
        hst = compose.Pipeline(preprocessing.MinMaxScaler(),
                               anomaly.HalfSpaceTrees(seed=42))
        filt = anomaly.QuantileFilter(hst, q=q)
        sc = np.zeros(len(s.x))
        al = np.zeros(len(s.x), dtype=bool)
        last = float("nan")
        for k, v in enumerate(s.x):
            if not np.isfinite(v):
                continue
            feat = {"value": float(v)}
            if context:
                h = 2 * np.pi * (s.t[k] % 86400.0) / 86400.0
                feat.update(delta=float(v - last) if np.isfinite(last) else 0.0, hour_sin=float(np.sin(h)),
                            hour_cos=float(np.cos(h)))
                last = float(v)
            sc[k] = filt.score_one(feat)
            al[k] = bool(filt.classify(sc[k]))
            filt.learn_one(feat)
        raw.append(sc)
        alarms.append(al)
    return raw, alarms


def ours(hints: bool) -> Callable[[Labelled], object]:
    def make(s: Labelled) -> object:
        return EnsembleDetector(limit=s.limit if hints else None, slo=s.slo if hints else None)
    return make


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-family", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-river", action="store_true", help="skip river's HalfSpaceTrees (slow, pure Python)")
    a = p.parse_args(argv)
    series = generate(a.seed, a.per_family)
    methods: dict[str, tuple[list[np.ndarray], list[np.ndarray], float]] = {}
    for name, make in (("ours: ensemble", ours(False)), ("ours: ensemble + hints", ours(True)),
                       ("peer: windowed Gaussian (1 day)", lambda s: WindowedGaussian(window=288)),
                       ("peer: windowed Gaussian (1 h)", lambda s: WindowedGaussian(window=12, min_samples=12))):
        t0 = time.perf_counter()
        sc = run_batched(series, make)
        methods[name] = (sc, [x >= 0.5 for x in sc], time.perf_counter() - t0)
    if not a.no_river:
        try:
            for label, ctx in (("peer: river HST", False), ("peer: river HST + context", True)):
                t0 = time.perf_counter()
                raw, al = run_river(series, context=ctx)
                methods[label] = (raw, al, time.perf_counter() - t0)
        except ImportError:
            print("river is not installed (pip install -e '.[peers]'): skipping HalfSpaceTrees", file=sys.stderr)
    n_windows = sum(len(s.windows) for s in series)
    print(f"{len(series)} series × {N_SAMPLES} samples, {n_windows} labelled windows, seed {a.seed}\n")
    print("| method | precision | recall | F1 | FP | median delay (min) | mean delay (min) | best F1 (threshold) | "
          "wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (sc, al, wall) in methods.items():
        r = summarise([evaluate(s, x) for s, x in zip(series, al, strict=True)])
        bf, bt = best_f1(series, sc)
        print(f"| {name} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | {r['fp']} | "
              f"{r['median_delay_min']:.0f} | {r['mean_delay_min']:.0f} | {bf:.2f} ({bt:.3g}) | {wall:.1f} |")
    fams = sorted({s.family for s in series}, key=[s.family for s in series].index)
    print("\nPer family: recall / false positives / median delay (min)\n")
    print("| family | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for fam in fams:
        cells = []
        for _name, (_sc, al, _w) in methods.items():
            r = summarise([evaluate(s, x) for s, x in zip(series, al, strict=True) if s.family == fam])
            rec = f"{r['recall']:.2f}" if r["tp"] + r["fn"] else "–"
            dl = f"{r['median_delay_min']:.0f}" if r["tp"] else "–"
            cells.append(f"{rec} / {r['fp']} / {dl}")
        print(f"| {fam} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
