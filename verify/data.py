"""Seeded data sets.

Rows are samples: X ∈ R^{n × d_0}. Targets are a float matrix for the squared loss, ±1 for
the logistic loss and class indices for cross-entropy. ``labels`` keeps class indices where
classes exist (used by the rank-collapse theorem). Nothing is downloaded: the only real data
sets are scikit-learn's bundled ``load_digits`` (1797 × 64, 10 classes) and
``load_diabetes`` (442 × 10, regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from verify.errors import UsageError, require

LOSSES = ("squared", "logistic", "ce")
KINDS = ("clusters", "teacher", "whitened", "random_labels", "subspace", "digits", "diabetes")
# regression-only generators: their targets are real vectors
SUPPORTED_LOSSES = {"teacher": ("squared",), "whitened": ("squared",),
                    "subspace": ("squared", "logistic"), "diabetes": ("squared",)}


@dataclass(frozen=True)
class Dataset:
    """Inputs, targets and the loss they are meant for."""

    X: Tensor
    Y: Tensor
    loss: str
    name: str
    labels: Tensor | None = None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.X.shape[1])

    @property
    def d_out(self) -> int:
        return 1 if self.loss == "logistic" else (
            int(self.Y.max()) + 1 if self.loss == "ce" else int(self.Y.shape[1]))

    def to(self, device: str | torch.device) -> Dataset:
        lab = None if self.labels is None else self.labels.to(device)
        return Dataset(self.X.to(device), self.Y.to(device), self.loss, self.name, lab)


def check_finite(X: Tensor, Y: Tensor, name: str = "data") -> None:
    """Refuse data containing NaN or inf before any training starts."""
    for part, t in (("inputs", X), ("targets", Y)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise UsageError(f"{name} {part}", f"{bad} non-finite entries",
                             "finite numbers only (no NaN or inf)")


def _targets(labels: np.ndarray, classes: int, loss: str) -> Tensor:
    if loss == "ce":
        return torch.as_tensor(labels, dtype=torch.long)
    if loss == "logistic":
        return torch.as_tensor(np.where(labels % 2 == 0, 1.0, -1.0), dtype=torch.float64)
    return torch.as_tensor(np.eye(classes)[labels] - 1.0 / classes, dtype=torch.float64)


def _finish(X: np.ndarray, Y: Tensor, loss: str, name: str,
            labels: np.ndarray | None) -> Dataset:
    Xt = torch.as_tensor(X, dtype=torch.float64)
    check_finite(Xt, Y, name)
    lab = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
    return Dataset(Xt, Y, loss, name, lab)


def clusters(n: int, d: int, classes: int, seed: int, loss: str = "squared",
             spread: float = 0.3) -> Dataset:
    """Gaussian class clusters: class means on the unit sphere, isotropic noise ``spread``."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    labels = np.arange(n) % classes
    X = means[labels] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    return _finish(X, _targets(labels, classes, loss), loss, f"clusters(K={classes})", labels)


def random_labels(n: int, d: int, classes: int, seed: int, loss: str = "squared") -> Dataset:
    """Gaussian inputs with labels drawn independently of them (a control)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    labels = rng.integers(0, classes, n)
    return _finish(X, _targets(labels, classes, loss), loss, "random_labels", labels)


def teacher(n: int, d: int, d_out: int, seed: int, rank: int = 2, noise: float = 0.0) -> Dataset:
    """Teacher–student regression: Y = relu(X A) B with a rank-``rank`` teacher, plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    A = rng.standard_normal((d, rank))
    B = rng.standard_normal((rank, d_out)) / np.sqrt(rank)
    Y = np.maximum(X @ A, 0.0) @ B + noise * rng.standard_normal((n, d_out))
    return _finish(X, torch.as_tensor(Y), "squared", f"teacher(rank={rank})", None)


def whitened(n: int, d: int, d_out: int, seed: int, target_rank: int | None = None) -> Dataset:
    """Whitened inputs, XᵀX/n = I in row convention (XXᵀ/n = I in the paper's), for T0.

    Targets Y = X M_0ᵀ with a random M_0 of rank ``target_rank`` and well separated singular
    values, so M = YᵀX/n = M_0 exactly.
    """
    require(n >= d, "n", n, f"n ≥ d_0 = {d} for whitened inputs")
    r = min(d, d_out) if target_rank is None else target_rank
    require(1 <= r <= min(d, d_out), "target rank", r,
            f"an integer in [1, min(d_0, d_out)] = [1, {min(d, d_out)}]")
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = Q * np.sqrt(n)
    U, _ = np.linalg.qr(rng.standard_normal((d_out, r)))
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    s = np.linspace(2.0, 0.5, r)
    M0 = (U * s) @ V.T
    return _finish(X, torch.as_tensor(X @ M0.T), "squared", "whitened", None)


