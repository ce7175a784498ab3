"""Rounding tolerances derived from machine epsilon and the size of a computation.

One table, keyed by dtype, in the spirit of a dtype tolerance table: every comparison of
quantities that agree in exact arithmetic allows for the rounding of the operations that
computed them, never for a tuned constant. With u = eps/2 the unit roundoff, a sum or inner
product of n terms carries a relative error of at most γ_n = n·u/(1 − n·u) of the sum of
absolute values (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1);
backward-stable factorisations (QR, SVD, Cholesky) carry c·p(m, n)·u of the matrix norm.
Another CPU picks another BLAS kernel: these bounds hold for any kernel, a literal does not.
"""

from __future__ import annotations

import math

import torch

EPS: dict[torch.dtype, float] = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.bfloat16: 2.0**-7,
    torch.float16: 2.0**-10,
}


def unit_roundoff(dtype: torch.dtype = torch.float64) -> float:
    """u = eps/2 of ``dtype``."""
    return EPS[dtype] / 2


def gamma(n: int, dtype: torch.dtype = torch.float64) -> float:
    """γ_n = n·u/(1 − n·u): the relative rounding bound of a sum of ``n`` terms (∞ when
    n·u ≥ 1, where no bound of this form exists)."""
    nu = max(int(n), 1) * unit_roundoff(dtype)
    return nu / (1 - nu) if nu < 1 else math.inf


# Householder-based factorisations (QR, the bidiagonalisation and QR sweeps of an SVD) are
# backward stable with an error of γ̃_{mn} = c·m·n·u/(1 − c·m·n·u) of the matrix norm, c a
# small integer constant (Higham 2002, Thm 19.4 and §20.x); c = 16 covers both sweeps.
HOUSEHOLDER_C = 16


def householder(m: int, n: int, dtype: torch.dtype = torch.float64) -> float:
    """γ̃_{mn}: the relative backward error of a Householder QR or SVD of an m×n matrix
    (computed factors are exact for A + ΔA, ‖ΔA‖ ≤ γ̃_{mn}‖A‖), and the loss of
    orthogonality ‖QᵀQ − I‖ of the computed orthogonal factor."""
    return gamma(HOUSEHOLDER_C * max(int(m), 1) * max(int(n), 1), dtype)


def matmul(inner: int, dtype: torch.dtype = torch.float64) -> float:
    """Relative Frobenius-norm error of a computed product AB with inner dimension ``inner``:
    |fl(AB) − AB| ≤ γ_inner |A||B| entrywise, so ‖fl(AB) − AB‖_F ≤ γ_inner ‖A‖_F‖B‖_F."""
    return gamma(inner, dtype)
