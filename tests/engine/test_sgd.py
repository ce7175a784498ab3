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
