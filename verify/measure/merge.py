"""Merging two networks trained on two tasks (THEOREMS.md, T8).

A :class:`MergeSetting` names a task pair with controlled input overlap (:func:`verify.nets.data.
task_pair`), one architecture and λ; nets A, B (independent inits) and the multitask net
on A ∪ B are trained through :func:`verify.engine.setting.realise`. Then

- merges: sum θ_A + θ_B (the claim), mean, task arithmetic α(θ_A + θ_B) and TIES (trim 20%,
  elect sign, disjoint mean, then α) with α tuned on held-out samples of both tasks, width
  concatenation (block-diagonal layers: exactly f_A + f_B at any depth), the output ensemble
  (f_A + f_B)/2 and the multitask net;
- first-layer leakage of B into task A: since W_1^B = R_1^B − g_1^B/λ and
  g_1^B = (1/n_B) Σ_j δ_{1,j}^B x_j^{Bᵀ}, at ANY θ_B and for every x
      ‖W_1^B x‖ ≤ (1/(λ n_B)) Σ_j ‖δ_{1,j}^B‖ |⟨x_j^B, x⟩| + ‖R_1^B x‖;
- the cross terms above the first layer: f_sum(x) minus A's net with the merged first layer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from verify.engine.residual import Stationarity
from verify.engine.setting import Context, Setting, Trained, realise
from verify.measure.internals import internals
from verify.nets.activations import Params
from verify.nets.data import Dataset, pair_kind
from verify.nets.dense import Architecture
from verify.nets.network import Network, forward
from verify.nets.objective import Objective, data_loss

TIES_KEEP = 0.2  # TIES-merging's default density (Yadav et al., 2023)
ALPHAS = tuple(float(a) for a in np.round(np.linspace(0.1, 1.5, 29), 3))


@dataclass(frozen=True)
class MergeSetting:
    """Two tasks (``source`` blocks|digits, B turned ``angle`` degrees towards A), one net."""

    source: str
    angle: float
    widths: tuple[int, ...]
    activation: str = "relu"
    lam: float = 0.05
    n: int = 40
    seed: int = 0
    lr: float = 0.2
    steps: int = 3000
    polish: bool = False
    loss: str = "squared"

    def task(self, which: str) -> Setting:
        """The Setting of net A, B or the multitask net A+B (independent init seeds)."""
        offset = {"A": 0, "B": 1000, "A+B": 2000}[which]
        return Setting(widths=self.widths, activation=self.activation, lam=self.lam, n=self.n,
                       data=pair_kind(self.source, which, self.angle, self.seed),
                       loss=self.loss, seed=self.seed + offset, lr=self.lr, steps=self.steps,
                       polish=self.polish)

    def data(self, which: str) -> Dataset:
        return replace(self.task("A"), data=pair_kind(self.source, which, self.angle,
                                                      self.seed)).dataset()

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"widths": list(self.widths), "lam_eff": self.lam,
                               "data": f"{self.source} pair"}


def _labels(data: Dataset) -> Tensor:
    """The class labels; the merge data sets are always labelled
    (:func:`verify.nets.data.task_pair`)."""
    if data.labels is None:
        raise ValueError(f"{data.name} has no class labels")
    return data.labels


def accuracy(data: Dataset, out: Tensor) -> float:
    """Fraction of samples whose largest output is the label."""
    return float((out.argmax(1) == _labels(data)).double().mean())


def margins(data: Dataset, out: Tensor) -> Tensor:
    """f_y(x) − max_{c≠y} f_c(x) per sample (> 0: correct)."""
    lab = _labels(data)[:, None]
    own = out.gather(1, lab)[:, 0]
    other = out.scatter(1, lab, -math.inf).max(1).values
    return own - other


def overlap(XA: Tensor, XB: Tensor) -> float:
    """ε = max |⟨x^A, x^B⟩|/(‖x^A‖‖x^B‖)."""
    a = XA / XA.norm(dim=1, keepdim=True).clamp_min(1e-300)
    b = XB / XB.norm(dim=1, keepdim=True).clamp_min(1e-300)
    return float((a @ b.T).abs().max())


def ties(pa: Params, pb: Params, keep: float = TIES_KEEP) -> Params:
    """TIES merge of two task vectors (from θ = 0): trim to the top ``keep`` fraction by
    magnitude per tensor, elect the sign of the trimmed sum, average the entries that agree."""
    out = []
    for a, b in zip(pa, pb, strict=True):
        trimmed = []
        for t in (a, b):
            k = max(1, round(keep * t.numel()))
            thr = t.abs().reshape(-1).kthvalue(t.numel() - k + 1).values
            trimmed.append(torch.where(t.abs() >= thr, t, torch.zeros_like(t)))
        sign = torch.sign(trimmed[0] + trimmed[1])
        agree = [(torch.sign(t) == sign) & (t != 0) for t in trimmed]
        num = sum(torch.where(m, t, torch.zeros_like(t)) for m, t in zip(agree, trimmed,
                                                                          strict=True))
        cnt = (agree[0].double() + agree[1].double()).clamp_min(1.0)
        out.append(num / cnt)
    return tuple(out)


def concatenate(pa: Params, pb: Params) -> Params:
    """Width concatenation: [W_1^A; W_1^B], block-diagonal middle layers, [W_L^A, W_L^B]:
    exactly f_A + f_B (the two nets side by side)."""
    out = []
    for k, (a, b) in enumerate(zip(pa, pb, strict=True)):
        if k == 0:
            out.append(torch.cat([a, b], 0))
        elif k == len(pa) - 1:
            out.append(torch.cat([a, b], 1))
        else:
            out.append(torch.block_diag(a, b))
    return tuple(out)


def _tune(arch: Network, params: Params, vals: tuple[Dataset, Dataset]) -> float:
    """α maximising mean held-out accuracy of α·params (ties: lower held-out loss)."""
    def score(a: float) -> tuple[float, float]:
        ps = tuple(a * p for p in params)
        outs = [forward(arch, ps, v.X) for v in vals]
        return (sum(accuracy(v, o) for v, o in zip(vals, outs, strict=True)),
                -sum(float(data_loss(v, o)) for v, o in zip(vals, outs, strict=True)))
    return max(ALPHAS, key=score)


@dataclass(frozen=True)
class Leakage:
    """‖W_1^B x‖ against its bound on the inputs x of the other task."""

    measured: Tensor  # ‖W_1^B x‖ per sample
    bound: Tensor
    own: Tensor  # ‖W_1^A x‖ per sample
    rounding: float  # the float64 scale of the identity W_1^B = R_1^B − g_1^B/λ

    def ratio(self) -> float:
        """‖W_1^B X_A‖_F / ‖W_1^A X_A‖_F."""
        return float(self.measured.norm() / self.own.norm().clamp_min(1e-300))


def leakage(other: Trained, own: Trained, X: Tensor) -> Leakage:
    """First-layer leakage of ``other`` on the inputs X of ``own``'s task, with its bound."""
    return leakage_at(other.objective, other.result.params, other.stationarity, X,
                      own.result.params[0])


