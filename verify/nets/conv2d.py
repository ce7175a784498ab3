"""A small 2-D convolutional network on images, for the large scale (issue: 32×32×3 inputs).

Inputs are stored flattened, one row per sample (x ∈ R^{C·H·W}, channels first), like every
other data set, and reshaped here. Layer k (k = 1..m) is a 3×3 convolution with stride 2 and
padding 1, K_k ∈ R^{c_k × c_{k−1} × 3 × 3}, followed by σ; the head is dense,
A ∈ R^{d_out × c_m H_m W_m}:

    f(x) = A vec(σ(K_m ∗ … σ(K_1 ∗ x))).

There are no biases, so with σ = identity the network is positively homogeneous of degree 1
in each of K_1, …, K_m, A, and the weight-decay theorems that need homogeneity (T3) apply to
it as to an MLP: the parameters θ = (K_1, …, K_m, A) play the role of (W_1, …, W_L), with
‖·‖_F the norm of the flattened tensor. Alignment (T2) needs only differentiability.

Only smooth activations are offered: the kink machinery of :mod:`verify.engine.kinks` (Clarke
subgradients, smoothing continuation) is written for dense layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from verify.errors import require
from verify.nets.activations import SMOOTH, Params, sigma

KERNEL, STRIDE, PADDING = 3, 2, 1


@dataclass(frozen=True)
class ConvNet:
    """Shape of the conv net; it answers what :class:`verify.nets.dense.Architecture` answers
    (``widths``, ``depth``, ``shapes`` …) so the objective, training and certificate take it
    unchanged. ``widths`` are the flattened sizes (C·H·W, c_1 H_1 W_1, …, d_out)."""

    image: tuple[int, int, int]  # (C, H, W)
    channels: tuple[int, ...]  # c_1 … c_m
    d_out: int
    activation: str = "softplus"

    bias = False
    residual = False

    def __post_init__(self) -> None:
        require(len(self.image) == 3 and all(isinstance(v, int) and v >= 1
                                             for v in self.image), "image", self.image,
                "(channels, height, width), positive integers")
        require(len(self.channels) >= 1 and all(isinstance(c, int) and c >= 1
                                                for c in self.channels), "conv channels",
                self.channels, "one or more positive integers")
        require(isinstance(self.d_out, int) and self.d_out >= 1, "d_out", self.d_out,
                "a positive integer")
        require(self.activation in SMOOTH, "activation of a conv net", self.activation,
                f"one of {', '.join(SMOOTH)} (no kink handling for conv layers)")

    def spatial(self) -> list[tuple[int, int]]:
        """(H_k, W_k) after each conv layer, k = 0..m."""
        out = [self.image[1:]]
        for _ in self.channels:
            h, w = out[-1]
            out.append(((h + 2 * PADDING - KERNEL) // STRIDE + 1,
                        (w + 2 * PADDING - KERNEL) // STRIDE + 1))
        return out

    @property
    def widths(self) -> tuple[int, ...]:
        cs = (self.image[0], *self.channels)
        return (*(c * h * w for c, (h, w) in zip(cs, self.spatial(), strict=True)), self.d_out)

    @property
    def depth(self) -> int:
        return len(self.channels) + 1

    @property
    def homogeneous(self) -> bool:
        return self.activation == "identity"

    @property
    def kinked(self) -> bool:
        return False

    def shapes(self) -> list[tuple[int, ...]]:
        cs = (self.image[0], *self.channels)
        convs = [(cs[k + 1], cs[k], KERNEL, KERNEL) for k in range(len(self.channels))]
        return [*convs, (self.d_out, self.widths[-2])]

    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes())

    def init(self, seed: int, scale: float = 1.0, dtype: torch.dtype = torch.float64,
             device: str | torch.device = "cpu") -> Params:
        """Gaussian init with variance scale²/fan_in (fan_in = c_{k−1}·9 for a kernel)."""
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        out = []
        for shape in self.shapes():
            fan_in = math.prod(shape[1:])
            out.append(torch.randn(*shape, generator=gen, dtype=dtype)
                       * (scale / math.sqrt(fan_in)))
        return tuple(t.to(device) for t in out)

    def forward(self, params: Params, X: Tensor) -> Tensor:
        """f(X), one row per sample."""
        h = X.reshape(X.shape[0], *self.image)
        for K in params[:-1]:
            h = sigma(self.activation, torch.nn.functional.conv2d(
                h, K, stride=STRIDE, padding=PADDING))
        return h.reshape(X.shape[0], -1) @ params[-1].T
