"""The kink stage: find the kinks by smoothing, then solve stationarity on them.

A ReLU-type F is smooth except where some pre-activation z_ij = 0, and its minimisers sit
on such kinks (THEOREMS.md, "Kinks"), where L-BFGS and Newton stall. The stage has two
parts, repeated for β = 10, 100, … until the Clarke residual of the certificate
(:mod:`verify.engine.residual`) is at most the target:

* **Smoothing** — minimise F_β, σ = relu replaced by softplus(βz)/β, with L-BFGS and Newton,
  warm-started from the previous β. Its minimisers approach a Clarke-stationary point of F
  as β → ∞, and the entries with σ'_β(z) = sigmoid(βz) ∈ (δ, 1 − δ) — the band
  |z| ≤ logit(1 − δ)/β — are the candidate kinks.
* **The active-set solve** (:func:`solve_on_kinks`, from β ≥ :data:`SOLVE_FROM`) — unknowns
  θ and the slopes s_K at the candidate kinks K; equations ∇_θ F(θ; s) = 0 (the chain rule
  with slope s_ij at (i, j) ∈ K, scaled per layer by 1/(λ‖W_k‖) so its squared norm is
  Σ_k r_k²) and the complementarity form s_K = clip(s_K + z_K/ζ, a, 1) (ζ the layer's
  largest |z|): an entry at its kink keeps z = 0 with s inside [a, 1], a candidate that is
  not one takes slope 1 (z > 0) or a (z < 0) instead of being forced onto the kink. P + |K|
  unknowns; every other entry keeps the slope of its side. Levenberg–Marquardt, whose
  linear algebra is dense (reverse-mode Jacobian) up to :data:`DENSE_LIMIT` unknowns and
  matrix-free above (LSMR with damping on J v = jvp and Jᵀ u = vjp: memory O(P + |K|), and
  the same code on a GPU). Entries off K that end on a kink join K and the solve repeats,
  at most :data:`ROUNDS` times. The solve converges quadratically once K is right.

Zero units: a relu unit with no positive entry contributes h = 0, so at any
Clarke-stationary point its outgoing weights are 0 (their gradient is λW) and then its
incoming ones too. Such units are set to exactly 0 before the solve and their entries leave
K (their slopes do not enter the gradient); whether one should grow is the revival test's
question (:mod:`verify.engine.revival`), answered after the stage by the route.

Every loop stops on an iteration count; the deadline is only the safety net.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, lsmr
from torch import Tensor

from verify.engine.polish import lbfgs_polish, newton_polish
from verify.engine.residual import (
    BAND,
    _layer_scale,
    _scatter,
    smoothing_slopes,
    stationarity,
)
from verify.engine.result import KinkStage, TrainStatus
from verify.nets.activations import KinkSlopes, Params, sigma_slope_range
from verify.nets.dense import forward_internals
from verify.nets.objective import Objective, flat, unflat

BETAS = tuple(10.0**k for k in range(1, 10))  # the continuation's smoothing levels β
SMOOTH_NEWTON = 12  # Newton steps on each F_β after L-BFGS (L-BFGS stops where F_β is flat)
SOLVE_FROM = 1e2  # the first β whose band is narrow enough to try the active-set solve
CANDIDATE = 1e-3  # δ: entries with sigmoid(βz) ∈ (δ, 1 − δ) are candidate kinks
DENSE_LIMIT = 3000  # unknowns (parameters + kinks) up to which the LM step is a dense solve
ROUNDS = 4  # active-set updates per solve
LM_ITERS = 30  # Levenberg–Marquardt iterations per round
PATIENCE = 6  # slow LM iterations (each leaving > ½‖r‖) before a kink set is given up
LSMR_ITERS = 500  # Krylov iterations per matrix-free LM step


def selection(kink: tuple[Tensor, ...], s: Tensor, natural: tuple[Tensor, ...]
              ) -> KinkSlopes:
    """The slopes ``s`` at the entries of ``kink`` (in order), the natural slopes elsewhere:
    :func:`verify.engine.residual._scatter` with the boolean kink masks."""
    return _scatter(tuple(k.to(n.dtype) for k, n in zip(kink, natural, strict=True)),
                    natural, s)


def _size(kink: tuple[Tensor, ...]) -> int:
    return int(sum(int(m.sum()) for m in kink))


def candidate_band(beta: float) -> float:
    """|z| ≤ logit(1 − δ)/β: where sigmoid(βz) ∈ (δ, 1 − δ), δ = :data:`CANDIDATE`."""
    return math.log((1 - CANDIDATE) / CANDIDATE) / beta


def _internals(obj: Objective, params: Params) -> list[Tensor]:
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    return zs[:-1]


def _natural(obj: Objective, zs: list[Tensor]) -> tuple[Tensor, ...]:
    lo, _ = sigma_slope_range(obj.arch.activation)
    return tuple(torch.where(z > 0, torch.ones_like(z), torch.full_like(z, lo)) for z in zs)


def zero_units(obj: Objective, params: Params, band: float) -> Params:
    """``params`` with every relu unit that has no entry above ``band`` set to exactly 0
    (incoming row and outgoing column; module doc). Leaky relu units are left alone."""
    if obj.arch.activation != "relu" or obj.arch.bias or obj.arch.residual:
        return params
    out = [p.clone() for p in params]
    for k, z in enumerate(_internals(obj, params)):
        dead = (z <= band).all(dim=0)
        out[k][dead] = 0.0
        out[k + 1][:, dead] = 0.0
    return tuple(out)


def candidates(obj: Objective, params: Params, beta: float) -> tuple[Tensor, ...]:
    """The entries with sigmoid(βz) ∈ (δ, 1 − δ), outside zero units (all of whose entries
    are exactly 0 and none of whose slopes matters)."""
    band = candidate_band(beta)
    return tuple((z.abs() <= band) & (z != 0).any(dim=0, keepdim=True)
                 for z in _internals(obj, params))


def _system(obj: Objective, params: Params, kink: tuple[Tensor, ...]
            ) -> Callable[[Tensor], Tensor]:
    """x = (θ, s_K) ↦ (scaled ∇_θ F(θ; s), s_K − clip(s_K + z_K/ζ, a, 1)) (module doc);
    ζ is the layer's largest |z|."""
    P = sum(p.numel() for p in params)
    lo, hi = sigma_slope_range(obj.arch.activation)
    scale = _layer_scale(obj, params)
    zs = _internals(obj, params)
    natural = _natural(obj, zs)
    zscale = [float(z.abs().max()) or 1.0 for z in zs]

    def residual(x: Tensor) -> Tensor:
        th, s = unflat(x[:P], params), x[P:]
        sel = selection(kink, s, natural)
        g = torch.func.grad(lambda q: obj.value(unflat(q, params), sel))(x[:P])
        _, zz, _ = forward_internals(obj.arch, th, obj.data.X)
        zk = torch.cat([z[m] / sc for z, m, sc in zip(zz[:-1], kink, zscale, strict=True)])
        return torch.cat([g * scale, s - (s + zk).clamp(lo, hi)])

    return residual


