"""A minimal 1-D convolutional layer, for weight sharing in THEOREMS.md T5(a).

The input of one sample is a signal with ``channels`` channels and ``length`` positions.
The layer weight W ∈ R^{c_out × (channels·kernel)} is applied at m = (length − kernel)/stride
+ 1 patches p_{i,1..m} of each sample; the network is f(x) = A vec(relu(W p_{i,j})_j) with
a linear head A. The gradient of W on a batch b is Σ_{i∈b} Σ_{j≤m} δ_{i,j} p_{i,j}ᵀ — a sum of
B·m outer products — so its rank is at most min(c_out, channels·kernel, B·m).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from verify.errors import require


@dataclass(frozen=True)
class Conv1d:
    """Shape of the conv net: signal (channels × length), kernel, stride, c_out, d_out."""

    channels: int
    length: int
    kernel: int
    stride: int
    out_channels: int
    d_out: int = 1

    def __post_init__(self) -> None:
        for name in ("channels", "length", "kernel", "stride", "out_channels", "d_out"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 1, name, v, "a positive integer")
        require(self.kernel <= self.length, "kernel", self.kernel,
                f"an integer ≤ length={self.length}")

    @property
    def patches(self) -> int:
        """m, the number of positions the weight is applied at."""
        return (self.length - self.kernel) // self.stride + 1

    @property
    def d_in(self) -> int:
        """Columns of W: channels · kernel."""
        return self.channels * self.kernel


def init(conv: Conv1d, seed: int) -> tuple[Tensor, Tensor]:
    """He-initialised (W, A) in float64."""
    gen = torch.Generator().manual_seed(int(seed))
    W = torch.randn(conv.out_channels, conv.d_in, generator=gen, dtype=torch.float64)
    A = torch.randn(conv.d_out, conv.out_channels * conv.patches, generator=gen,
                    dtype=torch.float64)
    return W * (2.0 / conv.d_in) ** 0.5, A * (1.0 / (conv.out_channels * conv.patches)) ** 0.5


def signals(conv: Conv1d, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded batch of n Gaussian signals X (n × channels × length) and Gaussian targets
    Y (n × d_out), float64: data for the rank of a batch gradient, which holds at any data."""
    gen = torch.Generator().manual_seed(int(seed))
    X = torch.randn(n, conv.channels, conv.length, generator=gen, dtype=torch.float64)
    Y = torch.randn(n, conv.d_out, generator=gen, dtype=torch.float64)
    return X, Y


def patches(conv: Conv1d, X: Tensor) -> Tensor:
    """The m patches of each sample: (n, channels, length) → (n, m, channels·kernel)."""
    P = X.unfold(2, conv.kernel, conv.stride)  # (n, channels, m, kernel)
    return P.permute(0, 2, 1, 3).reshape(X.shape[0], conv.patches, conv.d_in)


def forward(conv: Conv1d, W: Tensor, A: Tensor, X: Tensor) -> tuple[Tensor, Tensor]:
    """f(X) (n × d_out) and the pre-activations Z = P Wᵀ (n × m × c_out)."""
    Z = patches(conv, X) @ W.T
    return torch.relu(Z).reshape(X.shape[0], -1) @ A.T, Z


def weight_gradient(conv: Conv1d, W: Tensor, A: Tensor, X: Tensor, Y: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """∇_W of the batch loss (1/B)Σ ½‖f(x_i) − y_i‖², with the terms it is a sum of:
    returns (G, δ, P) where G = Σ_{i,j} δ_{i,j} P_{i,j}ᵀ (δ: n × m × c_out, P: n × m × d_in)."""
    Wl = W.detach().requires_grad_(True)
    out, Z = forward(conv, Wl, A, X)
    loss = 0.5 * ((out - Y) ** 2).sum() / X.shape[0]
    G, delta = torch.autograd.grad(loss, (Wl, Z))
    return G, delta, patches(conv, X)
