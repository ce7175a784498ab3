"""Steady state of an SGD run: has what is measured settled? (THEOREMS.md T5(d), T7.)

How long to train. Plain SGD with coupled decay, W_{t+1} = (1 − ηλ)W_t − ηG_t, keeps
(1 − ηλ)^T of its initialisation after T steps (the unrolling of T5(b)). A rank measured at
tolerance ε (rank_tol, ε = 1e-3 as in the code of Galanti et al., arXiv:2206.05794 v7) is the
optimiser's and not the initialisation's once that share is below ε/2 *relative to the final
norm*, which weight decay shrinks too. Allowing the norm to shrink by up to the same factor
ε/2 gives (1 − ηλ)^T ≤ (ε/2)², i.e.

    T ≥ c / (−log(1 − ηλ)) ≈ c/(ηλ),   c = SETTLE = 2·log(2/ε) ≈ 15.2.

:func:`settle_steps` is this T. (Measured on T5's trend networks: at c = log(2/ε) — the
unrolling T5(c) needs — the mean rank still moved by 50–90% over the last fifth; the ranks
reach their plateau at ηλT ≈ 10–12.)

Whether a run did settle is measured, not assumed: :class:`Checkpoints` records the singular
values of the measured layers and the full-batch objective F at evenly spaced steps, and
:func:`steady_state` compares the two halves of the last fifth of training — the relative
change |mean(second half) − mean(first half)| / |mean(last fifth)| of the mean numerical rank,
the mean stable rank and F (means over checkpoints, so that SGD's step-to-step noise does not
count as drift). A run is settled when each change is at most DRIFT. DRIFT is a protocol
setting of this harness (the papers give none), stated in every record beside the changes, so
a reader can apply another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from verify.measure import spectra
from verify.nets.activations import Params
from verify.nets.network import Network, weights
from verify.nets.objective import Objective

TOL = 1e-3  # rank_tol's tolerance (THEOREMS.md "Spectra")
SETTLE = 2 * math.log(2 / TOL)  # c of T ≥ c/(ηλ) (module doc)
WINDOW = 0.2  # the last fifth of training
DRIFT = 0.05  # settled: every relative change over the last fifth ≤ 5% (a protocol setting)
POINTS = 50  # checkpoints over a run (10 in the last fifth)
MIN_HALF = 2  # checkpoints each half of the last fifth needs (a run of < 20 steps has fewer)


def settle_steps(lr: float, lam: float, c: float = SETTLE) -> int:
    """The smallest T with (1 − ηλ)^T ≤ e^{−c} (module doc); needs 0 < ηλ < 1."""
    if not 0 < lr * lam < 1:
        raise ValueError(f"settle_steps needs 0 < ηλ < 1, got η={lr}, λ={lam}")
    return math.ceil(c / -math.log1p(-lr * lam))


def measured_layers(arch: Network) -> tuple[int, ...]:
    """The layers whose rank a trend is about: the hidden ones W_1 … W_{L−1} (T5(d)); for a
    two-layer net that is V = W_1 (T7). A one-layer net has only W_1."""
    return tuple(range(max(arch.depth - 1, 1)))


class Checkpoints:
    """Training observer: at every ``every``-th step (and the last), the singular values of
    the ``layers`` and the full-batch objective F (``objective.value``)."""

    def __init__(self, objective: Objective, steps: int, layers: Sequence[int] | None = None,
                 points: int = POINTS) -> None:
        self.objective = objective
        self.steps = steps
        self.layers = tuple(measured_layers(objective.arch) if layers is None else layers)
        self.every = max(1, steps // points)
        self.t: list[int] = []
        self.sv: list[list[Tensor]] = []
        self.F: list[float] = []

    def __call__(self, t: int, params: Params) -> None:
        if t % self.every and t != self.steps:
            return
        W = weights(self.objective.arch, params)
        self.t.append(t)
        if not all(bool(torch.isfinite(p).all()) for p in params):  # diverging: no SVD
            self.sv.append([torch.full((min(W[k].shape[0], W[k][0].numel()),), math.nan,
                                       dtype=torch.float64) for k in self.layers])
            self.F.append(math.nan)
            return
        self.sv.append([spectra.singular_values(W[k].reshape(W[k].shape[0], -1)).cpu()
                        for k in self.layers])
        with torch.no_grad():
            self.F.append(float(self.objective.value(tuple(params))))

    def state(self, tol: float = TOL, drift: float = DRIFT) -> SteadyState:
        """:func:`steady_state` of what was recorded."""
        ranks = [float(sum(int(spectra.spectrum_rank(s, tol)) for s in row) / len(row))
                 for row in self.sv]
        stable = [float(sum(_stable(s) for s in row) / len(row)) for row in self.sv]
        return steady_state(self.t, ranks, stable, self.F, self.steps, drift)


class Chain:
    """Several observers as one (e.g. T5's per-step spectra and the checkpoints)."""

    def __init__(self, *observers: Any) -> None:
        self.observers = observers

    def __call__(self, t: int, params: Params) -> None:
        for obs in self.observers:
            obs(t, params)


def _stable(s: Tensor) -> float:
    return 0.0 if float(s[0]) == 0.0 else float((s**2).sum() / s[0] ** 2)


@dataclass(frozen=True)
class SteadyState:
    """The drift of the measured quantities over the last fifth of a run of ``steps`` steps.

    ``halves[q]`` = (mean over the checkpoints in the first half of the last fifth, mean in
    the second half) for q in rank (mean rank_tol of the measured layers), stable_rank and F;
    ``change[q]`` their relative difference; settled ⇔ every change ≤ ``drift``.
    """

    steps: int
    window: tuple[int, int]
    halves: dict[str, tuple[float, float]]
    change: dict[str, float]
    drift: float
    settled: bool
    reason: str
    checkpoints: int = 0
    trace: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self, trace: bool = True) -> dict[str, Any]:
        """The record; ``trace`` adds the checkpoints themselves (left out of the many runs
        of a study, where the changes suffice)."""
        out: dict[str, Any] = {
            "settled": self.settled, "steps": self.steps, "window": list(self.window),
            "change": dict(self.change), "drift_limit": self.drift,
            "halves": {k: list(v) for k, v in self.halves.items()},
            "checkpoints": self.checkpoints, "reason": self.reason}
        if trace:
            out["trace"] = {k: list(v) for k, v in self.trace.items()}
        return out


