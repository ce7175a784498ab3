"""Brute-force twins of the matrix-free tangent Hessian eigenvalue (issue 13, item 2).

Above :data:`verify.engine.certificate.EXACT_HESSIAN_LIMIT` a kinked net's curvature test is
the smallest eigenvalue of P H P + c (I − P) by Lanczos, P the projector onto ker J_z applied
by LSQR. On small ReLU nets with exact kinks (integer data, first-layer rows orthogonal to
data points), forced onto that route by a zero limit, it must equal the dense tangent value
λ_min(Zᵀ H Z) within

    tol = LANCZOS_TOL·‖H‖ + (2‖H‖ + c)·‖P̃ − P‖,   ‖P̃ − P‖ ≤ PROJECTION_TOL·κ(J_z),

Weyl's bound for the perturbed operator (‖P̃ H P̃ − P H P‖ ≤ 2‖H‖‖P̃ − P‖, c‖P̃ − P‖ for the
shift; c = 2‖H‖), with LSQR's stopping test ‖J_z P̃v‖ ≤ PROJECTION_TOL·‖J_z‖‖P̃v‖ giving at
most PROJECTION_TOL·κ(J_z) of range J_zᵀ in P̃v, and ARPACK's Ritz value accurate to
LANCZOS_TOL relative to the operator's scale. Dropping the projection (the mutant) gives
λ_min(H), below the tangent value by more than tol on these cases.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import verify.engine.certificate as C
from verify.engine.residual import _scatter, natural_slopes
from verify.nets import data as D
from verify.nets.activations import KinkSlopes
from verify.nets.dense import Architecture, forward_internals
from verify.nets.objective import Objective, flat, unflat

F64 = torch.float64


def _kinked_net(d: int, h: int, o: int, n: int, seed: int
                ) -> tuple[Objective, tuple[torch.Tensor, ...], KinkSlopes]:
    """A one-hidden-layer ReLU net whose first h/2 units each have an exact zero z_ij = 0 (the
    row made orthogonal to a data point in integer arithmetic), with slopes 0.2…0.8 there."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(-3, 4, (n, d), generator=g).to(F64)
    X[:, 0] = 1.0
    W1 = torch.randint(-3, 4, (h, d), generator=g).to(F64)
    for u in range(h // 2):
        W1[u, 0] = 0.0
        W1[u, 0] = -(W1[u] @ X[u % n])
    W2 = torch.randn(o, h, generator=g, dtype=F64)
    Y = torch.randn(n, o, generator=g, dtype=F64)
    obj = Objective(Architecture((d, h, o), "relu"), D.Dataset(X, Y, "squared", "kinked"), 0.05)
    params = (W1 / 2, W2)
    masks = (((X @ params[0].T) == 0).to(F64),)
    K = int(masks[0].sum())
    return obj, params, _scatter(masks, natural_slopes(obj, params),
                                 torch.linspace(0.2, 0.8, K, dtype=F64))


def _dense_parts(obj: Objective, params: tuple[torch.Tensor, ...], slopes: KinkSlopes
                 ) -> tuple[float, float, float]:
    """‖H‖₂, κ(J_z) on its range (the dense route's rank cutoff) and λ_min(H)."""
    theta = flat(params)

    def zk(v: torch.Tensor) -> torch.Tensor:
        _, zs, _ = forward_internals(obj.arch, unflat(v, params), obj.data.X)
        return torch.cat([z.reshape(-1)[m.reshape(-1) > 0]
                          for z, m in zip(zs[:-1], slopes.masks, strict=True)])

    sv = torch.linalg.svdvals(torch.func.jacrev(zk)(theta))
    kept = sv[sv > 1e-9 * sv[0]]
    H = torch.func.hessian(lambda v: obj.value(unflat(v, params), slopes))(theta)
    ev = torch.linalg.eigvalsh(0.5 * (H + H.T))
    return float(ev.abs().max()), float(kept[0] / kept[-1]), float(ev[0])


def _tolerance(norm_h: float, kappa: float) -> float:
    return C.LANCZOS_TOL * norm_h + 4 * norm_h * C.PROJECTION_TOL * kappa


CASES = [(4, 16, 3, 10, 0), (5, 24, 4, 12, 1), (6, 32, 4, 14, 2)]  # P = 112, 216, 320


@pytest.mark.parametrize(("d", "h", "o", "n", "seed"), CASES)
def test_tangent_lanczos_matches_the_dense_tangent_value(
        monkeypatch: pytest.MonkeyPatch, d: int, h: int, o: int, n: int, seed: int) -> None:
    obj, params, slopes = _kinked_net(d, h, o, n, seed)
    dense, how = C.min_hessian_eigenvalue(obj, params, slopes)
    assert how.startswith("tangent (") and dense is not None
    norm_h, kappa, lowest = _dense_parts(obj, params, slopes)
    tol = _tolerance(norm_h, kappa)
    monkeypatch.setattr(C, "EXACT_HESSIAN_LIMIT", 0)
    free, how_free = C.min_hessian_eigenvalue(obj, params, slopes)
    assert how_free.startswith("tangent-lanczos (") and free is not None, how_free
    assert abs(free - dense) <= tol, (free, dense, tol)
    # the mutant: no projection, so Lanczos sees all of θ and returns λ_min(H)
    assert dense - lowest > tol  # these cases are ones where the projection matters
    monkeypatch.setattr(C, "_kernel_projector", lambda zk, theta: np.ravel)
    mutant, _ = C.min_hessian_eigenvalue(obj, params, slopes)
    assert mutant is not None and abs(mutant - dense) > tol, (mutant, dense, tol)


def test_a_capped_projection_is_skipped_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """An LSQR solve stopped by its cap leaves a projector that is neither linear nor
    symmetric: the route says so instead of returning Lanczos on it."""
    obj, params, slopes = _kinked_net(*CASES[0])
    dense, _ = C.min_hessian_eigenvalue(obj, params, slopes)
    monkeypatch.setattr(C, "EXACT_HESSIAN_LIMIT", 0)
    monkeypatch.setattr(C, "PROJECTION_MAX_ITER", 1)
    monkeypatch.setattr(C, "DENSE_TANGENT_FALLBACK", 0)
    eig, how = C.min_hessian_eigenvalue(obj, params, slopes)
    assert eig is None and how.startswith("skipped: the projection onto the tangent space")
    # where the dense route is still affordable, it answers instead (the same number)
    monkeypatch.setattr(C, "DENSE_TANGENT_FALLBACK", 10_000)
    eig, how = C.min_hessian_eigenvalue(obj, params, slopes)
    assert eig == dense and how == ("tangent (97 of 112 directions, dense: the Krylov "
                                    "projection did not converge)")


def test_a_vertex_is_skipped() -> None:
    """z_K = θ: J_z = I, ker J_z = {0}, every direction is fixed by a kink."""
    theta = torch.linspace(-1.0, 1.0, 30, dtype=F64)
    gradF = torch.func.grad(lambda v: (v**4).sum() - (v**2).sum())
    eig, how = C._tangent_lanczos(gradF, lambda v: v, theta)
    assert eig is None and how == "skipped: the kinks fix every direction (a vertex)"
    # the same function with one free direction (z_K = θ without its last entry)
    eig, how = C._tangent_lanczos(gradF, lambda v: v[:-1], theta)
    assert how.startswith("tangent-lanczos (ker of 29 kink constraints in 30 directions")
    assert eig == pytest.approx(12 * 1.0**2 - 2, rel=10 * C.LANCZOS_TOL)


@pytest.mark.parametrize("method", ["tangent (7 of 9 directions)",
                                    "tangent-lanczos (ker of 2 kink constraints in 9 directions)"])
def test_the_certificate_names_the_tangent_route_it_used(method: str) -> None:
    """Both tangent routes read as "the tangent space of the kink manifold", followed by the
    dense route's count or the Lanczos route's name (never a stray prefix)."""
    est = C._established(1e-12, "clarke", 3, 1e-6, 0.01, method, (), False)
    rest = method.removeprefix("tangent").lstrip(" -")
    assert est.second_order == f"the tangent space of the kink manifold {rest}"
    assert "-lanczos" not in est.second_order and "  " not in est.second_order
