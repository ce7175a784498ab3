"""Stationarity residuals: the one definition of r_k, plain and at kinks (Clarke).

R_k = W_k + g_k/λ and r_k = ‖R_k‖_F/‖W_k‖_F (THEOREMS.md, "Notation"), with g_k the data
gradient for a chosen gradient selection: the plain gradient, or — for ReLU-type networks
whose minimisers sit on kinks — the best Clarke subgradient, found by
:func:`clarke_residual`.

* :func:`clarke_residual` — the minimum over slopes s ∈ [a, 1]^K at the K entries in the
  kink band |z| ≤ ``band`` (a = 0 for relu, the leaky slope otherwise) of Σ_k r_k², a
  bounded least-squares problem (scipy ``least_squares``, trust-region reflective, started
  from the given slopes). The chain rule with such slopes yields an element of the Goldstein
  ε-subdifferential of F (ε: the distance to the kink manifold, at most about ``band``);
  theorems that rely on exact Euler homogeneity measure the resulting defect and add it to
  their slack (T3), the others hold for any slope selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares, lsq_linear
from scipy.sparse.linalg import LinearOperator
from torch import Tensor

from verify.nets.activations import KinkSlopes, Params, sigma_slope_range
from verify.nets.dense import forward_internals
from verify.nets.network import weights
from verify.nets.objective import Objective, data_loss, flat, unflat

BAND = 30.0  # kink band half-width in units of 1/β: sigmoid(±30) is 0 or 1 to 1e-13


@dataclass(frozen=True)
class Stationarity:
    """Residuals of θ and the gradient selection they come from.

    ``g`` is the data gradient of every parameter tensor, ``R[k] = W_k + g_k/λ``,
    ``r[k] = ‖R_k‖/‖W_k‖``; ``kind`` is "gradient" or "clarke" (then ``slopes`` holds the
    chosen slopes at the kinks).
    """

    g: Params
    R: tuple[Tensor, ...]
    r: tuple[float, ...]
    kind: str
    kink_count: int
    slopes: KinkSlopes | None = None


def stationarity(obj: Objective, params: Params, slopes: KinkSlopes | None = None,
                 kind: str = "gradient", kink_count: int = 0) -> Stationarity:
    """Residuals R_k and r_k at ``params`` for the given gradient selection."""
    g = obj.data_grad(params, slopes)
    W = weights(obj.arch, params)
    if obj.lam == 0:
        R = tuple(torch.full_like(w, math.nan) for w in W)
        r = tuple(math.inf for _ in W)
    else:
        R = tuple(w + gk / obj.lam for w, gk in zip(W, g, strict=False))
        r = tuple(float(torch.linalg.norm(Rk)) / max(float(torch.linalg.norm(w)), 1e-300)
                  for Rk, w in zip(R, W, strict=True))
    return Stationarity(g, R, r, kind, kink_count, slopes)


def relative_residuals(W: Sequence[Tensor], G: Sequence[Tensor], lam: Tensor) -> Tensor:
    """r_i = max_k ‖∇_{W_k} F_i‖_F / (λ_i ‖W_{i,k}‖_F) for a stack of networks: every tensor
    of ``W`` (weights) and ``G`` (the matching gradients of F) has a leading network axis of
    length K, ``lam`` holds λ_i (shape (K,)). ∞ where λ_i = 0 or a layer is zero. The one
    definition behind :func:`relative_residual` (K = 1) and the ensemble's
    (:mod:`verify.engine.ensemble`)."""
    lam = lam.to(W[0].dtype)
    worst = torch.zeros(W[0].shape[0], dtype=W[0].dtype, device=W[0].device)
    zero = torch.zeros_like(worst, dtype=torch.bool)
    for w, g in zip(W, G, strict=True):
        wn = torch.linalg.vector_norm(w.flatten(1), dim=1)
        gn = torch.linalg.vector_norm(g.flatten(1), dim=1)
        zero |= wn == 0
        worst = torch.maximum(worst, gn / (lam * wn))
    return torch.where((lam == 0) | zero, torch.full_like(worst, math.inf), worst)


def relative_residual(obj: Objective, params: Params, grad: Params | None = None) -> float:
    """max_k ‖∇_{W_k} F‖_F / (λ ‖W_k‖_F) over weights (∞ for λ = 0 or a zero layer):
    :func:`relative_residuals` of one network."""
    if obj.lam == 0:
        return math.inf
    g = obj.grad(params) if grad is None else grad
    d = obj.arch.depth
    lam = torch.tensor([float(obj.lam)], dtype=params[0].dtype, device=params[0].device)
    with torch.no_grad():
        r = relative_residuals([p.detach().unsqueeze(0) for p in params[:d]],
                               [gk.detach().unsqueeze(0) for gk in g[:d]], lam)
    return float(r[0])


def kink_masks(obj: Objective, params: Params, band: float) -> tuple[Tensor, ...]:
    """Masks of hidden pre-activations in the kink band |z| ≤ ``band``."""
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    return tuple((z.abs() <= band).to(z.dtype) for z in zs[:-1])


def natural_slopes(obj: Objective, params: Params) -> tuple[Tensor, ...]:
    lo, _ = sigma_slope_range(obj.arch.activation)
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    return tuple(torch.where(z > 0, torch.ones_like(z), torch.full_like(z, lo)) for z in zs[:-1])


def _scatter(masks: tuple[Tensor, ...], base: tuple[Tensor, ...], s: Tensor) -> KinkSlopes:
    vals, i = [], 0
    for m, b in zip(masks, base, strict=True):
        idx = m.reshape(-1).nonzero().squeeze(1)
        v = b.reshape(-1).clone()
        v = v.index_put((idx,), s[i : i + idx.numel()])
        vals.append(v.view_as(b))
        i += idx.numel()
    return KinkSlopes(masks, tuple(vals))


def _layer_scale(obj: Objective, params: Params) -> Tensor:
    """Per-entry weights 1/(λ‖W_k‖) so that the squared gradient sums to Σ_k r_k²."""
    parts = []
    for i, p in enumerate(params):
        k = i % obj.arch.depth
        wn = float(torch.linalg.norm(params[k]))
        parts.append(torch.full((p.numel(),), 1.0 / (obj.lam * max(wn, 1e-300)),
                                dtype=p.dtype, device=p.device))
    return torch.cat(parts)


def smoothing_slopes(obj: Objective, params: Params, beta: float) -> KinkSlopes:
    """σ'_β = sigmoid(βz) on the band |z| ≤ 30/β: the slopes the smoothed problem uses."""
    masks = kink_masks(obj, params, BAND / beta)
    lo, _ = sigma_slope_range(obj.arch.activation)
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    vals = tuple(lo + (1 - lo) * torch.sigmoid(beta * z) for z in zs[:-1])
    return KinkSlopes(masks, vals)


