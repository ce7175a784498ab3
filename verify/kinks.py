"""Stationarity at kinks: Clarke residuals and smoothing continuation.

A ReLU network's minimiser of F typically has pre-activations exactly at 0 (THEOREMS.md,
"Kinks"), where F is not differentiable and L-BFGS stalls (measured here: relative residual
~1e-2 on a 10-16-16-3 ReLU net). Two tools:

* :func:`continuation` — minimise the smoothed objective F_β, where σ = relu is replaced by
  softplus(βz)/β, with L-BFGS for β = 10, 100, …, warm-starting each stage. As β → ∞ its
  minimisers approach a Clarke-stationary point of F, and σ'_β(z) = sigmoid(βz) is a slope
  in [0, 1] at every entry of the band |z| ≤ 30/β (outside it the slope is 0 or 1 up to
  e^{−30}). The stage whose Clarke residual (below) is smallest is kept.
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
import time

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import Tensor

from verify.models import KinkSlopes, Params, forward_internals, sigma_slope_range
from verify.objective import Objective, flat, unflat

DENSE_LIMIT = 3000  # unknowns (parameters + kinks) for the dense kink Newton solve
BAND = 30.0  # kink band half-width in units of 1/β: sigmoid(±30) is 0 or 1 to 1e-13
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


def clarke_residual(obj: Objective, params: Params, band: float,
                    start: KinkSlopes | None = None, max_kinks: int = 3000,
                    max_evals: int = 20) -> tuple[KinkSlopes | None, int, str]:
    """The slopes minimising Σ_k r_k² over the kink band, their count, and a note.

    With ``start``, its masks define the kinked entries (the band is then only reported).
    Returns ``(None, K, note)`` when there is nothing to optimise (K = 0) or K is too large.
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

    def grad_of(s: Tensor) -> Tensor:
        kinks = _scatter(masks, base, s)
        g = torch.func.grad(lambda q: obj.value(unflat(q, params), kinks))(theta)
        return g * scale

    s0 = torch.cat([b.reshape(-1)[m.reshape(-1) > 0] for m, b in zip(masks, init, strict=True)])

    # The gradient is multilinear in the slopes; its Jacobian comes from forward mode.
    def fun(s: np.ndarray) -> np.ndarray:
        return grad_of(torch.as_tensor(s, dtype=theta.dtype, device=dev)).detach().cpu().numpy()

    def jac(s: np.ndarray) -> np.ndarray:
        st = torch.as_tensor(s, dtype=theta.dtype, device=dev)
        return torch.func.jacfwd(grad_of)(st).detach().cpu().numpy()

    s0 = s0.cpu()
    sol = least_squares(fun, s0.clamp(lo, hi).numpy(), jac=jac, bounds=(lo, hi),
                        method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=max_evals)
    s = torch.as_tensor(np.clip(sol.x, lo, hi), dtype=theta.dtype)
    if float(np.linalg.norm(fun(s.numpy()))) > float(np.linalg.norm(fun(s0.numpy()))):
        s = s0.clamp(lo, hi)  # keep the start when the solver ends worse
    return _scatter(masks, base, s.to(dev)), K, f"{K} kinks in |z| ≤ {band:.1e}"


