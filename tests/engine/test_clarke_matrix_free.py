"""Brute-force twins of the matrix-free Clarke residual (issue 13, item 1).

Above :data:`verify.engine.residual.DENSE_JACOBIAN_ENTRIES` the Jacobian of the scaled
gradient w.r.t. the kink slopes is a LinearOperator (jvp / vjp) and the bounded solves are
LSMR. On tiny problems, forced onto that path by a zero threshold, it must agree with the
dense path:

* the operator: J v and Jᵀ w equal the dense jacfwd Jacobian's products up to rounding (a
  wrong transpose is caught);
* the result: with the kinks in one layer the scaled gradient f(s) = J s + f₀ is affine, so
  φ(s) = ½‖f(s)‖² = ½Σ_k r_k² is a convex quadratic on the box [lo, hi]^K and its
  Frank–Wolfe gap gap(s) = Σ_i (g_i s_i − min(g_i·lo, g_i·hi)), g = ∇φ(s) = Jᵀf(s), bounds
  φ(s) − min φ (Jaggi 2013, "Revisiting Frank–Wolfe", §2). Two solvers' values may differ by
  at most the dense twin's gap plus rounding; and every slope lies in [lo, hi].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator

import verify.engine.residual as R
from tests.engine.test_oracles import _kinked
from verify.nets.activations import KinkSlopes, sigma_slope_range
from verify.nets.objective import Objective, flat, unflat
from verify.tolerances import gamma, gradient_ops

F64 = torch.float64
CASES = [(1, "relu", 0), (2, "relu", 1), (3, "relu", 2), (3, "relu", 3), (2, "leaky_relu", 4),
         (3, "leaky_relu", 5)]


def _scaled_gradient(obj: Objective, params: tuple[torch.Tensor, ...], masks: tuple[
        torch.Tensor, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """s ↦ the scaled gradient of clarke_residual (‖·‖² = Σ_k r_k²), built from its parts."""
    base, scale, theta = R.natural_slopes(obj, params), R._layer_scale(obj, params), flat(params)

    def grad_of(s: torch.Tensor) -> torch.Tensor:
        kinks = R._scatter(masks, base, s)
        return torch.func.grad(lambda q: obj.value(unflat(q, params), kinks))(theta) * scale

    return grad_of


def _rounding(obj: Objective, K: int, scale: float) -> float:
    """γ of the chain behind one product of the Jacobian (a data gradient, its derivative in
    the slopes, a sum over the K slopes) times the size of what was summed."""
    return gamma(2 * gradient_ops(obj.arch.widths, obj.data.X.shape[0]) + K) * scale


def _operator_defect(op: LinearOperator, J: np.ndarray, rng: np.random.Generator
                     ) -> tuple[float, float]:
    """max over a few random v, w of |op v − J v| and |opᵀ w − Jᵀ w| (∞-norms)."""
    dv = dw = 0.0
    for _ in range(3):
        v, w = rng.standard_normal(J.shape[1]), rng.standard_normal(J.shape[0])
        dv = max(dv, float(np.abs(op.matvec(v) - J @ v).max()))
        dw = max(dw, float(np.abs(op.rmatvec(w) - J.T @ w).max()))
    return dv, dw


def _wrong_transpose(op: LinearOperator) -> LinearOperator:
    """Mutant: Jᵀ applied to w in reverse order (an index slip in the transpose)."""
    return LinearOperator(op.shape, matvec=op.matvec,
                          rmatvec=lambda w: op.rmatvec(np.ravel(w)[::-1].copy()),
                          dtype=np.float64)


@pytest.mark.parametrize(("K", "act", "seed"), CASES[:4])
def test_operator_products_match_the_dense_jacobian(K: int, act: str, seed: int) -> None:
    obj, params = _kinked(K, act, seed)
    masks = R.kink_masks(obj, params, 0.0)
    grad_of = _scaled_gradient(obj, params, masks)
    s = torch.full((K,), 0.3, dtype=F64)
    J = torch.func.jacfwd(grad_of)(s).numpy()
    op = R._jacobian_operator(grad_of, s, J.shape[0])
    rng = np.random.default_rng(seed)
    # |J| |v| ≤ ‖J‖_max·K·max|v|; a few standard normals are below 5 in modulus
    tol = _rounding(obj, K, 5.0 * K * float(np.abs(J).max()) * max(J.shape))
    dv, dw = _operator_defect(op, J, rng)
    assert dv <= tol and dw <= tol, (dv, dw, tol)
    bad_v, bad_w = _operator_defect(_wrong_transpose(op), J, rng)
    assert bad_v <= tol < bad_w, (bad_w, tol)  # the mutant's transpose is caught


def _sum_sq_and_gap(obj: Objective, params: tuple[torch.Tensor, ...], slopes: KinkSlopes
                    ) -> tuple[float, float, np.ndarray]:
    """½Σ_k r_k² at the chosen slopes, its Frank–Wolfe gap on the box, and the slopes."""
    lo, hi = sigma_slope_range(obj.arch.activation)
    grad_of = _scaled_gradient(obj, params, slopes.masks)
    s = torch.cat([v[m > 0] for v, m in zip(slopes.values, slopes.masks, strict=True)])
    f, J = grad_of(s).numpy(), torch.func.jacfwd(grad_of)(s).numpy()
    g, x = J.T @ f, s.numpy()
    gap = float(np.sum(g * x - np.minimum(g * lo, g * hi)))
    return 0.5 * float(f @ f), max(gap, 0.0), x


def _outside(x: np.ndarray, lo: float, hi: float) -> int:
    return int(((x < lo) | (x > hi)).sum())


@pytest.mark.parametrize(("K", "act", "seed"), CASES)
def test_matrix_free_path_matches_the_dense_path(monkeypatch: pytest.MonkeyPatch, K: int,
                                                 act: str, seed: int) -> None:
    obj, params = _kinked(K, act, seed)
    lo, hi = sigma_slope_range(act)
    dense, found, _ = R.clarke_residual(obj, params, band=0.0)
    monkeypatch.setattr(R, "DENSE_JACOBIAN_ENTRIES", 0)
    free, found_free, _ = R.clarke_residual(obj, params, band=0.0)
    assert found == found_free == K and dense is not None and free is not None
    phi_d, gap_d, x_d = _sum_sq_and_gap(obj, params, dense)
    phi_f, _, x_f = _sum_sq_and_gap(obj, params, free)
    assert _outside(x_d, lo, hi) == 0 and _outside(x_f, lo, hi) == 0
    # min φ ∈ [φ_d − gap_d, φ_d]: the matrix-free value may sit neither below that minimum
    # nor above the dense twin's certified accuracy
    tol = gap_d + _rounding(obj, K, max(phi_d, phi_f))
    assert abs(phi_d - phi_f) <= tol, (phi_d, phi_f, tol)
    # a solver leaving the box is caught by the same check
    mutant = np.where(np.arange(K) == 0, hi + 0.5, x_f)
    assert _outside(mutant, lo, hi) == 1


def test_a_wrong_transpose_changes_the_matrix_free_result(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """End to end: with the mutant operator the solver's value leaves the dense twin's
    tolerance (or its slopes leave the box), so the twin test above would fail."""
    obj, params = _kinked(3, "leaky_relu", 5)  # its minimum has an interior slope (0.29)
    lo, hi = sigma_slope_range("leaky_relu")
    dense, _, _ = R.clarke_residual(obj, params, band=0.0)
    assert dense is not None
    phi_d, gap_d, _ = _sum_sq_and_gap(obj, params, dense)
    make = R._jacobian_operator
    monkeypatch.setattr(R, "DENSE_JACOBIAN_ENTRIES", 0)
    monkeypatch.setattr(R, "_jacobian_operator", lambda *a: _wrong_transpose(make(*a)))
    free, _, _ = R.clarke_residual(obj, params, band=0.0)
    assert free is not None
    phi_f, _, x_f = _sum_sq_and_gap(obj, params, free)
    tol = gap_d + _rounding(obj, 3, max(phi_d, phi_f))
    assert abs(phi_d - phi_f) > tol or _outside(x_f, lo, hi) > 0


def test_above_the_kink_limit_the_refusal_names_it() -> None:
    obj, params = _kinked(3, "relu", 2)
    slopes, K, note = R.clarke_residual(obj, params, band=0.0, max_kinks=2)
    assert slopes is None and K == 3 and note == "3 kinks exceed the Clarke solver limit 2"
    assert R.MAX_KINKS >= 100_000  # the matrix-free path has no memory limit in K