def subspace(n: int, d: int, dim: int, d_out: int, seed: int, loss: str = "squared") -> Dataset:
    """Inputs confined to a random ``dim``-dimensional subspace of R^d (for T4(b)).

    Targets come from a random ReLU teacher on the subspace coordinates (squared loss) or
    from its sign (logistic loss).
    """
    require(1 <= dim <= d, "subspace dim", dim, f"an integer in [1, d_0={d}]")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, dim)))
    C = rng.standard_normal((n, dim))
    X = C @ basis.T
    A = rng.standard_normal((dim, 2 * dim))
    Z = np.maximum(C @ A, 0) @ rng.standard_normal((2 * dim, d_out)) / np.sqrt(2 * dim)
    if loss == "logistic":
        z = Z[:, 0] - np.median(Z[:, 0])
        Y = torch.as_tensor(np.where(z >= 0, 1.0, -1.0))
        return _finish(X, Y, loss, f"subspace(dim={dim})", None)
    return _finish(X, torch.as_tensor(Z), "squared", f"subspace(dim={dim})", None)


def digits(n: int | None, seed: int, loss: str = "ce", classes: int = 10) -> Dataset:
    """scikit-learn's bundled 8×8 digits (no download), pixels scaled to [0, 1].

    A seeded random subset of ``n`` samples from the first ``classes`` classes.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    keep = raw.target < classes
    X, labels = raw.data[keep] / 16.0, raw.target[keep]
    total = len(labels)
    n = total if n is None else n
    require(1 <= n <= total, "n", n, f"an integer in [1, {total}] for digits")
    idx = np.random.default_rng(seed).permutation(total)[:n]
    return _finish(X[idx], _targets(labels[idx], classes, loss), loss,
                   f"digits(K={classes})", labels[idx])


def diabetes(n: int | None, seed: int) -> Dataset:
    """scikit-learn's bundled diabetes regression data (no download): 10 features and the
    target standardised to mean 0, variance 1; a seeded random subset of ``n`` samples."""
    from sklearn.datasets import load_diabetes

    raw = load_diabetes()
    X = (raw.data - raw.data.mean(0)) / raw.data.std(0)
    y = (raw.target - raw.target.mean()) / raw.target.std()
    total = len(y)
    n = total if n is None else n
    require(1 <= n <= total, "n", n, f"an integer in [1, {total}] for diabetes")
    idx = np.random.default_rng(seed).permutation(total)[:n]
    return _finish(X[idx], torch.as_tensor(y[idx, None]), "squared", "diabetes", None)


def make(kind: str, n: int, d: int, d_out: int, seed: int, loss: str = "squared",
         dim: int | None = None) -> Dataset:
    """Dispatch on ``kind`` (one of :data:`KINDS`)."""
    require(kind in KINDS, "data", kind, f"one of {', '.join(KINDS)}")
    require(isinstance(n, int) and n >= 1, "n", n, "a positive integer")
    require(isinstance(d, int) and d >= 1, "d_0", d, "a positive integer")
    require(isinstance(d_out, int) and d_out >= 1, "d_out", d_out, "a positive integer")
    require(loss in LOSSES, "loss", loss, f"one of {', '.join(LOSSES)}")
    allowed = SUPPORTED_LOSSES.get(kind, LOSSES)
    require(loss in allowed, f"loss for {kind} data", loss, f"one of {', '.join(allowed)}")
    require(loss != "logistic" or d_out == 1, "d_out", d_out, "1 for the logistic loss")
    require(kind != "digits" or loss != "squared" or 2 <= d_out <= 10, "d_out", d_out,
            "the number of digit classes, 2..10, for digits with the squared loss")
    require(loss != "ce" or d_out >= 2, "d_out", d_out, "≥ 2 for the cross-entropy loss")
    require(kind != "diabetes" or (d == 10 and d_out == 1), "widths", (d, d_out),
            "d_0 = 10 inputs and d_out = 1 output for diabetes")
    classes = 2 if loss == "logistic" else max(d_out, 2)
    if kind in ("clusters", "random_labels"):
        make_fn = clusters if kind == "clusters" else random_labels
        ds = make_fn(n, d, classes, seed, loss)
        if loss == "squared" and d_out == 1:
            # one output for two classes: targets ±1 (one-hot minus ½, differenced)
            ds = Dataset(ds.X, ds.Y[:, :1] - ds.Y[:, 1:], ds.loss, ds.name, ds.labels)
        return ds
    if kind == "teacher":
        return teacher(n, d, d_out, seed)
    if kind == "whitened":
        return whitened(n, d, d_out, seed, dim)
    if kind == "diabetes":
        return diabetes(n, seed)
    if kind == "subspace":
        return subspace(n, d, dim if dim is not None else max(1, d // 2), d_out, seed, loss)
    return digits(n, seed, loss, classes=min(10, classes) if loss != "squared" else d_out)
