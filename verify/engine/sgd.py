"""Mini-batch stochastic gradients with coupled weight decay (THEOREMS.md, T5 and T7).

One SGD step on a batch b of size B is W ← (1 − ηλ)W − η G_b with G_b = ∇_W L̂_b the data
gradient of the batch loss L̂_b = (1/B) Σ_{i∈b} ℓ_i: the decay is *coupled* (it is the
gradient of (λ/2)‖W‖², as in torch ``SGD(weight_decay=λ)``). Batches are drawn without
replacement within an epoch from a seeded permutation, so a run is reproducible from its
seed; the last batch of an epoch is smaller when B does not divide n.

:mod:`verify.engine.train` runs the steps (plain, momentum and Adam share its loop); this module
holds the pieces: the sampler, the batch objective, and per-batch / per-sample gradients.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from verify.errors import require
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
