"""Polishing in float64: L-BFGS, then Newton's method on ∇F = 0.

L-BFGS stops where F stops decreasing in float64 (r ~ 1e-7 near a minimum); Newton goes on,
because ∇F keeps converging where F is flat to machine precision.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import OptimizeResult, minimize
from scipy.sparse.linalg import minres
from torch import Tensor

from verify.engine.hessian import hessian_operator
from verify.engine.residual import relative_residual
from verify.engine.result import Stage, TrainStatus
from verify.nets.activations import Params
from verify.nets.objective import Objective, flat, unflat

DENSE_NEWTON = 2500  # parameters; above it Newton uses MINRES on Hessian–vector products


def _numpy_fg(obj: Objective, like: Params) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.as_tensor(x, dtype=like[0].dtype, device=like[0].device)
        t.requires_grad_(True)
        F = obj.value(unflat(t, like))
        (g,) = torch.autograd.grad(F, t)
        return float(F.detach()), g.detach().cpu().numpy()

    return fg


def lbfgs_polish(obj: Objective, params: Params, max_iter: int, target: float,
                 deadline: float, trace: list[tuple[int, float, float]],
                 step0: int = 0) -> Stage:
    """L-BFGS (scipy's L-BFGS-B without bounds: Moré–Thuente strong-Wolfe line search).

    It stops when F no longer decreases in float64 — near a minimum the decrease is
    O(r²)·F and hits machine precision around r ~ 1e-7; :func:`newton_polish` goes on.
    Returns θ, the iterations, a message and the status (CONVERGED when the relative
    residual is at most ``target``) as a :class:`~verify.engine.result.Stage`.
    """
    x0 = flat(params).detach().cpu().numpy().astype(np.float64)

    def stop(intermediate_result: OptimizeResult) -> None:
        if time.perf_counter() > deadline:
            raise StopIteration

    sol = minimize(_numpy_fg(obj, params), x0, jac=True, method="L-BFGS-B", callback=stop,
                   options={"maxiter": max_iter, "maxcor": 50, "ftol": 0.0, "gtol": 0.0})
    cur = unflat(torch.as_tensor(sol.x, dtype=params[0].dtype, device=params[0].device),
                 params)
    F = float(obj.value(cur))
    if not math.isfinite(F):
        return Stage(cur, int(sol.nit),
                     f"diverged: non-finite F during L-BFGS at iteration {sol.nit}",
                     TrainStatus.DIVERGED)
    r = relative_residual(obj, cur)
    trace.append((step0 + int(sol.nit), F, r))
    status = (TrainStatus.CONVERGED if r <= target
              else TrainStatus.TIME_LIMIT if time.perf_counter() > deadline
              else TrainStatus.ITERATIONS if sol.nit >= max_iter
              else TrainStatus.STALLED)
    return Stage(cur, int(sol.nit), f"L-BFGS: {sol.nit} iterations, relative residual {r:.2e}",
                 status)


def _shifted_newton_step(H: Tensor, g: Tensor) -> Tensor:
    """−(H + μI)⁻¹g with the smallest μ ∈ {0, 1e-10·s, 1e-9·s, …} (s = max|H_ii|) that makes
    H + μI positive definite (Cholesky), so the step is a descent direction."""
    eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    scale = float(H.diagonal().abs().max()) or 1.0
    mu = 0.0
    for k in range(-10, 3):
        L, info = torch.linalg.cholesky_ex(H + mu * eye)
        if int(info) == 0:
            return -torch.cholesky_solve(g.unsqueeze(1), L).squeeze(1)
        mu = scale * 10.0**k
    return -g / scale


def newton_polish(obj: Objective, params: Params, target: float, deadline: float,
                  max_iter: int = 30) -> Stage:
    """Newton's method on ∇F(θ) = 0, with backtracking on ‖∇F‖ rather than on F.

    Near a non-degenerate minimum F is flat to machine precision but ∇F is not, so the
    gradient keeps converging (quadratically) where L-BFGS must stop. Dense Hessian up to
    :data:`DENSE_NEWTON` parameters, conjugate gradients on Hessian–vector products above.
    Negative or tiny curvature is shifted (Levenberg damping) so steps stay descent-like.
    The status is STALLED when no step along the Newton direction reduces ‖∇F‖ (or ∇F is
    not finite at a finite F).
    """
    theta = flat(params).detach()
    P = theta.numel()

    def F(v: Tensor) -> Tensor:
        return obj.value(unflat(v, params))

    gradF = torch.func.grad(F)
    g = gradF(theta)
    gn = float(g.norm())
    it = 0
    stalled = False
    while it < max_iter:
        it += 1
        if relative_residual(obj, unflat(theta, params), unflat(g, params)) <= target:
            break
        if time.perf_counter() > deadline:
            break
        if not math.isfinite(gn):
            stalled = True
            break
        if P <= DENSE_NEWTON:
            H = torch.func.hessian(F)(theta)
            H = 0.5 * (H + H.T)
            step = _shifted_newton_step(H, g)
        else:
            sol, _ = minres(hessian_operator(gradF, theta), -g.cpu().numpy(), maxiter=200)
            step = torch.as_tensor(sol, dtype=theta.dtype, device=theta.device)
        t = 1.0
        while t > 1e-6:
            cand = theta + t * step
            gc = gradF(cand)
            gcn = float(gc.norm())
            if math.isfinite(gcn) and gcn < gn:
                theta, g, gn = cand, gc, gcn
                break
            t *= 0.5
        else:
            stalled = True
            break
    cur = unflat(theta, params)
    r = relative_residual(obj, cur)
    status = (TrainStatus.CONVERGED if r <= target
              else TrainStatus.STALLED if stalled
              else TrainStatus.TIME_LIMIT if time.perf_counter() > deadline
              else TrainStatus.ITERATIONS)
    return Stage(cur, it, f"Newton: {it} steps, relative residual {r:.2e}", status)
