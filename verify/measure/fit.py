"""How well a trained network fits its training data, and whether it fits at all.

A rank measured on a network that predicts one class, or nothing better than a constant, is
not evidence of low-rank bias: weight decay can shrink a network to a trivial function whose
weights have low rank for that reason alone. Every rank a trend rests on is reported beside

- the fit: training accuracy (classification: argmax for cross-entropy, sign for logistic)
  or R² = 1 − Σ‖f(x_i) − y_i‖² / Σ‖y_i − ȳ‖² (regression);
- ``chance``: what the best constant predictor gets (the majority-class rate; R² = 0);
- ``at_chance``: the fit is not significantly better than that constant — for accuracy, at
  most chance + z·sqrt(chance·(1 − chance)/n) with z the one-sided 95% normal quantile (a
  binomial test of "no better than always predicting the majority class"); for R², R² ≤ 0;
- ``collapsed``: the network's output does not depend on the input (one class predicted for
  every sample, outputs constant across samples to COLLAPSE relative, or outputs below
  COLLAPSE of the targets' scale — 1 for logits — as when weight decay shrank every layer);
- ``linear`` (regression): the R² of the least-squares linear map x ↦ Bx on the same data,
  for reference — a bias-free ReLU net of width ≥ 2·d_out contains every linear map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from verify.nets.activations import Params
from verify.nets.data import Dataset
from verify.nets.network import Network, forward

Z95 = 1.6448536269514722  # one-sided 95% quantile of the standard normal
COLLAPSE = 1e-10  # outputs constant to this relative spread count as collapsed (certificate's)


@dataclass(frozen=True)
class Fit:
    """See module doc. ``kind`` is "accuracy" or "r2"."""

    kind: str
    value: float
    chance: float
    at_chance: bool
    collapsed: bool
    classes_predicted: int | None = None
    classes: int | None = None
    linear: float | None = None

    @property
    def fits(self) -> bool:
        """Neither at chance nor collapsed: a network whose ranks are evidence."""
        return not (self.at_chance or self.collapsed)

    def label(self) -> str:
        what = "accuracy" if self.kind == "accuracy" else "R²"
        flag = " (collapsed)" if self.collapsed else " (at chance)" if self.at_chance else ""
        return f"{what} {self.value:.3g}{flag}"

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"fits": self.fits}


def chance_band(chance: float, n: int) -> float:
    """The accuracy at or below which a fit is at chance (module doc)."""
    return chance + Z95 * math.sqrt(max(chance * (1 - chance), 0.0) / max(n, 1))


def _flat(out: Tensor, scale: float) -> bool:
    """Outputs that do not depend on the input, or are negligible against ``scale``."""
    top = float(out.abs().max()) if out.numel() else 0.0
    spread = float((out.max(0).values - out.min(0).values).abs().max()) if out.numel() else 0.0
    return spread <= COLLAPSE * max(top, 1e-300) or top <= COLLAPSE * scale


def fit_of(data: Dataset, out: Tensor) -> Fit:
    """:class:`Fit` of outputs ``out`` (n × d_out) on ``data``."""
    out = out.detach().to(torch.float64)
    n = data.n
    if data.loss == "squared":
        Y = data.Y.to(out)
        tot = float(((Y - Y.mean(0)) ** 2).sum())
        r2 = 1 - float(((out - Y) ** 2).sum()) / tot if tot > 0 else math.nan
        X = data.X.to(out)
        B = torch.linalg.lstsq(X, Y, driver="gelsd").solution
        lin = 1 - float(((X @ B - Y) ** 2).sum()) / tot if tot > 0 else math.nan
        return Fit("r2", r2, 0.0, not r2 > 0, _flat(out, float(Y.abs().max())), linear=lin)
    if data.loss == "ce":
        pred, y = out.argmax(1), data.Y
        classes = int(out.shape[1])
    else:  # logistic: labels ±1, one output
        pred, y = (out[:, 0] > 0).long(), (data.Y > 0).long()
        classes = 2
    acc = float((pred == y).double().mean())
    counts = torch.bincount(y, minlength=classes)
    chance = float(counts.max()) / n
    used = int(torch.unique(pred).numel())
    return Fit("accuracy", acc, chance, acc <= chance_band(chance, n),
               used <= 1 or _flat(out, 1.0), used, int((counts > 0).sum()))


def fit(arch: Network, params: Params, data: Dataset) -> Fit:
    """:func:`fit_of` the network ``arch`` at ``params`` on ``data``."""
    with torch.no_grad():
        return fit_of(data, forward(arch, tuple(params), data.X.to(params[0])))
