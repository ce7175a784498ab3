"""Statistical trends: Spearman rank correlation with a bootstrap confidence interval.

A [trend] claim of THEOREMS.md ("rank falls as λ grows") is tested over a grid with several
seeds per grid point: ρ = Spearman(x, y) over all runs, and a percentile bootstrap interval
obtained by resampling runs with replacement (seeded). The claim's sign is supported only
when the whole interval lies on it; an interval on the wrong side refutes it; an interval
containing 0 (or an undefined ρ, e.g. all y equal) decides nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from verify.verdict import Outcome, Verdict


@dataclass(frozen=True)
class Trend:
    """ρ and its (1 − alpha) bootstrap interval [lo, hi] over ``runs`` points."""

    rho: float
    lo: float
    hi: float
    runs: int
    alpha: float


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def spearman(x: Sequence[float], y: Sequence[float], seed: int = 0, boot: int = 2000,
             alpha: float = 0.05) -> Trend:
    """Spearman ρ of (x, y) and its percentile-bootstrap interval (resamples where ρ is
    undefined count as ρ = 0: no evidence of a trend)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = _rho(xa, ya)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(xa), size=(boot, len(xa)))
    rs = np.array([_rho(xa[i], ya[i]) for i in idx])
    rs = np.where(np.isfinite(rs), rs, 0.0)
    lo, hi = np.quantile(rs, [alpha / 2, 1 - alpha / 2])
    return Trend(rho, float(lo), float(hi), len(xa), alpha)


def judge_trend(t: Trend, sign: int, what: str) -> Outcome:
    """PASS when the interval excludes the wrong sign (lies strictly on ``sign``), FAIL when
    it lies strictly on the wrong side, INCONCLUSIVE otherwise. ``measured`` is ρ, ``bound``
    the interval end nearest to 0 on the claimed side."""
    ci = (f"ρ = {t.rho:.2f}, {100 * (1 - t.alpha):.0f}% CI [{t.lo:.2f}, {t.hi:.2f}] "
          f"over {t.runs} runs")
    edge = t.hi if sign < 0 else t.lo
    margin = -sign * edge
    if not math.isfinite(t.rho):
        return Outcome(Verdict.INCONCLUSIVE, t.rho, edge, math.nan,
                       f"{what}: no variation, ρ undefined ({t.runs} runs)")
    supports = t.lo > 0 if sign > 0 else t.hi < 0
    refutes = t.hi < 0 if sign > 0 else t.lo > 0
    if supports:
        return Outcome(Verdict.PASS, t.rho, edge, abs(margin), f"{what}: {ci}")
    if refutes:
        return Outcome(Verdict.FAIL, t.rho, edge, -abs(margin), f"{what}: wrong sign, {ci}")
    return Outcome(Verdict.INCONCLUSIVE, t.rho, edge, margin, f"{what}: CI contains 0, {ci}")


def plot_spec(record: dict, metrics: Sequence[str], ylabel: str, theorem: str) -> dict | None:
    """A ``lines`` plot spec (verify.report.PLOT_SPEC): each metric's mean over seeds against
    the grid variable, from a finished trend record (series ``x`` and one list per metric)."""
    ser, det = record.get("series") or {}, record.get("details") or {}
    xs_all = ser.get("x") or []
    if not xs_all:
        return None
    xs = sorted(set(xs_all))
    lines = []
    for m in metrics:
        ys = ser.get(m) or []
        if len(ys) != len(xs_all):
            continue
        mean = [float(np.mean([y for x, y in zip(xs_all, ys, strict=True) if x == v]))
                for v in xs]
        lines.append({"label": f"{m} (mean over seeds)", "x": xs, "y": mean})
    return {"kind": "lines", "title": f"{theorem} {record.get('name')}",
            "caption": f"{record.get('description')} — {record.get('reason')}",
            "xlabel": str(det.get("field")), "ylabel": ylabel, "xscale": "log",
            "lines": lines}