def leakage_at(obj: Objective, params: Params, st: Stationarity, X: Tensor, W1_own: Tensor
               ) -> Leakage:
    """The same for any θ of the other net with its residuals ``st`` (exact everywhere)."""
    lam = obj.lam
    m = (X @ params[0].T).norm(dim=1)
    mine = (X @ W1_own.T).norm(dim=1)
    if lam == 0:
        nan = torch.full_like(m, math.nan)
        return Leakage(m, nan, mine, math.nan)
    it = internals(obj, params, st.slopes)
    dn = it.errors[0].norm(dim=1)  # ‖δ_{1,j}‖
    inner = (it.inputs[0] @ X.T).abs()  # |⟨x_j^B, x⟩|, n_B × n_A
    R1 = st.R[0]
    b = (dn[:, None] * inner).sum(0) / (lam * it.n) + (X @ R1.T).norm(dim=1)
    g1 = st.g[0]
    scale = float((R1.norm() + g1.norm() / lam) * X.norm(dim=1).max())
    return Leakage(m, b, mine, scale)


def lipschitz_above_first(arch: Network, params: Params) -> float:
    """Π_{k≥2} ‖W_k‖_2: how far a change e of the first pre-activation can move the output
    of this net (σ is 1-Lipschitz for relu, leaky relu, identity, tanh)."""
    return float(np.prod([float(torch.linalg.matrix_norm(w, 2)) for w in params[1:]]))


