"""Tests of verify.engine.sgd and the mini-batch phase of verify.engine.train: the SGD step
against a hand-rolled loop (exactly, in float64), seeded sampling, and the batch-size validation."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import assert_close
from verify.engine import sgd
from verify.engine.result import TrainConfig
from verify.engine.setting import Setting
from verify.engine.train import train
from verify.errors import UsageError
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import forward, init_params
from verify.nets.objective import Objective, data_loss
from verify.tolerances import gradient_ops


def _case() -> tuple[Objective, tuple[torch.Tensor, ...]]:
    arch = Architecture((4, 6, 5, 2), "relu")
    return Objective(arch, D.clusters(11, 4, 2, seed=1), 0.03), init_params(arch, 5)


def test_sampler_is_seeded_and_an_epoch_is_a_partition() -> None:
    a = [b.tolist() for b in sgd.epoch(11, 3, seed=7)]
    b = [b.tolist() for b in sgd.epoch(11, 3, seed=7)]
    assert a == b
    assert [len(x) for x in a] == [3, 3, 3, 2]
    assert sorted(i for x in a for i in x) == list(range(11))
    assert a != [b.tolist() for b in sgd.epoch(11, 3, seed=8)]
    it = sgd.batches(11, 3, seed=7)
    first = [next(it).tolist() for _ in range(8)]
    assert first[:4] == a and first[4:] != a  # a fresh permutation each epoch


def test_sgd_phase_equals_hand_rolled_loop_exactly() -> None:
    obj, init = _case()
    seen: list[tuple[torch.Tensor, ...]] = []
    cfg = TrainConfig(lr=0.1, steps=12, batch=3, batch_seed=7, polish=False)
    res = train(obj, init, cfg, lambda t, ps: seen.append(tuple(p.clone() for p in ps)))
    it = sgd.batches(obj.data.n, 3, 7)
    ps = [p.clone() for p in init]
    for t in range(1, 13):
        idx = next(it)
        X, Y = obj.data.X[idx], obj.data.Y[idx]
        leaves = [p.detach().requires_grad_(True) for p in ps]
        loss = 0.5 * ((forward(obj.arch, tuple(leaves), X) - Y) ** 2).sum() / len(idx)
        G = torch.autograd.grad(loss, leaves)
        ps = [p - 0.1 * (g + 0.03 * p) for p, g in zip(ps, G, strict=True)]
        for a, b in zip(ps, seen[t], strict=True):
            assert torch.equal(a, b), t
    for a, b in zip(ps, res.params, strict=True):
        assert torch.equal(a, b)


def test_full_batch_is_the_default_and_batch_n_is_a_permuted_full_batch() -> None:
    obj, init = _case()
    full = train(obj, init, TrainConfig(lr=0.1, steps=5, polish=False))
    bn = train(obj, init, TrainConfig(lr=0.1, steps=5, polish=False, batch=obj.data.n))
    # the same 5 steps with the samples summed in another order
    ops = 5 * (2 * gradient_ops(obj.arch.widths, obj.data.n) + 4)
    for a, b in zip(full.params, bn.params, strict=True):
        assert_close(a, b, ops=ops)


def test_per_sample_gradients_average_to_the_data_gradient() -> None:
    obj, init = _case()
    per = sgd.per_sample_grads(obj, init)
    full = obj.data_grad(init)
    ops = 2 * gradient_ops(obj.arch.widths, obj.data.n)
    for p, f in zip(per, full, strict=True):
        # a mean of n per-sample gradients can cancel: relative to the mean of |·| (γ_n)
        assert_close(p.mean(0), f, ops=ops, scale=float(p.abs().mean(0).max()))
    one = sgd.on_batch(obj, torch.tensor([4]))
    assert_close(one.data_grad(init)[0], per[0][4], ops=ops)
    assert float(data_loss(obj.data, forward(obj.arch, init, obj.data.X))) > 0


@pytest.mark.parametrize("batch", [0, 12, -1, 2.5])
def test_batch_must_fit_n(batch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="batch"):
        Setting(widths=(3, 4, 1), n=11, batch=batch)


def test_setting_with_batch_trains_with_sgd() -> None:
    s = Setting(widths=(4, 6, 2), n=12, batch=4, steps=20, polish=False, lr=0.05)
    assert s.train_config(10.0).batch == 4
    assert s.to_json()["batch"] == 4


# --- the optimiser pairs ------------------------------------------------------------------

NAMES = ["gd", "momentum", "adam"]


def _bad_adam(lr: float | torch.Tensor) -> sgd.Optimizer:
    """Mutant: Adam whose bias corrections use t + 1 instead of t."""
    good = sgd.adam(lr)

    def update(g, state, ps):  # type: ignore[no-untyped-def]
        new, st = good.update(g, state._replace(step=state.step + 1), ps)
        return new, st._replace(step=state.step + 1)

    return sgd.Optimizer("adam", good.init, update)


def _bad_momentum(lr: float | torch.Tensor, mu: float) -> sgd.Optimizer:
    """Mutant: momentum with dampening, b ← μb + (1 − μ)g (torch's dampening=μ)."""
    good = sgd.momentum(lr, mu)

    def update(g, state, ps):  # type: ignore[no-untyped-def]
        return good.update(tuple((1 - mu) * x for x in g), state, ps)

    return sgd.Optimizer("momentum", good.init, update)


def _run_pair(opt: sgd.Optimizer, init: tuple[torch.Tensor, ...], grads: list, lam: float
              ) -> tuple[list[tuple[torch.Tensor, ...]], float]:
    """The pair's iterates on a fixed gradient sequence with coupled decay g_t + λθ, and
    the total movement Σ_t max|θ_t − θ_{t−1}| (what accumulated roundings scale with)."""
    ps, state, out, moved = init, opt.init(init), [], 0.0
    for g in grads:
        new, state = opt.update(tuple(gi + lam * p for gi, p in zip(g, ps, strict=True)),
                                state, ps)
        moved += max(float((a - b).abs().max()) for a, b in zip(new, ps, strict=True))
        ps = new
        out.append(ps)
    return out, moved


def _run_torch(name: str, init: tuple[torch.Tensor, ...], grads: list, lam: float,
               lr: float, mu: float) -> list[tuple[torch.Tensor, ...]]:
    ps = [p.clone().requires_grad_(True) for p in init]
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(ps, lr=lr, weight_decay=lam) if name == "gd" else
        torch.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=lam) if name == "momentum"
        else torch.optim.Adam(ps, lr=lr, weight_decay=lam, foreach=False))
    out = []
    for g in grads:
        for p, gi in zip(ps, g, strict=True):
            p.grad = gi.clone()
        opt.step()
        out.append(tuple(p.detach().clone() for p in ps))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_optimiser_pairs_are_torchs_coupled_decay_optimisers(name: str) -> None:
    """Each pair follows torch's SGD / SGD(momentum) / Adam with ``weight_decay=λ`` (coupled
    decay: the decay is in the gradient) on a fixed gradient sequence, to the rounding of
    the differently ordered arithmetic (a dozen operations a step, each relative to the
    iterate's size plus the movement so far); mutants — Adam's bias corrections one step
    off, momentum with dampening — leave that bound."""
    gen = torch.Generator().manual_seed(3)
    init = (torch.randn(5, 4, generator=gen, dtype=torch.float64),
            torch.randn(4, generator=gen, dtype=torch.float64))
    grads = [tuple(torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in init)
             for _ in range(25)]
    lam, lr, mu = 0.05, 0.01, 0.8
    want = _run_torch(name, init, grads, lam, lr, mu)
    got, moved = _run_pair(sgd.optimizer(name, lr, mu), init, grads, lam)
    scale = max(float(p.abs().max()) for p in init) + moved
    ops = 12 * len(grads)
    for a, b in zip(got[-1], want[-1], strict=True):
        assert_close(a, b, ops=ops, scale=scale)
    if name == "gd":
        return
    bad, _ = _run_pair(_bad_adam(lr) if name == "adam" else _bad_momentum(lr, mu), init,
                       grads, lam)
    with pytest.raises(AssertionError):
        for a, b in zip(bad[-1], want[-1], strict=True):
            assert_close(a, b, ops=ops, scale=scale)


