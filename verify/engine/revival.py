"""Inactive ReLU units and the second-order test along their revival (issue 11).

A hidden unit j of layer l is *inactive* when it is off or at its kink on every sample:
z_{l,ij} ≤ band for all i (relu; for leaky relu, |z_{l,ij}| ≤ band: a zero unit). Reviving it
from the zero unit along ε(v, b) — incoming weights εv, outgoing weights εb — changes F by

    F(θ + ε(v, b)) − F(θ) = ε² [ (λ/2)(‖v‖² + ‖b‖²) − bᵀc(v) ] + o(ε²),
    c(v) = (1/n) Σ_{i∈K_j} e_i σ(v·h_{l−1,i}),

with e_i = −n ∂L̂/∂z_{l+1,i} the error arriving at the layer above (for a two-layer net the
output error −∂ℓ/∂f(x_i)) and K_j the samples where the unit sits at its kink (all of them for
a zero unit; off samples stay off for small ε). Since bᵀc(v) ≤ ‖b‖‖v‖‖c(v/‖v‖)‖ ≤
½(‖v‖² + ‖b‖²)‖c(v/‖v‖)‖, the second derivative of F along a unit direction (v, b) is at
least λ − max_{‖v‖=1}‖c(v)‖, attained at ‖v‖ = ‖b‖ and b ∥ c(v): the unit can be revived
with descent iff max_{‖v‖=1} ‖c(v)‖ > λ. Autograd's relu′(0) = 0 sees none of this: at θ = 0
of a two-layer ReLU net its Hessian is λI, while the true second-order value is λ − max‖c‖.

What is tested:

* two-layer nets: exactly the criterion above (the layer above is the output);
* deeper nets: every hidden layer, with e_i back-propagated through the layers above by the
  certificate's slope selection — exact where those layers have no kinked entries, one
  selection of the generalised Jacobian otherwise (``exact`` says which). At θ = 0 of a net
  of depth ≥ 3 every c(v) is 0: θ = 0 is then a strict local minimum to second order;
* the maximum over v is searched (multistart projected ascent from the data directions
  ±h_i/‖h_i‖, the leading right singular vectors of the layer's linear map, and seeded random
  directions): the value found is a lower bound, so a refusal is sound (the direction is
  reported) while a pass means no revival was found by the search;
* biases, residual blocks and conv nets are not tested (not homogeneous / no kinks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from verify.engine.residual import layer_errors
from verify.nets.activations import LEAKY_SLOPE, KinkSlopes, Params
from verify.nets.dense import Architecture, forward_internals
from verify.nets.objective import Objective

STARTS = 64  # seeded random starts, besides the data and singular directions
ITERATIONS = 200


@dataclass(frozen=True)
class Revival:
    """The revival test of the inactive units of one hidden layer (module doc)."""

    layer: int  # hidden layer l, 1-based
    units: tuple[int, ...]  # inactive units tested (0-based indices)
    max_c: float  # the largest ‖c(v)‖ found
    direction: tuple[float, ...]  # the unit v attaining it
    outgoing: tuple[float, ...]  # b = c(v)/‖c(v)‖ (the revival is ε(v, b·‖c‖/λ) up to scale)
    second_order: float  # the second derivative of F along the unit revival (v, b)/√2
    starts: int
    # True: no kinked entries above, second_order = λ − max‖c‖ (the criterion is exact up to
    # the search); False: c(v) used one slope selection above, second_order is the one-sided
    # value along the direction found (:func:`directional_second_order`)
    exact: bool


def testable(obj: Objective) -> bool:
    """Dense, bias-free, non-residual nets with a kinked, positively homogeneous σ."""
    a = obj.arch
    return (isinstance(a, Architecture) and a.kinked and not a.bias and not a.residual
            and a.depth >= 2)


def _sigma(t: Tensor, slope: float) -> Tensor:
    return torch.where(t > 0, t, slope * t)


def _dsigma(t: Tensor, slope: float) -> Tensor:
    return torch.where(t > 0, torch.ones_like(t), torch.full_like(t, slope))


def max_revival(H: Tensor, E: Tensor, slope: float = 0.0, starts: int = STARTS,
                iterations: int = ITERATIONS, seed: int = 0) -> tuple[float, Tensor, int]:
    """max over unit v of ‖Σ_i E_i σ(v·H_i)‖ by multistart projected ascent.

    ``H`` (m × d): the inputs of the unit on its kinked samples; ``E`` (m × d_out): the
    errors they meet above (−∂L̂/∂z_{l+1}, so the 1/n is included). Within an activation
    pattern S, c(v) = C_S v and the step v ← C_Sᵀc(v)/‖·‖ is a power iteration on C_SᵀC_S,
    which never decreases ‖c‖; a step that leaves the pattern is kept only if ‖c‖ grows.
    Returns (max‖c‖, its v, number of starts).
    """
    d = H.shape[1]
    gen = torch.Generator().manual_seed(seed)
    norms = torch.linalg.norm(H, dim=1, keepdim=True)
    data = H[norms.squeeze(1) > 0] / norms[norms.squeeze(1) > 0]
    lin = E.T @ H  # the linear map of the all-active pattern
    _, _, Vh = torch.linalg.svd(lin, full_matrices=False)
    rnd = torch.randn(starts, d, generator=gen, dtype=H.dtype).to(H.device)
    V = torch.cat([data, -data, Vh, -Vh, rnd])
    V = V / torch.linalg.norm(V, dim=1, keepdim=True).clamp_min(1e-300)

    def value(V: Tensor) -> Tensor:
        return torch.linalg.norm(_sigma(V @ H.T, slope) @ E, dim=1)

    best = value(V)
    steps = [math.inf] + [2.0**-k for k in range(0, 40, 2)]
    for _ in range(iterations):
        Zv = V @ H.T
        C = _sigma(Zv, slope) @ E
        G = (_dsigma(Zv, slope) * (C @ E.T)) @ H
        tangent = G - (G * V).sum(1, keepdim=True) * V
        # the power step (t = ∞) and projected-gradient steps of shrinking length: the best
        # that improves is taken (a maximum on the boundary of two patterns needs the short)
        scale = best.clamp_min(1e-300).unsqueeze(1)
        improved = torch.zeros_like(best, dtype=torch.bool)
        for t in steps:
            cand = G if t == math.inf else V + t * tangent / scale
            cn = torch.linalg.norm(cand, dim=1, keepdim=True)
            cand = torch.where(cn > 0, cand / cn.clamp_min(1e-300), V)
            val = value(cand)
            better = val > best * (1 + 1e-15)
            V = torch.where(better.unsqueeze(1), cand, V)
            best = torch.where(better, val, best)
            improved |= better
        if not bool(improved.any()):
            break
    i = int(torch.argmax(best))
    return float(best[i]), V[i], V.shape[0]


def kink_band(obj: Objective, params: Params, band: float | None,
              slopes: KinkSlopes | None) -> float:
    """|z| ≤ band counts as a kink: the band training used, widened to every entry the
    certificate's slope selection treats as kinked (default 1e-9 of the largest |z|)."""
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    top = max(float(z.abs().max()) for z in zs[:-1])
    out = band if band is not None else 1e-9 * top
    if slopes is not None:
        for z, m in zip(zs[:-1], slopes.masks, strict=True):
            if bool(m.any()):
                out = max(out, float(z[m > 0].abs().max()))
    return out


