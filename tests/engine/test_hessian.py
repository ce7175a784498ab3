"""Tests of verify.engine.hessian: the one Hessian–vector product against the dense Hessian."""

from __future__ import annotations

import numpy as np
import torch

from verify import tolerances
from verify.engine.hessian import hessian_operator
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective, flat, unflat


def test_hvp_equals_dense_hessian_times_vector() -> None:
    """H v by forward-over-reverse equals torch.func.hessian(F) @ v up to the rounding of a
    length-P dot product on top of the gradient's (γ_P relative to ‖H‖‖v‖, times a factor
    C_FACTORISATION for the two derivative passes); a wrong operator (the gradient in place of
    H v) is told apart."""
    arch = Architecture((3, 5, 2), "tanh")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=0), 1e-2)
    params = init_params(arch, 1)
    theta = flat(params).detach()

    def F(v: torch.Tensor) -> torch.Tensor:
        return obj.value(unflat(v, params))

    P = theta.numel()
    H = torch.func.hessian(F)(theta).numpy()
    v = np.random.default_rng(0).standard_normal(P)
    got = hessian_operator(torch.func.grad(F), theta).matvec(v)
    want = H @ v
    tol = tolerances.C_FACTORISATION * tolerances.gamma(P) * np.linalg.norm(H) * np.linalg.norm(v)
    assert np.linalg.norm(got - want) <= tol
    assert np.linalg.norm(torch.func.grad(F)(theta).numpy() - want) > tol
