"""Measurements on a mini-batch SGD run (THEOREMS.md T5; Galanti, Siegel, Gupte, Poggio,
arXiv:2206.05794 v7).

Plain SGD with coupled decay, W_{t+1} = (1 − ηλ)W_t − η G_t, unrolls to
    W_T = (1−ηλ)^s W_{T−s} − η Σ_{j=1}^{s} (1−ηλ)^{j−1} G_{T−j},
and the sum has rank ≤ s·B·m (each G has rank ≤ B·m), so by Eckart–Young
    D_{sBm}(W_t) ≤ (1 − ηλ)^s ‖W_{t−s}‖_F   for every t and s ≤ t.
This module measures both sides on every pair (t, s) of a stored trajectory
(:func:`unrolled_tail`, from the singular values an :class:`SpectraObserver` records at every
step) and the spread of the batch gradients that keeps SGD away from a stationary point
(:func:`sgd_noise`, T5(e)). Verdicts are the theorem's (``verify.claims.verdict``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from verify.engine import sgd
from verify.measure import spectra
from verify.nets.activations import Params
from verify.nets.objective import Objective, flat
from verify.tolerances import EPS, gamma

# Rounding of one SGD step W − η(G + λW), per entry: the batch sum inside G (B terms) and a
# handful of operations for the step (scale, decay, subtract). Each is bounded by γ of the
# magnitudes involved, ‖W_t‖ and ‖ηG_t‖ ≤ ‖W_t‖ + ‖W_{t+1}‖, so per step
#   ‖E_t‖_F ≤ 2·γ_{B+STEP_OPS}·(2‖W_t‖ + ‖W_{t+1}‖)
# (one γ for the computed gradient, one for the update; Higham §3.1).
STEP_OPS = 4
TINY = torch.finfo(torch.float64).tiny  # guards a division by a zero norm only


class SpectraObserver:
    """Training observer: the singular values of every layer at every step (bounded memory:
    (T + 1)·Σ_k min(d_k, d_{k−1}) floats, no iterates kept)."""

    def __init__(self, depth: int) -> None:
        self.sv: list[list[Tensor]] = [[] for _ in range(depth)]

    def __call__(self, t: int, params: Params) -> None:
        for k, rows in enumerate(self.sv):
            rows.append(spectra.singular_values(params[k]).cpu())

    def layer(self, k: int) -> Tensor:
        """(T + 1) × min(d_out, d_in): the singular values of W_k(t), one row per step."""
        return torch.stack(self.sv[k])


def step_rounding(norms: Tensor, batch: int) -> Tensor:
    """The bound on ‖E_t‖_F above for every step t < T, from ‖W_0‖ … ‖W_T‖."""
    return 2 * gamma(batch + STEP_OPS) * (2 * norms[:-1] + norms[1:])


@dataclass(frozen=True)
class UnrolledTail:
    """The worst pair (t, s) of the unrolled tail bound over a trajectory.

    ``D`` = D_k(W_t) with k = s·(per-step rank), ``bound`` = (1−ηλ)^s ‖W_{t−s}‖_F plus the
    rounding of those s steps and of the SVD, ``scale`` = ‖W_t‖_F; ``checked`` pairs had
    k < min(d_out, d_in) (beyond, D = 0 trivially), ``informative`` of them a bound below
    ‖W_t‖_F (the trivial one). ``series`` holds the final t = T against s.
    """

    D: float
    bound: float
    scale: float
    t: int
    s: int
    k: int
    checked: int
    informative: int
    series: dict[str, list[float]] = field(default_factory=dict)


def unrolled_tail(sv: Tensor, decay: float, rank_per_step: int, batch: int) -> UnrolledTail:
    """Both sides of D_{s·k}(W_t) ≤ decay^s ‖W_{t−s}‖_F on every pair t, s ≤ t with
    s·k < min(d_out, d_in), from the singular values ``sv`` of W_0 … W_T (rows); k =
    ``rank_per_step`` (B·m), ``batch`` sizes the rounding of a step (:func:`step_rounding`)."""
    sv = sv.to(torch.float64)
    T, r = sv.shape[0] - 1, sv.shape[1]
    tails = spectra.spectrum_tails(sv)  # tails[t, k] = D_k(W_t); tails[t, 0] = ‖W_t‖_F
    norms = tails[:, 0]
    cum = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumsum(step_rounding(norms, batch), 0)])
    svd = max(r, 1) * EPS[torch.float64]  # a backward-stable SVD: ≤ d·eps·‖W_t‖_F
    worst: tuple[float, int, int, float, float] | None = None  # (margin, t, s, D, bound)
    useful = checked = 0
    for s in range(1, min(T, (r - 1) // rank_per_step) + 1):
        t = torch.arange(s, T + 1)
        D = tails[t, s * rank_per_step]
        bound = decay**s * norms[t - s]
        slack = cum[t] - cum[t - s] + svd * norms[t]
        margin = (bound + slack - D) / norms[t].clamp_min(TINY)
        checked += len(t)
        useful += int((bound < norms[t]).sum())
        i = int(torch.argmin(margin))
        if worst is None or float(margin[i]) < worst[0]:
            worst = (float(margin[i]), int(t[i]), s, float(D[i]), float(bound[i] + slack[i]))
    steps = range(1, min(T, (r - 1) // rank_per_step) + 1)
    series = {"s": [float(s) for s in steps],
              "D": [float(tails[T, s * rank_per_step]) for s in steps],
              "bound": [float(decay**s * norms[T - s]) for s in steps]}
    if worst is None:
        return UnrolledTail(0.0, 0.0, math.nan, T, 0, 0, 0, 0, series)
    _, t_w, s_w, D_w, b_w = worst
    return UnrolledTail(D_w, b_w, max(float(norms[t_w]), TINY), t_w, s_w, s_w * rank_per_step,
                        checked, useful, series)


@dataclass(frozen=True)
class Noise:
    """SGD noise at θ: ‖∇F‖ of the full objective, ‖∇F_b‖ of each batch b of one epoch, and
    ½ max_{b,b'} ‖∇F_b − ∇F_b'‖ (= ½ max ‖∇L̂_b − ∇L̂_b'‖: the decay term cancels, so this
    part does not shrink with λ). max_b ‖∇F_b‖ ≥ max(‖∇F‖, that half spread) always: ∇F is
    the batches' weighted mean, and a norm is convex."""

    full: float
    batch_norms: tuple[float, ...]
    half_spread: float

    @property
    def top(self) -> float:
        return max(self.batch_norms)

    def to_json(self) -> dict[str, Any]:
        return {"full_grad": self.full, "max_batch_grad": self.top,
                "half_max_batch_spread": self.half_spread, "batches": len(self.batch_norms),
                "ratio_max_batch_to_full": self.top / self.full if self.full else math.inf}


def sgd_noise(obj: Objective, params: Params, batches: Sequence[Tensor]) -> Noise:
    """:class:`Noise` of ``obj`` at ``params`` over the index sets ``batches``."""
    full = float(torch.linalg.norm(flat(obj.grad(params))))
    grads = [flat(sgd.on_batch(obj, idx).grad(params)) for idx in batches]
    spread = 0.5 * max((float(torch.linalg.norm(a - b)) for a in grads for b in grads),
                       default=0.0)
    return Noise(full, tuple(float(torch.linalg.norm(g)) for g in grads), spread)
