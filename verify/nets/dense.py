"""Fully connected networks in functional form.

f(x) = W_L σ(W_{L−1} … σ(W_1 x)) with W_k ∈ R^{d_k × d_{k−1}} (THEOREMS.md, "Notation").
Parameters are a tuple of tensors — the L weights first, then the L biases when the
architecture has them — so that many networks can later be stacked and batched with
``torch.func``. Inputs are stored row-wise, X ∈ R^{n × d_0} (the transpose of the paper's
d_0 × n convention); a layer acts as ``h @ W.T``.

"Homogeneous" (bias-free, σ positively 1-homogeneous: relu, leaky_relu, identity) is the
assumption of T1, T3, T4; tanh, softplus, biases and residual blocks are the controls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from verify.errors import require
from verify.nets.activations import (
    ACTIVATIONS,
    HOMOGENEOUS,
    LEAKY_SLOPE,
    KinkSlopes,
    Params,
    sigma,
)

if TYPE_CHECKING:  # for annotations only: conv2d never imports this module
    from verify.nets.conv2d import ConvNet


@dataclass(frozen=True)
class Architecture:
    """Shape and kind of a fully connected network.

    ``widths = (d_0, d_1, …, d_L)``; ``residual`` adds skip connections h_k = h_{k−1} +
    σ(W_k h_{k−1}) to hidden layers of equal width (a negative control for T3).
    """

    widths: tuple[int, ...]
    activation: str = "relu"
    bias: bool = False
    residual: bool = False

    def __post_init__(self) -> None:
        require(len(self.widths) >= 2, "depth", len(self.widths) - 1, "an integer ≥ 1")
        for w in self.widths:
            require(isinstance(w, int) and not isinstance(w, bool) and w >= 1, "width", w,
                    "a positive integer")
        require(self.activation in ACTIVATIONS, "activation", self.activation,
                f"one of {', '.join(ACTIVATIONS)}")

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    @property
    def homogeneous(self) -> bool:
        return self.activation in HOMOGENEOUS and not self.bias and not self.residual

    @property
    def kinked(self) -> bool:
        """Whether F has kinks: σ has one at 0 (relu, leaky_relu) and some layer applies it
        (a depth-1 network f(x) = W_1 x applies no σ: it is linear, without kinks)."""
        return self.activation in ("relu", "leaky_relu") and self.depth >= 2

    def shapes(self) -> list[tuple[int, ...]]:
        w: list[tuple[int, ...]] = [(self.widths[k + 1], self.widths[k])
                                    for k in range(self.depth)]
        b: list[tuple[int, ...]] = ([(self.widths[k + 1],) for k in range(self.depth)]
                                    if self.bias else [])
        return w + b

    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes())


def biases(arch: Architecture, params: Params) -> Params:
    return tuple(params[arch.depth :]) if arch.bias else ()


def _act(arch: Architecture, z: Tensor, mask: Tensor | None, slope: Tensor | None,
         beta: float | None = None, piece: bool = False) -> Tensor:
    a = sigma(arch.activation, z, beta)
    if mask is None or slope is None:  # the masks and slopes of KinkSlopes come together
        return a
    natural = (z > 0).to(z.dtype) if arch.activation == "relu" else torch.where(
        z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE))
    if piece:
        return torch.where(mask > 0, slope, natural).detach() * z
    # Same value as σ(z); derivative replaced by `slope` on masked entries.
    dz = z - z.detach()
    return a + mask * (slope - natural) * dz


def forward_internals(arch: Architecture | ConvNet, params: Params, X: Tensor,
                      kinks: KinkSlopes | None = None, beta: float | None = None,
                      ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Output f(X) (n × d_L), pre-activations z_k and layer inputs h_{k−1} (k = 1..L).

    ``kinks`` overrides σ' at kinked entries (Clarke selections); ``beta`` replaces a kinked σ
    by its softplus smoothing (used only while training, never for a measurement).
    Every tensor may carry a leading network axis (weights K × d_k × d_{k−1}, biases K × d_k,
    inputs K × n × d_0): the layer maps are then batched matmuls, K independent networks in
    one pass (:mod:`verify.engine.ensemble`); without it the arithmetic is the same.
    Dense nets only: the callers (kinks, Clarke residuals, per-layer internals) take an
    objective's network, which is a conv net only where none of them runs (a conv net has
    smooth σ and no per-layer matrices z_k = W_k h_{k−1}).
    """
    if not isinstance(arch, Architecture):
        raise TypeError(f"per-layer internals need a dense Architecture, got {arch!r}")
    W = tuple(params[: arch.depth])
    b = biases(arch, params)
    h = X
    zs: list[Tensor] = []
    hs: list[Tensor] = []
    for k in range(arch.depth):
        hs.append(h)
        z = h @ W[k].mT
        if arch.bias:
            z = z + b[k].unsqueeze(-2)
        zs.append(z)
        if k == arch.depth - 1:
            return z, zs, hs
        m = kinks.masks[k] if kinks is not None else None
        s = kinks.values[k] if kinks is not None else None
        a = _act(arch, z, m, s, beta, kinks is not None and kinks.piece)
        h = h + a if (arch.residual and k > 0 and a.shape == h.shape) else a
    raise AssertionError("unreachable")