@dataclass(frozen=True)
class TaskReport:
    """Everything measured on one task's training set."""

    loss: dict[str, float]
    accuracy: dict[str, float]
    leak_measured: float
    leak_bound: float
    leak_worst: float  # max_x (‖W^B x‖ − bound(x))/rounding scale
    leak_rounding: float
    leak_ratio: float
    leak_own: float  # ‖W_1^A X_A‖_F, the signal the leakage is compared with
    cross: float  # ‖f_sum − f_A(merged first layer)‖_F / ‖f_A‖_F
    first_layer_change: float  # ‖f_A(merged first layer) − f_A‖_F / ‖f_A‖_F
    tolerance_accuracy: float  # accuracy the first-layer argument guarantees
    tolerance_loss: float  # loss the first-layer argument allows (squared loss)
    chance: float  # 1/K, the accuracy of a constant classifier


@dataclass(frozen=True)
class MergeReport:
    """Both tasks side by side, the nets' certificates and the tuned coefficients."""

    tasks: dict[str, TaskReport]
    overlap: float
    alphas: dict[str, float]
    certified: dict[str, bool]
    residuals: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"tasks": {k: asdict(v) for k, v in self.tasks.items()},
                "overlap": self.overlap, "alphas": self.alphas, "certified": self.certified,
                "residuals": self.residuals}


def evaluate(ms: MergeSetting, ctx: Context, multitask: bool = True) -> MergeReport:
    """Train A, B (and the multitask net unless ``multitask`` is off), merge, measure."""
    nets = {w: realise(ms.task(w), ctx) for w in ("A", "B", "A+B")[: 3 if multitask else 2]}
    arch = nets["A"].objective.arch
    pa, pb = nets["A"].result.params, nets["B"].result.params
    vals = (ms.data("A-val"), ms.data("B-val"))
    summed = tuple(a + b for a, b in zip(pa, pb, strict=True))
    alphas = {"task arithmetic": _tune(arch, summed, vals),
              "TIES": _tune(arch, ties(pa, pb), vals)}
    merged = {"sum": summed, "mean": tuple(0.5 * p for p in summed),
              "task arithmetic": tuple(alphas["task arithmetic"] * p for p in summed),
              "TIES": tuple(alphas["TIES"] * p for p in ties(pa, pb))}
    if multitask:
        merged["multitask"] = nets["A+B"].result.params
    wide = Architecture((arch.widths[0], *(2 * w for w in arch.widths[1:-1]), arch.widths[-1]),
                        arch.activation)
    cat = concatenate(pa, pb)
    tasks = {}
    for me, other in (("A", "B"), ("B", "A")):
        d = nets[me].objective.data
        own = forward(arch, nets[me].result.params, d.X)
        outs = {"individual": own, **{k: forward(arch, p, d.X) for k, p in merged.items()},
                "concatenation": forward(wide, cat, d.X),
                "ensemble": 0.5 * (own + forward(arch, nets[other].result.params, d.X))}
        leak = leakage(nets[other], nets[me], d.X)
        first = (pa[0] + pb[0], *tuple(nets[me].result.params[1:]))
        f_first = forward(arch, first, d.X)
        norm = float(own.norm()) or 1.0
        # without a finite bound (λ = 0) the claim is taken literally: no change allowed
        bound = torch.nan_to_num(leak.bound, nan=0.0)
        change = bound * lipschitz_above_first(arch, nets[me].result.params)
        mg = margins(d, own)
        res = (own - d.Y).norm(dim=1) if d.loss == "squared" else torch.full_like(mg, math.nan)
        tasks[me] = TaskReport(
            loss={k: float(data_loss(d, o)) for k, o in outs.items()},
            accuracy={k: accuracy(d, o) for k, o in outs.items()},
            leak_measured=float(leak.measured.norm()), leak_bound=float(leak.bound.norm()),
            leak_worst=float(((leak.measured - leak.bound) / max(leak.rounding, 1e-300)).max()),
            leak_rounding=leak.rounding, leak_ratio=leak.ratio(),
            leak_own=float(leak.own.norm()),
            cross=float((outs["sum"] - f_first).norm()) / norm,
            first_layer_change=float((f_first - own).norm()) / norm,
            tolerance_accuracy=float((mg > 2 * change).double().mean()),
            tolerance_loss=float((0.5 * (res + change) ** 2).mean()),
            chance=1.0 / arch.widths[-1])
    return MergeReport(
        tasks, overlap(nets["A"].objective.data.X, nets["B"].objective.data.X), alphas,
        {k: t.certificate.certified for k, t in nets.items()},
        {k: max(t.stationarity.r) for k, t in nets.items()})