def continuation(obj: Objective, params: Params, target: float, deadline: float,
                 betas: tuple[float, ...] = tuple(10.0**k for k in range(1, 10)),
                 iters_per_stage: int = 500
                 ) -> tuple[Params, int, float | None, KinkSlopes | None, str]:
    """Smoothing continuation (module doc).

    Returns θ, iterations, β, the slope selection at the kinks and a note. β defines the
    kink band 30/β; β and the selection are None when no stage beat the plain gradient
    residual of ``params``.
    """
    from verify.certificate import stationarity
    from verify.train import lbfgs_polish, newton_polish

    best_p, best_beta, best_sl = params, None, None
    best_r = max(stationarity(obj, params).r)
    p, total = params, 0
    P = sum(t.numel() for t in params)
    for beta in betas:
        smooth = obj.smoothed(beta)
        p, it, _ = lbfgs_polish(smooth, p, iters_per_stage, 0.0, deadline, [])
        p, nt, _ = newton_polish(smooth, p, 1e-13, deadline, max_iter=6)
        total += it + nt
        sl = smoothing_slopes(obj, p, beta)
        st = stationarity(obj, p, sl, "clarke")
        r = max(st.r)
        if r < best_r:
            best_p, best_beta, best_sl, best_r = p, beta, sl, r
        K = int(sum(int(m.sum()) for m in sl.masks))
        if beta >= 1e3 and r > target and P + K <= DENSE_LIMIT:
            # the kink set is settled by now: solve its KKT system instead of smoothing on
            q, sl_q, nt = kink_newton(obj, p, sl, deadline)
            total += nt
            rq = max(stationarity(obj, q, sl_q, "clarke").r)
            if rq < best_r:
                best_p, best_beta, best_sl, best_r = q, beta, sl_q, rq
        if best_r <= target or time.perf_counter() > deadline:
            break
    where = "no stage improved" if best_beta is None else f"best at β = {best_beta:.0e}"
    return (best_p, total, best_beta, best_sl,
            f"smoothing continuation: r = {best_r:.2e} ({where})")




def kink_newton(obj: Objective, params: Params, slopes: KinkSlopes, deadline: float,
                iters: int = 25) -> tuple[Params, KinkSlopes, int]:
    """Levenberg–Marquardt on the kink KKT system, from a continuation stage.

    Unknowns θ and the slopes s at the entries in ``slopes.masks``; equations
    ∇_θ F(θ; s) = 0 (scaled per layer by 1/(λ‖W_k‖)) and z_K(θ) = 0 (scaled by the layer's
    largest |z|): the kinked entries stay exactly on their kinks while every other
    entry keeps its sign pattern. Converges quadratically once the kink set is right. Slopes
    may leave [a, 1] here; the certificate's Clarke residual only accepts slopes inside.
    """
    masks = slopes.masks
    base = natural_slopes(obj, params)
    theta = flat(params).detach()
    P = theta.numel()
    s0 = torch.cat([v.reshape(-1)[m.reshape(-1) > 0]
                    for m, v in zip(masks, slopes.values, strict=True)])
    scale = _layer_scale(obj, params)
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    zscale = [float(z.abs().max()) or 1.0 for z in zs[:-1]]

    def residual(x: Tensor) -> Tensor:
        th, sv = x[:P], x[P:]
        kinks = _scatter(masks, base, sv)
        g = torch.func.grad(lambda q: obj.value(unflat(q, params), kinks))(th)
        _, zz, _ = forward_internals(obj.arch, unflat(th, params), obj.data.X)
        zk = [z.reshape(-1)[m.reshape(-1) > 0] / sc
              for z, m, sc in zip(zz[:-1], masks, zscale, strict=True)]
        return torch.cat([g * scale, *zk])

    x = torch.cat([theta, s0])
    res = residual(x)
    fx = float(res.norm())
    mu: float | None = None
    done = 0
    while done < iters:
        done += 1
        if not math.isfinite(fx) or fx < 1e-14 or time.perf_counter() > deadline:
            break
        J = torch.func.jacfwd(residual)(x)
        JtJ, Jtr = J.T @ J, J.T @ res
        if mu is None:
            mu = 1e-8 * float(JtJ.diagonal().max())
        eye = torch.eye(JtJ.shape[0], dtype=J.dtype, device=J.device)
        for _ in range(20):
            step = -torch.linalg.solve(JtJ + mu * eye, Jtr)
            rc = residual(x + step)
            fc = float(rc.norm())
            if math.isfinite(fc) and fc < fx:
                x, res, fx = x + step, rc, fc
                mu = max(mu / 10, 1e-300)
                break
            mu *= 10
        else:
            break
    lo, hi = sigma_slope_range(obj.arch.activation)
    sl = _scatter(masks, base, x[P:].clamp(lo, hi))
    return unflat(x[:P].detach(), params), sl, done