def relative_change(first: Sequence[float], second: Sequence[float]) -> float:
    """|mean(second) − mean(first)| / |mean of both|: 0 when nothing moved, NaN when a half
    is empty, ∞ when the quantity is 0 on average but not constant."""
    if not first or not second:
        return math.nan
    a, b = sum(first) / len(first), sum(second) / len(second)
    scale = abs(sum(first) + sum(second)) / (len(first) + len(second))
    if a == b:
        return 0.0
    return abs(b - a) / scale if scale > 0 else math.inf


def steady_state(t: Sequence[int], rank: Sequence[float], stable_rank: Sequence[float],
                 F: Sequence[float], steps: int, drift: float = DRIFT) -> SteadyState:
    """:class:`SteadyState` from checkpoints at steps ``t`` (any spacing) of a run that was
    meant to take ``steps`` steps; a run that stopped early is measured over the steps it
    made. Checkpoints with a non-finite F make the run unsettled."""
    end = max(t, default=0)
    start = end - math.ceil(WINDOW * end)
    mid = (start + end) / 2
    series = {"rank": rank, "stable_rank": stable_rank, "F": F}
    halves: dict[str, tuple[float, float]] = {}
    change: dict[str, float] = {}
    for name, vals in series.items():
        first = [v for s, v in zip(t, vals, strict=True) if start <= s < mid]
        second = [v for s, v in zip(t, vals, strict=True) if mid <= s <= end]
        if min(len(first), len(second)) < MIN_HALF:  # a half must be an average
            first = second = []
        halves[name] = (sum(first) / len(first) if first else math.nan,
                        sum(second) / len(second) if second else math.nan)
        change[name] = relative_change(first, second)
    moved = [f"{k} {v:.2g}" for k, v in change.items() if not v <= drift]
    if not all(math.isfinite(f) for f in F):
        settled, reason = False, "not settled: F not finite (diverged)"
    elif end < steps:
        settled, reason = False, f"not settled: stopped at step {end} of {steps}"
    elif any(math.isnan(v) for v in change.values()):
        settled, reason = False, "not settled: too few checkpoints in the last fifth"
    elif moved:
        settled, reason = False, (f"not settled: relative change over steps {start}–{end} "
                                  f"{', '.join(moved)} > {drift:g}")
    else:
        settled, reason = True, (f"settled: relative change over steps {start}–{end} ≤ "
                                 f"{drift:g} (" + ", ".join(f"{k} {v:.2g}" for k, v in
                                                           change.items()) + ")")
    trace = {"t": [float(s) for s in t], "rank": list(rank), "stable_rank": list(stable_rank),
             "F": list(F)}
    return SteadyState(steps, (start, end), halves, change, drift, settled, reason, len(t),
                       trace)
