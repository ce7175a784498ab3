"""Rounding tolerances derived from machine epsilon and the size of a computation.

One table, keyed by dtype, in the spirit of a dtype tolerance table: every comparison of
quantities that agree in exact arithmetic allows for the rounding of the operations that
computed them, never for a tuned constant. Another CPU picks another BLAS kernel (another
summation order, FMA or not, another blocking): these bounds hold for any kernel, a literal
does not (a test asserting r < 1e-14 measured 1.19e-14 on an AVX-512 machine).

With u = eps/2 the unit roundoff of the dtype (:data:`EPS`) and γ_k = k·u/(1 − k·u):

=========================================  ==================================  ============
computation                                bound on the error                  source
=========================================  ==================================  ============
sum or inner product of k terms            γ_k · Σ|x_i y_i|                    [H] §3.1
product A·B, inner dimension k             γ_k · (|A||B|)_ij, each entry        [H] §3.5
a chain of products, inner dims k_1..k_L   γ_{k_1+…+k_L} · (|A_1|…|A_L|)        [H] Lemma 3.3
elementwise σ (tanh, exp, log1p, …)        2u relative (libm: ≤ 1 ulp)          IEEE 754 §9
network forward, widths d_0..d_L           γ_{ops} · forward on |W|, |X|        the above,
  ops = :func:`network_ops`                                                       chained
data gradient, n samples                   γ_{ops} · gradient on |W|, |X|, |Y|  idem
  ops = :func:`gradient_ops`
QR, SVD, symmetric eigensolver, m × n      backward error γ̃_{mn}·‖A‖_F; hence   [H] Thm 19.4,
                                           |σ̂_i − σ_i|, |λ̂_i − λ_i| ≤ γ̃_{mn}·‖A‖_F  [GV] §8.6
                                           (Weyl)
=========================================  ==================================  ============

γ̃_k = γ_{c·k} with c = :data:`C_FACTORISATION` = 16, the "small integer constant" of
Householder-based factorisations ([H] §19.3; LAPACK's test thresholds use 30 with another
normalisation). The bound of a quantity is γ times the scale of what was summed — the same
computation on absolute values — not the size of the result, which may have cancelled.

[H] Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002.
[GV] Golub & Van Loan, *Matrix Computations*, 4th ed., 2013.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

EPS: dict[torch.dtype, float] = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.bfloat16: 2.0**-7,
    torch.float16: 2.0**-10,
}

C_FACTORISATION = 16
ELEMENTWISE_OPS = 2  # an elementwise function: ≤ 1 ulp = 2u, counted as two roundings


def unit_roundoff(dtype: torch.dtype = torch.float64) -> float:
    """u = eps/2 of ``dtype``."""
    return EPS[dtype] / 2


def gamma(n: int, dtype: torch.dtype = torch.float64) -> float:
    """γ_n = n·u/(1 − n·u): the relative rounding bound of a sum of ``n`` terms (∞ when
    n·u ≥ 1, where no bound of this form exists)."""
    nu = max(int(n), 1) * unit_roundoff(dtype)
    return nu / (1 - nu) if nu < 1 else math.inf


def matmul(inner: int, dtype: torch.dtype = torch.float64) -> float:
    """Relative Frobenius-norm error of a computed product AB with inner dimension ``inner``:
    |fl(AB) − AB| ≤ γ_inner |A||B| entrywise, so ‖fl(AB) − AB‖_F ≤ γ_inner ‖A‖_F‖B‖_F."""
    return gamma(inner, dtype)


def gamma_tilde(k: int, dtype: torch.dtype = torch.float64) -> float:
    """γ̃_k = γ_{c·k}: the backward error of a Householder factorisation of k entries."""
    return gamma(C_FACTORISATION * max(int(k), 1), dtype)


def factorisation(m: int, n: int, dtype: torch.dtype = torch.float64) -> float:
    """Relative (to ‖A‖_F) error of the singular values or eigenvalues of an m × n matrix
    computed by a backward-stable QR/SVD/eigensolver: γ̃_{mn} (table above). It is also the
    backward error of the Householder factors themselves (computed factors are exact for
    A + ΔA, ‖ΔA‖ ≤ γ̃_{mn}‖A‖; Higham 2002, Thm 19.4 and §20) and the loss of orthogonality
    ‖QᵀQ − I‖ of a computed orthogonal factor."""
    return gamma_tilde(m * n, dtype)


def network_ops(widths: Sequence[int], depth_functions: int | None = None) -> int:
    """Roundings along the longest dependency chain of a forward pass through an MLP with
    ``widths`` = (d_0, …, d_L): an inner product of d_{k−1} terms per layer, and an
    elementwise σ after each hidden layer (``depth_functions``, default L − 1)."""
    L = len(widths) - 1
    funcs = L - 1 if depth_functions is None else depth_functions
    return int(sum(widths[:-1])) + ELEMENTWISE_OPS * funcs


def gradient_ops(widths: Sequence[int], n: int) -> int:
    """Roundings along the longest chain of a data gradient g_k = (1/n) Σ_i δ_i z_iᵀ: the
    forward pass, the loss derivative, the backward pass (inner products of d_k terms, σ'
    elementwise), then the sum over the ``n`` samples."""
    back = int(sum(widths[1:])) + ELEMENTWISE_OPS * (len(widths) - 1)
    return network_ops(widths) + ELEMENTWISE_OPS + back + int(n)
