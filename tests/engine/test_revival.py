"""Tests of verify.engine.revival (inactive ReLU units) and of what the certificate states,
against brute force on tiny nets: the maximum of ‖c(v)‖ over a fine grid of the sphere, and
finite differences of F along the revival directions."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import verify.engine.certificate as C
from verify.engine.result import TrainConfig
from verify.engine.revival import directional_second_order, max_revival, revival_tests
from verify.engine.train import train
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective

F64 = torch.float64


def _sphere(d: int, count: int) -> torch.Tensor:
    """A fine grid of unit vectors: angles for d = 2, a Fibonacci lattice for d = 3."""
    if d == 2:
        t = torch.arange(count, dtype=F64) * (2 * math.pi / count)
        return torch.stack([t.cos(), t.sin()], 1)
    i = torch.arange(count, dtype=F64) + 0.5
    phi = torch.arccos(1 - 2 * i / count)
    theta = math.pi * (1 + 5**0.5) * i
    return torch.stack([phi.sin() * theta.cos(), phi.sin() * theta.sin(), phi.cos()], 1)


def _grid_max(H: torch.Tensor, E: torch.Tensor, slope: float, count: int
              ) -> tuple[float, float]:
    """max over the grid of ‖Σ_i E_i σ(v·H_i)‖ and the Lipschitz slack of the grid."""
    V = _sphere(H.shape[1], count)
    Z = V @ H.T
    vals = torch.linalg.norm(torch.where(Z > 0, Z, slope * Z) @ E, dim=1)
    lip = float((torch.linalg.norm(E, dim=1) * torch.linalg.norm(H, dim=1)).sum())
    spacing = 2 * math.pi / count if H.shape[1] == 2 else 4 * (math.pi / count) ** 0.5
    return float(vals.max()), lip * spacing


@pytest.mark.parametrize(("d", "slope", "seed"), [(2, 0.0, 0), (2, 0.0, 1), (2, 0.1, 2),
                                                  (3, 0.0, 3), (3, 0.0, 4), (3, 0.1, 5)])
def test_max_revival_matches_a_grid_of_the_sphere(d: int, slope: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    H = torch.randn(9, d, generator=gen, dtype=F64)
    E = torch.randn(9, 2, generator=gen, dtype=F64) / 9
    found, v, starts = max_revival(H, E, slope)
    grid, slack = _grid_max(H, E, slope, 200_000)
    assert starts > 2 * 9
    assert found >= grid - 1e-12 * grid  # the ascent reaches the grid's best
    assert found <= grid + slack  # and never claims more than exists
    assert float(torch.linalg.norm(v)) == pytest.approx(1.0, abs=1e-12)
    Z = H @ v
    assert float(torch.linalg.norm(torch.where(Z > 0, Z, slope * Z) @ E)) == pytest.approx(
        found, rel=1e-12)


def _teacher_zero(lam: float = 0.02) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    arch = Architecture((2, 4, 1), "relu")
    obj = Objective(arch, D.teacher(12, 2, 1, seed=1), lam)
    return obj, tuple(torch.zeros_like(p) for p in init_params(arch, 0))


def test_theta_zero_of_a_two_layer_relu_net_is_refused_for_the_revival() -> None:
    """At θ = 0 autograd's Hessian is λI (relu′(0) = 0); the true second-order value along a
    revival is λ − max_v‖(1/n)Σ y_i relu(v·x_i)‖, negative here: the certificate must say so
    and refuse for that reason, not only because the layers collapsed."""
    obj, zero = _teacher_zero()
    X, Y = obj.data.X, obj.data.Y
    grid, slack = _grid_max(X, Y / obj.data.n, 0.0, 200_000)  # e_i = y_i at f = 0
    assert grid > obj.lam + slack  # a saddle: the test is not vacuous
    res = dataclasses.replace(train(obj, zero, TrainConfig(steps=0, polish=False)),
                              initial=init_params(obj.arch, 0))
    cert, _ = C.certify(obj, res, tau=1e-6)
    assert not cert.certified
    assert cert.min_hessian_eig is not None and cert.min_hessian_eig < 0 < obj.lam
    assert cert.min_hessian_eig == pytest.approx(obj.lam - grid, abs=slack + 1e-12)
    assert "revival of an inactive unit" in cert.reason
    assert "collapsed" in cert.reason  # both reasons are given
    # F decreases along the reported revival, at the rate it states
    (rv,) = cert.established.revival
    v, b = torch.tensor(rv.direction, dtype=F64), torch.tensor(rv.outgoing, dtype=F64)
    for eps in (1e-2, 1e-3):
        Q = [p.clone() for p in zero]
        Q[0][0] = eps * v / 2**0.5
        Q[1][:, 0] = eps * b / 2**0.5
        rate = 2 * float(obj.value(tuple(Q)) - obj.value(zero)) / eps**2
        # the Taylor remainder is O(ε⁴) against the O(ε²) term
        assert rate == pytest.approx(cert.min_hessian_eig, rel=10 * eps**2)


def test_theta_zero_of_a_deep_relu_net_is_a_local_minimum_to_second_order() -> None:
    """Depth 3: every revival meets zero weights above it, c(v) = 0, so λ is the true
    second-order value at θ = 0 (F(εθ̃) − F(0) = O(ε²λ) − O(ε³))."""
    arch = Architecture((2, 3, 3, 1), "relu")
    obj = Objective(arch, D.teacher(12, 2, 1, seed=1), 0.05)
    zero = tuple(torch.zeros_like(p) for p in init_params(arch, 0))
    revs = revival_tests(obj, zero)
    assert [r.layer for r in revs] == [1, 2]
    assert all(r.max_c == 0.0 and r.second_order == pytest.approx(obj.lam) for r in revs)


def dead_unit_saddle() -> tuple[Objective, tuple[torch.Tensor, ...], float]:
    """A certified width-1 ReLU net on a teacher with one zero unit appended: stationary
    (the zero unit has zero gradient), certified by the tangent-space test alone, yet a
    saddle — reviving the unit along ε(v, c(v)/λ) lowers F. Returns the objective, θ and
    max_v‖c(v)‖ found by a grid of the circle."""
    lam, data = 0.01, D.teacher(10, 2, 1, seed=0)
    narrow = Objective(Architecture((2, 1, 1), "relu"), data, lam)
    res = train(narrow, init_params(narrow.arch, 0), TrainConfig(steps=300, lr=0.05))
    W1, W2 = res.params
    theta = (torch.cat([W1, torch.zeros(1, 2, dtype=F64)]),
             torch.cat([W2, torch.zeros(1, 1, dtype=F64)], 1))
    obj = Objective(Architecture((2, 2, 1), "relu"), data, lam)
    err = data.Y - torch.relu(data.X @ W1.T) @ W2.T  # e_i = −∂ℓ/∂f(x_i) = y_i − f(x_i)
    grid, _ = _grid_max(data.X, err / data.n, 0.0, 200_000)
    return obj, theta, grid


def test_a_dead_unit_saddle_is_refused_for_the_right_reason() -> None:
    obj, theta, grid = dead_unit_saddle()
    assert grid > obj.lam  # revivable: a saddle
    res = dataclasses.replace(train(obj, theta, TrainConfig(steps=0, polish=False)),
                              initial=init_params(obj.arch, 0))
    cert, st = C.certify(obj, res, tau=1e-6)
    assert max(st.r) < 1e-6  # first order cannot tell
    assert not cert.certified
    assert "revival of an inactive unit (layer 1)" in cert.reason
    (rv,) = cert.established.revival
    assert rv.units == (1,) and rv.exact
    assert rv.max_c == pytest.approx(grid, rel=1e-6)
    # the revival ε(v, c(v)/λ) lowers F by ε²(‖c‖² − λ²)/(2λ) to leading order
    v = torch.tensor(rv.direction, dtype=F64)
    b = torch.tensor(rv.outgoing, dtype=F64) * rv.max_c / obj.lam
    for eps, rel in ((0.1, 1.0), (1e-2, 0.1), (1e-3, 1e-3)):
        Q = [p.clone() for p in theta]
        Q[0][1], Q[1][:, 1] = eps * v, eps * b
        drop = float(obj.value(theta) - obj.value(tuple(Q)))
        assert drop > 0
        assert drop == pytest.approx(eps**2 * (rv.max_c**2 - obj.lam**2) / (2 * obj.lam),
                                     rel=rel)


def test_directional_second_order_matches_finite_differences_through_kinks() -> None:
    """A zero unit in layer 1 of a depth-3 net whose layer 2 has units at their kink: the
    one-sided second derivative of F along the revival equals the finite difference."""
    gen = torch.Generator().manual_seed(3)
    arch = Architecture((2, 3, 3, 2), "relu")
    data = D.teacher(8, 2, 2, seed=2)
    obj = Objective(arch, data, 0.02)
    W1 = torch.randn(3, 2, generator=gen, dtype=F64)
    W1[0] = 0.0  # the zero unit
    W2 = torch.randn(3, 3, generator=gen, dtype=F64)
    W2[:, 0] = 0.0
    W2[2] = 0.0  # a layer-2 unit at its kink on every sample
    W3 = torch.randn(2, 3, generator=gen, dtype=F64)
    theta = (W1, W2, W3)
    kinked = torch.ones(data.n, dtype=torch.bool)
    for seed in range(4):
        g2 = torch.Generator().manual_seed(seed)
        v = torch.randn(2, generator=g2, dtype=F64)
        b = torch.randn(3, generator=g2, dtype=F64)
        want = directional_second_order(obj, theta, 1, kinked, v, b, band=0.0)
        u, w = v / v.norm(), b / b.norm()
        F0 = float(obj.value(theta))
        # first-order terms vanish: the zero unit's own weights are 0
        eps = 1e-4
        Q = [p.clone() for p in theta]
        Q[0][0], Q[1][:, 0] = eps * u / 2**0.5, eps * w / 2**0.5
        fd = 2 * (float(obj.value(tuple(Q))) - F0) / eps**2
        assert fd == pytest.approx(want, rel=1e-4, abs=1e-9)


def test_the_certificate_states_what_it_established() -> None:
    arch = Architecture((3, 5, 2), "softplus")
    obj = Objective(arch, D.teacher(10, 3, 2, seed=2), 1e-2)
    cert, _ = C.certify(obj, train(obj, init_params(arch, 1), TrainConfig(steps=100)), 1e-8)
    est = cert.established
    assert cert.certified and est is not None
    assert est.scope == "local, not global" and est.summary.endswith("local, not global")
    assert est.residual == cert.max_residual and est.residual_kind == "gradient"
    assert est.second_order.startswith("all directions") and est.inactive_units == 0
    assert "not tested" in est.summary  # smooth σ: no inactive-unit test
    assert cert.to_json()["established"]["summary"] == est.summary
