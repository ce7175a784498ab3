"""The stationarity certificate (THEOREMS.md, "Notation" and "Kinks").

For trained θ the certificate records

* the per-layer relative residual r_k = ‖R_k‖_F/‖W_k‖_F with R_k = W_k + g_k/λ, from the
  plain gradient and — for kinked activations — from the best Clarke subgradient
  (:mod:`verify.engine.kinks`); the smaller valid one is used;
* whether the full-batch objective decreased from the start;
* the smallest Hessian eigenvalue of F, exact (dense Hessian) for small nets and by Lanczos
  on Hessian–vector products otherwise, so that the saddle at θ = 0 is never certified;
  a point passes when λ_min ≥ −κ with κ = λ·max(τ, r): curvature is measured in units of the
  regulariser's own curvature λ, and a point at residual r can show negative curvature of
  that relative order without being near a saddle;
* whether some layer collapsed to 0 (the trivial stationary point; claims become vacuous).

* for ReLU-type nets, the revival test of inactive units (:mod:`verify.engine.revival`): the
  second derivative of F along the revival of a dead (or zero) unit is λ − max_v‖c(v)‖, which
  the Hessian of autograd (relu′(0) = 0) and the tangent space of the kink manifold both
  miss; it enters λ_min and the curvature test like any other direction.

Certified ⇔ finite, loss decreased, not collapsed, max_k r_k ≤ τ, and no negative curvature.
What a certificate established — residual level, the subspace of the second-order test, the
inactive units tested — is stated in :class:`Established`: always local, never global.

Everything here is evaluated in float64, whatever precision the first training phase used
(:data:`verify.engine.result.PRECISIONS`): a float32 gradient carries rounding of ~1e-7 relative,
which would put a floor under r_k and make a verdict depend on the hardware.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, lsqr
from torch import Tensor

from verify.engine.hessian import hessian_operator, hvp
from verify.engine.residual import Stationarity, best_stationarity, stationarity
from verify.engine.result import TrainResult
from verify.engine.revival import Revival, revival_tests, testable
from verify.nets.activations import KinkSlopes, Params
from verify.nets.dense import forward_internals
from verify.nets.network import weights
from verify.nets.objective import Objective, flat, unflat

EXACT_HESSIAN_LIMIT = 1500  # parameters; above it Lanczos on Hessian–vector products


LANCZOS_LIMIT = 200_000
LANCZOS_TOL = 1e-6  # eigsh's relative accuracy of the Ritz value (ARPACK's tol)
LANCZOS_MAX_ITER = 2000  # restarts of eigsh
# The projection onto ker J_z (matrix-free tangent route): LSQR stops when
# ‖J_z P v‖ ≤ PROJECTION_TOL·‖J_z‖·‖P v‖ (its atol = btol), or after PROJECTION_MAX_ITER steps.
PROJECTION_TOL = 1e-10
PROJECTION_MAX_ITER = 500
# Where LSQR cannot project (J_z of a trained net has singular values all the way down to the
# rank cutoff), the dense tangent route is still affordable up to this many parameters: a
# P × P Hessian of 72 MB; 5 s at P = 1664 on one CPU thread.
DENSE_TANGENT_FALLBACK = 3000


COLLAPSE = 1e-10  # ‖W_k‖_F below this fraction of ‖W_k(0)‖_F counts as collapsed


def min_hessian_eigenvalue(obj: Objective, params: Params,
                           slopes: KinkSlopes | None = None) -> tuple[float | None, str]:
    """λ_min(∇²F) and the method used ("exact", "tangent", "tangent-lanczos", "lanczos" or
    "skipped: why").

    At a kinked point (``slopes`` given) F is a max/min of smooth pieces and the Hessian of
    one piece says nothing about directions that leave the kink manifold {z_K(θ) = 0}, where
    F has a V shape. The second-order test is then made on the tangent space of that
    manifold: λ_min(Zᵀ ∇²F_s Z) with Z an orthonormal basis of ker ∂z_K/∂θ and F_s the
    piece selected by the slopes — dense up to :data:`EXACT_HESSIAN_LIMIT` parameters,
    matrix-free above (:func:`_tangent_lanczos`), dense again up to
    :data:`DENSE_TANGENT_FALLBACK` where the matrix-free projection does not converge.
    """
    theta = flat(params).detach()
    P = theta.numel()

    def F(v: Tensor) -> Tensor:
        return obj.value(unflat(v, params), slopes)

    if slopes is not None:
        masks = slopes.masks

        def zk(v: Tensor) -> Tensor:
            _, zs, _ = forward_internals(obj.arch, unflat(v, params), obj.data.X)
            return torch.cat([z.reshape(-1)[m.reshape(-1) > 0]
                              for z, m in zip(zs[:-1], masks, strict=True)])

        if P <= EXACT_HESSIAN_LIMIT:
            return _dense_tangent(F, zk, theta, "")
        if P > LANCZOS_LIMIT:
            return None, f"skipped: kinked net with {P} > {LANCZOS_LIMIT} parameters"
        val, how = _tangent_lanczos(torch.func.grad(F), zk, theta)
        if how.startswith("skipped: the projection") and P <= DENSE_TANGENT_FALLBACK:
            return _dense_tangent(F, zk, theta, ", dense: the Krylov projection did not converge")
        return val, how
    if P <= EXACT_HESSIAN_LIMIT:
        H = torch.func.hessian(F)(theta)
        return float(torch.linalg.eigvalsh(0.5 * (H + H.T))[0]), "exact"
    if P > LANCZOS_LIMIT:
        return None, f"skipped: {P} parameters"
    val, partial = _smallest(hessian_operator(torch.func.grad(F), theta), "SA")
    if val is None:
        return None, "skipped: Lanczos did not converge"
    return val, "lanczos (partial)" if partial else "lanczos"


def _dense_tangent(F: Callable[[Tensor], Tensor], zk: Callable[[Tensor], Tensor],
                   theta: Tensor, note: str) -> tuple[float | None, str]:
    """λ_min(Zᵀ ∇²F Z), Z an orthonormal basis of ker J_z from a dense SVD (singular values
    below 1e-9 of the largest count as zero), with a dense Hessian."""
    P = theta.numel()
    Jz = torch.func.jacrev(zk)(theta)
    _, sv, Vh = torch.linalg.svd(Jz, full_matrices=True)
    rank = int((sv > 1e-9 * sv[0]).sum()) if len(sv) and float(sv[0]) > 0 else 0
    Z = Vh[rank:].T
    if Z.shape[1] == 0:
        return None, "skipped: the kinks fix every direction (a vertex)"
    H = torch.func.hessian(F)(theta)
    Ht = Z.T @ (0.5 * (H + H.T)) @ Z
    return (float(torch.linalg.eigvalsh(Ht)[0]),
            f"tangent ({Z.shape[1]} of {P} directions{note})")


def _smallest(op: LinearOperator, which: str) -> tuple[float | None, bool]:
    """The extreme eigenvalue ``which`` ("SA": smallest, "LM": largest |λ|) of a symmetric
    operator by Lanczos (eigsh, capped), and whether it stopped before converging."""
    P = op.shape[0]
    try:
        val = eigsh(op, k=1, which=which, tol=LANCZOS_TOL, maxiter=LANCZOS_MAX_ITER,
                    ncv=min(P, 40), return_eigenvectors=False)
        return float(val[0]), False
    except ArpackNoConvergence as exc:
        if len(exc.eigenvalues):
            vals = np.asarray(exc.eigenvalues).real
            return float(vals.min() if which == "SA" else vals[np.abs(vals).argmax()]), True
        return None, True


class _ProjectionCapped(Exception):
    """An LSQR solve of the tangent projection hit :data:`PROJECTION_MAX_ITER`."""


def _kernel_projector(zk: Callable[[Tensor], Tensor], theta: Tensor
                      ) -> Callable[[np.ndarray], np.ndarray]:
    """v ↦ P v, the orthogonal projection onto ker J_z (J_z = ∂z_K/∂θ), matrix-free:
    P v = v − J_zᵀ y with y = argmin ‖J_zᵀ y − v‖ = (J_z J_zᵀ)⁺ J_z v, solved by LSQR on the
    operator J_zᵀ (products: a vjp of z_K, and a jvp for J_z) to
    ‖J_z P v‖ ≤ PROJECTION_TOL·‖J_z‖·‖P v‖. Raises :class:`_ProjectionCapped` when a solve
    stops on its iteration cap: an inexact projector is neither symmetric nor linear (LSQR
    stops at a different Krylov step for each v), and Lanczos on it returns garbage."""
    zval, pullback = torch.func.vjp(zk, theta)  # type: ignore[misc]  # 2 without has_aux
    P, K = theta.numel(), zval.numel()

    def jt(y: np.ndarray) -> np.ndarray:
        (out,) = pullback(torch.as_tensor(np.ravel(y), dtype=theta.dtype, device=theta.device))
        return out.detach().cpu().numpy()

    def j(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.ravel(v), dtype=theta.dtype, device=theta.device)
        _, out = torch.func.jvp(zk, (theta,), (vt,))  # type: ignore[misc]
        return out.detach().cpu().numpy()

    JzT = LinearOperator((P, K), matvec=jt, rmatvec=j, dtype=np.float64)

    def project(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        # conlim=0: no stop on LSQR's condition estimate (its default 1e8 stops on the
        # near-rank-deficient J_z of a trained net before the projection is accurate)
        y, istop = lsqr(JzT, v, atol=PROJECTION_TOL, btol=PROJECTION_TOL, conlim=0,
                        iter_lim=PROJECTION_MAX_ITER)[:2]
        if istop == 7:
            raise _ProjectionCapped
        return v - JzT.matvec(y)

    return project


def _tangent_lanczos(gradF: Callable[[Tensor], Tensor], zk: Callable[[Tensor], Tensor],
                     theta: Tensor) -> tuple[float | None, str]:
    """λ_min(∇²F_s restricted to ker J_z), matrix-free: the smallest eigenvalue of
    A = P H P + c (I − P), with P the projector of :func:`_kernel_projector` and H v by
    :func:`verify.engine.hessian.hvp`. A is c on range J_zᵀ and P H P on ker J_z, so
    λ_min(A) = min(λ_tangent, c); with c = 2·max|λ(H)| > λ_tangent it is λ_tangent (and any
    c > 0 keeps the verdict λ ≥ −κ exact). λ_min(A) ≥ c(1 − tol) means ker J_z = {0}.
    Skipped when a projection does not converge (J_z too ill-conditioned for LSQR)."""
    P = theta.numel()
    K = int(zk(theta).numel())
    Hv = hvp(gradF, theta)
    project = _kernel_projector(zk, theta)

    def shifted(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        u = project(v)
        return project(Hv(u)) + c * (v - u)

    try:
        project(np.ones(P))  # an ill-conditioned J_z ends the route before any H v
        norm, _ = _smallest(LinearOperator((P, P), matvec=Hv, dtype=np.float64), "LM")
        c = 2 * abs(norm) if norm else 1.0
        val, partial = _smallest(LinearOperator((P, P), matvec=shifted, dtype=np.float64), "SA")
    except _ProjectionCapped:
        return None, (f"skipped: the projection onto the tangent space of {K} kinks did not "
                      f"converge in {PROJECTION_MAX_ITER} LSQR steps (ill-conditioned)")
    if val is None:
        return None, "skipped: tangent Lanczos did not converge"
    if val >= c * (1 - LANCZOS_TOL):
        return None, "skipped: the kinks fix every direction (a vertex)"
    return val, (f"tangent-lanczos (ker of {K} kink constraints in {P} directions"
                 + (", partial)" if partial else ")"))


@dataclass(frozen=True)
class Established:
    """What a certificate established, and what it did not.

    ``residual``/``residual_kind``: the first-order level max_k r_k and its measure (plain
    gradient, or the best Clarke subgradient at kinks — not B-stationarity); ``second_order``:
    the subspace the curvature test covered and ``min_second_order`` its smallest value
    (revival directions included); ``inactive_units``: how many inactive ReLU units were tested
    for revival, ``revival`` the per-layer records; ``scope``: always local — a certified point
    may be a non-global local minimum.
    """

    residual: float
    residual_kind: str
    second_order: str
    min_second_order: float | None
    inactive_units: int
    revival: tuple[Revival, ...]
    summary: str
    scope: str = "local, not global"


def _established(r: float, kind: str, kinks: int, tau: float, eig: float | None, method: str,
                 revivals: tuple[Revival, ...], tested: bool) -> Established:
    first = (f"first order: max r_k = {r:.2g} (τ = {tau:.0e}; "
             + (f"Clarke residual, {kinks} kinked entries, not B-stationarity)"
                if kind == "clarke" else "plain gradient)"))
    base, _, extra = method.partition("; ")
    if base.startswith("tangent"):
        how = base.removeprefix("tangent").lstrip(" -")  # "(…)" or "lanczos (…)"
        where = f"the tangent space of the kink manifold {how}"
    elif base.startswith("skipped"):
        where = f"no subspace ({base})"
    else:
        where = f"all directions ({base})"
    second = f"second order on {where}" + (f" and along the {extra}" if extra else "") + (
        f", min {eig:.3g}" if eig is not None else "")
    units = sum(len(v.units) for v in revivals)
    if not tested:
        inactive = "inactive units: not tested (no ReLU kinks, or biases/residual blocks)"
    elif not revivals:
        inactive = "inactive units: none"
    else:
        inactive = "inactive units: " + "; ".join(
            f"layer {v.layer}: {len(v.units)}, max_v‖c(v)‖ = {v.max_c:.3g} "
            f"({v.starts} starts{'' if v.exact else ', through kinked layers above'})"
            for v in revivals)
    return Established(r, kind, where, eig, units, revivals,
                       f"{first}; {second}; {inactive}; local, not global")


@dataclass(frozen=True)
class Certificate:
    """Evidence that θ is (or is not) a stationary point of F; see module docstring."""

    certified: bool
    tau: float
    max_residual: float
    residual_kind: str
    residuals: tuple[float, ...]
    clarke_residuals: tuple[float, ...] | None
    kinks: int
    kink_band: float | None
    grad_norm: float
    loss_initial: float
    loss_final: float
    loss_decreased: bool
    min_hessian_eig: float | None
    hessian_method: str
    collapsed: bool
    optimizer_steps: int
    stop_reason: str
    train_seconds: float
    reason: str
    cost: dict = field(default_factory=dict)  # the first phase's precision, s/step, memory
    # defaults keep certificates pickled before these fields loadable (class attributes)
    established: Established | None = None

    def to_json(self) -> dict:
        return asdict(self)


def certify(obj: Objective, result: TrainResult, tau: float,
            hessian: bool = True) -> tuple[Certificate, Stationarity]:
    """Certificate of ``result.params`` at level τ, and the residuals it rests on."""
    params = result.params
    F0, F1 = float(obj.value(result.initial)), float(obj.value(params))
    finite = result.finite and math.isfinite(F1)
    plain = stationarity(obj, params) if finite else None
    W, W0 = weights(obj.arch, params), weights(obj.arch, result.initial)
    collapsed = finite and any(float(torch.linalg.norm(w)) <= COLLAPSE * max(
        float(torch.linalg.norm(w0)), 1.0) for w, w0 in zip(W, W0, strict=True))
    best, clarke = (best_stationarity(obj, params, result.kink_band, result.slopes)
                    if finite and not collapsed else (plain, None))
    r = max(best.r) if best is not None else math.inf
    gnorm = float(torch.linalg.norm(flat(obj.grad(params)))) if finite else math.inf
    eig, method = (None, "skipped: not finite") if not finite else (
        min_hessian_eigenvalue(obj, params, best.slopes if best is not None else None)
        if hessian else (None, "skipped: not requested"))
    revivals: tuple[Revival, ...] = ()
    if finite and hessian and obj.lam > 0 and testable(obj):
        revivals = revival_tests(obj, params, result.kink_band,
                                 best.slopes if best is not None else None)
    revival_min = min((v.second_order for v in revivals), default=None)
    eig_hessian = eig
    if revival_min is not None and (eig is None or revival_min < eig):
        worst = min(revivals, key=lambda v: v.second_order)
        eig = revival_min
        method = (f"{method}; revival of inactive units of layer {worst.layer}: "
                  f"λ − max_v‖c(v)‖ = {revival_min:.3g}")
    kappa = obj.lam * max(tau, r) if math.isfinite(r) else 0.0
    reasons = []
    if not finite:
        reasons.append(result.stop_reason)
    if result.timed_out and finite:
        reasons.append(result.stop_reason.rsplit("; ", 1)[-1])  # the safety-net note
    if finite and not F1 < F0:
        reasons.append(f"F did not decrease ({F0:.4g} → {F1:.4g})")
    if collapsed:
        reasons.append("a layer collapsed to 0 (trivial stationary point)")
    if obj.lam == 0:
        reasons.append("λ = 0: no stationarity residual R = W + g/λ")
    elif not r <= tau:
        what = (f"{best.kink_count} kinks, Clarke residual" if best is not None
                and best.kind == "clarke" else "residual")
        reasons.append(f"not stationary: max r_k = {r:.2e} > τ = {tau:.0e} ({what})")
    if revival_min is not None and revival_min < -kappa:
        worst = min(revivals, key=lambda v: v.second_order)
        reasons.append(f"negative curvature along the revival of an inactive unit (layer "
                       f"{worst.layer}): max_v‖c(v)‖ = {worst.max_c:.3g} > λ = {obj.lam:.3g}, "
                       f"second-order value {revival_min:.3g} < −κ = {-kappa:.2g}")
    if eig_hessian is not None and eig_hessian < -kappa:
        reasons.append(f"negative curvature: λ_min(∇²F) = {eig_hessian:.3g} < −κ = "
                       f"{-kappa:.2g}")
    certified = not reasons
    return Certificate(
        certified=certified, tau=tau, max_residual=r,
        residual_kind=best.kind if best is not None else "none",
        residuals=tuple(plain.r) if plain is not None else (),
        clarke_residuals=tuple(clarke.r) if clarke is not None else None,
        kinks=best.kink_count if best is not None and best.kind == "clarke" else (
            clarke.kink_count if clarke is not None else 0),
        kink_band=result.kink_band,
        grad_norm=gnorm, loss_initial=F0, loss_final=F1, loss_decreased=F1 < F0,
        min_hessian_eig=eig, hessian_method=method, collapsed=collapsed,
        optimizer_steps=result.optimizer_steps, stop_reason=result.stop_reason,
        train_seconds=result.seconds,
        reason="certified stationary" if certified else "; ".join(reasons),
        cost=dict(result.cost),
        established=_established(
            r, best.kind if best is not None else "none",
            best.kink_count if best is not None else 0, tau, eig, method, revivals,
            finite and testable(obj)),
    ), (best if best is not None else stationarity(obj, params))