def _lm_solver(residual: Callable[[Tensor], Tensor], x: Tensor, res: Tensor, dense: bool
               ) -> Callable[[float], Tensor]:
    """μ ↦ argmin_d ‖J d + r‖² + μ‖d‖² at x: the dense normal equations (J by reverse mode,
    formed once for every μ tried), or LSMR on J as an operator (J v by jvp, Jᵀ u by vjp)
    with damping √μ."""
    if dense:
        J = torch.func.jacrev(residual)(x)
        JtJ, Jtr = J.T @ J, J.T @ res
        eye = torch.eye(J.shape[1], dtype=J.dtype, device=J.device)
        return lambda mu: -torch.linalg.solve(JtJ + mu * eye, Jtr)
    pull = torch.func.vjp(residual, x)[1]

    def mv(v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.ravel(v), dtype=x.dtype, device=x.device)
        return torch.func.jvp(residual, (x,), (t,))[1].detach().cpu().numpy()

    def rmv(u: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.ravel(u), dtype=x.dtype, device=x.device)
        return pull(t)[0].detach().cpu().numpy()

    op = LinearOperator((res.numel(), x.numel()), matvec=mv, rmatvec=rmv, dtype=np.float64)
    rhs = -res.detach().cpu().numpy()

    def step(mu: float) -> Tensor:
        d = lsmr(op, rhs, damp=math.sqrt(mu), atol=1e-14, btol=1e-14, maxiter=LSMR_ITERS)[0]
        return torch.as_tensor(d, dtype=x.dtype, device=x.device)

    return step


