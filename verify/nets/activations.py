"""Activations σ, their Clarke slopes at the kink, and parameter tuples.

``Params`` is the functional form of a network: a tuple of tensors (weights first, then
biases). σ is applied element-wise; for the kinked ones (relu, leaky_relu) a
:class:`KinkSlopes` selection replaces σ'(0) by a chosen slope in the Clarke interval
(THEOREMS.md, "Kinks").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from verify.names import ACTIVATIONS, HOMOGENEOUS, SMOOTH  # noqa: F401  (torch-free)

Params = tuple[Tensor, ...]


LEAKY_SLOPE = 0.1


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