@pytest.mark.parametrize("name", NAMES)
def test_one_update_serves_a_stack_of_networks_exactly(name: str) -> None:
    """The pair on a stack of K = 3 networks with per-network (K,) rates steps each network
    exactly as the pair with that network's float rates (elementwise arithmetic, the same
    operations in the same order); rates handed to the wrong networks do not."""
    gen = torch.Generator().manual_seed(4)
    K, lrs, mus = 3, [0.01, 0.03, 0.002], [0.5, 0.9, 0.7]
    init = (torch.randn(K, 5, 4, generator=gen, dtype=torch.float64),
            torch.randn(K, 4, generator=gen, dtype=torch.float64))
    grads = [tuple(torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in init)
             for _ in range(6)]

    def stacked(lr: list[float], mu: list[float]) -> tuple[torch.Tensor, ...]:
        opt = sgd.optimizer(name, torch.tensor(lr, dtype=torch.float64),
                            torch.tensor(mu, dtype=torch.float64))
        return _run_pair(opt, init, grads, 0.0)[0][-1]

    got = stacked(lrs, mus)
    for i in range(K):
        one = _run_pair(sgd.optimizer(name, lrs[i], mus[i]), tuple(p[i] for p in init),
                        [tuple(g[i] for g in gs) for gs in grads], 0.0)[0][-1]
        assert all(torch.equal(a[i], b) for a, b in zip(got, one, strict=True)), (name, i)
    swapped = stacked(lrs[::-1], mus[::-1])
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(swapped, got, strict=True))


def test_unknown_optimiser_is_refused() -> None:
    with pytest.raises(UsageError, match="optimizer"):
        sgd.optimizer("rmsprop", 0.1)
