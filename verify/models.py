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

if TYPE_CHECKING:
    from verify.convnet import ConvNet

Params = tuple[Tensor, ...]

HOMOGENEOUS = ("relu", "leaky_relu", "identity")
SMOOTH = ("tanh", "softplus", "identity")
ACTIVATIONS = HOMOGENEOUS[:2] + SMOOTH
LEAKY_SLOPE = 0.1


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
        """Whether σ has a kink at 0 (relu, leaky_relu)."""
        return self.activation in ("relu", "leaky_relu")

    def shapes(self) -> list[tuple[int, ...]]:
        w = [(self.widths[k + 1], self.widths[k]) for k in range(self.depth)]
        b = [(self.widths[k + 1],) for k in range(self.depth)] if self.bias else []
        return w + b

    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes())


def weights(arch: Architecture | ConvNet, params: Params) -> Params:
    """The weight matrices W_1..W_L (biases excluded)."""
    return tuple(params[: arch.depth])


def biases(arch: Architecture, params: Params) -> Params:
    return tuple(params[arch.depth :]) if arch.bias else ()


def init_params(arch: Architecture | ConvNet, seed: int, scale: float = 1.0,
                dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Params:
    """He-style Gaussian init, W_k ~ N(0, scale² · 2/d_{k−1}); biases start at 0.
    A conv net (:mod:`verify.convnet`) initialises itself."""
    if not isinstance(arch, Architecture):
        return arch.init(seed, scale, dtype, device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = []
    for k in range(arch.depth):
        fan_in = arch.widths[k]
        std = scale * math.sqrt((2.0 if arch.kinked else 1.0) / fan_in)
        out.append(torch.randn(arch.widths[k + 1], fan_in, generator=gen, dtype=dtype) * std)
    if arch.bias:
        out += [torch.zeros(arch.widths[k + 1], dtype=dtype) for k in range(arch.depth)]
    return tuple(t.to(device) for t in out)


def sigma(name: str, z: Tensor, beta: float | None = None) -> Tensor:
    """σ(z); for relu/leaky_relu with ``beta`` the smoothing softplus(βz)/β (continuation)."""
    if name == "relu":
        return torch.relu(z) if beta is None else torch.nn.functional.softplus(z, beta, 40.0)
    if name == "leaky_relu":
        if beta is not None:
            return LEAKY_SLOPE * z + (1 - LEAKY_SLOPE) * torch.nn.functional.softplus(
                z, beta, 40.0)
        return torch.nn.functional.leaky_relu(z, LEAKY_SLOPE)
    if name == "identity":
        return z
    if name == "tanh":
        return torch.tanh(z)
    if name == "softplus":
        return torch.nn.functional.softplus(z)
    raise ValueError(name)


def sigma_slope_range(name: str) -> tuple[float, float]:
    """The Clarke subdifferential of σ at 0: the interval of admissible slopes."""
    return (LEAKY_SLOPE, 1.0) if name == "leaky_relu" else (0.0, 1.0)


@dataclass(frozen=True)
class KinkSlopes:
    """Slopes chosen for kinked pre-activations (a Clarke subgradient selection).

    ``masks[k]`` marks the entries of layer k's pre-activation (n × d_k) treated as kinked,
    ``values[k]`` holds the chosen slopes at those entries (same shape, ignored elsewhere).
    """

    masks: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    piece: bool = False  # evaluate the linear piece σ(z) := slope·z instead (see _act)


def piece_of(kinks: KinkSlopes) -> KinkSlopes:
    """The same selection, evaluated as the linear piece: σ(z) = D ⊙ z with D the natural
    slope outside the kink band and the selected slope inside it. For a homogeneous net the
    piece f^D is multilinear in the layers, so Euler's identity holds for it exactly."""
    return KinkSlopes(kinks.masks, kinks.values, True)


def _act(arch: Architecture, z: Tensor, mask: Tensor | None, slope: Tensor | None,
         beta: float | None = None, piece: bool = False) -> Tensor:
    a = sigma(arch.activation, z, beta)
    if mask is None:
        return a
    natural = (z > 0).to(z.dtype) if arch.activation == "relu" else torch.where(
        z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE))
    if piece:
        return torch.where(mask > 0, slope, natural).detach() * z
    # Same value as σ(z); derivative replaced by `slope` on masked entries.
    dz = z - z.detach()
    return a + mask * (slope - natural) * dz


def forward_internals(arch: Architecture, params: Params, X: Tensor,
                      kinks: KinkSlopes | None = None, beta: float | None = None,
                      ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Output f(X) (n × d_L), pre-activations z_k and layer inputs h_{k−1} (k = 1..L).

    ``kinks`` overrides σ' at kinked entries (Clarke selections); ``beta`` replaces a kinked σ
    by its softplus smoothing (used only while training, never for a measurement).
    """
    W = weights(arch, params)
    b = biases(arch, params)
    h = X
    zs: list[Tensor] = []
    hs: list[Tensor] = []
    for k in range(arch.depth):
        hs.append(h)
        z = h @ W[k].T
        if arch.bias:
            z = z + b[k]
        zs.append(z)
        if k == arch.depth - 1:
            return z, zs, hs
        m = kinks.masks[k] if kinks is not None else None
        s = kinks.values[k] if kinks is not None else None
        a = _act(arch, z, m, s, beta, kinks is not None and kinks.piece)
        h = h + a if (arch.residual and k > 0 and a.shape == h.shape) else a
    raise AssertionError("unreachable")


def forward(arch: Architecture | ConvNet, params: Params, X: Tensor,
            kinks: KinkSlopes | None = None, beta: float | None = None) -> Tensor:
    """f(X), one row per sample (a conv net has no kinks: smooth σ only)."""
    if not isinstance(arch, Architecture):
        return arch.forward(params, X)
    return forward_internals(arch, params, X, kinks, beta)[0]