# The dense Jacobian of the scaled gradient w.r.t. the K slopes (P × K) costs K forward-mode
# passes, P·K floats of memory and, in each bounded linear solve, a factorisation of O(P·K²):
# 2e6 entries is 16 MB and about a second per solve. Above it the Jacobian stays an operator
# (one jvp per product, one vjp per transposed product) and every solve is Krylov (LSMR).
DENSE_JACOBIAN_ENTRIES = 2_000_000
MAX_KINKS = 200_000  # the matrix-free path has no memory limit in K; this bounds its time
# Iteration caps of every solver call (results depend on iterations, never on wall-clock time):
LINEAR_MAX_ITER = 100  # trust-region iterations of one bounded linear solve (scipy's default)
LSMR_MAX_ITER = 200  # Krylov iterations of one LSMR solve (matrix-free path)
LSMR_TOL = 1e-12  # LSMR's relative stopping tolerance (atol = btol) on the matrix-free path


def clarke_residual(obj: Objective, params: Params, band: float,
                    start: KinkSlopes | None = None, max_kinks: int = MAX_KINKS,
                    max_evals: int = 20) -> tuple[KinkSlopes | None, int, str]:
    """The slopes minimising Σ_k r_k² over the kink band, their count, and a note.

    With ``start``, its masks define the kinked entries (the band is then only reported).
    Returns ``(None, K, note)`` when there is nothing to optimise (K = 0) or K is too large.
    Below :data:`DENSE_JACOBIAN_ENTRIES` (P·K) the Jacobian is dense (jacfwd); above it a
    LinearOperator (:func:`_jacobian_operator`) and the solves are LSMR, with the same caps.
    """
    masks = kink_masks(obj, params, band) if start is None else start.masks
    K = int(sum(int(m.sum()) for m in masks))
    if K == 0:
        return None, 0, "no kinks"
    if K > max_kinks:
        return None, K, f"{K} kinks exceed the Clarke solver limit {max_kinks}"
    base = natural_slopes(obj, params)
    lo, hi = sigma_slope_range(obj.arch.activation)
    scale = _layer_scale(obj, params)
    init = base if start is None else start.values
    theta = flat(params).detach()
    dev = theta.device
    # one slope: dense (P × 1 is small; scipy's 2-D subspace step of tr_solver='lsmr' needs
    # two variables)
    dense = K == 1 or theta.numel() * K <= DENSE_JACOBIAN_ENTRIES

    def grad_of(s: Tensor) -> Tensor:
        kinks = _scatter(masks, base, s)
        g = torch.func.grad(lambda q: obj.value(unflat(q, params), kinks))(theta)
        return g * scale

    s0 = torch.cat([b.reshape(-1)[m.reshape(-1) > 0] for m, b in zip(masks, init, strict=True)])

    def fun(s: np.ndarray) -> np.ndarray:
        return grad_of(torch.as_tensor(s, dtype=theta.dtype, device=dev)).detach().cpu().numpy()

    # The gradient is multilinear in the slopes; its Jacobian comes from forward mode.
    def jac(s: np.ndarray) -> np.ndarray | LinearOperator:
        st = torch.as_tensor(s, dtype=theta.dtype, device=dev)
        if not dense:
            return _jacobian_operator(grad_of, st, theta.numel())
        return torch.func.jacfwd(grad_of)(st).detach().cpu().numpy()

    s0 = s0.cpu()
    krylov = {} if dense else {"tr_solver": "lsmr", "tr_options": {
        "maxiter": LSMR_MAX_ITER, "atol": LSMR_TOL, "btol": LSMR_TOL}}
    sol = least_squares(fun, s0.clamp(lo, hi).numpy(), jac=jac, bounds=(lo, hi),
                        method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=max_evals,
                        **krylov)
    s = np.clip(sol.x, lo, hi)
    if float(np.linalg.norm(fun(s))) > float(np.linalg.norm(fun(s0.numpy()))):
        s = s0.clamp(lo, hi).numpy()  # keep the start when the solver ends worse
    s = _bounded_gauss_newton(fun, jac, s, lo, hi, max_evals)
    return (_scatter(masks, base, torch.as_tensor(s, dtype=theta.dtype).to(dev)), K,
            f"{K} kinks in |z| ≤ {band:.1e}")


