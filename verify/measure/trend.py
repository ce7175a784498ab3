"""Statistical trends: Spearman rank correlation with a bootstrap confidence interval.

A [trend] claim of THEOREMS.md ("rank falls as λ grows") cannot be shown by one pair of
runs: it is tested as Spearman's ρ over many networks (seeds × grid values) with a
percentile bootstrap interval that resamples the independent units (networks), within each
design level when the grid fixes them. The verdict on a trend is
:func:`verify.claims.verdict.judge_trend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Trend:
    """ρ and its (1 − alpha) bootstrap interval [lo, hi] over ``runs`` points."""

    rho: float
    lo: float
    hi: float
    runs: int
    alpha: float = 1 - LEVEL


def average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as scipy's rankdata, but cheap on the
    small arrays a bootstrap evaluates thousands of times)."""
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inv]


def rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ (Pearson on average ranks); NaN when either side is constant."""
    rx, ry = average_ranks(np.asarray(x, float)), average_ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / den if den > 0 else math.nan


def rank_trend(x: Sequence[float], y: Sequence[float], groups: Sequence[int] | None = None,
               strata: Sequence[int] | None = None, design: Sequence[float] | None = None,
               seed: int = 0, boot: int = BOOTSTRAP, alpha: float = 1 - LEVEL) -> Trend:
    """ρ(x, y) with a percentile bootstrap interval.

    ``groups`` names the independent unit of each point (the points of one network move
    together): whole units are resampled, within each ``design`` level when given (a sweep
    fixes its λ values and draws seeds, so the seeds are resampled per λ). With ``strata``
    ρ is the mean of the within-stratum ρ over the strata where it is defined: a trend
    inside each stratum (e.g. per layer), not one made by mixing strata.
    """
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if len(xa) < 2:  # no correlation to read (and nothing to resample)
        return Trend(math.nan, math.nan, math.nan, len(xa), alpha)
    g = np.arange(len(xa)) if groups is None else np.asarray(groups)
    sa = np.zeros(len(xa), int) if strata is None else np.asarray(strata)
    da = np.zeros(len(xa)) if design is None else np.asarray(design, float)
    units = list(np.unique(g))
    kinds = list(np.unique(sa))
    # cell[u][s]: the points of unit u in stratum s
    cell = [[np.flatnonzero((g == u) & (sa == s)) for s in kinds] for u in units]
    level = np.array([da[np.flatnonzero(g == u)[0]] for u in units])
    blocks = [np.flatnonzero(level == v) for v in np.unique(level)]

    def statistic(picked: np.ndarray) -> float:
        rs = []
        for j in range(len(kinds)):
            idx = np.concatenate([cell[u][j] for u in picked])
            if len(idx) > 1:
                r = rho(xa[idx], ya[idx])
                if math.isfinite(r):
                    rs.append(r)
        return float(np.mean(rs)) if rs else math.nan

    lo, hi = _interval(statistic, blocks, seed, boot, alpha)
    return Trend(statistic(np.arange(len(units))), lo, hi, len(xa), alpha)


def _interval(statistic: Callable[[np.ndarray], float], blocks: list[np.ndarray], seed: int,
              boot: int, alpha: float) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over ``boot`` resamples of the units, each
    block (design level) resampled with replacement within itself; NaN when undefined."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(boot):
        r = statistic(np.concatenate([rng.choice(b, len(b)) for b in blocks]))
        if math.isfinite(r):
            vals.append(r)
    if not vals:
        return math.nan, math.nan
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def spearman(x: Sequence[float], y: Sequence[float], seed: int = 0, boot: int = BOOTSTRAP,
             alpha: float = 1 - LEVEL) -> Trend:
    """ρ(x, y) with a bootstrap interval over independent points (no groups or strata)."""
    return rank_trend(x, y, seed=seed, boot=boot, alpha=alpha)


@dataclass(frozen=True)
class Slope:
    """The least-squares slope of log y on log x and its (1 − alpha) bootstrap interval
    [lo, hi] over ``runs`` points (``dropped`` points had x ≤ 0 or y ≤ 0: no logarithm)."""

    slope: float
    lo: float
    hi: float
    runs: int
    dropped: int = 0
    alpha: float = 1 - LEVEL


def _ls_slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    den = float(xc @ xc)
    return float(xc @ (y - y.mean())) / den if den > 0 else math.nan


def log_slope(x: Sequence[float], y: Sequence[float], design: Sequence[float] | None = None,
              seed: int = 0, boot: int = BOOTSTRAP, alpha: float = 1 - LEVEL) -> Slope:
    """The exponent p of y ∝ x^p: slope of log y on log x by least squares, with a percentile
    bootstrap interval resampling the points within each ``design`` level (a sweep fixes its
    λ values and draws seeds). y = c·x exactly gives p = 1 ("proportional")."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    da = np.zeros(len(xa)) if design is None else np.asarray(design, float)
    ok = (xa > 0) & (ya > 0) & np.isfinite(xa) & np.isfinite(ya)
    lx, ly, dl = np.log(xa[ok]), np.log(ya[ok]), da[ok]
    dropped = int((~ok).sum())
    if len(lx) < 2:
        return Slope(math.nan, math.nan, math.nan, len(lx), dropped, alpha)
    blocks = [np.flatnonzero(dl == v) for v in np.unique(dl)]
    lo, hi = _interval(lambda i: _ls_slope(lx[i], ly[i]), blocks, seed, boot, alpha)
    return Slope(_ls_slope(lx, ly), lo, hi, len(lx), dropped, alpha)
