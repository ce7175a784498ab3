"""The one Hessian–vector product of F, as a scipy operator.

H v = d/dt ∇F(θ + t v) at t = 0, one forward-mode derivative of the reverse-mode gradient
(torch.func.jvp of torch.func.grad: Pearlmutter 1994, "Fast exact multiplication by the
Hessian"), exact up to rounding and never forming H. Newton's MINRES solves
(:mod:`verify.engine.polish`) and the certificate's Lanczos eigenvalue
(:mod:`verify.engine.certificate`) both use it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor


def hvp(gradF: Callable[[Tensor], Tensor], theta: Tensor) -> Callable[[np.ndarray], np.ndarray]:
    """v ↦ ∇²F(θ) v for a flat θ, with ``gradF`` = torch.func.grad(F); numpy in and out."""

    def product(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.ravel(v), dtype=theta.dtype, device=theta.device)
        # torch annotates jvp as a 2- or 3-tuple (no overload on has_aux): 2 without aux
        _, out = torch.func.jvp(gradF, (theta,), (vt,))  # type: ignore[misc]
        return out.cpu().numpy()

    return product


def hessian_operator(gradF: Callable[[Tensor], Tensor], theta: Tensor) -> LinearOperator:
    """∇²F(θ) as a P × P float64 scipy LinearOperator on :func:`hvp`."""
    P = theta.numel()
    return LinearOperator((P, P), matvec=hvp(gradF, theta), dtype=np.float64)
