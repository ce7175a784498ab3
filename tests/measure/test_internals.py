"""Tests of verify.measure.internals: Σ_i δ_{k,i} z_{k,i}ᵀ / n is autograd's data gradient g_k."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import dataset
from verify.measure.internals import internals
from verify.nets.activations import ACTIVATIONS, KinkSlopes
from verify.nets.dense import Architecture, forward_internals
from verify.nets.network import init_params, weights
from verify.nets.objective import Objective
from verify.tolerances import gamma

TOL = 1e-12  # float64: both sides are the same sums in a different order


@st.composite
def nets(draw: st.DrawFn) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    loss = draw(st.sampled_from(("squared", "logistic", "ce")))
    d = draw(st.integers(1, 5))
    d_out = draw(st.integers(2, 3)) if loss == "ce" else (
        1 if loss == "logistic" else draw(st.integers(1, 3)))
    n = draw(st.integers(max(2, d_out), 10))
    seed = draw(st.integers(0, 2**16))
    hidden = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(0, 3)))]
    arch = Architecture((d, *hidden, d_out), draw(st.sampled_from(ACTIVATIONS)),
                        draw(st.booleans()))
    return Objective(arch, dataset(loss, n, d, d_out, seed), 0.01), init_params(arch, seed)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b)) / max(float(torch.linalg.norm(b)), 1e-300)


@given(nets())
def test_outer_products_sum_to_the_data_gradient(case) -> None:  # type: ignore[no-untyped-def]
    obj, params = case
    it = internals(obj, params)
    g = obj.data_grad(params)
    for k, _ in enumerate(weights(obj.arch, params)):
        assert _rel(it.gradient(k), g[k]) <= TOL
        if obj.arch.bias:  # the bias gradient is the mean error
            # the mean of n errors can cancel to ~0: bound the difference by the rounding of
            # a sum of n terms, γ_n·mean|δ| (Higham §3.1), not relative to the result
            e, gb = it.errors[k], g[obj.arch.depth + k]
            allowed = 4 * gamma(e.shape[0] * obj.arch.depth) * float(
                torch.linalg.norm(e.abs().mean(0)))
            assert float(torch.linalg.norm(e.mean(0) - gb)) <= max(allowed, TOL * float(
                torch.linalg.norm(gb)))
    assert torch.equal(it.inputs[0], obj.data.X)


@given(nets(), st.integers(0, 2**16))
def test_identity_holds_for_a_clarke_slope_selection(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    obj, params = case
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    # any entries may be declared kinked with any slopes in [0, 1]: the chain rule then uses
    # those slopes, in the gradient and in the errors alike
    masks = tuple((torch.rand(z.shape, generator=gen) < 0.5).double() for z in zs[:-1])
    values = tuple(torch.rand(z.shape, generator=gen, dtype=torch.float64) for z in zs[:-1])
    kinks = KinkSlopes(masks, values)
    it = internals(obj, params, kinks)
    g = obj.data_grad(params, kinks)
    for k, _ in enumerate(weights(obj.arch, params)):
        assert _rel(it.gradient(k), g[k]) <= TOL
