"""The per-layer table of an audit: one row per weight matrix (a pandas DataFrame).

A conv kernel c_out × c_in × 3 × 3 enters as the c_out × (c_in·9) matrix it applies to
patches (as everywhere in the harness). With σ_1 ≥ σ_2 ≥ … the singular values of W:

Columns named as in WeightWatcher's ``details`` frame (WeightWatcher 0.7, ``analyze()``),
with its definitions — note that its "norm" and "spectral_norm" are the *squared* norms (sums
and maxima of the eigenvalues σ_i² of WᵀW):

- ``layer_id`` (here the 0-based position k − 1 of W_k among the weight layers), ``name`` (the
  module's name in the Sequential), ``layer_type``; ``N`` = the larger and ``M`` = the
  smaller side;
  ``rf``: receptive field (9 for a 3×3 kernel, 1 for a dense layer);
- ``norm`` = ‖W‖_F², ``log_norm`` = log10 ‖W‖_F², ``spectral_norm`` = σ_1²,
  ``log_spectral_norm`` = log10 σ_1², ``sv_max`` = σ_1, ``sv_min`` = σ_M;
- ``stable_rank`` = ‖W‖_F²/σ_1² (THEOREMS.md's sr(W) too); ``matrix_rank`` = #{σ_i > σ_1·N·eps}
  (numpy's rank rule).

The harness's own (THEOREMS.md "Notation" and "Spectra"):

- ``fro_norm`` = ‖W‖_F and ``spec_norm`` = σ_1 (the norms themselves);
- ``num_rank`` = rank_1e-3(W) = #{σ_i/‖W‖_F > 1e-3} (the tolerance of Galanti et al.'s
  code, arXiv:2206.05794 v7);
- ``r_k`` = ‖W_k + g_k/λ‖_F/‖W_k‖_F for the certificate's gradient selection (plain or Clarke
  at kinks, ``residual``), ``cos`` = cos(W_k, −g_k) for the same selection (1 at stationarity,
  THEOREMS.md T2);
- ``D_k`` = sqrt(Σ_{i>k} σ_i²), the Frobenius distance to the nearest rank-≤k matrix, at
  k ∈ :data:`DISTANCE_K` (0 once k ≥ M).

No power-law (alpha) columns: those are fits with their own modelling choices, not measures.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from verify.audit.convert import Model
from verify.engine.residual import Stationarity
from verify.measure import spectra
from verify.nets.network import weights

DISTANCE_K = (1, 2, 4, 8)
NUMERICAL_RANK_TOL = 1e-3
EPS64 = float(torch.finfo(torch.float64).eps)


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def rows(model: Model, st: Stationarity) -> list[dict[str, Any]]:
    """The table's rows (plain dicts): see the module docstring for each column."""
    out = []
    for k, W in enumerate(weights(model.arch, model.params)):
        W2 = W.reshape(W.shape[0], -1)
        s = spectra.singular_values(W2)
        N, M = max(W2.shape), min(W2.shape)
        fro = spectra.frobenius(W2)
        s1 = float(s[0])
        g = st.g[k].reshape(W.shape[0], -1)
        out.append({
            "layer_id": k,
            "name": model.names[k], "layer_type": model.kinds[k],
            "shape": "×".join(map(str, W.shape)), "N": N, "M": M,
            "rf": int(W[0, 0].numel()) if W.ndim == 4 else 1,
            "fro_norm": fro, "spec_norm": s1,
            "norm": fro**2, "log_norm": _log10(fro**2),
            "spectral_norm": s1**2, "log_spectral_norm": _log10(s1**2),
            "sv_max": s1, "sv_min": float(s[-1]),
            "stable_rank": spectra.stable_rank(W2),
            "matrix_rank": int((s > s1 * N * EPS64).sum()),
            "num_rank": spectra.numerical_rank(W2, NUMERICAL_RANK_TOL),
            "r_k": st.r[k], "residual": st.kind,
            "cos": spectra.cosine(W2, -g),
            **{f"D_{j}": spectra.tail_distance(W2, j) for j in DISTANCE_K},
        })
    return out


def frame(model: Model, st: Stationarity) -> Any:
    """The table as a pandas DataFrame (pandas: the ``audit`` extra)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - the audit extra is part of the test extra
        from verify.errors import UsageError

        raise UsageError("pandas", "not installed", "the audit extra: pip install "
                         "'lowrank-verify[audit]'") from None
    return pd.DataFrame(rows(model, st))
