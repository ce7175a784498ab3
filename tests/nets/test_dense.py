"""Tests of verify.nets.dense: forward pass against a hand-written numpy forward, architecture
validation, the homogeneous/kinked flags, seeded init, and the Clarke slope surrogate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import assert_close, forward_scale
from verify.errors import UsageError
from verify.nets.activations import (
    ACTIVATIONS,
    LEAKY_SLOPE,
    KinkSlopes,
    piece_of,
    sigma,
    sigma_slope_range,
)
from verify.nets.dense import Architecture, biases, forward_internals
from verify.nets.network import forward, init_params, weights
from verify.tolerances import ELEMENTWISE_OPS, gradient_ops, network_ops

F64 = torch.float64


def _np_sigma(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "identity":
        return z
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    raise AssertionError(name)


def _np_forward(arch: Architecture, params: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """f(X) row-wise: z_k = h_{k−1} W_kᵀ (+ b_k); residual hidden layers add h_{k−1}."""
    L = arch.depth
    Ws = params[:L]
    bs = params[L:] if arch.bias else [None] * L
    h = X
    for k in range(L):
        z = h @ Ws[k].T
        if bs[k] is not None:
            z = z + bs[k]
        if k == L - 1:
            return z
        a = _np_sigma(arch.activation, z)
        h = h + a if (arch.residual and k > 0 and a.shape == h.shape) else a
    raise AssertionError("unreachable")


@st.composite
def nets(draw: st.DrawFn) -> tuple[Architecture, tuple[torch.Tensor, ...], torch.Tensor]:
    depth = draw(st.integers(1, 4))
    residual = draw(st.booleans())
    if residual:  # equal hidden widths so that skip connections are actually used
        hw = draw(st.integers(1, 5))
        hidden = [hw] * (depth - 1)
    else:
        hidden = [draw(st.integers(1, 5)) for _ in range(depth - 1)]
    widths = (draw(st.integers(1, 5)), *hidden, draw(st.integers(1, 4)))
    arch = Architecture(widths, draw(st.sampled_from(ACTIVATIONS)), draw(st.booleans()),
                        residual)
    seed = draw(st.integers(0, 2**16))
    params = list(init_params(arch, seed))
    gen = torch.Generator().manual_seed(seed + 1)
    for i in range(arch.depth, len(params)):  # init biases are zero: make them random
        params[i] = torch.randn(params[i].shape, generator=gen, dtype=F64)
    n = draw(st.integers(1, 6))
    X = torch.randn(n, widths[0], generator=gen, dtype=F64)
    return arch, tuple(params), X


@given(nets())
@settings(max_examples=25, deadline=None)
def test_forward_matches_numpy(net: tuple[Architecture, tuple[torch.Tensor, ...], torch.Tensor]
                               ) -> None:
    arch, params, X = net
    out = forward(arch, params, X)
    ref = _np_forward(arch, [p.numpy() for p in params], X.numpy())
    assert out.shape == (X.shape[0], arch.widths[-1])
    # two forward passes (torch, numpy), each within γ_ops of the forward on |·|
    ops = network_ops(arch.widths) + 2 * arch.depth  # + bias and residual additions
    assert_close(out, ref, ops=2 * ops, scale=forward_scale(arch, params, X))


@given(nets())
@settings(max_examples=15, deadline=None)
def test_forward_internals_pre_activations_and_inputs(
        net: tuple[Architecture, tuple[torch.Tensor, ...], torch.Tensor]) -> None:
    arch, params, X = net
    out, zs, hs = forward_internals(arch, params, X)
    assert len(zs) == len(hs) == arch.depth
    assert torch.equal(hs[0], X)
    assert torch.equal(zs[-1], out)
    W, b = weights(arch, params), biases(arch, params)
    for k in range(arch.depth):
        z_ref = hs[k] @ W[k].T + (b[k] if arch.bias else 0.0)
        # one product of inner dimension d_{k−1} and a bias, in two orders
        scale = float((hs[k].abs() @ W[k].abs().T).max()) + (
            float(b[k].abs().max()) if arch.bias else 0.0)
        assert_close(zs[k], z_ref, ops=2 * (arch.widths[k] + 1), scale=scale)


def test_residual_block_by_hand() -> None:
    arch = Architecture((2, 2, 2, 1), "relu", residual=True)
    W1 = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F64)
    W2 = torch.tensor([[1.0, 1.0], [-1.0, 2.0]], dtype=F64)
    W3 = torch.tensor([[1.0, -1.0]], dtype=F64)
    x = torch.tensor([[2.0, 3.0]], dtype=F64)
    h1 = torch.relu(x @ W1.T)  # [2, 0]: the first layer has no skip (input → hidden)
    h2 = h1 + torch.relu(h1 @ W2.T)  # [2, 0] + relu([2, -2]) = [4, 0]
    expected = h2 @ W3.T  # 4
    assert float(expected) == 4.0
    assert torch.equal(forward(arch, (W1, W2, W3), x), expected)
    plain = Architecture((2, 2, 2, 1), "relu")
    assert float(forward(plain, (W1, W2, W3), x)) == 2.0  # relu([2,-2]) · [1,-1]


def test_residual_skips_only_equal_widths() -> None:
    arch = Architecture((3, 4, 2, 1), "tanh", residual=True)
    params = init_params(arch, 3)
    X = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    plain = Architecture((3, 4, 2, 1), "tanh")
    assert torch.equal(forward(arch, params, X), forward(plain, params, X))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("widths, name", [
    ((3, 0, 2), "width"), ((0, 2), "width"), ((3, -1, 2), "width"), ((3, 2.5, 2), "width"),
    ((3,), "depth"), ((), "depth"),
])
def test_architecture_rejects_bad_widths(widths: tuple, name: str) -> None:
    with pytest.raises(UsageError) as info:
        Architecture(widths)
    assert info.value.name == name
    assert name in str(info.value)


def test_architecture_rejects_unknown_activation() -> None:
    with pytest.raises(UsageError, match="gelu") as info:
        Architecture((2, 3, 1), "gelu")
    assert info.value.name == "activation"
    for a in ACTIVATIONS:
        assert a in info.value.allowed


def test_depth_shapes_and_n_params() -> None:
    arch = Architecture((4, 3, 2), bias=True)
    assert arch.depth == 2
    assert arch.shapes() == [(3, 4), (2, 3), (3,), (2,)]
    assert arch.n_params() == 12 + 6 + 3 + 2
    assert Architecture((4, 3, 2)).n_params() == 18
    params = init_params(arch, 0)
    assert [tuple(p.shape) for p in params] == arch.shapes()
    assert len(weights(arch, params)) == 2 and len(biases(arch, params)) == 2
    assert biases(Architecture((4, 3, 2)), init_params(Architecture((4, 3, 2)), 0)) == ()


@pytest.mark.parametrize("act, bias, residual, homogeneous, kinked", [
    ("relu", False, False, True, True),
    ("leaky_relu", False, False, True, True),
    ("identity", False, False, True, False),
    ("tanh", False, False, False, False),
    ("softplus", False, False, False, False),
    ("relu", True, False, False, True),
    ("relu", False, True, False, True),
    ("identity", True, False, False, False),
])
def test_homogeneous_and_kinked_flags(act: str, bias: bool, residual: bool, homogeneous: bool,
                                      kinked: bool) -> None:
    arch = Architecture((3, 3, 3, 2), act, bias, residual)
    assert arch.homogeneous is homogeneous
    assert arch.kinked is kinked


@given(st.sampled_from(["relu", "leaky_relu", "identity"]), st.integers(0, 1000),
       st.floats(0.1, 10.0), st.integers(0, 2))
@settings(max_examples=15, deadline=None)
def test_homogeneous_nets_are_positively_homogeneous_per_layer(act: str, seed: int, c: float,
                                                                layer: int) -> None:
    arch = Architecture((3, 4, 4, 2), act)
    assert arch.homogeneous
    params = list(init_params(arch, seed))
    X = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(seed))
    base = forward(arch, tuple(params), X)
    params[layer] = c * params[layer]
    # two forward passes and the scalings by c
    ops = 2 * network_ops(arch.widths) + 2
    assert_close(forward(arch, tuple(params), X), c * base, ops=ops,
                 scale=forward_scale(arch, tuple(params), X))


# --------------------------------------------------------------------------- init


def test_init_params_deterministic_in_seed() -> None:
    arch = Architecture((5, 4, 3), "relu", bias=True)
    a, b, c = init_params(arch, 11), init_params(arch, 11), init_params(arch, 12)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert all(torch.equal(t, torch.zeros_like(t)) for t in a[arch.depth:])  # biases start at 0
    assert all(t.dtype == F64 for t in a)
    f32 = init_params(arch, 11, dtype=torch.float32)
    assert all(t.dtype == torch.float32 for t in f32)
    assert all(torch.equal(x, y) for x, y in
               zip(f32, init_params(arch, 11, dtype=torch.float32), strict=True))
    scaled = init_params(arch, 11, scale=3.0)
    for s, t in zip(scaled[: arch.depth], a[: arch.depth], strict=True):
        assert_close(s, 3.0 * t, ops=3)  # (gain·3)·x against 3·(gain·x): three roundings


@pytest.mark.parametrize("act, gain", [("relu", 2.0), ("leaky_relu", 2.0), ("tanh", 1.0),
                                       ("identity", 1.0), ("softplus", 1.0)])
def test_init_params_variance(act: str, gain: float) -> None:
    arch = Architecture((100, 300, 2), act)
    W1 = init_params(arch, 0)[0]
    assert abs(float(W1.mean())) < 0.01
    assert float(W1.std()) == pytest.approx(math.sqrt(gain / 100), rel=0.03)


# --------------------------------------------------------------------------- σ and smoothing


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_sigma_matches_numpy(name: str) -> None:
    z = torch.linspace(-5, 5, 41, dtype=F64)
    # libm functions are within 1 ulp; softplus composes two of them on each side
    assert_close(sigma(name, z), _np_sigma(name, z.numpy()), ops=4 * ELEMENTWISE_OPS)


@pytest.mark.parametrize("beta", [1.0, 10.0, 1e3])
def test_sigma_smoothing_formula(beta: float) -> None:
    z = torch.linspace(-3, 3, 61, dtype=F64)
    sp = np.logaddexp(0.0, beta * z.numpy()) / beta
    # βz, two libm functions and /β on each side; leaky adds a product and a sum
    ops = 2 * (2 + 2 * ELEMENTWISE_OPS)
    assert_close(sigma("relu", z, beta), sp, ops=ops)
    leaky = LEAKY_SLOPE * z.numpy() + (1 - LEAKY_SLOPE) * sp
    assert_close(sigma("leaky_relu", z, beta), leaky, ops=ops + 6,
                 scale=float(np.abs(z.numpy()).max() + np.abs(sp).max()))
    # uniform approximation error log(2)/β
    assert float((sigma("relu", z, beta) - torch.relu(z)).abs().max()) <= math.log(2) / beta


def test_sigma_unknown_name_raises() -> None:
    with pytest.raises(ValueError):
        sigma("gelu", torch.zeros(2))


def test_slope_ranges() -> None:
    assert sigma_slope_range("relu") == (0.0, 1.0)
    assert sigma_slope_range("leaky_relu") == (LEAKY_SLOPE, 1.0)


# --------------------------------------------------------------------------- kink slopes

# 1-hidden-layer net with exact zeros in the pre-activations:
# z = X W1ᵀ = [[1, 0, 1], [-1, 2, 0], [0, 2, -1]]
X3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=F64)
W1_3 = torch.tensor([[1.0, -1.0], [0.0, 2.0], [1.0, -1.0]], dtype=F64)
W2_3 = torch.tensor([[0.5, -1.5, 2.0]], dtype=F64)
Y3 = torch.tensor([[0.3], [-0.2], [1.1]], dtype=F64)
MASK = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]], dtype=F64)
SLOPE = torch.tensor([[9.0, 0.3, 9.0], [9.0, 9.0, 0.7], [0.25, 9.0, 0.6]], dtype=F64)
# what the rounding of ∂L̂/∂W1 is relative to: the gradient formula on absolute values,
# |X|ᵀ(|D| ⊙ ((|f| + |Y|)/n |W2|)) with |D| ≤ 9 and |f| ≤ |z||W2|ᵀ (slopes ≤ 9)
_ZA = (X3.abs() @ W1_3.abs().T)
GRAD_SCALE = float((X3.abs().T @ (9.0 * ((9.0 * _ZA @ W2_3.abs().T + Y3.abs()) / 3
                                          @ W2_3.abs()))).max())


def _analytic_grad_W1(act: str, slopes_on_mask: torch.Tensor) -> np.ndarray:
    """∂/∂W1 of (1/2n)‖f − Y‖² with σ' = chosen slope on masked entries, natural elsewhere."""
    X, W1, W2, Y, mask = (t.numpy() for t in (X3, W1_3, W2_3, Y3, MASK))
    z = X @ W1.T
    lo = 0.0 if act == "relu" else LEAKY_SLOPE
    natural = np.where(z > 0, 1.0, lo)
    D = np.where(mask > 0, slopes_on_mask.numpy(), natural)
    out = _np_sigma(act, z) @ W2.T
    dout = (out - Y) / X.shape[0]
    dz = (dout @ W2) * D
    return dz.T @ X


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_kink_slopes_surrogate_value_and_gradient(act: str) -> None:
    arch = Architecture((2, 3, 1), act)
    z = X3 @ W1_3.T
    assert int((z == 0).sum()) == 3  # the hand-built kinks
    kinks = KinkSlopes((MASK,), (SLOPE,))
    W1 = W1_3.clone().requires_grad_(True)
    out_k = forward(arch, (W1, W2_3), X3, kinks)
    out_plain = forward(arch, (W1_3, W2_3), X3)
    assert torch.equal(out_k.detach(), out_plain)  # same value
    loss = 0.5 * ((out_k - Y3) ** 2).sum() / 3
    (g,) = torch.autograd.grad(loss, W1)
    ops = 2 * gradient_ops(arch.widths, 3)  # autograd and the numpy formula
    assert_close(g, _analytic_grad_W1(act, SLOPE), ops=ops, scale=GRAD_SCALE)
    # and it is not the plain gradient (the chosen slopes matter)
    W1p = W1_3.clone().requires_grad_(True)
    lp = 0.5 * ((forward(arch, (W1p, W2_3), X3) - Y3) ** 2).sum() / 3
    (gp,) = torch.autograd.grad(lp, W1p)
    assert not torch.allclose(g, gp)
    lo = 0.0 if act == "relu" else LEAKY_SLOPE
    natural = torch.as_tensor(np.where((X3 @ W1_3.T).numpy() > 0, 1.0, lo))
    assert_close(gp, _analytic_grad_W1(act, natural), ops=ops, scale=GRAD_SCALE)


