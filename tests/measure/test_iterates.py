"""verify.measure.iterates (T5's measurements on an SGD run) and grid.hidden_ranks, against
direct recomputation (the studies of verify.measure.grid: tests/measure/test_grid.py)."""

from __future__ import annotations

import math

import pytest
import torch

from verify.engine import sgd
from verify.engine.setting import Context, Setting, trajectory
from verify.measure import grid, iterates, spectra
from verify.tolerances import gamma

CTX = Context(tau=1e-6)
TINY_NET = Setting(widths=(4, 6, 5, 2), activation="tanh", lam=0.01, n=12, data="clusters",
                   loss="ce", seed=0, lr=0.1, steps=12, batch=3, polish=False)


def _sgd_like(T: int, B: int, decay: float, seed: int) -> list[torch.Tensor]:
    """W_{t+1} = decay·W_t − 0.1·G_t with G_t of rank B exactly (9 × 8 matrices)."""
    gen = torch.Generator().manual_seed(seed)
    W = [torch.randn(9, 8, generator=gen, dtype=torch.float64)]
    for _ in range(T):
        G = torch.randn(9, B, generator=gen, dtype=torch.float64) @ torch.randn(
            B, 8, generator=gen, dtype=torch.float64)
        W.append(decay * W[-1] - 0.1 * G)
    return W


def test_observer_records_every_step_of_every_layer() -> None:
    obs = iterates.SpectraObserver(3)
    res = trajectory(TINY_NET, CTX, obs)
    assert res.finite
    for k, (d_out, d_in) in enumerate(((6, 4), (5, 6), (2, 5))):
        sv = obs.layer(k)
        assert sv.shape == (TINY_NET.steps + 1, min(d_out, d_in))
        assert torch.equal(sv[0], spectra.singular_values(res.initial[k]))
        assert torch.equal(sv[-1], spectra.singular_values(res.params[k]))


def test_unrolled_tail_worst_pair_is_recomputed_directly() -> None:
    """The worst pair's D is D_{sB}(W_t) of that iterate, its bound decay^s‖W_{t−s}‖ plus a
    slack no larger than the rounding model, and every pair with sB < 8 is counted."""
    T, B, decay = 6, 2, 0.9
    Ws = _sgd_like(T, B, decay, seed=1)
    sv = torch.stack([spectra.singular_values(w) for w in Ws])
    u = iterates.unrolled_tail(sv, decay, B, B)
    assert u.checked == sum(T - s + 1 for s in range(1, min(T, (8 - 1) // B) + 1))
    assert u.k == u.s * B
    D = spectra.tail_distance(Ws[u.t], u.k)
    assert u.D == pytest.approx(D, rel=math.sqrt(gamma(16)))
    exact = decay**u.s * spectra.frobenius(Ws[u.t - u.s])
    slack = u.bound - exact
    norms = [spectra.frobenius(w) for w in Ws]
    most = sum(2 * gamma(B + iterates.STEP_OPS) * (2 * norms[j] + norms[j + 1])
               for j in range(u.t - u.s, u.t)) + 8 * 2.0**-52 * norms[u.t]
    assert 0 <= slack <= most * (1 + 1e-12)
    assert u.D <= u.bound  # exact rank-B steps never violate (b)
    assert u.series["s"] == [1.0, 2.0, 3.0]


def test_unrolled_tail_catches_a_full_rank_step_and_says_when_nothing_is_checked() -> None:
    grow = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
    u = iterates.unrolled_tail(grow, 0.99, 1, 1)
    assert u.D > u.bound  # W_1 = 2W_0 is not within rank one of 0.99·W_0
    empty = iterates.unrolled_tail(grow, 0.99, 3, 3)  # B·m ≥ min(d): D = 0 trivially
    assert (empty.checked, empty.informative, empty.series["s"]) == (0, 0, [])


def test_sgd_noise_by_definition() -> None:
    obj = TINY_NET.objective()
    params = TINY_NET.init("cpu")
    batches = sgd.epoch(TINY_NET.n, 3, 0)
    noise = iterates.sgd_noise(obj, params, batches)
    grads = [torch.cat([g.reshape(-1) for g in sgd.on_batch(obj, b).grad(params)])
             for b in batches]
    assert noise.batch_norms == pytest.approx([float(g.norm()) for g in grads], rel=1e-15)
    assert noise.half_spread == pytest.approx(
        0.5 * max(float((a - b).norm()) for a in grads for b in grads), rel=1e-15)
    # ∇F is the batches' weighted mean: never longer than the longest batch gradient
    assert noise.top >= max(noise.full, noise.half_spread)
    assert noise.to_json()["batches"] == 4
    one = iterates.sgd_noise(obj, params, sgd.epoch(TINY_NET.n, TINY_NET.n, 0))
    assert one.half_spread == 0.0
    assert one.top == pytest.approx(one.full, rel=gamma(64))


def test_hidden_ranks_leave_the_output_layer_out() -> None:
    params = TINY_NET.init("cpu")
    r = grid.hidden_ranks(TINY_NET, params)
    assert r["rank_tol"] == pytest.approx((4 + 5) / 2)  # He init: full rank
    assert r["stable_rank"] == pytest.approx(
        (spectra.stable_rank(params[0]) + spectra.stable_rank(params[1])) / 2)