def directional_second_order(obj: Objective, params: Params, layer: int, kinked: Tensor,
                             v: Tensor, b: Tensor, band: float) -> float:
    """The exact second derivative of F along the unit direction (v, b)/√2 that revives a
    zero unit of hidden ``layer`` on its kinked samples ``kinked`` (a bool mask over samples).

    The revival perturbs z_{l+1} by ε²·b σ(v·h_{l−1,i}); above it the perturbation meets each
    entry at its slope, except at kinked entries (|z| ≤ band), where it meets σ itself
    (relu′(0; Δ) = relu(Δ)): the one-sided derivative, not one slope selection. The result is
    λ + ⟨∂L̂/∂f, Φ(bσ(v·h))⟩ with Φ that piecewise-linear map; for a two-layer net it is
    λ − bᵀc(v).
    """
    slope = LEAKY_SLOPE if obj.arch.activation == "leaky_relu" else 0.0
    with torch.no_grad():
        _, zs, hs = forward_internals(obj.arch, params, obj.data.X)
    out_err = layer_errors(obj, params)[-1][0]  # ∂L̂/∂f (n × d_L), no kinks at the output
    u = v / torch.linalg.norm(v)
    w = b / torch.linalg.norm(b)
    dh = _sigma(hs[layer - 1] @ u, slope) * kinked.to(u.dtype)
    dz = dh.unsqueeze(1) * w.unsqueeze(0)  # Δz_{l+1}, n × d_{l+1}
    for k in range(layer, obj.arch.depth - 1):
        z = zs[k]
        at = z.abs() <= band
        dh_k = torch.where(at, _sigma(dz, slope), _dsigma(z, slope) * dz)
        dz = dh_k @ params[k + 1].T
    return obj.lam + float((out_err * dz).sum())


