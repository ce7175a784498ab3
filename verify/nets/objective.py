"""The regularised objective F(θ) = L̂(θ) + (λ/2) Σ_k ‖W_k‖_F² and its gradients.

L̂(θ) = (1/n) Σ_i ℓ(f(x_i), y_i) with ℓ squared (½‖f − y‖²), logistic (log(1 + e^{−y f}))
or cross-entropy. λ is λ_eff in the convention of THEOREMS.md ("Notation"). Biases are
regularised only when ``reg_bias`` is set (a control choice). The data gradient
g_k = ∇_{W_k} L̂ is what the stationarity residual R_k = W_k + g_k/λ is built from.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import torch
from torch import Tensor

from verify.errors import require
from verify.nets.activations import KinkSlopes, Params
from verify.nets.data import Dataset
from verify.nets.network import Network, forward


@dataclass(frozen=True)
class Objective:
    """What is minimised: architecture, data, λ and whether biases are regularised."""

    arch: Network
    data: Dataset
    lam: float
    reg_bias: bool = False
    beta: float | None = None  # softplus smoothing of a kinked σ, for continuation only

    def __post_init__(self) -> None:
        out = self.arch.widths[-1]
        if self.data.loss == "squared":
            require(self.data.Y.ndim == 2 and self.data.Y.shape[1] == out, "target width",
                    tuple(self.data.Y.shape), f"(n, {out}) to match the network's output width")
        elif self.data.loss == "ce":
            top = int(self.data.Y.max()) + 1 if self.data.n else 0
            require(top <= out, "classes", top, f"at most the output width {out}")
        else:
            require(out == 1, "output width", out, "1 for the logistic loss")
        require(self.data.X.shape[1] == self.arch.widths[0], "input width",
                self.data.X.shape[1], f"d_0 = {self.arch.widths[0]}")

    def loss(self, params: Params, kinks: KinkSlopes | None = None) -> Tensor:
        return data_loss(self.data, forward(self.arch, params, self.data.X, kinks, self.beta))

    def smoothed(self, beta: float | None) -> Objective:
        """The same objective with σ replaced by its β-smoothing (None: the original)."""
        return Objective(self.arch, self.data, self.lam, self.reg_bias, beta)

    def penalty(self, params: Params) -> Tensor:
        reg = params if (self.reg_bias or not self.arch.bias) else params[: self.arch.depth]
        # summed left to right as sum() would, without its int start (a Tensor for mypy)
        return 0.5 * self.lam * functools.reduce(operator.add, ((p * p).sum() for p in reg))

    def value(self, params: Params, kinks: KinkSlopes | None = None) -> Tensor:
        return self.loss(params, kinks) + self.penalty(params)

    def data_grad(self, params: Params, kinks: KinkSlopes | None = None) -> Params:
        """g = ∇L̂ for every parameter tensor (no regulariser)."""
        ps = tuple(p.detach().requires_grad_(True) for p in params)
        return tuple(torch.autograd.grad(self.loss(ps, kinks), ps))

    def grad(self, params: Params, kinks: KinkSlopes | None = None) -> Params:
        """∇F for every parameter tensor."""
        g = self.data_grad(params, kinks)
        reg = self.reg_bias or not self.arch.bias
        return tuple(gi + (self.lam * p if (reg or i < self.arch.depth) else 0.0)
                     for i, (gi, p) in enumerate(zip(g, params, strict=True)))


def data_loss(data: Dataset, out: Tensor) -> Tensor:
    """L̂ for the outputs ``out`` (n × d_L) and the targets of ``data``.

    With a leading network axis (``out`` K × n × d_L and ``data.Y`` K × n × …, as the batched
    forward of :mod:`verify.engine.ensemble` gives) the vector (L̂_i)_i, each network on its
    own targets: the reductions run over the trailing axes only, which for one network are
    all of them (the same arithmetic as a reduction over everything)."""
    n = int(out.shape[-2])
    if data.loss == "squared":
        return 0.5 * ((out - data.Y) ** 2).sum((-2, -1)) / n
    if data.loss == "logistic":
        return torch.nn.functional.softplus(-data.Y * out[..., 0]).mean(-1)
    if out.ndim == 2:
        return torch.nn.functional.cross_entropy(out, data.Y)
    # cross_entropy wants classes on axis 1: all K·n rows at once, then a mean per network
    return torch.nn.functional.cross_entropy(out.flatten(0, -2), data.Y.flatten(),
                                             reduction="none").view(data.Y.shape).mean(-1)


def flat(tensors: Params) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(vec: Tensor, like: Params) -> Params:
    out, i = [], 0
    for t in like:
        out.append(vec[i : i + t.numel()].view_as(t))
        i += t.numel()
    return tuple(out)