def test_kink_slopes_empty_mask_is_plain_autograd() -> None:
    arch = Architecture((2, 3, 1), "relu")
    kinks = KinkSlopes((torch.zeros_like(MASK),), (SLOPE,))
    grads = []
    for k in (kinks, None):
        ps = (W1_3.clone().requires_grad_(True), W2_3.clone().requires_grad_(True))
        loss = 0.5 * ((forward(arch, ps, X3, k) - Y3) ** 2).sum()
        grads.append(torch.autograd.grad(loss, ps))
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


def test_piece_of_evaluates_slope_times_z() -> None:
    arch = Architecture((2, 3, 1), "relu")
    kinks = KinkSlopes((MASK,), (SLOPE,))
    piece = piece_of(kinks)
    assert piece.piece and not kinks.piece
    assert piece.masks is kinks.masks and piece.values is kinks.values
    z = (X3 @ W1_3.T).numpy()
    D = np.where(MASK.numpy() > 0, SLOPE.numpy(), (z > 0).astype(float))
    ref = (D * z) @ W2_3.numpy().T
    out = forward(arch, (W1_3, W2_3), X3, piece)
    ops = 2 * (network_ops(arch.widths) + 2)  # two forwards, slope products
    scale = float(((np.abs(D) * np.abs(z)) @ np.abs(W2_3.numpy()).T).max())
    assert_close(out, ref, ops=ops, scale=scale)
    # the masked entry z[0, 1] = 0 contributes nothing; a masked nonzero entry (z[1, 0]
    # would be 0 under relu) is evaluated as its slope times z, so the piece differs from f
    mask2 = torch.zeros_like(MASK)
    mask2[1, 0] = 1.0
    p2 = piece_of(KinkSlopes((mask2,), (torch.full_like(SLOPE, 0.5),)))
    diff = forward(arch, (W1_3, W2_3), X3, p2) - forward(arch, (W1_3, W2_3), X3)
    expected = torch.zeros(3, 1, dtype=F64)
    expected[1, 0] = 0.5 * float(z[1, 0]) * float(W2_3[0, 0])
    assert_close(diff, expected, ops=2 * ops + 1, scale=scale)


def test_piece_is_multilinear_in_layers() -> None:
    """Positive scalings keep every sign of z, hence the piece D: f^D scales linearly."""
    arch = Architecture((2, 3, 1), "relu")
    piece = piece_of(KinkSlopes((MASK,), (SLOPE,)))
    base = forward(arch, (W1_3, W2_3), X3, piece)
    ops = 2 * (network_ops(arch.widths) + 2) + 2  # two forwards and the scalings
    for W1, W2, c in ((2.5 * W1_3, W2_3, 2.5), (W1_3, 0.2 * W2_3, 0.2)):
        scaled = forward(arch, (W1, W2), X3, piece)
        scale = 3 * c * float((X3.abs() @ W1_3.abs().T @ W2_3.abs().T).max())
        assert_close(scaled, c * base, ops=ops, scale=scale)
