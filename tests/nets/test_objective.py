"""Tests of verify.nets.objective: F = L̂ + (λ/2)Σ‖W_k‖², its gradients and the loss formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import assert_close, dataset, within
from verify.nets import data as D
from verify.nets.activations import ACTIVATIONS, KinkSlopes
from verify.nets.dense import Architecture
from verify.nets.network import forward, init_params
from verify.nets.objective import Objective, data_loss, flat, unflat
from verify.tolerances import gradient_ops

F64 = torch.float64


@st.composite
def objectives(draw: st.DrawFn) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    loss = draw(st.sampled_from(D.LOSSES))
    d = draw(st.integers(1, 4))
    d_out = draw(st.integers(2, 3)) if loss == "ce" else (
        1 if loss == "logistic" else draw(st.integers(1, 3)))
    n = draw(st.integers(max(2, d_out), 8))
    seed = draw(st.integers(0, 2**16))
    data = dataset(loss, n, d, d_out, seed)
    hidden = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 2)))]
    arch = Architecture((d, *hidden, data.d_out), draw(st.sampled_from(ACTIVATIONS)),
                        draw(st.booleans()))
    lam = draw(st.sampled_from([0.0, 1e-3, 0.1, 1.0]))
    obj = Objective(arch, data, lam, reg_bias=draw(st.booleans()))
    params = list(init_params(arch, seed))
    gen = torch.Generator().manual_seed(seed)
    for i in range(arch.depth, len(params)):
        params[i] = torch.randn(params[i].shape, generator=gen, dtype=F64)
    return obj, tuple(params)


def _autograd(fn, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
    ps = tuple(p.detach().clone().requires_grad_(True) for p in params)
    return torch.autograd.grad(fn(ps), ps)


@given(objectives())
@settings(max_examples=25, deadline=None)
def test_grad_is_autograd_of_value(case: tuple[Objective, tuple[torch.Tensor, ...]]) -> None:
    obj, params = case
    ref = _autograd(obj.value, params)
    got = obj.grad(params)
    data = obj.data_grad(params)
    assert len(got) == len(params)
    for g, r, gd, p in zip(got, ref, data, params, strict=True):
        assert g.shape == r.shape
        # the same graph; ∇F adds λp to g in one rounding: γ_2 of |g| + |λp|
        assert_close(g, r, ops=2, scale=float((gd.abs() + obj.lam * p.abs()).max()))
    assert not any(g.requires_grad for g in obj.data_grad(params))


@given(objectives())
@settings(max_examples=25, deadline=None)
def test_data_grad_plus_decay(case: tuple[Objective, tuple[torch.Tensor, ...]]) -> None:
    obj, params = case
    g = obj.data_grad(params)
    ref = _autograd(obj.loss, params)
    for a, b in zip(g, ref, strict=True):
        assert_close(a, b, ops=1)  # the same autograd graph of L̂
    full = obj.grad(params)
    L = obj.arch.depth

    def scale(k: int) -> float:  # of the sum g + λp
        return float((g[k].abs() + obj.lam * params[k].abs()).max())

    for k in range(L):  # weights always carry the decay
        assert_close(full[k], g[k] + obj.lam * params[k], ops=2, scale=scale(k))
    for k in range(L, len(params)):  # biases only with reg_bias
        expected = g[k] + obj.lam * params[k] if obj.reg_bias else g[k]
        assert_close(full[k], expected, ops=2, scale=scale(k))


@given(objectives())
@settings(max_examples=25, deadline=None)
def test_penalty_and_value(case: tuple[Objective, tuple[torch.Tensor, ...]]) -> None:
    obj, params = case
    L = obj.arch.depth
    sq_w = sum(float((p.numpy() ** 2).sum()) for p in params[:L])
    sq_b = sum(float((p.numpy() ** 2).sum()) for p in params[L:])
    ref = 0.5 * obj.lam * (sq_w + (sq_b if obj.reg_bias else 0.0))
    # sums of squares of every entry (no cancellation), in two orders, then scaled by λ/2
    terms = sum(p.numel() for p in params) + len(params) + 2
    assert float(obj.penalty(params)) == within(ref, ops=2 * terms)
    loss = float(obj.loss(params))
    assert float(obj.value(params)) == within(loss + ref, ops=2 * terms + 1,
                                              scale=abs(loss) + ref)


def test_penalty_excludes_biases_unless_reg_bias() -> None:
    arch = Architecture((2, 2, 1), "tanh", bias=True)
    data = D.teacher(4, 2, 1, 0)
    W1 = torch.ones(2, 2, dtype=F64)
    W2 = 2 * torch.ones(1, 2, dtype=F64)
    b1 = 3 * torch.ones(2, dtype=F64)
    b2 = torch.tensor([4.0], dtype=F64)
    params = (W1, W2, b1, b2)
    # ‖W‖² = 4 + 8 = 12, ‖b‖² = 18 + 16 = 34
    assert float(Objective(arch, data, 0.5).penalty(params)) == pytest.approx(0.25 * 12)
    assert float(Objective(arch, data, 0.5, reg_bias=True).penalty(params)) == pytest.approx(
        0.25 * 46)


# --------------------------------------------------------------------------- loss formulas


def _outputs(n: int, k: int, seed: int) -> torch.Tensor:
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=F64) * 3


@given(st.integers(1, 8), st.integers(1, 4), st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_squared_loss_formula(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((n, k))
    data = D.Dataset(torch.zeros(n, 1, dtype=F64), torch.as_tensor(Y), "squared", "t")
    out = _outputs(n, k, seed)
    ref = 0.5 * ((out.numpy() - Y) ** 2).sum() / n
    # a sum of n·k squares (no cancellation) in two orders, each term one subtraction away
    assert float(data_loss(data, out)) == within(ref, ops=2 * (n * k + 4))


@given(st.integers(1, 8), st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_logistic_loss_formula(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    data = D.Dataset(torch.zeros(n, 1, dtype=F64), torch.as_tensor(y), "logistic", "t")
    out = _outputs(n, 1, seed)
    f = out.numpy()[:, 0]
    ref = np.mean(np.log1p(np.exp(-y * f)))
    assert float(data_loss(data, out)) == pytest.approx(ref, rel=1e-12)


@given(st.integers(1, 8), st.integers(2, 4), st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_cross_entropy_formula(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    data = D.Dataset(torch.zeros(n, 1, dtype=F64), torch.as_tensor(y), "ce", "t")
    out = _outputs(n, k, seed).numpy()
    m = out.max(1, keepdims=True)
    lse = (m + np.log(np.exp(out - m).sum(1, keepdims=True)))[:, 0]
    ref = np.mean(lse - out[np.arange(n), y])
    assert float(data_loss(data, torch.as_tensor(out))) == pytest.approx(ref, rel=1e-12)


def test_loss_of_objective_uses_forward() -> None:
    arch = Architecture((3, 4, 2), "softplus")
    data = D.teacher(6, 3, 2, 1)
    params = init_params(arch, 2)
    obj = Objective(arch, data, 0.1)
    out = forward(arch, params, data.X).numpy()
    ref = 0.5 * ((out - data.Y.numpy()) ** 2).sum() / 6
    assert float(obj.loss(params)) == within(ref, ops=2 * (6 * 2 + 4))


def test_smoothed_objective() -> None:
    arch = Architecture((3, 4, 2), "relu")
    data = D.teacher(6, 3, 2, 1)
    params = init_params(arch, 2)
    obj = Objective(arch, data, 0.1, reg_bias=True)
    sm = obj.smoothed(1e3)
    assert sm.beta == 1e3 and sm.lam == obj.lam and sm.reg_bias and sm.arch == arch
    assert obj.smoothed(None) == obj
    # softplus(βz)/β ≥ relu(z) and differs by at most log(2)/β per unit
    out_b = forward(arch, params, data.X, beta=1e3)
    assert float(sm.loss(params)) == within(float(data_loss(data, out_b)), ops=1)  # same
    assert abs(float(sm.value(params)) - float(obj.value(params))) < 1e-2
    assert float(sm.value(params)) != float(obj.value(params))


def test_kinks_pass_through_objective() -> None:
    arch = Architecture((2, 3, 1), "relu")
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=F64)
    data = D.Dataset(X, torch.tensor([[1.0], [0.0], [-1.0]], dtype=F64), "squared", "t")
    W1 = torch.tensor([[1.0, -1.0], [0.0, 2.0], [1.0, -1.0]], dtype=F64)  # z[2,0] = z[2,2] = 0
    W2 = torch.tensor([[1.0, 1.0, 1.0]], dtype=F64)
    obj = Objective(arch, data, 0.1)
    mask = torch.zeros(3, 3, dtype=F64)
    mask[2, 0] = mask[2, 2] = 1.0
    kinks = KinkSlopes((mask,), (torch.full((3, 3), 0.5, dtype=F64),))
    assert float(obj.value((W1, W2), kinks)) == float(obj.value((W1, W2)))
    g_plain, g_k = obj.data_grad((W1, W2)), obj.data_grad((W1, W2), kinks)
    assert torch.equal(g_plain[1], g_k[1])  # the last layer does not see σ'
    # sample 3: z = (0, 2, 0), f = 2, residual f − y = 3; slope 0.5 (instead of 0) at its
    # two kinks adds slope·(f − y)/n·W2[0, j]·x_3 to rows j = 0, 2 of ∂L̂/∂W1
    delta = g_k[0] - g_plain[0]
    expected = torch.zeros(3, 2, dtype=F64)
    expected[0] = expected[2] = 0.5 * 3.0 / 3 * X[2]
    # the difference of two data gradients, each within γ_ops of its own scale
    ops = gradient_ops(arch.widths, data.n)
    assert_close(delta, expected, ops=2 * ops, scale=float(
        max(g_k[0].abs().max(), g_plain[0].abs().max())))


# --------------------------------------------------------------------------- flat / unflat


@given(st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=5),
       st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_flat_unflat_round_trip(shapes: list[list[int]], seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    ts = tuple(torch.randn(tuple(s), generator=gen, dtype=F64) for s in shapes)
    v = flat(ts)
    assert v.shape == (sum(t.numel() for t in ts),)
    back = unflat(v, ts)
    assert len(back) == len(ts)
    for a, b in zip(back, ts, strict=True):
        assert a.shape == b.shape and torch.equal(a, b)
    assert torch.equal(flat(back), v)
    # order: the concatenation of row-major flattenings
    np.testing.assert_array_equal(v.numpy(), np.concatenate([t.numpy().ravel() for t in ts]))
