"""The data an audited model is judged on: the user's arrays, or a harness data kind.

Targets follow :mod:`verify.nets.data`: class indices for cross-entropy, a float matrix
(n × d_out) for the squared loss, ±1 for the logistic loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from verify.errors import require
from verify.nets import data as datasets
from verify.nets.data import LOSSES, Dataset, check_finite

# samples when a harness data kind is asked for without --n: all of a bundled data set
BUNDLED = {"digits": 1797, "diabetes": 442}
DEFAULT_N = 256


def _tensor(a: Any, name: str) -> torch.Tensor:
    t = a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    require(t.ndim >= 1 and t.shape[0] >= 1, name, tuple(t.shape), "one row per sample, n ≥ 1")
    return t


def user_dataset(X: Any, y: Any, loss: str, name: str = "user data") -> Dataset:
    """``X`` (n × …, flattened to n × d_0, float64) and targets ``y`` for ``loss``."""
    require(loss in LOSSES, "loss", loss, f"one of {', '.join(LOSSES)}")
    X0 = _tensor(X, "X")
    Xt = X0.to(torch.float64).reshape(X0.shape[0], -1)
    yt = _tensor(y, "y")
    require(yt.shape[0] == Xt.shape[0], "y", f"{yt.shape[0]} rows",
            f"one target per sample of X ({Xt.shape[0]} rows)")
    labels = None
    if loss == "ce":
        integral = yt.ndim == 1 and (not yt.is_floating_point()
                                     or bool(torch.equal(yt, yt.round())))
        require(integral and int(yt.min()) >= 0, "y", f"shape {tuple(yt.shape)}, dtype {yt.dtype}",
                "class indices 0..K−1 (one integer per sample) for the cross-entropy loss")
        Y = yt.to(torch.long)
        labels = Y
    elif loss == "logistic":
        Y = yt.to(torch.float64).reshape(-1) if yt.ndim == 1 or yt.shape[1:] == (1,) else yt
        require(Y.ndim == 1 and bool(((Y == 1) | (Y == -1)).all()), "y",
                f"values {sorted(set(Y.reshape(-1).tolist()))[:4]}",
                "labels ±1 for the logistic loss (map 0/1 labels with 2y − 1)")
    else:
        Y = yt.to(torch.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y.reshape(Y.shape[0], -1)
    check_finite(Xt, Y, name)
    return Dataset(Xt, Y, loss, name, labels)


def harness_dataset(kind: str, widths: tuple[int, ...], loss: str, n: int | None = None,
                    seed: int = 0, dim: int | None = None) -> Dataset:
    """A data kind of :mod:`verify.nets.data` for a net of ``widths`` (``n`` default: all
    of a bundled data set — digits 1797, diabetes 442 — else 256)."""
    if n is None:
        n = BUNDLED.get(kind, DEFAULT_N)
        if kind == "digits":
            # make() keeps the first K classes (K = 2 for the logistic loss, else d_out up to
            # 10): all of their samples
            from sklearn.datasets import load_digits

            k = 2 if loss == "logistic" else min(10, max(widths[-1], 2))
            n = int((load_digits().target < k).sum())
    return datasets.make(kind, n, widths[0], widths[-1], seed, loss, dim)
