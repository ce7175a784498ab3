"""The data of a [trend] claim: a study of SGD-trained networks under a stated training
protocol, at steady state and beside their fit (THEOREMS.md T5(d), T7; "What every check must
satisfy": a trend is a statistical claim, tested over seeds with a rank correlation and its
confidence interval, never on a single pair).

A study trains ``base`` at every point of a grid (dicts of Setting fields: the trend's field,
and optionally a stratum field such as the width) with ``seeds`` seeds each (base seed, base
seed + 1, …), along plain SGD's own trajectory (no certificate: the claims are about what
SGD outputs). The :class:`Protocol` fixes each run's number of steps:

- ``settle``: T from the run's own ηλ (:func:`verify.measure.steady.settle_steps`);
- ``fixed steps``: the same T for every run;
- ``fixed epochs``: T = ⌈epochs·n/B⌉ — the paper's protocol for the batch-size trend
  (Galanti et al., arXiv:2206.05794 v7 train a fixed number of epochs, so steps ∝ n/B).

Every run records its steady state (:mod:`verify.measure.steady`) and fit
(:mod:`verify.measure.fit`); a trend uses only the runs that did not diverge, settled and fit
(neither at chance nor collapsed); the others are listed with the reason they were left out
and counted. :meth:`Study.trend` is Spearman's ρ with a bootstrap interval that resamples the
runs within each grid value (:func:`verify.measure.trend.rank_trend`), within each stratum
when the study has one; the verdict on it is :func:`verify.claims.verdict.judge_trend_on`.
(:func:`hidden_ranks` is the metric of T5(d).)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from verify.engine.setting import Context, Setting, trajectory
from verify.errors import require
from verify.measure import spectra
from verify.measure.fit import Fit, fit
from verify.measure.steady import SETTLE, Checkpoints, SteadyState, settle_steps
from verify.measure.trend import Trend, rank_trend
from verify.nets.activations import Params
from verify.nets.network import weights

# A metric: named measurements of the trained parameters of one setting.
Metric = Callable[[Setting, Params], Mapping[str, float]]
PROTOCOLS = ("settle", "fixed steps", "fixed epochs")
WIDTH = "width"  # a grid key that is not a Setting field: every hidden width


@dataclass(frozen=True)
class Protocol:
    """How many steps every run of a study takes (module doc)."""

    name: str = "settle"
    steps: int | None = None  # fixed steps
    epochs: float | None = None  # fixed epochs
    c: float = SETTLE  # settle: T ≥ c/(ηλ)

    def __post_init__(self) -> None:
        require(self.name in PROTOCOLS, "protocol", self.name, f"one of {', '.join(PROTOCOLS)}")
        require(self.name != "fixed steps" or (isinstance(self.steps, int) and self.steps > 0),
                "steps", self.steps, "a positive integer for the fixed-steps protocol")
        require(self.name != "fixed epochs" or (self.epochs is not None and self.epochs > 0),
                "epochs", self.epochs, "a positive number for the fixed-epochs protocol")

    def steps_for(self, s: Setting) -> int:
        if self.name == "fixed steps":
            return int(self.steps or 0)
        if self.name == "fixed epochs":
            return math.ceil(float(self.epochs or 0) * s.n / (s.batch or s.n))
        return settle_steps(s.lr, s.lam, self.c)

    def describe(self) -> str:
        if self.name == "fixed steps":
            return f"fixed steps (T = {self.steps} for every run)"
        if self.name == "fixed epochs":
            return f"fixed epochs ({self.epochs:g} epochs: T = ⌈epochs·n/B⌉)"
        return f"settle (T = ⌈{self.c:.3g}/−log(1−ηλ)⌉ per run)"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "steps": self.steps, "epochs": self.epochs, "c": self.c,
                "description": self.describe()}


@dataclass(frozen=True)
class Run:
    """One trained network of a study: its grid point, seed, steps and what was measured."""

    point: Mapping[str, float]
    seed: int
    steps: int
    metrics: Mapping[str, float]
    steady: SteadyState
    fit: Fit
    finite: bool
    control: bool = False  # a reference run at the same steps: it need not settle
    linear: bool = False  # the run must fit at least as well as the linear map (regression)

    @property
    def exclusion(self) -> str | None:
        """Why the run is left out of a trend (None: it is used)."""
        if not self.finite:
            return "diverged"
        if self.fit.collapsed:
            return "collapsed"
        if self.fit.at_chance:
            return "at chance"
        if self.linear and self.fit.linear is not None and not self.fit.value >= self.fit.linear:
            return "below linear fit"
        if not self.steady.settled and not self.control:
            return "not settled"
        return None

    def to_json(self) -> dict[str, Any]:
        return {**dict(self.point), "seed": self.seed, "steps": self.steps,
                **dict(self.metrics), "fit": self.fit.value, "fit_kind": self.fit.kind,
                "chance": self.fit.chance, "at_chance": self.fit.at_chance,
                "collapsed": self.fit.collapsed, "classes_predicted": self.fit.classes_predicted,
                "linear_fit": self.fit.linear,
                "steady_state": self.steady.to_json(trace=False), "control": self.control,
                "excluded": self.exclusion}


@dataclass(frozen=True)
class Study:
    """The runs of a finished study; ``field`` is the trend's variable, ``stratum`` the field
    the trend is taken within (None: one stratum)."""

    field: str
    protocol: Protocol
    seeds: int
    runs: tuple[Run, ...]
    stratum: str | None = None

    def usable(self) -> list[Run]:
        return [r for r in self.runs if r.exclusion is None]

    def excluded(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            if r.exclusion is not None:
                out[r.exclusion] = out.get(r.exclusion, 0) + 1
        return out

    def levels(self) -> int:
        """The number of distinct values of the field among the usable runs."""
        return len({r.point[self.field] for r in self.usable()})

    def trend(self, metric: str, seed: int) -> Trend:
        """Spearman ρ of ``metric`` against the field over the usable runs (within strata),
        bootstrap interval resampling runs within each grid value; NaN with < 2 runs."""
        use = self.usable()
        if len(use) < 2:
            return Trend(math.nan, math.nan, math.nan, len(use))
        x = [float(r.point[self.field]) for r in use]
        y = [float(r.metrics[metric]) for r in use]
        strata = None if self.stratum is None else [
            round(float(r.point[self.stratum])) for r in use]
        return rank_trend(x, y, strata=strata, design=x, seed=seed)

    def cells(self, metrics: Sequence[str]) -> list[dict[str, Any]]:
        """Per grid point (and stratum): runs used / trained, and mean, spread (sample
        standard deviation), min and max over the used seeds of each metric and of the fit."""
        keys = sorted({tuple(sorted(r.point.items())) for r in self.runs})
        out = []
        for key in keys:
            mine = [r for r in self.runs if tuple(sorted(r.point.items())) == key]
            used = [r for r in mine if r.exclusion is None]
            row: dict[str, Any] = {**dict(key), "runs": len(mine), "used": len(used),
                                   "steps": sorted({r.steps for r in mine})}
            for m in (*metrics, "fit"):
                vals = np.array([r.fit.value if m == "fit" else r.metrics[m] for r in used],
                                dtype=float)
                row[m] = _summary(vals)
            row["excluded"] = sorted({str(r.exclusion) for r in mine if r.exclusion})
            out.append(row)
        return out

    def details(self, metrics: Sequence[str]) -> dict[str, Any]:
        use = self.usable()
        return {"field": self.field, "stratum": self.stratum, "seeds": self.seeds,
                "protocol": self.protocol.to_json(), "networks": len(self.runs),
                "used": len(use), "excluded": self.excluded(), "cells": self.cells(metrics),
                "runs": [r.to_json() for r in self.runs]}

    def series(self, metrics: Sequence[str]) -> dict[str, list[float]]:
        """``x`` and one list per metric over the usable runs (the trend figures read these)."""
        use = self.usable()
        out = {"x": [float(r.point[self.field]) for r in use],
               **{m: [float(r.metrics[m]) for r in use] for m in metrics}}
        if self.stratum is not None:
            out["stratum"] = [float(r.point[self.stratum]) for r in use]
        return out


def _summary(vals: np.ndarray) -> dict[str, float]:
    if not len(vals):
        return {"mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            "min": float(vals.min()), "max": float(vals.max())}


def train_run(s: Setting, ctx: Context, metric: Metric, point: Mapping[str, float],
              layers: Sequence[int] | None = None) -> Run:
    """Train ``s`` by its optimiser for ``s.steps`` steps; measure, steady state, fit."""
    obj = s.objective(ctx.device)
    obs = Checkpoints(obj, s.steps, layers)
    res = trajectory(s, ctx, obs)
    arch = s.architecture()
    metrics = ({k: float(v) for k, v in metric(s, res.params).items()} if res.finite
               else {})
    return Run(dict(point), s.seed, s.steps, metrics, obs.state(),
               fit(arch, res.params, obj.data), res.finite)


def run_study(base: Setting, ctx: Context, field: str, points: Sequence[Mapping[str, Any]],
              seeds: int, metric: Metric, protocol: Protocol, stratum: str | None = None,
              layers: Sequence[int] | None = None, controls: Sequence[float] = (),
              linear: bool = False) -> Study:
    """Train ``base`` changed by each of ``points`` (dicts of Setting fields holding
    ``field``, and ``stratum`` when given; the key ``width`` sets every hidden width) with
    ``seeds`` seeds under ``protocol``. Runs whose ``field`` is one of ``controls`` are
    reference runs at the same steps (e.g. T7's μ = 0): they are used whether or not they
    settled — without weight decay there may be no steady state to reach. With ``linear``
    a regression run must also fit at least as well as the least-squares linear map (a
    network that contains every linear map and fits worse is weight decay's underfit)."""
    runs = []
    for p in points:
        change = {k: v for k, v in p.items() if k != WIDTH}
        if WIDTH in p:
            change["widths"] = widths_with(base.widths, int(p[WIDTH]))
        for j in range(seeds):
            s = replace(base, **{**change, "seed": base.seed + j})
            s = replace(s, steps=protocol.steps_for(s))
            point = {k: float(v) for k, v in p.items() if k in (field, stratum)}
            run = train_run(s, ctx, metric, point, layers)
            run = replace(run, control=float(p[field]) in {float(c) for c in controls},
                          linear=linear)
            if not run.finite:
                run = replace(run, metrics={})
            runs.append(run)
    return Study(field, protocol, seeds, tuple(runs), stratum)


def widths_with(widths: Sequence[int], hidden: int) -> tuple[int, ...]:
    """``widths`` with every hidden width set to ``hidden`` (a width series)."""
    return (widths[0], *(hidden for _ in widths[1:-1]), widths[-1])


def hidden_ranks(s: Setting, params: Params) -> dict[str, float]:
    """Mean rank_tol (tol 1e-3, as in the code of Galanti et al.) and mean stable rank of the
    hidden layers W_1 … W_{L−1} (THEOREMS.md T5(d)), at ``s``'s architecture."""
    W = weights(s.architecture(), params)[:-1]
    return {"rank_tol": sum(spectra.numerical_rank(w) for w in W) / len(W),
            "stable_rank": sum(spectra.stable_rank(w) for w in W) / len(W)}