def _jacobian_operator(grad_of: Callable[[Tensor], Tensor], s: Tensor, P: int
                       ) -> LinearOperator:
    """J = ∂ grad_of/∂s at ``s`` as a P × K scipy LinearOperator: J v by one forward-mode
    derivative (torch.func.jvp), Jᵀ w by one reverse-mode derivative (torch.func.vjp, its
    forward pass shared by every product at this ``s``). Exact up to rounding: the scaled
    gradient is multilinear in the slopes, and both products are its derivative."""
    _, pullback = torch.func.vjp(grad_of, s)  # type: ignore[misc]  # 2 without has_aux

    def matvec(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.ravel(v), dtype=s.dtype, device=s.device)
        _, out = torch.func.jvp(grad_of, (s,), (vt,))  # type: ignore[misc]
        return out.detach().cpu().numpy()

    def rmatvec(w: np.ndarray) -> np.ndarray:
        wt = torch.as_tensor(np.ravel(w), dtype=s.dtype, device=s.device)
        (out,) = pullback(wt)
        return out.detach().cpu().numpy()

    return LinearOperator((P, s.numel()), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)


def _linear_solve(J: np.ndarray | LinearOperator, b: np.ndarray, lo: float,
                  hi: float) -> np.ndarray:
    """argmin_{lo ≤ x ≤ hi} ‖J x − b‖, capped: BVLS (exact, small K) or the trust-region
    reflective method — with an exact inner solve for a dense J, LSMR for an operator."""
    if isinstance(J, LinearOperator):
        return lsq_linear(J, b, bounds=(lo, hi), method="trf", lsq_solver="lsmr",
                          lsmr_tol=LSMR_TOL, lsmr_maxiter=LSMR_MAX_ITER, tol=1e-15,
                          max_iter=LINEAR_MAX_ITER).x
    n = J.shape[1]
    return lsq_linear(J, b, bounds=(lo, hi), method="bvls" if n <= 200 else "trf", tol=1e-15,
                      max_iter=n if n <= 200 else LINEAR_MAX_ITER).x


