"""The kink stage (verify.engine.kinks) and the escape along revivals (verify.engine.revival,
verify.engine.train): each part against a brute-force twin or a false variant that must
fail."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor

import verify.engine.kinks as K
from verify.engine.certificate import certify
from verify.engine.residual import stationarity
from verify.engine.result import TrainConfig, TrainResult
from verify.engine.revival import Revival, revival_tests, revive
from verify.engine.train import train
from verify.nets import data as D
from verify.nets.activations import Params
from verify.nets.dense import Architecture, forward_internals
from verify.nets.network import init_params
from verify.nets.objective import Objective, flat, unflat

FAR = 3600.0  # the safety net, never reached here: every loop stops on its iteration count


def _trained(widths: tuple[int, ...], seed: int) -> tuple[Objective, TrainResult]:
    arch = Architecture(widths, "relu")
    obj = Objective(arch, D.clusters(24, widths[0], widths[-1], seed), 1e-2)
    return obj, train(obj, init_params(arch, seed + 7919), TrainConfig(max_seconds=FAR))


def _live(obj: Objective, params: Params) -> tuple[Tensor, ...]:
    """Every entry of every unit that is not a zero unit: candidates far beyond any kink."""
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    return tuple(torch.ones_like(z, dtype=torch.bool) & (z != 0).any(dim=0, keepdim=True)
                 for z in zs[:-1])


def test_the_route_certifies_a_small_relu_net_at_its_kinks() -> None:
    obj, res = _trained((4, 6, 2), 0)
    cert, st = certify(obj, res, 1e-6)
    assert cert.certified, cert.reason
    assert "kink stage" in res.stop_reason and res.slopes is not None
    assert st.kind == "clarke" and cert.max_residual <= 1e-10
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, res.params, obj.data.X)
    for z, m, v in zip(zs[:-1], res.slopes.masks, res.slopes.values, strict=True):
        # the selection's kinks are inside the band it reports, its slopes inside [0, 1]
        if bool(m.any()):
            assert float(z[m > 0].abs().max()) <= res.kink_band
        assert bool(((v[m > 0] >= 0) & (v[m > 0] <= 1)).all())


REAL_SYSTEM = K._system


def _equality_system(obj: Objective, params: Params, kink: tuple[Tensor, ...]
                     ) -> Callable[[Tensor], Tensor]:
    """The false variant: every candidate forced onto its kink (z_K = 0), no saturation."""
    P = sum(p.numel() for p in params)
    inner = REAL_SYSTEM(obj, params, kink)
    with torch.no_grad():
        _, zs, _ = forward_internals(obj.arch, params, obj.data.X)
    scale = [float(z.abs().max()) or 1.0 for z in zs[:-1]]

    def residual(x: Tensor) -> Tensor:
        _, zz, _ = forward_internals(obj.arch, unflat(x[:P], params), obj.data.X)
        zk = [z[m] / s for z, m, s in zip(zz[:-1], kink, scale, strict=True)]
        return torch.cat([inner(x)[:P], *zk])

    return residual


@pytest.mark.parametrize("system", ["complementarity", "equality (false variant)"])
def test_candidates_off_their_kink_saturate_instead_of_being_forced_onto_it(
        system: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every entry of every live unit given as a candidate kink: the complementarity form
    s − clip(s + z/ζ, 0, 1) = 0 lets the entries that are not at a kink take slope 0 or 1
    and still reaches a Clarke point; forcing them all to z = 0 cannot."""
    obj, res = _trained((4, 6, 2), 0)
    params = res.params
    if system != "complementarity":
        monkeypatch.setattr(K, "_system", _equality_system)
    cands = _live(obj, params)
    assert K._size(cands) > sum(p.numel() for p in params) // 4  # far more than kinks
    q, sel, _, note = K.solve_on_kinks(obj, params, cands, time.perf_counter() + FAR, 1e-12)
    r = max(stationarity(obj, q, sel, "clarke").r)
    if system == "complementarity":
        assert r <= 1e-10, note
    else:
        assert r > 1e-3, note


def _lm_problem() -> tuple[Callable[[Tensor], Tensor], Tensor]:
    obj, res = _trained((3, 4, 2), 1)
    params = res.params
    cands = K.candidates(obj, params, 1e2)
    s = torch.full((K._size(cands),), 0.5, dtype=torch.float64)
    return K._system(obj, params, cands), torch.cat([flat(params), s])


