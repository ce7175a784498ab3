"""Tests of verify.engine.ensemble: the batched GD phase against a loop of single-network GD
(verify.engine.train.train with polish=False), per-network stopping, polish and certificates;
realise_all against realise one by one, and its use of realise's cache."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from verify.engine.certificate import certify
from verify.engine.ensemble import certify_ensemble, realise_all, train_ensemble
from verify.engine.result import TrainConfig, TrainStatus
from verify.engine.setting import Context, Setting, realise
from verify.engine.train import train
from verify.errors import UsageError
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective

LRS = (0.05, 0.1, 0.02, 0.08)
LAMS = (1e-2, 3e-2, 1e-3, 5e-2)


def _case(activation: str, bias: bool = False, k: int = 4,
          widths: tuple[int, ...] = (4, 8, 8, 3)) -> tuple[list[Objective], list]:
    arch = Architecture(widths, activation, bias=bias)
    objs = [Objective(arch, D.teacher(12, widths[0], widths[-1], seed=i), LAMS[i % 4])
            for i in range(k)]
    inits = [init_params(arch, 100 + i) for i in range(k)]
    return objs, inits


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


@pytest.mark.parametrize(("activation", "bias", "chunk"),
                         [("tanh", True, None), ("relu", False, None), ("relu", False, 3)])
def test_batched_gd_equals_loop_of_single_gd(activation: str, bias: bool,
                                             chunk: int | None) -> None:
    objs, inits = _case(activation, bias)
    steps = 150
    cfgs = [TrainConfig(lr=lr, steps=steps, polish=False, record_every=7) for lr in LRS]
    batched = train_ensemble(objs, inits, cfgs, chunk=chunk)
    for obj, init, cfg, got in zip(objs, inits, cfgs, batched, strict=True):
        ref = train(obj, init, cfg)
        assert got.gd_steps == ref.gd_steps == steps
        assert got.stop_reason == ref.stop_reason == "gd steps done"
        for a, b in zip(got.params, ref.params, strict=True):
            assert _rel(a, b) <= 1e-12, _rel(a, b)
        assert got.trace_steps == ref.trace_steps
        for fa, fb in zip(got.trace_F, ref.trace_F, strict=True):
            assert math.isclose(fa, fb, rel_tol=1e-12)
        for ra, rb in zip(got.trace_residual, ref.trace_residual, strict=True):
            assert math.isclose(ra, rb, rel_tol=1e-9)


@pytest.mark.parametrize(("activation", "widths", "loss", "residual"), [
    ("softplus", (4, 8, 8, 8, 3), "squared", True),
    ("leaky_relu", (4, 8, 1), "logistic", False),
    ("tanh", (4, 8, 3), "ce", False),
    ("identity", (4, 6, 6, 3), "squared", False),
])
def test_batched_gd_equals_loop_for_other_nets_and_losses(activation: str, widths: tuple,
                                                          loss: str, residual: bool) -> None:
    arch = Architecture(widths, activation, residual=residual)
    objs = [Objective(arch, D.clusters(12, widths[0], 3, seed=i, loss=loss), LAMS[i])
            for i in range(4)]
    inits = [init_params(arch, 50 + i) for i in range(4)]
    cfgs = [TrainConfig(lr=lr, steps=60, polish=False) for lr in LRS]
    for obj, init, cfg, got in zip(objs, inits, cfgs, train_ensemble(objs, inits, cfgs),
                                   strict=True):
        ref = train(obj, init, cfg)
        for a, b in zip(got.params, ref.params, strict=True):
            assert _rel(a, b) <= 1e-12, _rel(a, b)
        for fa, fb in zip(got.trace_F, ref.trace_F, strict=True):
            assert math.isclose(fa, fb, rel_tol=1e-12)


def _max_gap(objs: list[Objective], inits: list, cfgs: list[TrainConfig]) -> float:
    """The largest relative gap, over networks and parameter tensors, between the batched
    first phase and a loop of single-network train()."""
    got = train_ensemble(objs, inits, cfgs)
    return max(_rel(a, b) for obj, init, cfg, g in zip(objs, inits, cfgs, got, strict=True)
               for a, b in zip(g.params, train(obj, init, cfg).params, strict=True))


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_momentum_and_adam_ensembles_equal_a_loop(name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """K = 3 networks (own λ, η, μ, step counts) stepped by one optimiser pair on the stack
    agree with the single route network by network, to the 1e-12 the module states; the
    same check catches an ensemble whose optimiser is wrong — Adam's bias corrections one
    step off, momentum with dampening — while the single route stays right."""
    import verify.engine.ensemble as E
    from verify.engine import sgd

    objs, inits = _case("tanh", bias=True, k=3)
    lr = 0.01 if name == "adam" else 0.05
    cfgs = [TrainConfig(optimizer=name, lr=lr * (i + 1), momentum=(0.9, 0.5, 0.8)[i],
                        steps=(80, 60, 80)[i], polish=False, record_every=9)
            for i in range(3)]
    assert _max_gap(objs, inits, cfgs) <= 1e-12

    def mutant(kind: str, lr: object, mu: object) -> sgd.Optimizer:
        good = sgd.optimizer(kind, lr, mu)  # type: ignore[arg-type]

        def update(g, state, ps):  # type: ignore[no-untyped-def]
            if kind == "adam":  # bias corrections at t + 1
                new, st = good.update(g, state._replace(step=state.step + 1), ps)
                return new, st._replace(step=state.step + 1)
            return good.update(tuple((1 - sgd.per_network(mu, x)) * x  # type: ignore[arg-type]
                                     for x in g), state, ps)

        return sgd.Optimizer(kind, good.init, update)

    monkeypatch.setattr(E, "optimizer", mutant)
    assert _max_gap(objs, inits, cfgs) > 1e-6


def test_per_network_steps_and_divergence_stop_only_that_network() -> None:
    objs, inits = _case("tanh")
    cfgs = [TrainConfig(lr=0.05, steps=40, polish=False), TrainConfig(lr=0.05, steps=15,
            polish=False), TrainConfig(lr=1e6, steps=40, polish=False),
            TrainConfig(lr=0.05, steps=0, polish=False)]
    got = train_ensemble(objs, inits, cfgs)
    for obj, init, cfg, g in zip(objs, inits, cfgs, got, strict=True):
        ref = train(obj, init, cfg)
        assert (g.gd_steps, g.stop_reason, g.status) == (ref.gd_steps, ref.stop_reason,
                                                          ref.status)
        if ref.finite:
            for a, b in zip(g.params, ref.params, strict=True):
                assert _rel(a, b) <= 1e-12
    assert [g.status for g in got] == [TrainStatus.ITERATIONS, TrainStatus.ITERATIONS,
                                       TrainStatus.DIVERGED, TrainStatus.ITERATIONS]


def test_polished_ensemble_is_certified_per_network() -> None:
    objs, inits = _case("tanh", k=3, widths=(3, 6, 2))
    res = train_ensemble(objs, inits, TrainConfig(steps=300), lrs=LRS[:3])
    certs = certify_ensemble(objs, res, tau=1e-6)
    for obj, r, c in zip(objs, res, certs, strict=True):
        assert c.certified, c.reason
        assert c.max_residual <= 1e-6
        assert r.gd_steps == 300 and r.lbfgs_iters > 0
        assert r.trace_steps[0] == 0 and r.trace_steps[-1] >= 300
        # each network is certified on its own objective: another's λ does not fit it
        assert certify(obj, r, 1e-6)[0].max_residual == c.max_residual


def test_polished_relu_ensemble_uses_the_continuation() -> None:
    objs, inits = _case("relu", k=2, widths=(3, 5, 2))
    res = train_ensemble(objs, inits, TrainConfig(steps=200))
    certs = certify_ensemble(objs, res, tau=1e-6)
    for r, c in zip(res, certs, strict=True):
        assert r.finite and c.max_residual < 1e-4, c.reason


def test_incompatible_networks_are_refused() -> None:
    objs, inits = _case("tanh", k=2)
    other = Objective(Architecture((4, 8, 3), "tanh"), D.teacher(12, 4, 3, seed=0), 0.01)
    with pytest.raises(UsageError):
        train_ensemble([objs[0], other], inits)
    with pytest.raises(UsageError):
        train_ensemble(objs, inits[:1])
    # one optimiser steps the stack; mini-batches and low precision are per-network routes
    for bad in ([TrainConfig(optimizer="adam"), TrainConfig(optimizer="momentum")],
                TrainConfig(batch=4), TrainConfig(precision="float32")):
        with pytest.raises(UsageError):
            train_ensemble(objs, inits, bad)


GRID = [Setting(widths=(4, 6, 3), activation="tanh", lam=lam, n=8, seed=seed, lr=0.1,
                steps=50) for lam in (0.05, 0.1, 0.2) for seed in (0, 1)]


def test_realise_all_gives_the_networks_realise_gives() -> None:
    batched = realise_all(GRID, Context())
    single = Context()
    for s, got in zip(GRID, batched, strict=True):
        ref = realise(s, single)
        assert got.setting == s
        assert got.certificate.certified == ref.certificate.certified
        assert got.result.gd_steps == ref.result.gd_steps
        for a, b in zip(got.result.params, ref.result.params, strict=True):
            assert _rel(a, b) <= 1e-9, (s, _rel(a, b))
        assert math.isclose(got.certificate.max_residual, ref.certificate.max_residual,
                            rel_tol=1e-3, abs_tol=1e-12)


def test_realise_all_batches_full_batch_gd_only_and_respects_the_cache(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import verify.engine.ensemble as E
    import verify.engine.setting as S

    sizes: list[int] = []
    singles: list[int] = []
    real_ens, real_train = E.train_ensemble, S.train

    def spy_ens(objs, *a, **kw):
        sizes.append(len(objs))
        return real_ens(objs, *a, **kw)

    def spy_train(*a, **kw):
        singles.append(1)
        return real_train(*a, **kw)

    monkeypatch.setattr(E, "train_ensemble", spy_ens)
    monkeypatch.setattr(S, "train", spy_train)
    # no polish: what is tested here is which route trains what, and the cache
    nets = [replace(s, polish=False) for s in GRID]
    sgd = replace(nets[0], batch=4)
    other = replace(nets[0], widths=(4, 5, 3))  # alone in its architecture: a group of one
    grid = [*nets[:4], sgd, other]
    ctx = Context(cache_dir=str(tmp_path))
    first = realise_all(grid, ctx)
    assert sizes == [4] and len(singles) == 2  # the GD grid batched; SGD and `other` alone
    assert [t.setting for t in first] == grid
    # a second call, with a duplicate: all cache hits, the very same records
    again = realise_all([*grid, grid[1]], ctx)
    assert [id(t) for t in again] == [id(t) for t in [*first, first[1]]]
    # a fresh context finds every network on disk, batched ones included
    fresh = Context(cache_dir=str(tmp_path))
    assert [realise(s, fresh).setting for s in grid] == grid
    assert [id(t) for t in realise_all(nets, fresh)[:4]] == [id(fresh.cache[s])
                                                             for s in nets[:4]]
    assert sizes == [4, 2] and len(singles) == 2  # only nets[4:] were new


def test_relative_residuals_of_a_stack_equal_a_loop() -> None:
    """The one r_k definition with a leading network axis equals relative_residual network by
    network (the same norms: rounding of a norm of N numbers, γ_N relative, plus one division;
    tolerance 2γ_N + 2u), and ∞ for a zero layer; a mutant taking the mean over layers
    instead of the max is told apart."""
    from verify import tolerances
    from verify.engine.residual import relative_residual, relative_residuals

    objs, inits = _case("relu")
    inits[2] = (torch.zeros_like(inits[2][0]), *inits[2][1:])  # a zero layer: r = ∞
    grads = [o.grad(p) for o, p in zip(objs, inits, strict=True)]
    d = objs[0].arch.depth
    W = [torch.stack([p[k] for p in inits]) for k in range(d)]
    G = [torch.stack([g[k] for g in grads]) for k in range(d)]
    lam = torch.tensor([o.lam for o in objs], dtype=torch.float64)
    got = relative_residuals(W, G, lam)
    N = max(w[0].numel() for w in W)
    tol = 2 * tolerances.gamma(N) + 2 * tolerances.unit_roundoff()
    for i, (o, p, g) in enumerate(zip(objs, inits, grads, strict=True)):
        want = relative_residual(o, p, g)
        if math.isinf(want):
            assert math.isinf(float(got[i]))
        else:
            assert abs(float(got[i]) - want) <= tol * want
    # mutant: the mean over layers instead of the max differs from the definition
    mean = sum(torch.linalg.vector_norm(g.flatten(1), dim=1)
               / (lam * torch.linalg.vector_norm(w.flatten(1), dim=1))
               for w, g in zip(W, G, strict=True)) / d
    finite = torch.isfinite(got)
    assert bool((mean[finite] < got[finite] * (1 - tol)).any())


def test_realise_all_groups_by_optimiser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Momentum and Adam first phases are batched too, one optimiser per ensemble: a grid
    mixing the three splits into three groups, each trained once, and each network is the
    one realise gives."""
    import verify.engine.ensemble as E

    seen: list[tuple[str, ...]] = []
    real = E.train_ensemble

    def spy(objs, inits, cfgs, **kw):  # type: ignore[no-untyped-def]
        seen.append(tuple(c.optimizer for c in cfgs))
        return real(objs, inits, cfgs, **kw)

    monkeypatch.setattr(E, "train_ensemble", spy)
    grid = [replace(s, polish=False, optimizer=o, lr=0.01 if o == "adam" else 0.05)
            for o in ("gd", "momentum", "adam") for s in GRID[:2]]
    got = realise_all(grid, Context())
    assert sorted(seen) == [("adam",) * 2, ("gd",) * 2, ("momentum",) * 2]
    for s, t in zip(grid, got, strict=True):
        ref = realise(s, Context())
        for a, b in zip(t.result.params, ref.result.params, strict=True):
            assert _rel(a, b) <= 1e-12, (s.optimizer, _rel(a, b))


