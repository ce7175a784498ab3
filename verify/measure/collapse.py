"""Neural collapse measurements of a trained network (THEOREMS.md, T6).

For layer l with inputs z_i = h_{l−1}(x_i), class c(i) among K classes and class means μ_c:

- the within-class variability TCV_l = (1/n) Σ_i ‖z_i − μ_{c(i)}‖ (and, scale-free, its ratio
  to the total variability (1/n) Σ_i ‖z_i − μ‖ around the global mean);
- the split g_l = (1/n) Σ_i δ_i (z_i − μ_{c(i)})ᵀ + (1/n) Σ_c (Σ_{i∈c} δ_i) μ_cᵀ, whose second
  part has rank ≤ K; with R_l = W_l + g_l/λ, Eckart–Young gives at ANY θ
      D_K(W_l) ≤ ‖R_l − (1/(λn)) Σ_i δ_i (z_i − μ_{c(i)})ᵀ‖_F
              ≤ (1/(λn)) Σ_i ‖δ_i‖ ‖z_i − μ_{c(i)}‖ + ‖R_l‖_F,
  the second line being the bound of Zangrando et al. (arXiv:2402.03991) in robust form.
The errors δ_i come from :mod:`verify.measure.internals` with the certificate's slope selection, so
g_l and R_l are the ones the certificate measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from verify.engine.residual import Stationarity
from verify.engine.setting import Trained
from verify.measure import spectra
from verify.measure.internals import internals
from verify.nets.activations import Params
from verify.nets.network import weights
from verify.nets.objective import Objective


@dataclass(frozen=True)
class LayerCollapse:
    """Collapse measurements of one layer (``layer`` counts from 1)."""

    layer: int
    classes: int
    tail: float  # D_K(W_l)
    relative_tail: float  # d_K(W_l)
    gap: float  # σ_{K+1}/σ_1
    fro: float  # ‖W_l‖_F (the trivial bound on D_K)
    within: float  # (1/(λn)) Σ ‖δ_i‖‖z_i − μ_c‖
    residual: float  # ‖R_l‖_F
    sharp: float  # ‖R_l − (1/(λn)) Σ δ_i (z_i − μ_c)ᵀ‖_F, the intermediate bound
    tcv: float
    tcv_ratio: float  # TCV_l / total variability
    informative: bool  # K < min(d_l, d_{l−1}): otherwise D_K(W_l) = 0 trivially

    @property
    def bound(self) -> float:
        return self.within + self.residual

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"bound": self.bound}


def class_means(Z: Tensor, labels: Tensor, classes: int) -> Tensor:
    """μ_c for c = 0..K−1 (rows; a class without samples gets 0)."""
    M = torch.zeros(classes, Z.shape[1], dtype=Z.dtype, device=Z.device)
    M.index_add_(0, labels, Z)
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).to(Z.dtype)
    return M / counts[:, None]


def within_class(Z: Tensor, labels: Tensor, classes: int) -> Tensor:
    """Rows z_i − μ_{c(i)}."""
    return Z - class_means(Z, labels, classes)[labels]


def tcv(Z: Tensor, labels: Tensor, classes: int) -> float:
    """TCV = (1/n) Σ_i ‖z_i − μ_{c(i)}‖."""
    return float(torch.linalg.norm(within_class(Z, labels, classes), dim=1).mean())


def profile(t: Trained) -> list[LayerCollapse]:
    """Every layer's collapse measurements at the trained point (needs class labels, λ > 0)."""
    return profile_at(t.objective, t.result.params, t.stationarity)


def profile_at(obj: Objective, params: Params, st: Stationarity) -> list[LayerCollapse]:
    """The same at any θ with its residuals ``st`` (the bound holds everywhere)."""
    data = obj.data
    if data.labels is None:
        raise ValueError(f"{data.name} has no class labels")
    lab = data.labels
    K = int(lab.max()) + 1
    lam = obj.lam
    it = internals(obj, params, st.slopes)
    out = []
    for k, w in enumerate(weights(obj.arch, params)):
        Z, delta = it.inputs[k], it.errors[k]
        C = within_class(Z, lab, K)
        within = float((torch.linalg.norm(delta, dim=1) * torch.linalg.norm(C, dim=1)).sum()
                       ) / (lam * it.n)
        sharp = spectra.frobenius(st.R[k] - delta.T @ C / (lam * it.n))
        total = float(torch.linalg.norm(Z - Z.mean(0), dim=1).mean())
        tv = tcv(Z, lab, K)
        out.append(LayerCollapse(
            k + 1, K, spectra.tail_distance(w, K), spectra.relative_tail_distance(w, K),
            spectra.gap_ratio(w, K), spectra.frobenius(w), within,
            spectra.frobenius(st.R[k]), sharp, tv,
            tv / total if total > 0 else 0.0, K < min(w.shape)))
    return out
