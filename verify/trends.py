"""Statistical trends: rank correlation with a bootstrap confidence interval.

A [trend] claim (THEOREMS.md) says that a quantity moves with a hyperparameter. One pair of
runs cannot show that; a trend is tested as Spearman's ρ over many networks (seeds × values),
with a percentile bootstrap interval that resamples the independent units (networks). The
verdict is PASS only when the interval excludes zero on the claimed side, FAIL when it
excludes zero on the wrong side, INCONCLUSIVE otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from verify.verdict import Outcome, Verdict

BOOTSTRAP = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Trend:
    """Spearman's ρ of (x, y), its bootstrap interval [lo, hi] and the number of points."""

    rho: float
    lo: float
    hi: float
    n: int


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ (Pearson on average ranks); NaN when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def stratified(x: np.ndarray, y: np.ndarray, strata: np.ndarray) -> float:
    """Mean of the within-stratum ρ over strata where it is defined (NaN if none is): a
    trend inside each stratum (e.g. per layer), not one made by mixing strata."""
    rs = [spearman(x[strata == s], y[strata == s]) for s in np.unique(strata)]
    rs = [r for r in rs if math.isfinite(r)]
    return float(np.mean(rs)) if rs else math.nan


def rank_trend(x: Sequence[float], y: Sequence[float], groups: Sequence[int] | None = None,
               strata: Sequence[int] | None = None, design: Sequence[float] | None = None,
               seed: int = 0) -> Trend:
    """ρ(x, y) with a percentile bootstrap interval; ``groups`` names the independent unit
    of each point (points of one network move together) and whole groups are resampled,
    within each ``design`` level when given (a sweep fixes its λ values and draws seeds: the
    seeds are resampled per λ); with ``strata`` ρ is the mean within-stratum ρ."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    g = np.arange(len(xa)) if groups is None else np.asarray(groups)
    sa = np.zeros(len(xa), int) if strata is None else np.asarray(strata)
    da = np.zeros(len(xa)) if design is None else np.asarray(design, float)
    units = np.unique(g)
    members = [np.flatnonzero(g == u) for u in units]
    level = np.array([da[m[0]] for m in members])
    blocks = [np.flatnonzero(level == v) for v in np.unique(level)]
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(BOOTSTRAP):
        pick = np.concatenate([rng.choice(b, len(b)) for b in blocks])
        idx = np.concatenate([members[i] for i in pick])
        r = stratified(xa[idx], ya[idx], sa[idx])
        if math.isfinite(r):
            rhos.append(r)
    alpha = (1 - LEVEL) / 2
    lo, hi = (np.quantile(rhos, [alpha, 1 - alpha]) if rhos else (math.nan, math.nan))
    return Trend(stratified(xa, ya, sa), float(lo), float(hi), len(xa))


def judge_trend(t: Trend, sign: int, what: str) -> Outcome:
    """PASS when the interval lies strictly on the side ``sign`` (±1) of zero, FAIL when it
    lies strictly on the other side, INCONCLUSIVE when it contains zero (or is undefined).
    Reported as measured = ρ, bound = 0, margin = the interval's distance from 0 on the
    claimed side."""
    near, far = (t.hi, t.lo) if sign < 0 else (t.lo, t.hi)
    desc = f"{what}: ρ = {t.rho:.3g}, {LEVEL:.0%} CI [{t.lo:.3g}, {t.hi:.3g}] over {t.n} points"
    if not (math.isfinite(t.lo) and math.isfinite(t.hi)):
        return Outcome(Verdict.INCONCLUSIVE, t.rho, 0.0, math.nan, f"{desc} (undefined)")
    m = sign * near
    if m > 0:
        return Outcome(Verdict.PASS, t.rho, 0.0, m, f"{desc}: sign {sign:+d} as claimed")
    if sign * far < 0:
        return Outcome(Verdict.FAIL, t.rho, 0.0, m, f"{desc}: the opposite sign")
    return Outcome(Verdict.INCONCLUSIVE, t.rho, 0.0, m, f"{desc}: contains 0")
