"""The workloads the benchmarks time, as plain functions (usable without pytest).

FLOP counts are those of the matrix products only (elementwise work is ignored): a dense
layer z = h Wᵀ with h ∈ R^{n×a}, W ∈ R^{b×a} costs 2nab forward, 2nab for ∇_W and 2nab for
∇_h in the backward pass (no ∇_h for the first layer: the data needs no gradient).
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import torch

from verify.claims.strategies import image_convnet, wide_mlp
from verify.engine.certificate import Certificate, certify
from verify.engine.ensemble import train_ensemble
from verify.engine.residual import relative_residual
from verify.engine.result import TrainConfig, TrainResult, TrainStatus
from verify.engine.train import train
from verify.nets import data as D
from verify.nets.activations import Params
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective
from verify.run.executor import pin_threads

T = TypeVar("T")


# Benchmarks run on the GPU when there is one (the CUDA build of the same torch pin), else
# on the CPU; every timed workload ends with synchronize() so a GPU time is the work's time.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU"


def matmul_flops(n: int) -> float:
    """2n³ for an n×n by n×n product."""
    return 2.0 * n**3


def matmul(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(n, n, generator=gen, dtype=dtype).to(DEVICE),
            torch.randn(n, n, generator=gen, dtype=dtype).to(DEVICE))


def gd_step_flops(widths: tuple[int, ...], n: int) -> float:
    """Matmul FLOPs of one full-batch GD step (forward + backward), see module doc."""
    pairs = [widths[k] * widths[k + 1] for k in range(len(widths) - 1)]
    return 6.0 * n * sum(pairs) - 2.0 * n * pairs[0]


def mlp_problem(widths: tuple[int, ...], activation: str, n: int, seed: int = 0,
                lam: float = 1e-2) -> tuple[Objective, Params]:
    """Clusters data (squared loss), He init, float64 on :data:`DEVICE` (a lower precision
    is the training config's ``precision``, as in the harness)."""
    arch = Architecture(widths, activation)
    ds = D.clusters(n, widths[0], widths[-1], seed).to(DEVICE)
    init = init_params(arch, seed + 7919, device=DEVICE)
    return Objective(arch, ds, lam), init


def digits_problem(width: int, n: int, lam: float = 1e-3, activation: str = "relu",
                   seed: int = 0) -> tuple[Objective, Params]:
    """(64, width, 10) on the first n digits images (a seeded draw), cross-entropy, He init,
    float64 on :data:`DEVICE`."""
    arch = Architecture((64, width, 10), activation)
    ds = D.digits(n, seed, "ce").to(DEVICE)
    return Objective(arch, ds, lam), init_params(arch, seed + 7919, device=DEVICE)


def gd_steps(obj: Objective, init: Params, steps: int, lr: float = 0.01,
             precision: str = "float64") -> TrainResult:
    """The engine's full-batch GD phase only (no intermediate trace: record at the end)."""
    out = train(obj, init, TrainConfig(lr=lr, steps=steps, polish=False, record_every=steps,
                                       max_seconds=1e9, precision=precision))
    synchronize()
    return out


def ensemble_problems(K: int, width: int, n: int = 128) -> tuple[list[Objective], list[Params],
                                                                  list[float]]:
    """K nets (16, w, w, 4) on their own data, mixed λ ∈ {1e-3, 1e-2, 3e-2} and steps."""
    objs, inits, lrs = [], [], []
    for i in range(K):
        obj, init = mlp_problem((16, width, width, 4), "relu", n, seed=i,
                                lam=(1e-3, 1e-2, 3e-2)[i % 3])
        objs.append(obj)
        inits.append(init)
        lrs.append((0.005, 0.01, 0.02)[i % 3])
    return objs, inits, lrs


def ensemble_gd(objs: list[Objective], inits: list[Params], lrs: list[float],
                steps: int) -> list[TrainResult]:
    out = train_ensemble(objs, inits, [TrainConfig(lr=lr, steps=steps, polish=False,
                                                   record_every=steps, max_seconds=1e9)
                                       for lr in lrs])
    synchronize()
    return out


def loop_gd(objs: list[Objective], inits: list[Params], lrs: list[float],
            steps: int) -> list[TrainResult]:
    return [gd_steps(o, i, steps, lr) for o, i, lr in zip(objs, inits, lrs, strict=True)]


@dataclass(frozen=True)
class ToCertificate:
    """What one route reached: the certificate and the time train + certify took."""

    route: str
    seconds: float
    steps: int
    certificate: Certificate


def plain_gd_to(obj: Objective, init: Params, r_target: float = 1e-4, lr: float = 0.05,
                max_steps: int = 200_000, max_seconds: float = 60.0,
                every: int = 10) -> ToCertificate:
    """What the papers' code does: fixed-step full-batch GD until the relative residual
    r = max_k ‖∇_{W_k}F‖/(λ‖W_k‖) ≤ ``r_target`` (checked every ``every`` steps from the
    gradient the step uses anyway), or a step/time cap; then the engine's certificate at
    τ = r_target."""
    t0 = time.perf_counter()
    ps = tuple(p.detach().clone() for p in init)
    t, reached = 0, False
    while t < max_steps and time.perf_counter() - t0 < max_seconds:
        g = obj.grad(ps)
        if t % every == 0 and relative_residual(obj, ps, g) <= r_target:
            reached = True
            break
        ps = tuple(p - lr * gi for p, gi in zip(ps, g, strict=True))
        t += 1
    finite = all(bool(torch.isfinite(p).all()) for p in ps)
    status = (TrainStatus.DIVERGED if not finite else TrainStatus.CONVERGED if reached
              else TrainStatus.ITERATIONS if t == max_steps else TrainStatus.TIME_LIMIT)
    res = TrainResult(params=ps, initial=tuple(init), trace_steps=(), trace_F=(),
                      trace_residual=(), gd_steps=t, lbfgs_iters=0, continuation_iters=0,
                      stop_reason=f"plain GD: {t} steps", seconds=time.perf_counter() - t0,
                      status=status)
    cert, _ = certify(obj, res, r_target)
    return ToCertificate("plain GD", time.perf_counter() - t0, t, cert)


def engine_to(obj: Objective, init: Params, tau: float = 1e-6,
              max_seconds: float = 300.0) -> ToCertificate:
    """verify.engine.train.train with its defaults (GD + L-BFGS + Newton; kinked: continuation),
    then the certificate at τ (the harness default 1e-6). ``max_seconds`` is the engine's
    wall-clock safety net: a net that reaches it is not certified, with that reason."""
    t0 = time.perf_counter()
    res = train(obj, init, TrainConfig(max_seconds=max_seconds))
    cert, _ = certify(obj, res, tau)
    return ToCertificate("engine", time.perf_counter() - t0, res.optimizer_steps, cert)


def deep_weights(depth: int = 10, width: int = 1024, seed: int = 0) -> list[torch.Tensor]:
    arch = Architecture((width,) * (depth + 1), "relu")
    return list(init_params(arch, seed))


def weightwatcher_analyze(Ws: list[torch.Tensor]) -> object:
    """WeightWatcher's analyze() on a Sequential of bias-free Linear layers holding ``Ws``."""
    import weightwatcher

    layers = []
    for W in Ws:
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=W.dtype)
        with torch.no_grad():
            lin.weight.copy_(W)
        layers.append(lin)
    model = torch.nn.Sequential(*layers)
    return weightwatcher.WeightWatcher(model=model).analyze()


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9 if seconds > 0 else math.nan


