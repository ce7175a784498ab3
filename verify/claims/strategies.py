"""Hypothesis strategies shared by theorems: networks that can be trained to stationarity.

Ranges follow the scale (widths ≤ ``scale.max_width``, n ≤ ``scale.max_n``); λ is drawn on a
log scale and rounded to 3 significant digits so settings print readably. Step sizes are
chosen inside the stable region of full-batch GD for these He-initialised nets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.engine.setting import Setting


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """10^u with u uniform in [log10 lo, log10 hi], rounded to 3 significant digits."""
    import math

    return st.floats(math.log10(lo), math.log10(hi)).map(lambda u: float(f"{10**u:.3g}"))


@st.composite
def networks(draw: st.DrawFn, scale: Scale, activations: Sequence[str],
             depths: tuple[int, int] = (2, 4), lam: tuple[float, float] = (1e-3, 1e-1),
             data: Sequence[str] = ("clusters", "teacher"), bias: bool = False,
             min_width: int = 3, n: tuple[int, int] | None = None) -> Setting:
    """A trainable fully connected network on seeded data."""
    depth = draw(st.integers(*depths))
    d0 = draw(st.integers(3, scale.max_width))
    hidden = tuple(draw(st.integers(min_width, scale.max_width)) for _ in range(depth - 1))
    kind = draw(st.sampled_from(list(data)))
    loss = "squared" if kind == "teacher" else draw(st.sampled_from(["squared", "ce"]))
    d_out = draw(st.integers(2, 4)) if loss == "ce" else draw(st.integers(1, 3))
    lo, hi = n if n is not None else (6, scale.max_n)
    return Setting(
        widths=(d0, *hidden, d_out), activation=draw(st.sampled_from(list(activations))),
        lam=draw(log_uniform(*lam)), n=draw(st.integers(lo, hi)), data=kind, loss=loss,
        seed=draw(st.integers(0, 2**16)), bias=bias and draw(st.booleans()),
        lr=0.05, steps=300)


# A ReLU MLP on clustered data with cross-entropy, the setting of the experiments of
# Kuzborskij & Abbasi Yadkori (arXiv:2502.17340 v2) at CPU size; pinned by T2 and T3 so that
# both claims are checked on the same trained network (trained once per context).
PAPER_RELU_MLP = Setting(widths=(8, 12, 12, 3), activation="relu", lam=0.01, n=24,
                         data="clusters", loss="ce", seed=0, lr=0.05, steps=300)


# The large scale's networks (issue 6): a dense layer of width 4096 and a small conv net on
# 32×32×3 synthetic images, n = 256. The first phase runs in TF32 (plain float32 on a CPU),
# where wide nets spend their steps; polishing and the certificate are float64, so the
# verdict rests on float64 residuals. Measured on the 2-core CPU (1 thread): 13–50 ms per
# TF32 step; 13 s (linear MLP) to 3–8 min (softplus MLP, L-BFGS) per certified network; the
# ReLU MLP is not certified (its kinks, see theorems/t3_norms.py).
def wide_mlp(activation: str) -> Setting:
    """64 → 4096 → 10 on Gaussian clusters, cross-entropy, λ = 1e-2."""
    return Setting(widths=(64, 4096, 10), activation=activation, lam=0.01, n=256,
                   data="clusters", loss="ce", seed=0, lr=0.05, steps=300, precision="tf32")


def image_convnet(activation: str, side: int = 32, channels: tuple[int, ...] = (16, 32),
                  n: int = 256) -> Setting:
    """3×3 stride-2 conv layers (default 16, 32 channels) and a dense head on 3×side×side
    images; the small form (side 8) runs at every scale."""
    return Setting(widths=(3 * side * side, 10), conv=channels, activation=activation,
                   lam=0.01, n=n, data="images", loss="ce", seed=0, lr=0.05, steps=300,
                   precision="tf32")


class ConvNetSize(TypedDict):
    """Keyword arguments of :func:`image_convnet` that size the net."""

    side: int
    channels: tuple[int, ...]
    n: int


SMALL_CONVNET: ConvNetSize = {"side": 8, "channels": (4, 6), "n": 24}
