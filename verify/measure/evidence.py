"""Standard evidence recorded for a trained network (the report's figures read it)."""

from __future__ import annotations

from typing import Any

from verify.engine.setting import Trained
from verify.measure import spectra
from verify.nets.network import weights


def network_series(t: Trained) -> dict[str, Any]:
    """Spectra, norms, residuals and alignment cosines of every layer."""
    # a conv kernel c_out × c_in × k × k as the c_out × (c_in·k·k) matrix it applies to patches
    W = tuple(w.reshape(w.shape[0], -1) for w in weights(t.objective.arch, t.result.params))
    g = tuple(gk.reshape(gk.shape[0], -1) for gk in t.stationarity.g)
    return {
        "singular_values": [spectra.singular_values(w).tolist() for w in W],
        "layer_norms": spectra.layer_norms(W),
        "residuals": list(t.stationarity.r),
        "cosines": [spectra.cosine(w, -gk) for w, gk in zip(W, g, strict=False)],
        "stable_ranks": [spectra.stable_rank(w) for w in W],
    }
