"""Mild violations of the assumptions (THEOREMS.md "Mild violations"; Kuzborskij & Abbasi
Yadkori, arXiv:2502.17340 v2: "the assumptions only mildly affect the observations").

Two observations of that paper, measured on networks outside its assumptions:

- alignment, worst layer: 1 − cos(W_k, −g_k) (T2: 0 at any stationary point of F);
- norm balance, worst pair: |‖W_k‖² − ‖W_j‖²| / mean_k ‖W_k‖² (T3: 0 at a stationary point of
  a homogeneous network).

Each comes with the part of it that the stationarity residual explains — T2's bound
1 − sqrt(1 − r_k²) and T3's slack (‖W_k‖‖R_k‖ + ‖W_j‖‖R_j‖)/mean — and the *excess* beyond it,
which is what the violation adds (0, a tie, when within the residual's slack).

A :class:`Family` is one kind of violation at several sizes: regularised biases with inputs
offset by s (the biases must absorb it: size s), the softplus smoothing softplus(βz)/β of
ReLU (size 1/β; β → ∞ is ReLU), SGD without polishing stopped after T steps (size: the
distance from stationarity, max_k r_k), and single points without a size — tanh, a softplus
conv net, a residual block. No constant is given anywhere: the claim tested is the trend,
the deviation grows with the size (:func:`verify.measure.trend.rank_trend`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from verify.engine.residual import stationarity
from verify.engine.setting import Context, Setting
from verify.engine.train import train
from verify.measure import spectra
from verify.nets.activations import Params
from verify.nets.network import weights
from verify.nets.objective import Objective

KINDS = ("biases", "softplus", "sgd", "tanh", "conv", "residual")
SIZE = {"biases": "input offset s", "softplus": "1/β", "sgd": "distance from stationarity "
        "max_k r_k", "tanh": "—", "conv": "—", "residual": "—"}


@dataclass(frozen=True)
class Deviation:
    """The two deviations of one network (module doc), their residual slack and excess."""

    alignment: float
    balance: float
    alignment_slack: float
    balance_slack: float
    alignment_excess: float
    balance_excess: float
    residual: float  # max_k r_k (plain gradient)


def deviation(obj: Objective, params: Params) -> Deviation:
    """:class:`Deviation` of ``params`` on ``obj`` (any differentiable network, dense or conv;
    the plain gradient, which is the gradient of a smooth objective)."""
    st = stationarity(obj, params)
    W = [w.reshape(w.shape[0], -1) for w in weights(obj.arch, params)]
    g = [gk.reshape(gk.shape[0], -1) for gk in st.g[: len(W)]]
    r = list(st.r)
    cos = [spectra.cosine(w, -gk) for w, gk in zip(W, g, strict=True)]
    a_dev = [1 - c for c in cos]
    a_slack = [1 - math.sqrt(1 - x * x) if x < 1 else math.inf for x in r]
    norms = [spectra.frobenius(w) for w in W]
    mean = sum(x * x for x in norms) / len(norms)
    Rn = [spectra.frobenius(R.reshape(R.shape[0], -1)) for R in st.R]
    pairs = list(itertools.combinations(range(len(W)), 2))
    b_dev = [abs(norms[k] ** 2 - norms[j] ** 2) / mean for k, j in pairs]
    b_slack = [(norms[k] * Rn[k] + norms[j] * Rn[j]) / mean for k, j in pairs]
    return Deviation(
        alignment=max(a_dev), balance=max(b_dev, default=0.0),
        alignment_slack=max(a_slack), balance_slack=max(b_slack, default=0.0),
        alignment_excess=max(max(d - s, 0.0) for d, s in zip(a_dev, a_slack, strict=True)),
        balance_excess=max((max(d - s, 0.0) for d, s in zip(b_dev, b_slack, strict=True)),
                           default=0.0),
        residual=max(r))


@dataclass(frozen=True)
class Family:
    """One kind of violation (:data:`KINDS`) of ``base`` at ``sizes`` × ``seeds``. ``sizes``
    are the knob's values: the offset s, 1/β, or the SGD steps T (whose size is then the
    measured residual); one size for the kinds without a knob."""

    kind: str
    base: Setting
    sizes: tuple[float, ...]
    seeds: int

    def to_json(self) -> dict[str, Any]:
        b = self.base
        return {"family": self.kind, "size": SIZE[self.kind], "sizes": list(self.sizes),
                "seeds": self.seeds, "widths": list(b.widths), "activation": b.activation,
                "lam": b.lam, "n": b.n, "seed": b.seed, "bias": b.bias, "residual": b.residual,
                "conv": None if b.conv is None else list(b.conv), "base": b.to_json()}


@dataclass(frozen=True)
class Point:
    """One trained network of a family: knob value, size, seed, deviations, bias share."""

    knob: float
    size: float
    seed: int
    deviation: Deviation
    stationary: bool  # max_k r_k ≤ τ (first order; the knob families need it, SGD does not)
    finite: bool
    bias_share: float | None = None  # Σ‖b‖² / Σ‖W‖² (biases family)

    def to_json(self) -> dict[str, Any]:
        return {"knob": self.knob, "size": self.size, "seed": self.seed,
                "stationary": self.stationary, "finite": self.finite,
                "bias_share": self.bias_share, **asdict(self.deviation)}


def _objective(fam: Family, s: Setting, knob: float, ctx: Context) -> Objective:
    obj = s.objective(ctx.device)
    if fam.kind == "biases":
        obj = replace(obj, data=replace(obj.data, X=obj.data.X + knob))
    if fam.kind == "softplus":
        obj = obj.smoothed(1 / knob)
    return obj


def measure(fam: Family, ctx: Context) -> list[Point]:
    """Train every network of ``fam`` (polished to stationarity, except the SGD family,
    which stops after ``knob`` steps) and measure it."""
    out = []
    for knob in fam.sizes:
        for j in range(fam.seeds):
            s = replace(fam.base, seed=fam.base.seed + j)
            if fam.kind == "sgd":
                s = replace(s, steps=int(knob), polish=False)
            obj = _objective(fam, s, knob, ctx)
            # the smoothing continuation would change σ: polish the objective as it is
            cfg = replace(s.train_config(ctx.max_seconds), continuation=False)
            res = train(obj, s.init(ctx.device), cfg)
            if not res.finite:
                out.append(Point(knob, math.nan, s.seed, Deviation(*(math.nan,) * 7), False,
                                 False))
                continue
            dev = deviation(obj, res.params)
            share = None
            if s.bias:
                W, b = res.params[: obj.arch.depth], res.params[obj.arch.depth:]
                share = (sum(float((x * x).sum()) for x in b)
                         / sum(float((x * x).sum()) for x in W))
            size = dev.residual if fam.kind == "sgd" else knob
            out.append(Point(knob, size, s.seed, dev, dev.residual <= ctx.tau, True, share))
    return out
