"""A network of either kind — dense (:mod:`verify.nets.dense`) or 2-D conv
(:mod:`verify.nets.conv2d`) — behind one set of functions: its weights, its initialisation,
its output. Everything above ``nets`` goes through these, never through the kind.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from verify.nets.activations import KinkSlopes, Params
from verify.nets.conv2d import ConvNet
from verify.nets.dense import Architecture, forward_internals

Network = Architecture | ConvNet


def weights(arch: Network, params: Params) -> Params:
    """The weight matrices W_1..W_L (biases excluded)."""
    return tuple(params[: arch.depth])


def init_params(arch: Architecture | ConvNet, seed: int, scale: float = 1.0,
                dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Params:
    """He-style Gaussian init, W_k ~ N(0, scale² · 2/d_{k−1}); biases start at 0.
    A conv net (:mod:`verify.nets.conv2d`) initialises itself."""
    if isinstance(arch, ConvNet):
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


def forward(arch: Network, params: Params, X: Tensor,
            kinks: KinkSlopes | None = None, beta: float | None = None) -> Tensor:
    """f(X), one row per sample (a conv net has no kinks: smooth σ only)."""
    if isinstance(arch, ConvNet):
        return arch.forward(params, X)
    return forward_internals(arch, params, X, kinks, beta)[0]
