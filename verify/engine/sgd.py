"""Mini-batch stochastic gradients with coupled weight decay (THEOREMS.md, T5 and T7).

One SGD step on a batch b of size B is W ← (1 − ηλ)W − η G_b with G_b = ∇_W L̂_b the data
gradient of the batch loss L̂_b = (1/B) Σ_{i∈b} ℓ_i: the decay is *coupled* (it is the
gradient of (λ/2)‖W‖², as in torch ``SGD(weight_decay=λ)``). Batches are drawn without
replacement within an epoch from a seeded permutation, so a run is reproducible from its
seed; the last batch of an epoch is smaller when B does not divide n.

:mod:`verify.engine.train` runs the steps (plain, momentum and Adam share its loop); this module
holds the pieces: the sampler, the batch objective, per-batch / per-sample gradients, and the
optimisers as pure (init, update) pairs (:class:`Optimizer`, as in optax), which the single
network route and the batched ensemble (:mod:`verify.engine.ensemble`) both step with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from verify.engine.result import OPTIMIZERS
from verify.errors import UsageError, require
from verify.nets.activations import Params
from verify.nets.data import Dataset
from verify.nets.dense import forward_internals
from verify.nets.network import forward
from verify.nets.objective import Objective, data_loss


def batches(n: int, batch: int, seed: int) -> Iterator[Tensor]:
    """Index tensors of successive batches: each epoch a fresh seeded permutation of range(n)
    cut into pieces of ``batch`` (the last one shorter when ``batch`` does not divide n)."""
    require(isinstance(batch, int) and 1 <= batch <= n, "batch", batch,
            f"an integer in [1, n={n}]")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    while True:
        yield from torch.randperm(n, generator=gen).split(batch)


def epoch(n: int, batch: int, seed: int) -> tuple[Tensor, ...]:
    """The batches of one epoch (a partition of range(n)) from :func:`batches`."""
    it = batches(n, batch, seed)
    out: list[Tensor] = []
    while sum(len(b) for b in out) < n:
        out.append(next(it))
    return tuple(out)


def subset(data: Dataset, idx: Tensor) -> Dataset:
    """The samples ``idx`` of ``data`` (same loss and name)."""
    i = idx.to(data.X.device)
    lab = None if data.labels is None else data.labels[i]
    return Dataset(data.X[i], data.Y[i], data.loss, data.name, lab)


def on_batch(obj: Objective, idx: Tensor) -> Objective:
    """F_b = L̂_b + (λ/2)Σ‖W‖²: the objective restricted to the batch ``idx``."""
    return Objective(obj.arch, subset(obj.data, idx), obj.lam, obj.reg_bias, obj.beta)


def per_sample_grads(obj: Objective, params: Params) -> Params:
    """∇ℓ_s for every sample s (data part only, no decay): one tensor per parameter with a
    leading axis of length n (torch.func vmap over the samples)."""
    data = obj.data

    def loss_one(ps: Params, x: Tensor, y: Tensor) -> Tensor:
        one = Dataset(x.unsqueeze(0), y.unsqueeze(0), data.loss, data.name)
        return data_loss(one, forward(obj.arch, ps, one.X))

    grads = torch.func.vmap(torch.func.grad(loss_one), in_dims=(None, 0, 0))(
        tuple(p.detach() for p in params), data.X, data.Y)
    return tuple(grads)


def layer_terms(obj: Objective, params: Params) -> tuple[tuple[Tensor, Tensor], ...]:
    """For each layer k, (δ_k, h_{k−1}) with g_k = ∇_{W_k} L̂ = δ_kᵀ h_{k−1}: δ_k (n × d_k) is
    ∂L̂/∂z_k at the pre-activations and h_{k−1} (n × d_{k−1}) the layer input. g_k is thus a
    sum of n outer products — the fact behind T5(a) and T7."""

    ps = tuple(p.detach().requires_grad_(True) for p in params)
    out, zs, hs = forward_internals(obj.arch, ps, obj.data.X)
    deltas = torch.autograd.grad(data_loss(obj.data, out), zs, allow_unused=True)
    return tuple((d if d is not None else torch.zeros_like(z), h.detach())
                 for d, z, h in zip(deltas, zs, hs, strict=True))


# --- optimisers: pure (init, update) pairs -------------------------------------------------
#
# ``g`` is the gradient of the objective being minimised, decay included (coupled decay:
# g = ∇L̂ + λθ, as in torch ``SGD(weight_decay=λ)`` and ``Adam(weight_decay=λ)``). A step size
# (or momentum coefficient) is a float, or a tensor of shape (K,) for a stack of K networks
# (every parameter with a leading network axis): it is viewed as (K, 1, …, 1) per parameter,
# so network i steps with its own η_i and the arithmetic of each network is that of the
# float case. Parameters come back as new tensors; nothing is updated in place.

Rate = float | Tensor
OptState = tuple[object, ...]


class Optimizer(NamedTuple):
    """``init(params) → state``; ``update(grads, state, params) → (new params, new state)``."""

    name: str
    init: Callable[[Params], OptState]
    update: Callable[[Params, OptState, Params], tuple[Params, OptState]]


def per_network(rate: Rate, p: Tensor) -> Rate:
    """``rate`` broadcast against ``p``: a float as is; a (K,) tensor as (K, 1, …, 1)."""
    if isinstance(rate, Tensor):
        return rate.to(p.dtype).view(-1, *([1] * (p.ndim - 1)))
    return rate


def gd(lr: Rate) -> Optimizer:
    """Gradient descent: θ(t+1) = θ(t) − η g(t). No state."""

    def init(params: Params) -> OptState:
        return ()

    def update(grads: Params, state: OptState, params: Params) -> tuple[Params, OptState]:
        return tuple(p - per_network(lr, p) * g
                     for p, g in zip(params, grads, strict=True)), state

    return Optimizer("gd", init, update)


class MomentumState(NamedTuple):
    """The velocity b (one tensor per parameter), b(0) = 0."""

    velocity: Params


def momentum(lr: Rate, mu: Rate) -> Optimizer:
    """Heavy ball, torch ``SGD(momentum=μ)`` form (no dampening):
    b(t) = μ b(t−1) + g(t),  θ(t) = θ(t−1) − η b(t),  b(0) = 0."""

    def init(params: Params) -> OptState:
        return MomentumState(tuple(torch.zeros_like(p) for p in params))

    def update(grads: Params, state: OptState, params: Params) -> tuple[Params, OptState]:
        assert isinstance(state, MomentumState)
        buf = tuple(per_network(mu, b) * b + g
                    for b, g in zip(state.velocity, grads, strict=True))
        return (tuple(p - per_network(lr, p) * b for p, b in zip(params, buf, strict=True)),
                MomentumState(buf))

    return Optimizer("momentum", init, update)


class AdamState(NamedTuple):
    """Steps taken t, first moment m and second moment v (m(0) = v(0) = 0)."""

    step: int
    mu: Params
    nu: Params


ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def adam(lr: Rate, b1: float = ADAM_BETAS[0], b2: float = ADAM_BETAS[1],
         eps: float = ADAM_EPS) -> Optimizer:
    """Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980v9,
    Algorithm 1) with coupled decay (torch ``Adam(weight_decay=λ)``: the decay is in g):
    m(t) = β₁ m(t−1) + (1−β₁) g(t),  v(t) = β₂ v(t−1) + (1−β₂) g(t)²,
    θ(t) = θ(t−1) − η m̂ / (√v̂ + ε) with the bias corrections m̂ = m(t)/(1−β₁ᵗ),
    v̂ = v(t)/(1−β₂ᵗ), elementwise."""

    def init(params: Params) -> OptState:
        return AdamState(0, tuple(torch.zeros_like(p) for p in params),
                         tuple(torch.zeros_like(p) for p in params))

    def update(grads: Params, state: OptState, params: Params) -> tuple[Params, OptState]:
        assert isinstance(state, AdamState)
        t = state.step + 1
        m = tuple(b1 * m + (1 - b1) * g for m, g in zip(state.mu, grads, strict=True))
        v = tuple(b2 * v + (1 - b2) * g * g for v, g in zip(state.nu, grads, strict=True))
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = tuple(p - per_network(lr, p) * (mi / c1) / ((vi / c2).sqrt() + eps)
                    for p, mi, vi in zip(params, m, v, strict=True))
        return new, AdamState(t, m, v)

    return Optimizer("adam", init, update)


def optimizer(name: str, lr: Rate, mu: Rate = 0.9) -> Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZERS`) at step size ``lr`` (``mu``: the
    momentum coefficient, used by ``momentum`` only)."""
    if name == "gd":
        return gd(lr)
    if name == "momentum":
        return momentum(lr, mu)
    if name == "adam":
        return adam(lr)
    raise UsageError("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