def levenberg_marquardt(residual: Callable[[Tensor], Tensor], x: Tensor, iters: int,
                        deadline: float, dense: bool, tol: float) -> tuple[Tensor, float, int]:
    """Minimise ‖residual(x)‖ by Levenberg–Marquardt (μ ÷ 10 on success, × 10 on failure, at
    most 12 tries per iteration). Stops below ``tol`` at the first iteration that does not
    halve ‖r‖ (the rounding floor), after ``iters`` iterations, or
    after :data:`PATIENCE` successive iterations that each left more than half of ‖r‖ — no
    sign of the quadratic convergence a right kink set gives (a wrong one is dropped for
    the next β rather than ground down). Returns x, ‖residual(x)‖ and the iterations."""
    res = residual(x).detach()
    fx = float(res.norm())
    mu, done, slow = None, 0, 0
    # below tol, go on while the convergence is still quadratic (down to rounding: the
    # certificate's numbers are then those of the stationary point, not of the stop rule)
    while (done < iters and slow < (1 if fx <= tol else PATIENCE) and math.isfinite(fx)
           and fx > 0 and time.perf_counter() < deadline):
        done += 1
        if mu is None:  # the scale of JᵀJ along r: ‖Jᵀr‖/‖r‖ ≤ ‖J‖
            pull = torch.func.vjp(residual, x)[1]
            mu = 1e-8 * (float(pull(res)[0].norm()) / fx) ** 2 or 1e-300
        solve = _lm_solver(residual, x, res, dense)
        for _ in range(12):
            cand = x + solve(mu)
            rc = residual(cand).detach()
            fc = float(rc.norm())
            if math.isfinite(fc) and fc < fx:
                slow = slow + 1 if fc > 0.5 * fx else 0
                x, res, fx = cand.detach(), rc, fc
                mu = max(mu / 10, 1e-300)
                break
            mu *= 10
        else:
            break
    return x, fx, done


def _at_kink(obj: Objective, params: Params, fx: float) -> tuple[Tensor, ...]:
    """Entries with |z| ≤ ζ·max(2‖residual‖, d·ε): at their kink to the accuracy of the solve
    (a kinked entry's equation reads −z/ζ) or to the rounding of a length-d product; zero
    units (z = 0 on every sample) excluded."""
    eps = torch.finfo(params[0].dtype).eps
    out = []
    for k, z in enumerate(_internals(obj, params)):
        zeta = float(z.abs().max()) or 1.0
        out.append((z.abs() <= zeta * max(2 * fx, obj.arch.widths[k] * eps))
                   & (z != 0).any(dim=0, keepdim=True))
    return tuple(out)


