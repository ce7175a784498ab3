"""Per-layer internals of a network on its training set: layer inputs and back-propagated
errors, one row per sample.

For layer k with pre-activation a_{k,i} = W_k z_{k,i} (+ b_k), the input z_{k,i} = h_{k−1}(x_i)
and the error δ_{k,i} = ∂ℓ(f(x_i), y_i)/∂a_{k,i} give the data gradient as a sum of n outer
products (THEOREMS.md T4, T6, T8):

    g_k = ∇_{W_k} L̂ = (1/n) Σ_i δ_{k,i} z_{k,i}ᵀ.

At kinks the errors follow the same Clarke slope selection as the gradient they are compared
with (``kinks``), so the identity is exact for every selection. Computed once with one
backward pass and reused by every claim that decomposes g_k by samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from verify.nets.activations import KinkSlopes, Params
from verify.nets.dense import forward_internals
from verify.nets.objective import Objective, data_loss


@dataclass(frozen=True)
class Internals:
    """``inputs[k]`` = z_k (n × d_{k−1}), ``errors[k]`` = δ_k (n × d_k), k = 0..L−1
    (layer k + 1 of the paper), and the output f(X) (n × d_L)."""

    inputs: tuple[Tensor, ...]
    errors: tuple[Tensor, ...]
    output: Tensor

    @property
    def n(self) -> int:
        return int(self.output.shape[0])

    def gradient(self, k: int) -> Tensor:
        """g_k = (1/n) Σ_i δ_{k,i} z_{k,i}ᵀ from the stored rows."""
        return self.errors[k].T @ self.inputs[k] / self.n


def internals(obj: Objective, params: Params, kinks: KinkSlopes | None = None) -> Internals:
    """Layer inputs and per-sample errors of ``params`` on ``obj.data``.

    L̂ = (1/n) Σ ℓ_i and row i of a pre-activation depends on sample i only, so the gradient
    of n·L̂ with respect to the pre-activation matrix has δ_{k,i} as its row i.
    """
    ps = tuple(p.detach().requires_grad_(True) for p in params)
    out, zs, hs = forward_internals(obj.arch, ps, obj.data.X, kinks, obj.beta)
    total = data_loss(obj.data, out) * obj.data.n
    deltas = torch.autograd.grad(total, zs)
    return Internals(tuple(h.detach() for h in hs), tuple(d.detach() for d in deltas),
                     out.detach())