@pytest.mark.parametrize(("activation", "loss", "bias", "residual"), [
    ("relu", "squared", False, False), ("tanh", "ce", True, False),
    ("softplus", "logistic", True, True)])
def test_stacked_forward_and_loss_equal_a_loop(activation: str, loss: str, bias: bool,
                                               residual: bool) -> None:
    """The ensemble's losses come from the one forward and the one data_loss given a leading
    network axis: each equals forward + data_loss of that network alone, to the rounding of
    a forward pass and a loss over n·d_L terms (relative to the loss and the outputs'
    size); a mutant that pairs every network with its neighbour's data does not."""
    from tests.helpers import assert_close
    from verify.engine.ensemble import batched_losses, stack
    from verify.nets.network import forward
    from verify.nets.objective import data_loss
    from verify.tolerances import network_ops

    widths = (4, 6, 6, 1 if loss == "logistic" else 3)
    arch = Architecture(widths, activation, bias=bias, residual=residual)
    sets = [D.clusters(12, 4, 3, seed=i, loss=loss) for i in range(3)]
    inits = [init_params(arch, 7 + i) for i in range(3)]
    if bias:  # nonzero biases, so that their broadcast over the samples is exercised
        inits = [(*p[:3], *(torch.full_like(b, 0.1 * (i + 1)) for b in p[3:]))
                 for i, p in enumerate(inits)]
    X, Y = torch.stack([d.X for d in sets]), torch.stack([d.Y for d in sets])
    got = batched_losses(arch, loss, stack(inits), X, Y)
    outs = [forward(arch, p, d.X) for p, d in zip(inits, sets, strict=True)]
    want = torch.stack([data_loss(d, o) for d, o in zip(sets, outs, strict=True)])
    ops = network_ops(widths) + 12 * widths[-1] + 8
    scale = float(want.abs().max()) + max(float(o.abs().max()) for o in outs) ** 2
    assert_close(got, want, ops=ops, scale=scale)
    with pytest.raises(AssertionError):
        assert_close(batched_losses(arch, loss, stack([*inits[1:], inits[0]]), X, Y), want,
                     ops=ops, scale=scale)
