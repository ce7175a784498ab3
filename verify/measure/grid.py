"""The data of a [trend] claim: a grid of settings × seeds, each trained along the optimiser's
own trajectory (no certificate: the claims are about what SGD outputs), then measured.

THEOREMS.md, "What every check must satisfy": a trend is a statistical claim, tested over
seeds with a rank correlation and its confidence interval, never on a single pair. The
grid varies one field of a base :class:`~verify.engine.setting.Setting` over ``values``
and draws ``seeds`` seeds per value (base seed, base seed + 1, …); a diverged run is left
out and counted. :meth:`Grid.trend` is Spearman's ρ of a metric against the field with a
bootstrap interval (:mod:`verify.measure.trend`); the verdict on it is
:func:`verify.claims.verdict.judge_trend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from verify.engine.setting import Context, Setting, trajectory
from verify.measure import spectra
from verify.measure.trend import Trend, spearman
from verify.nets.activations import Params
from verify.nets.network import weights

# A metric: named measurements of the trained parameters of one setting.
Metric = Callable[[Setting, Params], Mapping[str, float]]


@dataclass(frozen=True)
class Grid:
    """The measurements of a finished grid: ``x`` is the field's value at every run that
    did not diverge (values outer, seeds inner), ``y[name]`` the metric there."""

    field: str
    values: tuple[float, ...]
    seeds: int
    x: tuple[float, ...]
    y: Mapping[str, tuple[float, ...]]
    diverged: int

    def trend(self, metric: str, seed: int) -> Trend:
        """Spearman's ρ of ``metric`` against the field, bootstrap interval seeded; NaN (no
        trend can be read) with fewer than two finished runs."""
        if len(self.x) < 2:
            return Trend(math.nan, math.nan, math.nan, len(self.x))
        return spearman(self.x, self.y[metric], seed=seed)

    def mean_at(self, metric: str, value: float) -> float:
        """The mean of ``metric`` over the seeds at one grid value (NaN when all diverged)."""
        ys = [y for x, y in zip(self.x, self.y[metric], strict=True) if x == value]
        return sum(ys) / len(ys) if ys else math.nan

    def series(self) -> dict[str, list[float]]:
        """``x`` and one list per metric (the report's trend figures read these)."""
        return {"x": list(self.x), **{m: list(v) for m, v in self.y.items()}}

    def details(self) -> dict[str, Any]:
        return {"field": self.field, "values": list(self.values), "seeds": self.seeds,
                "diverged": self.diverged}


def run_grid(base: Setting, ctx: Context, field: str, values: Sequence[float], seeds: int,
             metric: Metric) -> Grid:
    """Train ``base`` with ``field`` at every value and ``seeds`` seeds, and measure each
    finite run with ``metric`` (all runs must report the same names)."""
    xs: list[float] = []
    ys: dict[str, list[float]] = {}
    diverged = 0
    for v in values:
        for j in range(seeds):
            change: dict[str, Any] = {field: v, "seed": base.seed + j}
            s = replace(base, **change)
            res = trajectory(s, ctx)
            if not res.finite:
                diverged += 1
                continue
            xs.append(float(v))
            for name, value in metric(s, res.params).items():
                ys.setdefault(name, []).append(float(value))
    return Grid(field, tuple(values), seeds, tuple(xs),
                {m: tuple(v) for m, v in ys.items()}, diverged)


def hidden_ranks(s: Setting, params: Params) -> dict[str, float]:
    """Mean rank_tol (tol 1e-3, as in the code of Galanti et al.) and mean stable rank of the
    hidden layers W_1 … W_{L−1} (THEOREMS.md T5(d)), at ``s``'s architecture."""
    W = weights(s.architecture(), params)[:-1]
    return {"rank_tol": sum(spectra.numerical_rank(w) for w in W) / len(W),
            "stable_rank": sum(spectra.stable_rank(w) for w in W) / len(W)}
