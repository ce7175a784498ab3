"""Tests of verify.engine.train: the GD phase against a hand-rolled loop, the other optimisers,
divergence and time limits, the relative residual, and polishing to stationarity."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import assert_close, within
from verify.engine.residual import relative_residual, stationarity
from verify.engine.result import TrainConfig, TrainResult, TrainStatus
from verify.engine.train import train
from verify.errors import UsageError
from verify.nets import data as D
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective
from verify.tolerances import gradient_ops

F64 = torch.float64


def _tanh_bias_case(reg_bias: bool = False) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    arch = Architecture((3, 5, 2), "tanh", bias=True)
    data = D.teacher(10, 3, 2, seed=0)
    params = list(init_params(arch, 4))
    gen = torch.Generator().manual_seed(9)
    for i in range(arch.depth, len(params)):
        params[i] = 0.1 * torch.randn(params[i].shape, generator=gen, dtype=F64)
    return Objective(arch, data, 0.05, reg_bias=reg_bias), tuple(params)


def _hand_grad(X: torch.Tensor, Y: torch.Tensor, lam: float, reg_bias: bool,
               ps: list[torch.Tensor]) -> list[torch.Tensor]:
    """∇F for the 1-hidden-layer tanh net with biases, written out by hand."""
    W1, W2, b1, b2 = (p.detach().requires_grad_(True) for p in ps)
    out = torch.tanh(X @ W1.T + b1) @ W2.T + b2
    loss = 0.5 * ((out - Y) ** 2).sum() / X.shape[0]
    g = torch.autograd.grad(loss, (W1, W2, b1, b2))
    return [gi + lam * p if (i < 2 or reg_bias) else gi
            for i, (gi, p) in enumerate(zip(g, ps, strict=True))]


@pytest.mark.parametrize("reg_bias", [False, True])
def test_gd_matches_hand_rolled_loop(reg_bias: bool) -> None:
    obj, init = _tanh_bias_case(reg_bias)
    lr, steps = 0.1, 25
    seen: list[tuple[int, tuple[torch.Tensor, ...]]] = []
    res = train(obj, init, TrainConfig(lr=lr, steps=steps, polish=False, record_every=5),
                observer=lambda t, ps: seen.append((t, tuple(p.clone() for p in ps))))
    ps = [p.clone() for p in init]
    iterates = [tuple(ps)]
    for _ in range(steps):
        g = _hand_grad(obj.data.X, obj.data.Y, obj.lam, reg_bias, ps)
        ps = [p - lr * gi for p, gi in zip(ps, g, strict=True)]
        iterates.append(tuple(ps))
    for a, b in zip(res.params, ps, strict=True):
        assert torch.equal(a, b), f"GD differs from the hand-rolled loop by {(a - b).abs().max()}"
    # the observer saw every iterate, starting with the initial point
    assert [t for t, _ in seen] == list(range(steps + 1))
    for (_, got), ref in zip(seen, iterates, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(got, ref, strict=True))
    assert res.gd_steps == steps and res.lbfgs_iters == 0 and res.continuation_iters == 0
    assert res.optimizer_steps == steps
    assert res.finite and res.stop_reason == "gd steps done" and res.kink_band is None
    assert res.status is TrainStatus.ITERATIONS
    assert res.trace_steps == (0, 5, 10, 15, 20, 25)
    for t, F in zip(res.trace_steps, res.trace_F, strict=True):
        assert F == float(obj.value(iterates[t]))
    for t, r in zip(res.trace_steps, res.trace_residual, strict=True):
        assert r == relative_residual(obj, iterates[t])
    assert all(torch.equal(a, b) for a, b in zip(res.initial, init, strict=True))
    assert res.trace_F[-1] < res.trace_F[0]


def test_steps_zero_returns_init() -> None:
    obj, init = _tanh_bias_case()
    res = train(obj, init, TrainConfig(steps=0, polish=False))
    assert all(torch.equal(a, b) for a, b in zip(res.params, init, strict=True))
    assert res.trace_steps == (0,) and res.gd_steps == 0 and res.finite


def test_momentum_matches_heavy_ball() -> None:
    obj, init = _tanh_bias_case()
    lr, mom, steps = 0.05, 0.8, 15
    res = train(obj, init, TrainConfig(lr=lr, steps=steps, optimizer="momentum", momentum=mom,
                                       polish=False))
    ps = [p.clone() for p in init]
    buf = [torch.zeros_like(p) for p in ps]
    for _ in range(steps):
        g = _hand_grad(obj.data.X, obj.data.Y, obj.lam, False, ps)
        buf = [mom * b + gi for b, gi in zip(buf, g, strict=True)]
        ps = [p - lr * b for p, b in zip(ps, buf, strict=True)]
    # two routes to each gradient (autograd, by hand) and three updates per step, over
    # ``steps`` steps; the scale of the iterates bounds what each rounding is relative to
    ops = steps * (2 * gradient_ops(obj.arch.widths, obj.data.n) + 6)
    for a, b in zip(res.params, ps, strict=True):
        assert_close(a, b, ops=ops, scale=max(float(a.abs().max()), float(
            b.abs().max())) + steps * lr * float(max(x.abs().max() for x in buf)))
    assert res.finite and float(obj.value(res.params)) < float(obj.value(init))


def test_adam_runs_and_first_step_is_sign_step() -> None:
    obj, init = _tanh_bias_case()
    lr = 1e-3
    one = train(obj, init, TrainConfig(lr=lr, steps=1, optimizer="adam", polish=False))
    g = obj.grad(init)
    for p1, p0, gi in zip(one.params, init, g, strict=True):
        # bias-corrected first Adam step: lr · g/(|g| + ε) ≈ lr · sign(g)
        # one Adam step (moments, bias corrections, square root, division) against the
        # formula: the step is relative to lr; p0 − p1 cancels against |p0| in one rounding
        ops = 2 * gradient_ops(obj.arch.widths, obj.data.n) + 16
        assert_close(p0 - p1, lr * gi / (gi.abs() + 1e-8), ops=ops,
                     scale=lr + float(p0.abs().max()))
    many = train(obj, init, TrainConfig(lr=1e-2, steps=60, optimizer="adam", polish=False))
    assert many.finite and many.gd_steps == 60
    assert float(obj.value(many.params)) < float(obj.value(init))


def test_divergence_stops_without_raising() -> None:
    arch = Architecture((3, 6, 2), "relu")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=1), 1e-2)
    res = train(obj, init_params(arch, 0), TrainConfig(lr=1e6, steps=50, record_every=5))
    assert res.finite is False and res.status is TrainStatus.DIVERGED, res.stop_reason
    assert "lr=1e+06" in res.stop_reason
    assert res.gd_steps < 50 and res.gd_steps % 5 == 0
    assert res.lbfgs_iters == 0 and res.continuation_iters == 0  # no polishing after it
    assert all(math.isfinite(f) for f in res.trace_F)  # only finite values are recorded


def test_time_budget_stops_gd_and_skips_polish() -> None:
    obj, init = _tanh_bias_case()
    res = train(obj, init, TrainConfig(steps=1000, max_seconds=0.0))
    assert res.gd_steps == 1
    assert res.status is TrainStatus.TIME_LIMIT, res.stop_reason
    assert res.finite and res.lbfgs_iters == 0 and "lbfgs+newton" not in res.stages


@pytest.mark.parametrize("kwargs, name", [
    ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"lr": math.nan}, "lr"), ({"lr": math.inf}, "lr"),
    ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"), ({"optimizer": "sgd"}, "optimizer"),
])
def test_train_config_validation(kwargs: dict, name: str) -> None:
    with pytest.raises(UsageError) as info:
        TrainConfig(**kwargs)
    assert info.value.name == name
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_train_config_refuses_record_every_zero() -> None:
    """BUG (verify/train.py TrainConfig): record_every=0 is accepted and training then dies
    with ZeroDivisionError (``t % cfg.record_every``) instead of a UsageError up front."""
    obj, init = _tanh_bias_case()
    try:
        cfg = TrainConfig(steps=3, polish=False, record_every=0)
    except UsageError:
        return
    try:
        train(obj, init, cfg)
    except ZeroDivisionError as exc:
        raise AssertionError("BUG verify/train.py: TrainConfig(record_every=0) is accepted and "
                             f"train() then raises ZeroDivisionError ({exc})") from exc


# --------------------------------------------------------------------------- residual


def test_relative_residual_definition() -> None:
    obj, params = _tanh_bias_case()
    g = obj.grad(params)
    ref = max(float(torch.linalg.norm(g[k])) / (obj.lam * float(torch.linalg.norm(params[k])))
              for k in range(obj.arch.depth))  # weights only, biases excluded
    # the same gradient, norms of P terms and a division on each side
    P = max(p.numel() for p in params)
    assert relative_residual(obj, params) == within(ref, ops=2 * (P + 3))
    # the same via R_k = W_k + g_k/λ with the data gradient
    dg = obj.data_grad(params)
    via_R = max(float(torch.linalg.norm(params[k] + dg[k] / obj.lam))
                / float(torch.linalg.norm(params[k])) for k in range(obj.arch.depth))
    assert relative_residual(obj, params) == pytest.approx(via_R, rel=1e-12)
    # an explicit gradient is used as given
    fake = tuple(torch.zeros_like(p) for p in params)
    assert relative_residual(obj, params, fake) == 0.0
    # a zero layer gives ∞
    zero = (torch.zeros_like(params[0]), *params[1:])
    assert relative_residual(obj, zero) == math.inf


def test_relative_residual_lambda_zero_is_infinite() -> None:
    """BUG (verify/train.py relative_residual): with λ = 0 it returns from inside the loop at
    the first layer, giving 0.0 when ∇_{W_1}F = 0 even though a later layer has a nonzero
    gradient (docstring: "∞ for a zero layer or λ = 0")."""
    arch = Architecture((3, 4, 2), "identity")
    obj = Objective(arch, D.teacher(8, 3, 2, seed=0), 0.0)
    W1 = init_params(arch, 0)[0]
    W2 = torch.zeros(2, 4, dtype=F64)  # ∇_{W_1} L̂ = W_2ᵀ(…) = 0, ∇_{W_2} L̂ ≠ 0
    g = obj.grad((W1, W2))
    assert float(g[0].norm()) == 0.0 and float(g[1].norm()) > 0.0
    r = relative_residual(obj, (W1, W2))
    assert r == math.inf, (
        f"BUG verify/train.py relative_residual: λ = 0 with ‖∇W_2 F‖ = {float(g[1].norm()):.3g}"
        f" > 0 returned {r} (only layer 1 is inspected)")


# --------------------------------------------------------------------------- polishing


def test_softplus_net_polishes_to_tiny_residual() -> None:
    arch = Architecture((3, 5, 2), "softplus")
    obj = Objective(arch, D.teacher(10, 3, 2, seed=2), 1e-2)
    init = init_params(arch, 1)
    res = train(obj, init, TrainConfig(lr=0.1, steps=100, target=1e-10, max_seconds=20))
    assert res.finite
    assert relative_residual(obj, res.params) <= 1e-8, res.stop_reason
    # the status says what the residual says: converged exactly when r ≤ target
    assert ((res.status is TrainStatus.CONVERGED)
            == (relative_residual(obj, res.params) <= 1e-10)), (res.status, res.stop_reason)
    assert res.lbfgs_iters > 0 and len(res.trace_steps) >= 2
    assert res.trace_residual[-1] < res.trace_residual[0]
    assert float(obj.value(res.params)) < float(obj.value(init))
    assert res.kink_band is None and res.continuation_iters == 0  # smooth: no continuation


def test_relu_net_continuation_sets_kink_band() -> None:
    arch = Architecture((3, 5, 2), "relu")
    obj = Objective(arch, D.teacher(16, 3, 2, seed=0), 1e-2)
    res = train(obj, init_params(arch, 1),
                TrainConfig(lr=0.05, steps=200, target=1e-10, max_seconds=20))
    assert isinstance(res, TrainResult) and res.finite
    r = relative_residual(obj, res.params)
    assert res.kink_band is not None or r <= 1e-10, (res.stop_reason, r)
    if res.kink_band is not None:
        # the band is the largest |z| the selection treats as kinked (0: only zero units)
        assert res.kink_band >= 0 and res.continuation_iters > 0
        assert "continuation" in res.stages and "kink stage" in res.stop_reason
        clarke = stationarity(obj, res.params, res.slopes, "clarke") if res.slopes else None
        assert min(r, max(clarke.r) if clarke else math.inf) <= 1e-10, res.stop_reason