def solve_on_kinks(obj: Objective, params: Params, kink: tuple[Tensor, ...], deadline: float,
                   tol: float, beta: float | None = None, rounds: int = ROUNDS,
                   iters: int = LM_ITERS) -> tuple[Params, KinkSlopes, int, str]:
    """The active-set solve of the module doc from ``params`` and the candidate kinks
    ``kink``, stopping at ‖residual‖ ≤ ``tol``. The slopes start at the smoothing's
    sigmoid(βz) (the natural slopes without ``beta``). Returns θ, the slope selection at the
    entries left at their kinks (clamped to [a, 1]), the LM iterations and a note."""
    lo, hi = sigma_slope_range(obj.arch.activation)
    zs = _internals(obj, params)
    start = (_natural(obj, zs) if beta is None
             else tuple(lo + (hi - lo) * torch.sigmoid(beta * z) for z in zs))
    s = torch.cat([v[m] for v, m in zip(start, kink, strict=True)])
    total, note, fx = 0, "no rounds", math.inf
    for r in range(1, rounds + 1):
        x = torch.cat([flat(params).detach(), s])
        dense = x.numel() <= DENSE_LIMIT
        x, fx, it = levenberg_marquardt(_system(obj, params, kink), x, iters, deadline,
                                        dense, tol)
        total += it
        P = x.numel() - s.numel()
        params, s = unflat(x[:P], params), x[P:]
        full = selection(kink, s, _natural(obj, _internals(obj, params))).values
        at = _at_kink(obj, params, fx)
        added = sum(int((a & ~k).sum()) for a, k in zip(at, kink, strict=True))
        note = (f"{r} round(s), {_size(kink)} candidates, ‖residual‖ = {fx:.1e} "
                f"({'dense' if dense else 'LSMR'})" + (f", {added} joined" if fx <= tol else ""))
        if not added or fx > tol or time.perf_counter() > deadline:
            break
        # entries that reached a kink off the candidates join them (slope: their side)
        kink = tuple(a | k for a, k in zip(at, kink, strict=True))
        s = torch.cat([v[m] for v, m in zip(full, kink, strict=True)])
    natural = _natural(obj, _internals(obj, params))
    full = selection(kink, s.clamp(lo, hi), natural).values
    at = tuple(a & k for a, k in zip(_at_kink(obj, params, fx), kink, strict=True))
    s_at = torch.cat([v[m] for v, m in zip(full, at, strict=True)])
    return params, selection(at, s_at, natural), total, note


def continuation(obj: Objective, params: Params, target: float, deadline: float,
                 betas: tuple[float, ...] = BETAS, iters_per_stage: int = 3000) -> KinkStage:
    """The kink stage (module doc): smoothing at β = 10, 100, …, and from β ≥
    :data:`SOLVE_FROM` the active-set solve from each smoothed minimiser.

    Returns the point with the smallest Clarke residual seen (with ``params`` itself, by its
    plain gradient, as the one to beat) as a :class:`~verify.engine.result.KinkStage`:
    CONVERGED when that residual is at most ``target``, ITERATIONS when every β was tried.
    β, the band and the selection are None when nothing beat ``params``.
    """
    Best = tuple[float, Params, float | None, KinkSlopes | None, float | None, str]
    best: Best = (max(stationarity(obj, params).r), params, None, None, None, "")
    p, total = params, 0
    for beta in betas:
        smooth = obj.smoothed(beta)
        lb = lbfgs_polish(smooth, p, iters_per_stage, 0.0, deadline, [])
        nw = newton_polish(smooth, lb.params, 1e-13, deadline, max_iter=SMOOTH_NEWTON)
        p = nw.params
        total += lb.iters + nw.iters
        tried = [(p, smoothing_slopes(obj, p, beta), BAND / beta, "the smoothed minimiser")]
        if beta >= SOLVE_FROM and time.perf_counter() < deadline:
            q = zero_units(obj, p, candidate_band(beta))
            q, sel, it, solved = solve_on_kinks(obj, q, candidates(obj, q, beta), deadline,
                                                 0.1 * target, beta)
            total += it
            tried.append((q, sel, kink_width(obj, q, sel), f"active-set solve: {solved}"))
        for q, sel, band, how in tried:
            r = max(stationarity(obj, q, sel, "clarke").r)
            if r < best[0]:
                best = (r, q, beta, sel, band, how)
        if best[0] <= target or time.perf_counter() > deadline:
            break
    r, q, best_beta, best_sel, best_band, how = best
    where = ("no stage improved" if best_beta is None
             else f"best at β = {best_beta:.0e}, {how}")
    status = (TrainStatus.CONVERGED if r <= target
              else TrainStatus.TIME_LIMIT if time.perf_counter() > deadline
              else TrainStatus.ITERATIONS)
    note = f"kink stage: r = {r:.2e} ({where})"
    return KinkStage(q, total, note, status, best_beta, best_sel, best_band)


def kink_width(obj: Objective, params: Params, sel: KinkSlopes) -> float:
    """The largest |z| among the entries ``sel`` treats as kinked (0 when there are none):
    the band |z| ≤ width that the certificate and the revival test take as kinks."""
    return max((float(z[m > 0].abs().max()) for z, m in zip(_internals(obj, params),
                                                            sel.masks, strict=True)
                if bool(m.any())), default=0.0)