def revival_tests(obj: Objective, params: Params, band: float | None = None,
                  slopes: KinkSlopes | None = None, seed: int = 0) -> tuple[Revival, ...]:
    """One :class:`Revival` per hidden layer that has inactive units (none for nets that are
    not :func:`testable`)."""
    if not testable(obj):
        return ()
    slope = LEAKY_SLOPE if obj.arch.activation == "leaky_relu" else 0.0
    band = kink_band(obj, params, band, slopes)
    with torch.no_grad():
        _, zs, hs = forward_internals(obj.arch, params, obj.data.X)
    terms = layer_errors(obj, params, slopes)
    out = []
    for l in range(1, obj.arch.depth):  # hidden layer l has pre-activation zs[l − 1]
        z = zs[l - 1]
        kinked = z.abs() <= band
        off = (z <= band) if slope == 0.0 else kinked
        units = [j for j in range(z.shape[1]) if bool(off[:, j].all())]
        if not units:
            continue
        # units sharing their kinked samples share c(v): test each sample set once
        E_all, H_all = -terms[l][0], hs[l - 1]
        exact = all(not bool((zz.abs() <= band).any()) for zz in zs[l:-1])
        worst: tuple[float, float, Tensor, Tensor, int] | None = None
        for K in {tuple(kinked[:, j].tolist()) for j in units}:
            idx = torch.tensor(K, dtype=torch.bool, device=z.device)
            if not bool(idx.any()):
                continue  # off on every sample with a margin: not revivable locally
            m, v, starts = max_revival(H_all[idx], E_all[idx], slope, seed=seed + l)
            c = _sigma(H_all[idx] @ v, slope) @ E_all[idx]
            if float(torch.linalg.norm(c)) == 0.0:
                c = E_all[idx].sum(0) + 1.0  # no error to follow: any outgoing direction
            b = c / float(torch.linalg.norm(c))
            # the one-sided value along this direction: exact also through kinks above
            s2 = obj.lam - m if exact else directional_second_order(
                obj, params, l, idx, v, b, band)
            if worst is None or s2 < worst[0]:
                worst = (s2, m, v, b, starts)
        s2, m, v, b, starts = worst if worst is not None else (
            obj.lam, 0.0, torch.zeros(H_all.shape[1]), torch.zeros(E_all.shape[1]), 0)
        out.append(Revival(l, tuple(units), m, tuple(v.tolist()), tuple(b.tolist()),
                           s2, starts, exact))
    return tuple(out)


def revive(obj: Objective, params: Params, test: Revival, tries: int = 40) -> Params | None:
    """θ + ε(v, b) along the revival ``test`` found — incoming row of one inactive unit
    += εv, outgoing column += εb — with ε the one of ε₀·2^{−k} (k < ``tries``, scanned from
    the top until F stops falling) with the lowest F; ε₀ is the RMS row norm of the layer.
    F changes by ε²·``second_order`` + O(ε³), so a negative value guarantees some ε works.
    None when none does (rounding)."""
    layer = test.layer
    W_in, W_out = params[layer - 1], params[layer]
    # prefer a zero unit (revival from 0 exactly as the test assumed)
    zero = [j for j in test.units if not bool(W_in[j].any()) and not bool(W_out[:, j].any())]
    j = (zero or list(test.units))[0]
    v = torch.tensor(test.direction, dtype=W_in.dtype, device=W_in.device)
    b = torch.tensor(test.outgoing, dtype=W_out.dtype, device=W_out.device)
    eps0 = float(torch.linalg.norm(W_in)) / math.sqrt(W_in.shape[0]) or 1.0
    best, out = float(obj.value(params)), None
    for k in range(tries):
        eps = eps0 * 2.0**-k
        new = [p.clone() for p in params]
        new[layer - 1][j] += eps * v
        new[layer][:, j] += eps * b
        F = float(obj.value(tuple(new)))
        if F < best:
            best, out = F, tuple(new)
        elif out is not None:
            break  # past the best ε on the grid
    return out
