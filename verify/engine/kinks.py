"""The kink stage: smoothing continuation, then a Newton solve on the kink manifold.


* :func:`continuation` — minimise the smoothed objective F_β, where σ = relu is replaced by
  softplus(βz)/β, with L-BFGS for β = 10, 100, …, warm-starting each stage. As β → ∞ its
  minimisers approach a Clarke-stationary point of F, and σ'_β(z) = sigmoid(βz) is a slope
  in [0, 1] at every entry of the band |z| ≤ 30/β (outside it the slope is 0 or 1 up to
  e^{−30}). The stage whose Clarke residual (below) is smallest is kept.
The certificate's Clarke residual (:mod:`verify.engine.residual`) judges the result.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from verify.engine.polish import lbfgs_polish, newton_polish
from verify.engine.residual import (
    _layer_scale,
    _scatter,
    natural_slopes,
    smoothing_slopes,
    stationarity,
)
from verify.engine.result import KinkStage, TrainStatus
from verify.nets.activations import KinkSlopes, Params, sigma_slope_range
from verify.nets.dense import forward_internals
from verify.nets.objective import Objective, flat, unflat

DENSE_LIMIT = 3000  # unknowns (parameters + kinks) for the dense kink Newton solve
BETAS = tuple(10.0**k for k in range(1, 10))  # the continuation's smoothing levels β


def continuation(obj: Objective, params: Params, target: float, deadline: float,
                 betas: tuple[float, ...] = BETAS,
                 iters_per_stage: int = 500) -> KinkStage:
    """Smoothing continuation (module doc).

    Returns θ, iterations, a note, the status, β and the slope selection at the kinks as a
    :class:`~verify.engine.result.KinkStage` (CONVERGED when the best Clarke residual is at
    most ``target``; ITERATIONS when every β was tried). β defines the kink band 30/β; β
    and the selection are None when no stage beat the plain gradient residual of
    ``params``.
    """
    best_p, best_beta, best_sl = params, None, None
    best_r = max(stationarity(obj, params).r)
    p, total = params, 0
    P = sum(t.numel() for t in params)
    for beta in betas:
        smooth = obj.smoothed(beta)
        lb = lbfgs_polish(smooth, p, iters_per_stage, 0.0, deadline, [])
        nw = newton_polish(smooth, lb.params, 1e-13, deadline, max_iter=6)
        p = nw.params
        total += lb.iters + nw.iters
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
    status = (TrainStatus.CONVERGED if best_r <= target
              else TrainStatus.TIME_LIMIT if time.perf_counter() > deadline
              else TrainStatus.ITERATIONS)
    return KinkStage(best_p, total, f"smoothing continuation: r = {best_r:.2e} ({where})",
                     status, best_beta, best_sl)


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
