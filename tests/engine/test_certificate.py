"""Tests of verify.engine.certificate (residuals, Hessian eigenvalue, certify) and of the Clarke
residual of verify.engine.kinks, on tiny networks with hand-checkable answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import verify.engine.certificate as C
from tests.helpers import assert_close
from verify.engine.residual import clarke_residual, stationarity
from verify.engine.result import TrainConfig
from verify.engine.train import train
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective, flat, unflat
from verify.tolerances import factorisation, gamma, gradient_ops

F64 = torch.float64


def _sum_sq(rs: tuple[float, ...]) -> float:
    return sum(r * r for r in rs)


# --------------------------------------------------------------------------- residuals


@pytest.mark.parametrize("bias", [False, True])
def test_stationarity_definitions(bias: bool) -> None:
    arch = Architecture((3, 4, 2), "tanh", bias=bias)
    obj = Objective(arch, D.teacher(8, 3, 2, seed=1), 0.05)
    params = list(init_params(arch, 2))
    for i in range(arch.depth, len(params)):
        params[i] = torch.full_like(params[i], 0.3)
    params = tuple(params)
    st = stationarity(obj, params)
    assert st.kind == "gradient" and st.kink_count == 0 and st.slopes is None
    # g: data gradient of every tensor, by autograd of L̂ alone
    ps = tuple(p.clone().requires_grad_(True) for p in params)
    g_ref = torch.autograd.grad(obj.loss(ps), ps)
    assert len(st.g) == len(params)
    for a, b in zip(st.g, g_ref, strict=True):
        assert_close(a, b, ops=1)  # the same autograd graph
    # R_k = W_k + g_k/λ and r_k = ‖R_k‖/‖W_k‖ over weights only
    assert len(st.R) == len(st.r) == arch.depth
    for k in range(arch.depth):
        R = params[k] + g_ref[k] / obj.lam
        # W + g/λ: a division and a sum, relative to |W| + |g|/λ
        assert_close(st.R[k], R, ops=3, scale=float((params[k].abs() + g_ref[k].abs()
                                                     / obj.lam).max()))
        r = float(np.linalg.norm(R.numpy())) / float(np.linalg.norm(params[k].numpy()))
        assert st.r[k] == pytest.approx(r, rel=1e-12)
        # = ‖∇_{W_k} F‖ / (λ‖W_k‖)
        gF = obj.grad(params)[k]
        assert st.r[k] == pytest.approx(
            float(gF.norm()) / (obj.lam * float(params[k].norm())), rel=1e-10)


def test_stationarity_lambda_zero_is_infinite() -> None:
    arch = Architecture((3, 4, 2), "tanh")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=1), 0.0)
    st = stationarity(obj, init_params(arch, 0))
    assert st.r == (math.inf, math.inf)
    assert all(bool(torch.isnan(R).all()) for R in st.R)


def test_stationarity_is_zero_at_an_exact_stationary_point() -> None:
    """Two-layer linear net on whitened data: W_2W_1 = (σ_1 − λ)u_1v_1ᵀ, balanced, is a
    stationary point of F (THEOREMS.md T0), so R_k = 0 to rounding.

    The rounding, derived (verify.tolerances): g_k carries γ_ops of the same gradient on
    absolute values, ‖G_k‖ (ops = the gradient's chain); and the point itself comes from an
    SVD of M, whose singular vectors are off by ≤ γ̃_4·‖M‖_F/gap (Wedin), which moves
    g/λ by ≤ ‖∇²F‖·that/λ with ‖∇²F‖ ≤ 3σ_1 here. Measured 7.5e-15 to 1.2e-14 across CPUs;
    the bound is ~7e-13; a point off by 1e-9 gives r ≈ 2e-8."""
    obj, (W1, W2), s = _linear_stationary_point(which=0)
    st = stationarity(obj, (W1, W2))
    X, Y, n, lam = obj.data.X, obj.data.Y, obj.data.n, obj.lam
    resid = X.abs() @ W1.abs().T @ W2.abs().T + Y.abs()  # |f| + |y| per sample
    G_abs = (W2.abs().T @ resid.T @ X.abs() / n, resid.T @ (X.abs() @ W1.abs().T) / n)
    ops = gradient_ops(obj.arch.widths, n) + 3
    shift = factorisation(2, 2) * float(np.linalg.norm(s)) / (s[0] - s[1])
    for k, W in enumerate((W1, W2)):
        nw = float(W.norm())
        bound = (gamma(ops) * float(G_abs[k].norm()) + 3 * s[0] * shift * nw) / (lam * nw)
        assert st.r[k] <= bound + gamma(2), (k, st.r[k], bound)
    # and it can fail: the same point off by one part in 10⁹ is not stationary to rounding
    off = stationarity(obj, (W1 * (1 + 1e-9), W2))
    assert max(off.r) > 10 * (bound + gamma(2))


# --------------------------------------------------------------------------- Hessian


def _fd_hessian(obj: Objective, params: tuple[torch.Tensor, ...], h: float = 1e-5
                ) -> np.ndarray:
    """Central differences of the gradient, symmetrised."""
    theta = flat(params).detach()
    P = theta.numel()
    H = np.zeros((P, P))
    for i in range(P):
        e = torch.zeros(P, dtype=F64)
        e[i] = h
        gp = flat(obj.grad(unflat(theta + e, params))).numpy()
        gm = flat(obj.grad(unflat(theta - e, params))).numpy()
        H[:, i] = (gp - gm) / (2 * h)
    return 0.5 * (H + H.T)


def test_min_hessian_eigenvalue_exact_matches_finite_differences() -> None:
    arch = Architecture((3, 3, 2), "tanh", bias=True)
    obj = Objective(arch, D.teacher(6, 3, 2, seed=3), 0.05)
    params = list(init_params(arch, 5))
    params[2] = torch.tensor([0.2, -0.1, 0.3], dtype=F64)
    params = tuple(params)
    eig, method = C.min_hessian_eigenvalue(obj, params)
    assert method == "exact"
    ref = float(np.linalg.eigvalsh(_fd_hessian(obj, params))[0])
    assert eig == pytest.approx(ref, rel=1e-5)


def test_lanczos_agrees_with_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    arch = Architecture((4, 8, 3), "softplus")  # 56 parameters: more than the 40 Lanczos vectors
    obj = Objective(arch, D.teacher(10, 4, 3, seed=0), 0.02)
    params = init_params(arch, 1)
    exact, m1 = C.min_hessian_eigenvalue(obj, params)
    assert m1 == "exact"
    monkeypatch.setattr(C, "EXACT_HESSIAN_LIMIT", 0)
    lanczos, m2 = C.min_hessian_eigenvalue(obj, params)
    assert m2 == "lanczos"
    assert lanczos == pytest.approx(exact, rel=1e-6)


# --------------------------------------------------------------------------- certify


def _linear_stationary_point(which: int, lam: float = 0.1
                             ) -> tuple[Objective, tuple[torch.Tensor, torch.Tensor], np.ndarray]:
    """Width-1 linear net on whitened data (M = YᵀX/n has σ = 2, 0.5), balanced factors
    on singular pair ``which``: W_1 = a v_iᵀ, W_2 = a u_i with a² = σ_i − λ."""
    data = D.whitened(8, 2, 2, seed=0)
    M = data.Y.numpy().T @ data.X.numpy() / data.n
    U, s, Vt = np.linalg.svd(M)
    a = math.sqrt(s[which] - lam)
    W1 = torch.as_tensor(a * Vt[which : which + 1])
    W2 = torch.as_tensor(a * U[:, which : which + 1])
    return Objective(Architecture((2, 1, 2), "identity"), data, lam), (W1, W2), s


def test_certify_converged_smooth_net() -> None:
    arch = Architecture((3, 5, 2), "softplus")
    obj = Objective(arch, D.teacher(10, 3, 2, seed=2), 1e-2)
    res = train(obj, init_params(arch, 1), TrainConfig(lr=0.1, steps=100, target=1e-10))
    cert, st = C.certify(obj, res, tau=1e-8)
    assert cert.certified, cert.reason
    assert cert.reason == "certified stationary"
    assert cert.loss_decreased and cert.loss_final < cert.loss_initial
    assert cert.hessian_method == "exact"
    assert cert.min_hessian_eig is not None and cert.min_hessian_eig > -obj.lam * 1e-8
    assert not cert.collapsed and cert.residual_kind == "gradient"
    assert cert.max_residual <= 1e-8 and cert.max_residual == max(st.r)
    assert cert.residuals == st.r and cert.clarke_residuals is None and cert.kinks == 0
    assert cert.grad_norm == pytest.approx(float(flat(obj.grad(res.params)).norm()), rel=1e-12)
    js = cert.to_json()
    assert js["certified"] is True and js["tau"] == 1e-8


def test_certify_refuses_early_stopped_net() -> None:
    arch = Architecture((3, 5, 2), "softplus")
    obj = Objective(arch, D.teacher(10, 3, 2, seed=2), 1e-2)
    res = train(obj, init_params(arch, 1), TrainConfig(lr=0.1, steps=5, polish=False))
    cert, _ = C.certify(obj, res, tau=1e-8)
    assert not cert.certified
    assert "not stationary" in cert.reason
    assert cert.loss_decreased  # the reason is stationarity, not the loss
    assert cert.max_residual > 1e-8


def test_certify_flags_collapsed_net() -> None:
    arch = Architecture((3, 4, 2), "tanh")
    obj = Objective(arch, D.teacher(10, 3, 2, seed=0), 10.0)
    res = train(obj, init_params(arch, 0), TrainConfig(steps=200))
    cert, _ = C.certify(obj, res, tau=1e-8)
    assert cert.collapsed
    assert not cert.certified
    assert "collapsed" in cert.reason


def test_certify_near_zero_saddle_of_linear_net() -> None:
    """θ ≈ 0 of a 2-layer linear net is (almost) stationary with Hessian eigenvalues
    λ ± σ_i(M) (whitened data): λ_min = λ − σ_1(M) = 0.1 − 2 < 0."""
    data = D.whitened(8, 2, 2, seed=0)
    arch = Architecture((2, 3, 2), "identity")
    obj = Objective(arch, data, 0.1)
    res = train(obj, init_params(arch, 0, scale=1e-8), TrainConfig(steps=0, polish=False))
    cert, _ = C.certify(obj, res, tau=1e-8)
    assert not cert.certified
    assert not cert.collapsed
    assert cert.hessian_method == "exact"
    assert cert.min_hessian_eig == pytest.approx(0.1 - 2.0, abs=1e-6)


def test_certify_detects_negative_curvature_at_a_stationary_saddle() -> None:
    """Balanced factors on the *second* singular pair: stationary (r ≈ 1e-16), F lower than
    near 0, not collapsed — only the Hessian test can refuse it; its λ_min is σ_2 − σ_1."""
    obj, (W1, W2), s = _linear_stationary_point(which=1)
    res = train(obj, (W1, W2), TrainConfig(steps=0, polish=False))
    res = dataclasses.replace(res, initial=(1e-3 * W1, 1e-3 * W2))
    cert, _ = C.certify(obj, res, tau=1e-8)
    assert cert.max_residual < 1e-12 and cert.loss_decreased and not cert.collapsed
    assert not cert.certified
    assert cert.reason.startswith("negative curvature"), cert.reason
    assert cert.min_hessian_eig == pytest.approx(s[1] - s[0], rel=1e-9)
    # the stationary point on the first pair is a minimum: certified
    obj0, (V1, V2), _ = _linear_stationary_point(which=0)
    res0 = dataclasses.replace(train(obj0, (V1, V2), TrainConfig(steps=0, polish=False)),
                               initial=(1e-3 * V1, 1e-3 * V2))
    cert0, _ = C.certify(obj0, res0, tau=1e-8)
    assert cert0.certified, cert0.reason
    assert cert0.min_hessian_eig >= -1e-12


def test_certify_lambda_zero_and_no_hessian() -> None:
    arch = Architecture((3, 4, 2), "tanh")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=0), 0.0)
    res = train(obj, init_params(arch, 0), TrainConfig(steps=20, polish=False))
    cert, _ = C.certify(obj, res, tau=1e-6, hessian=False)
    assert not cert.certified and "λ = 0" in cert.reason
    assert cert.max_residual == math.inf
    assert cert.hessian_method == "skipped: not requested" and cert.min_hessian_eig is None


def test_certify_diverged_run() -> None:
    arch = Architecture((3, 6, 2), "relu")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=1), 1e-2)
    res = train(obj, init_params(arch, 0), TrainConfig(lr=1e6, steps=20, record_every=5))
    assert not res.finite
    cert, _ = C.certify(obj, res, tau=1e-6)
    assert not cert.certified
    assert cert.reason.startswith("diverged")
    assert cert.hessian_method.startswith("skipped") and cert.max_residual == math.inf


# --------------------------------------------------------------------------- Clarke


def _kinked_relu_case(act: str = "relu") -> tuple[Objective, tuple[torch.Tensor, ...], int]:
    """1-hidden-layer net whose pre-activations z = X W_1ᵀ have exact zeros (integer data
    orthogonal to rows of W_1)."""
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [1.0, 2.0]], dtype=F64)
    Y = torch.tensor([[1.0], [-0.5], [0.7], [0.2], [-1.0]], dtype=F64)
    W1 = torch.tensor([[1.0, -1.0], [0.0, 1.0], [1.0, 2.0], [-2.0, 1.0]], dtype=F64)
    W2 = torch.tensor([[0.8, -0.6, 0.4, 1.1]], dtype=F64)
    zeros = int(((X @ W1.T) == 0).sum())
    obj = Objective(Architecture((2, 4, 1), act), D.Dataset(X, Y, "squared", "kinked"), 0.1)
    return obj, (W1, W2), zeros


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_clarke_residual_slopes_and_residual(act: str) -> None:
    obj, params, zeros = _kinked_relu_case(act)
    assert zeros == 4
    slopes, K, note = clarke_residual(obj, params, band=1e-12)
    assert K == zeros and slopes is not None and f"{K} kinks" in note
    lo = 0.0 if act == "relu" else 0.1
    (mask,), (vals,) = slopes.masks, slopes.values
    z = obj.data.X @ params[0].T
    assert torch.equal(mask, (z == 0).to(F64))
    chosen = vals[mask > 0]
    assert bool(((chosen >= lo) & (chosen <= 1.0)).all()), chosen
    natural = torch.where(z > 0, torch.ones_like(z), torch.full_like(z, lo))
    assert torch.equal(vals[mask == 0], natural[mask == 0])  # untouched off the kinks
    plain = stationarity(obj, params)
    clarke = stationarity(obj, params, slopes, "clarke", K)
    assert _sum_sq(clarke.r) <= _sum_sq(plain.r) * (1 + 1e-12)
    assert _sum_sq(clarke.r) < _sum_sq(plain.r)  # a real improvement on this example
    # the value of F does not depend on the slope selection
    assert float(obj.value(params, slopes)) == float(obj.value(params))


def test_clarke_residual_without_kinks() -> None:
    arch = Architecture((3, 4, 2), "relu")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=0), 0.1)
    slopes, K, note = clarke_residual(obj, init_params(arch, 0), band=0.0)
    assert slopes is None and K == 0 and note == "no kinks"