def _bounded_gauss_newton(fun: Callable[[np.ndarray], np.ndarray],
                          jac: Callable[[np.ndarray], np.ndarray | LinearOperator],
                          s: np.ndarray, lo: float, hi: float, iters: int) -> np.ndarray:
    """Refine s by Gauss–Newton steps, each a box-constrained linear least-squares solve
    (:func:`_linear_solve`, capped) with backtracking.

    The scaled gradient is multilinear in the slopes — affine when the kinks lie in one
    layer, where one step reaches the minimum. The trust-region solver alone can stall on a
    bound it started from (found by the brute-force oracle of tests/engine/test_oracles.py:
    a single kink whose optimal slope is 1 stayed at 5e-5).
    """
    cur = float(np.linalg.norm(fun(s)))
    for _ in range(iters):
        r, J = fun(s), jac(s)
        target = _linear_solve(J, J @ s - r, lo, hi)
        step, t, moved = np.clip(target, lo, hi) - s, 1.0, False
        while t > 1e-6:
            cand = s + t * step
            val = float(np.linalg.norm(fun(cand)))
            if val < cur:
                s, cur, moved = cand, val, True
                break
            t *= 0.5
        if not moved or t * float(np.abs(step).max(initial=0.0)) <= 1e-15:
            break
    return s


def best_stationarity(obj: Objective, params: Params, band: float | None,
                      start: KinkSlopes | None = None) -> tuple[
        Stationarity, Stationarity | None]:
    """The plain-gradient residuals and, for kinked nets with kinks, the Clarke ones.

    ``band``: entries with |z| ≤ band count as kinked (default: 1e-9 of the largest |z|);
    ``start``: a selection from training whose kinked entries and slopes are refined.
    Returns ``(best, clarke)`` where ``best`` has the smaller max_k r_k.
    """
    plain = stationarity(obj, params)
    if not obj.arch.kinked or obj.lam == 0:
        return plain, None
    if start is not None:
        with torch.no_grad():
            _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
        # the band actually used: the largest |z| among the entries treated as kinked
        band = max((float(z[m > 0].abs().max()) for z, m in zip(zs[:-1], start.masks,
                                                                 strict=True) if m.any()),
                   default=0.0)
    elif band is None:
        with torch.no_grad():
            _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
        band = 1e-9 * max(float(z.abs().max()) for z in zs[:-1])
    else:
        start = smoothing_slopes(obj, params, BAND / band)
    slopes, K, _ = clarke_residual(obj, params, band, start)
    if slopes is None:
        return plain, None
    clarke = stationarity(obj, params, slopes, "clarke", K)
    return (clarke if max(clarke.r) < max(plain.r) else plain), clarke


def layer_errors(obj: Objective, params: Params, slopes: KinkSlopes | None = None
                 ) -> tuple[tuple[Tensor, Tensor], ...]:
    """For each layer k of a dense net, (δ_k, h_{k−1}) with δ_k = ∂L̂/∂z_k (n × d_k) under the
    slope selection ``slopes`` and h_{k−1} the layer input, so that the data gradient of the
    selection is g_k = δ_kᵀ h_{k−1}: a sum of n outer products."""
    ps = tuple(p.detach().requires_grad_(True) for p in params)
    out, zs, hs = forward_internals(obj.arch, ps, obj.data.X, slopes)
    deltas = torch.autograd.grad(data_loss(obj.data, out), zs, allow_unused=True)
    return tuple((d.detach() if d is not None else torch.zeros_like(z), h.detach())
                 for d, z, h in zip(deltas, zs, hs, strict=True))
