"""Models for the audit tests: harness-trained nets as ``nn.Sequential`` and short torch
training runs (far from stationary)."""

from __future__ import annotations

import torch
from torch import nn

from verify.engine.setting import Context, Setting, Trained, realise
from verify.nets.data import Dataset

# a 6-8-8-3 net on clusters that the engine certifies in about a second
SMALL = Setting(widths=(6, 8, 8, 3), activation="identity", lam=0.01, n=20, data="clusters",
                loss="squared", seed=2, lr=0.05, steps=300)


def realised(activation: str = "identity") -> Trained:
    return realise(Setting(**{**SMALL.__dict__, "activation": activation}), Context(tau=1e-6))


def as_sequential(t: Trained, between: type[nn.Module] = nn.Identity) -> nn.Sequential:
    """The harness-trained bias-free MLP as an nn.Sequential of float64 Linear layers with
    ``between`` after every hidden layer."""
    widths = t.objective.arch.widths
    mods: list[nn.Module] = []
    for k, W in enumerate(t.result.params[: len(widths) - 1]):
        lin = nn.Linear(widths[k], widths[k + 1], bias=False, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(W)
        mods.append(lin)
        if k < len(widths) - 2:
            mods.append(between())
    return nn.Sequential(*mods)


def sgd_trained(model: nn.Sequential, data: Dataset, steps: int, lr: float = 0.5,
                weight_decay: float = 1e-3, seed: int = 0) -> nn.Sequential:
    """A few full-batch steps of torch's SGD in float32 (coupled decay: λ_eff = weight_decay),
    the way a user trains."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    X = data.X.float()
    for _ in range(steps):
        opt.zero_grad()
        out = model(X)
        loss = (nn.functional.cross_entropy(out, data.Y) if data.loss == "ce"
                else 0.5 * ((out - data.Y.float()) ** 2).sum() / data.n)
        loss.backward()
        opt.step()
    return model