@pytest.mark.parametrize("variant", ["exact", "wrong transpose (false variant)"])
def test_matrix_free_lm_step_equals_the_dense_one(variant: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """LSMR on J as jvp/vjp (the path above DENSE_LIMIT) against the dense normal equations
    on the same damped problem. LSMR stops at ‖Aᵀr‖ ≤ atol‖A‖‖r‖ (atol = 1e-14), so the steps
    agree to cond(A)·1e-14 relative, A = [J; √μ I] (Golub–Van Loan, perturbation of least
    squares); the false variant hands LSMR −Jᵀ as the transpose."""
    residual, x = _lm_problem()
    res = residual(x).detach()
    J = torch.func.jacrev(residual)(x)
    mu = 1e-6 * float(torch.linalg.matrix_norm(J, 2)) ** 2
    dense = K._lm_solver(residual, x, res, dense=True)(mu)
    if variant != "exact":
        real_vjp = torch.func.vjp

        def negated(f: Callable[[Tensor], Tensor], *a: Tensor) -> tuple[Tensor, Callable]:
            out, pull = real_vjp(f, *a)
            return out, lambda u: tuple(-t for t in pull(u))

        monkeypatch.setattr(K.torch.func, "vjp", negated)
    free = K._lm_solver(residual, x, res, dense=False)(mu)
    A = torch.cat([J, math.sqrt(mu) * torch.eye(J.shape[1], dtype=J.dtype)])
    sv = torch.linalg.svdvals(A)
    tol = float(sv[0] / sv[-1]) * 2e-14 * float(dense.norm())
    err = float((free - dense).norm())
    if variant == "exact":
        assert err <= tol, (err, tol)
    else:
        assert err > 1e3 * tol, (err, tol)


def test_zero_units_are_exactly_the_units_without_a_positive_entry() -> None:
    """A relu unit with no entry above the band loses its incoming row and outgoing column
    (exactly 0); every other parameter is untouched, bit for bit; leaky relu is left alone."""
    arch = Architecture((3, 4, 2), "relu")
    p = list(init_params(arch, 3))
    X = D.clusters(12, 3, 2, 0).X
    p[0][1] = -p[0][1].abs()
    X = X.abs()  # unit 1 is negative on every sample; the others are not
    obj = Objective(arch, D.Dataset(X, torch.zeros(12, 2, dtype=X.dtype), "squared", "x"),
                    1e-2)
    with torch.no_grad():
        _, zs, _ = forward_internals(arch, tuple(p), X)
    dead = (zs[0] <= 0).all(dim=0)
    assert bool(dead[1]) and not bool(dead.all())  # both kinds of unit are present
    q = K.zero_units(obj, tuple(p), 0.0)
    for j in range(4):
        if bool(dead[j]):
            assert not q[0][j].any() and not q[1][:, j].any()
        else:
            assert torch.equal(q[0][j], p[0][j]) and torch.equal(q[1][:, j], p[1][:, j])
    leaky = Objective(Architecture((3, 4, 2), "leaky_relu"), obj.data, 1e-2)
    assert all(torch.equal(a, b) for a, b in zip(K.zero_units(leaky, tuple(p), 0.0), p,
                                                   strict=True))


def _saddle() -> tuple[Objective, Params, Revival]:
    """A certified-to-first-order two-layer ReLU point (clusters, seed 4) whose revival
    test finds an inactive unit to revive with descent (λ − max‖c‖ < 0)."""
    obj, res = _trained((4, 6, 2), 4)
    worst = min(revival_tests(obj, res.params, res.kink_band, res.slopes),
                key=lambda v: v.second_order)
    assert worst.second_order < 0 and worst.exact
    return obj, res.params, worst


@pytest.mark.parametrize("outgoing", ["b", "−b (false variant)"])
def test_revive_lowers_F_along_the_revival_and_not_against_it(outgoing: str) -> None:
    """θ + ε(v, b) lowers F by about ε²(λ − ‖c(v)‖) < 0; along (v, −b) the quadratic term is
    λ + ‖c(v)‖ > 0 and no ε of the grid lowers F."""
    obj, params, worst = _saddle()
    if outgoing != "b":
        worst = Revival(worst.layer, worst.units, worst.max_c, worst.direction,
                        tuple(-t for t in worst.outgoing), worst.second_order, worst.starts,
                        worst.exact)
    moved = revive(obj, params, worst)
    if outgoing == "b":
        assert moved is not None
        assert float(obj.value(moved)) < float(obj.value(params))
        changed = [j for j in range(params[0].shape[0])
                   if not torch.equal(moved[0][j], params[0][j])]
        assert len(changed) == 1 and changed[0] in worst.units  # one inactive unit revived
    else:
        assert moved is None


def test_lm_stops_on_its_iteration_count_not_the_clock() -> None:
    """Same input, same output: the budget is in iterations (the deadline is far)."""
    residual, x = _lm_problem()
    a = K.levenberg_marquardt(residual, x, 3, time.perf_counter() + FAR, True, 0.0)
    b = K.levenberg_marquardt(residual, x, 3, time.perf_counter() + FAR, True, 0.0)
    assert a[2] == b[2] <= 3 and np.array_equal(a[0].numpy(), b[0].numpy())
