"""Brute-force oracles on tiny nets (issue 11, item 6).

* The Clarke residual: enumerate the slopes at the K ≤ 3 kinks (the vertices of [0, 1]^K
  and a fine grid) and compare with the bounded least-squares solver of
  :func:`verify.engine.residual.clarke_residual`.
* Saddles: search for descent directions at a set of points (random directions in all of θ
  and a grid over every unit's own weights, several step lengths). A decrease beyond what a
  certificate allows (first order: ε‖∇F‖ of its slope selection; second order: ε²κ/2) is a
  descent; the certificate must refuse every point where the search finds one, and certify
  some points where it finds none (so the test is not vacuous).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import pytest
import torch

import verify.engine.certificate as C
from tests.engine.test_revival import dead_unit_saddle
from verify.engine.residual import _scatter, clarke_residual, natural_slopes, stationarity
from verify.engine.result import TrainConfig
from verify.engine.train import train
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective, flat, unflat
from verify.tolerances import gamma

F64 = torch.float64

# integer data and first-layer rows with exact zeros z_ij = x_i·w_j = 0 (one kink each)
X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [1.0, 3.0]], dtype=F64)
ROWS = {"kink at x₃": [1.0, -1.0], "kink at x₁": [0.0, 1.0], "kink at x₄": [1.0, 2.0],
        "no kink": [1.0, 1.0]}


def _kinked(K: int, act: str, seed: int) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    kinks = [ROWS["kink at x₃"], ROWS["kink at x₁"], ROWS["kink at x₄"]]
    rows = [*kinks[:K], ROWS["no kink"]]
    W1 = torch.tensor(rows, dtype=F64)
    gen = torch.Generator().manual_seed(seed)
    W2 = torch.randn(2, len(rows), generator=gen, dtype=F64)
    Y = torch.randn(X.shape[0], 2, generator=gen, dtype=F64)
    obj = Objective(Architecture((2, len(rows), 2), act), D.Dataset(X, Y, "squared", "kinked"),
                    0.1)
    return obj, (W1, W2)


def _sum_sq(obj: Objective, params: tuple[torch.Tensor, ...], masks, s: torch.Tensor) -> float:
    st = stationarity(obj, params, _scatter(masks, natural_slopes(obj, params), s), "clarke")
    return sum(r * r for r in st.r)


@pytest.mark.parametrize(("K", "act", "seed"), [(1, "relu", 0), (2, "relu", 1), (3, "relu", 2),
                                                (3, "relu", 3), (2, "leaky_relu", 4),
                                                (3, "leaky_relu", 5)])
def test_clarke_residual_matches_the_enumeration_of_slopes(K: int, act: str, seed: int) -> None:
    obj, params = _kinked(K, act, seed)
    slopes, found, _ = clarke_residual(obj, params, band=0.0)
    assert found == K and slopes is not None
    lo = 0.0 if act == "relu" else 0.1
    masks = slopes.masks
    chosen = torch.cat([v[m > 0] for v, m in zip(slopes.values, masks, strict=True)])
    assert bool(((chosen >= lo) & (chosen <= 1.0)).all())
    solver = _sum_sq(obj, params, masks, chosen)
    # vertices and a grid of [lo, 1]^K (41 points a side for K ≤ 2, 17 for K = 3)
    side = torch.linspace(lo, 1.0, 41 if K <= 2 else 17, dtype=F64)
    grid = min(_sum_sq(obj, params, masks, torch.stack(p))
               for p in itertools.product(side, repeat=K))
    vertices = min(_sum_sq(obj, params, masks, torch.tensor(p, dtype=F64))
                   for p in itertools.product((lo, 1.0), repeat=K))
    assert grid <= vertices
    # Σr² is a convex quadratic in the slopes here (kinks in one layer): the solver's value
    # is the minimum, so no grid point may beat it beyond the rounding of Σr²
    assert solver <= grid * (1 + gamma(64 * X.numel())) + 1e-300
    plain = _sum_sq(obj, params, masks, torch.cat([n[m > 0] for n, m in zip(
        natural_slopes(obj, params), masks, strict=True)]))
    assert solver <= plain


def _unit_grid(d: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """Unit vectors of dimension d: the coordinate directions (both signs) and a seeded
    cloud, enough to cover a sphere of dimension ≤ 4 at this count."""
    eye = torch.eye(d, dtype=F64)
    cloud = torch.randn(count, d, generator=gen, dtype=F64)
    V = torch.cat([eye, -eye, cloud])
    return V / torch.linalg.norm(V, dim=1, keepdim=True)


def descent(obj: Objective, params: tuple[torch.Tensor, ...], cert: C.Certificate,
            seed: int = 0) -> float:
    """The largest decrease of F found beyond what ``cert`` allows, over random directions in
    θ and over each hidden unit's own weights (w_j, a_j); ≤ 0 when none is found.

    Allowed at step ε along a unit d: ε·‖∇F‖ of the certificate's slope selection (first
    order) + ε²κ/2 (its curvature tolerance) + the rounding of the two values of F.
    """
    theta = flat(params).detach()
    gen = torch.Generator().manual_seed(seed)
    dirs = [_unit_grid(theta.numel(), 3000, gen)]
    depth = obj.arch.depth
    offs = [0]
    for p in params:
        offs.append(offs[-1] + p.numel())
    for j in range(obj.arch.widths[1]):  # the units of the first hidden layer
        idx = [offs[0] + j * params[0].shape[1] + i for i in range(params[0].shape[1])]
        idx += [offs[1] + o * params[1].shape[1] + j for o in range(params[1].shape[0])]
        block = _unit_grid(len(idx), 1500, gen)
        full = torch.zeros(block.shape[0], theta.numel(), dtype=F64)
        full[:, idx] = block
        dirs.append(full)
    D_all = torch.cat(dirs)
    F = torch.func.vmap(lambda th: obj.value(unflat(th, params)))
    F0 = float(obj.value(params))
    lam = obj.lam
    r = cert.max_residual
    kappa = lam * max(cert.tau, r) if math.isfinite(r) else math.inf
    W = params[:depth]
    gnorm = lam * math.sqrt(sum((rk * float(w.norm())) ** 2
                                for rk, w in zip(cert.clarke_residuals or cert.residuals, W,
                                                 strict=True))) if math.isfinite(r) else 0.0
    gnorm = min(gnorm, cert.grad_norm)
    worst = -math.inf
    for eps in (1e-1, 1e-2, 1e-3):
        vals = F(theta + eps * D_all)
        allowed = eps * gnorm + 0.5 * eps**2 * kappa + gamma(64 * theta.numel()) * abs(F0)
        worst = max(worst, float((F0 - vals).max()) - allowed)
    return worst


def _certify(obj: Objective, theta: tuple[torch.Tensor, ...]) -> C.Certificate:
    res = dataclasses.replace(train(obj, theta, TrainConfig(steps=0, polish=False)),
                              initial=tuple(p + 1.0 for p in theta))
    return C.certify(obj, res, tau=1e-6)[0]


@functools.cache
def _points() -> list[tuple[str, Objective, tuple[torch.Tensor, ...], C.Certificate]]:
    """The points searched (trained on first use, once per process)."""
    out = []
    obj, theta, _ = dead_unit_saddle()
    out.append(("dead-unit saddle", obj, theta, _certify(obj, theta)))
    arch = Architecture((2, 3, 1), "relu")
    zobj = Objective(arch, D.teacher(12, 2, 1, seed=1), 0.02)
    zero = tuple(torch.zeros_like(p) for p in init_params(arch, 0))
    out.append(("θ = 0", zobj, zero, _certify(zobj, zero)))
    for seed, act, lam in ((0, "relu", 0.01), (1, "relu", 0.03), (2, "relu", 0.01),
                           (3, "leaky_relu", 0.01), (4, "identity", 0.05)):
        arch = Architecture((2, 3, 1), act)
        tobj = Objective(arch, D.teacher(10, 2, 1, seed=seed), lam)
        res = train(tobj, init_params(arch, seed), TrainConfig(steps=300, lr=0.05))
        out.append((f"trained {act} seed {seed}", tobj, res.params,
                    C.certify(tobj, res, tau=1e-6)[0]))
    # a stationary saddle of a linear net: balanced factors on the second singular pair
    data = D.whitened(8, 2, 2, seed=0)
    M = data.Y.T @ data.X / data.n
    U, s, Vh = torch.linalg.svd(M)
    a = math.sqrt(float(s[1]) - 0.1)
    lobj = Objective(Architecture((2, 1, 2), "identity"), data, 0.1)
    lin = ((a * Vh[1:2]).clone(), (a * U[:, 1:2]).clone())
    out.append(("linear saddle", lobj, lin, _certify(lobj, lin)))
    return out


NAMES = ("dead-unit saddle", "θ = 0", "trained relu seed 0", "trained relu seed 1",
         "trained relu seed 2", "trained leaky_relu seed 3", "trained identity seed 4",
         "linear saddle")


def test_the_point_names_are_the_points() -> None:
    assert tuple(p[0] for p in _points()) == NAMES


@pytest.mark.parametrize("i", range(len(NAMES)), ids=NAMES)
def test_the_certificate_refuses_every_saddle_the_search_finds(i: int) -> None:
    name, obj, theta, cert = _points()[i]
    found = descent(obj, theta, cert, seed=i)
    if found > 0:
        assert not cert.certified, f"{name}: descent {found:.3g} beyond the allowance, " \
                                   f"yet certified ({cert.established.summary})"
        assert "negative curvature" in cert.reason or "not stationary" in cert.reason, \
            cert.reason


def test_the_search_finds_the_known_saddles_and_the_certificate_names_them() -> None:
    by_name = {p[0]: p for p in _points()}
    for name in ("dead-unit saddle", "θ = 0", "linear saddle"):
        _, obj, theta, cert = by_name[name]
        assert descent(obj, theta, cert) > 0, name
        assert "negative curvature" in cert.reason, (name, cert.reason)
    for name in ("dead-unit saddle", "θ = 0"):
        assert "revival of an inactive unit" in by_name[name][3].reason


def test_the_oracle_is_not_vacuous() -> None:
    """Some trained points are certified and the search finds no descent there."""
    clean = [p[0] for i, p in enumerate(_points())
             if p[3].certified and descent(p[1], p[2], p[3], seed=i) <= 0]
    assert len(clean) >= 3, [(p[0], p[3].reason) for p in _points()]