# The large scale's networks (verify.claims.strategies) and a deeper MLP, for time and memory per
# step of the first phase at each precision.
LARGE = {
    "MLP 64-4096-10": lambda: wide_mlp("relu"),
    "MLP 64-4096-4096-10": lambda: replace(wide_mlp("relu"), widths=(64, 4096, 4096, 10)),
    "conv 3×32×32 → 16 → 32 → 10": lambda: image_convnet("softplus"),
}


def large_step(name: str, precision: str, steps: int) -> dict:
    """Run ``steps`` first-phase steps of a large network at ``precision`` in THIS process and
    return the phase's cost (:attr:`verify.engine.train.TrainResult.cost`) plus the process's peak
    RSS before training. Meant for a fresh process (:func:`in_fresh_process`), so the peak
    RSS is this workload's alone."""
    pin_threads(1)
    s = replace(LARGE[name](), precision=precision, steps=steps, polish=False)
    obj, init = s.objective(DEVICE), s.init(DEVICE)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    res = train(obj, init, s.train_config(1e9))
    return {**res.cost, "rss_before_bytes": before, "finite": res.finite}


def in_fresh_process(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a new (spawned) interpreter: its own peak RSS, no warm caches."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def digits_mlp(activation: str, steps: int = 300, lam: float = 1e-3
               ) -> tuple[torch.nn.Sequential, D.Dataset]:
    """A 64-32-10 MLP trained the way a user would — torch SGD (lr 0.5, weight_decay = λ),
    float32, full batch — on all 1797 digits (the model ``verify.audit`` is timed on)."""
    ds = D.digits(None, 0, "ce")
    torch.manual_seed(0)
    act = {"relu": torch.nn.ReLU, "softplus": torch.nn.Softplus}[activation]
    model = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False), act(),
                                torch.nn.Linear(32, 10, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=lam)
    X = ds.X.float()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), ds.Y).backward()
        opt.step()
    return model, ds
