"""Tests of verify.nets.data: seeded generators (determinism, shapes, the defining property of each
data set), the offline digits loader, and refusal of bad input with a UsageError."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import assert_close
from verify.errors import UsageError
from verify.nets import data as D

F64 = torch.float64

GENERATORS = {
    "clusters": lambda seed: D.clusters(12, 4, 3, seed),
    "clusters_ce": lambda seed: D.clusters(12, 4, 3, seed, loss="ce"),
    "clusters_logistic": lambda seed: D.clusters(12, 4, 2, seed, loss="logistic"),
    "random_labels": lambda seed: D.random_labels(10, 3, 4, seed),
    "teacher": lambda seed: D.teacher(9, 4, 2, seed, rank=2, noise=0.1),
    "whitened": lambda seed: D.whitened(10, 3, 2, seed),
    "subspace": lambda seed: D.subspace(10, 5, 2, 3, seed),
    "subspace_logistic": lambda seed: D.subspace(10, 5, 2, 1, seed, loss="logistic"),
    "digits": lambda seed: D.digits(30, seed),
}


def _same(a: D.Dataset, b: D.Dataset) -> bool:
    lab = (a.labels is None and b.labels is None) or (
        a.labels is not None and b.labels is not None and torch.equal(a.labels, b.labels))
    return (torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y) and a.loss == b.loss
            and a.name == b.name and lab)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_deterministic_in_seed(name: str) -> None:
    gen = GENERATORS[name]
    a, b, c = gen(5), gen(5), gen(6)
    assert _same(a, b)
    assert not torch.equal(a.X, c.X)
    assert a.X.dtype == F64
    assert bool(torch.isfinite(a.X).all()) and bool(torch.isfinite(a.Y.double()).all())


@given(st.integers(1, 16), st.integers(1, 5), st.integers(2, 4), st.integers(0, 2**16),
       st.sampled_from(D.LOSSES))
@settings(max_examples=20, deadline=None)
def test_clusters_shapes_and_targets(n: int, d: int, K: int, seed: int, loss: str) -> None:
    ds = D.clusters(n, d, K, seed, loss)
    assert ds.X.shape == (n, d) and ds.n == n and ds.d_in == d and ds.loss == loss
    labels = ds.labels.numpy()
    np.testing.assert_array_equal(labels, np.arange(n) % K)
    if loss == "ce":
        assert ds.Y.dtype == torch.long and ds.Y.shape == (n,)
        np.testing.assert_array_equal(ds.Y.numpy(), labels)
        assert ds.d_out == int(labels.max()) + 1
    elif loss == "logistic":
        assert ds.Y.shape == (n,) and ds.d_out == 1
        np.testing.assert_array_equal(ds.Y.numpy(), np.where(labels % 2 == 0, 1.0, -1.0))
    else:
        assert ds.Y.shape == (n, K) and ds.d_out == K
        # centred one-hot targets: one subtraction from exact 0/1 values, then K-term sums
        assert_close(ds.Y, np.eye(K)[labels] - 1.0 / K, ops=2, scale=1.0)
        assert_close(ds.Y.sum(1), np.zeros(n), ops=K + 2, scale=1.0)


def test_clusters_are_clustered() -> None:
    """Class means lie near the unit sphere; within-class spread is about ``spread``."""
    ds = D.clusters(300, 8, 3, seed=1, spread=0.1)
    X, lab = ds.X.numpy(), ds.labels.numpy()
    for c in range(3):
        mu = X[lab == c].mean(0)
        assert np.linalg.norm(mu) == pytest.approx(1.0, abs=0.05)
        assert np.sqrt(((X[lab == c] - mu) ** 2).sum(1).mean()) == pytest.approx(0.1, rel=0.2)


def test_random_labels_range_and_shapes() -> None:
    ds = D.random_labels(200, 3, 4, seed=0, loss="ce")
    assert ds.X.shape == (200, 3) and ds.Y.shape == (200,)
    assert set(ds.Y.tolist()) == {0, 1, 2, 3}
    assert torch.equal(ds.Y, ds.labels)


@given(st.integers(2, 16), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_teacher_shapes_and_rank(n: int, d: int, d_out: int, rank: int, seed: int) -> None:
    ds = D.teacher(n, d, d_out, seed, rank=rank)
    assert ds.X.shape == (n, d) and ds.Y.shape == (n, d_out) and ds.loss == "squared"
    assert ds.labels is None and ds.d_out == d_out
    # noise-free targets factor through the rank-`rank` teacher
    assert np.linalg.matrix_rank(ds.Y.numpy()) <= rank


@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 10), st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_whitened_is_whitened_and_linear(d: int, d_out: int, extra: int, seed: int) -> None:
    n = d + extra
    ds = D.whitened(n, d, d_out, seed)
    X, Y = ds.X.numpy(), ds.Y.numpy()
    assert X.shape == (n, d) and Y.shape == (n, d_out)
    np.testing.assert_allclose(X.T @ X / n, np.eye(d), atol=1e-12)
    M = Y.T @ X / n  # = M_0 exactly
    np.testing.assert_allclose(Y, X @ M.T, atol=1e-12)
    r = min(d, d_out)
    np.testing.assert_allclose(np.linalg.svd(M, compute_uv=False)[:r], np.linspace(2.0, 0.5, r),
                               atol=1e-12)


def test_whitened_target_rank() -> None:
    ds = D.whitened(12, 5, 4, seed=3, target_rank=2)
    M = ds.Y.numpy().T @ ds.X.numpy() / 12
    s = np.linalg.svd(M, compute_uv=False)
    np.testing.assert_allclose(s[:2], [2.0, 0.5], atol=1e-12)
    assert np.all(s[2:] < 1e-12)


def test_whitened_refuses_n_below_d() -> None:
    with pytest.raises(UsageError, match="n=3") as info:
        D.whitened(3, 4, 2, seed=0)
    assert info.value.value == 3


@given(st.integers(1, 12), st.integers(1, 6), st.data())
@settings(max_examples=20, deadline=None)
def test_subspace_rank_equals_dim(n: int, d: int, data: st.DataObject) -> None:
    dim = data.draw(st.integers(1, d))
    seed = data.draw(st.integers(0, 2**16))
    ds = D.subspace(n, d, dim, 2, seed)
    assert ds.X.shape == (n, d) and ds.Y.shape == (n, 2)
    assert np.linalg.matrix_rank(ds.X.numpy()) == min(dim, n)


def test_subspace_logistic_targets() -> None:
    ds = D.subspace(15, 5, 2, 1, seed=4, loss="logistic")
    assert ds.loss == "logistic" and ds.Y.shape == (15,)
    y = ds.Y.numpy()
    assert set(np.unique(y)) <= {-1.0, 1.0}
    assert (y > 0).sum() >= 15 / 2  # median split: at least half are ≥ the median


@pytest.mark.parametrize("dim", [0, 6, -1])
def test_subspace_refuses_bad_dim(dim: int) -> None:
    with pytest.raises(UsageError, match=f"dim={dim}"):
        D.subspace(10, 5, dim, 1, seed=0)


def test_digits_offline_and_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("digits tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = D.digits(40, seed=0)
    assert ds.X.shape == (40, 64) and ds.loss == "ce" and ds.Y.dtype == torch.long
    assert float(ds.X.min()) >= 0.0 and float(ds.X.max()) <= 1.0
    assert int(ds.Y.min()) >= 0 and int(ds.Y.max()) <= 9
    assert torch.equal(ds.Y, ds.labels)
    three = D.digits(30, seed=1, loss="squared", classes=3)
    assert three.Y.shape == (30, 3) and int(three.labels.max()) <= 2
    assert_close(three.Y, np.eye(3)[three.labels.numpy()] - 1 / 3, ops=2, scale=1.0)
    full = D.digits(None, seed=0, classes=2)
    assert full.n == int(((full.labels == 0) | (full.labels == 1)).sum())
    assert set(full.labels.tolist()) == {0, 1}


@pytest.mark.parametrize("n", [0, 10**6])
def test_digits_refuses_bad_n(n: int) -> None:
    with pytest.raises(UsageError, match=f"n={n}"):
        D.digits(n, seed=0)


def test_dataset_to_keeps_everything() -> None:
    ds = D.clusters(6, 3, 2, seed=0, loss="ce")
    moved = ds.to("cpu")
    assert _same(ds, moved)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("part, bad", [("inputs", math.nan), ("inputs", math.inf),
                                       ("targets", -math.inf), ("targets", math.nan)])
def test_check_finite_refuses_non_finite(part: str, bad: float) -> None:
    X = torch.ones(4, 2, dtype=F64)
    Y = torch.ones(4, 1, dtype=F64)
    (X if part == "inputs" else Y)[1, 0] = bad
    with pytest.raises(UsageError) as info:
        D.check_finite(X, Y, "mydata")
    msg = str(info.value)
    assert f"mydata {part}" in msg and "1 non-finite" in msg and "NaN or inf" in msg


def test_check_finite_accepts_finite_and_integer_targets() -> None:
    D.check_finite(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    D.check_finite(torch.zeros(3, 2, dtype=F64), torch.full((3, 1), 1e308, dtype=F64))


def test_make_dispatches_to_generators() -> None:
    assert _same(D.make("clusters", 10, 3, 4, 2), D.clusters(10, 3, 4, 2))
    assert _same(D.make("clusters", 10, 3, 1, 2, loss="logistic"),
                 D.clusters(10, 3, 2, 2, "logistic"))
    assert _same(D.make("random_labels", 10, 3, 3, 2, loss="ce"),
                 D.random_labels(10, 3, 3, 2, "ce"))
    assert _same(D.make("teacher", 10, 3, 2, 2), D.teacher(10, 3, 2, 2))
    assert _same(D.make("whitened", 10, 3, 2, 2, dim=1), D.whitened(10, 3, 2, 2, 1))
    assert _same(D.make("subspace", 10, 6, 2, 2), D.subspace(10, 6, 3, 2, 2))
    assert _same(D.make("subspace", 10, 6, 2, 2, dim=2), D.subspace(10, 6, 2, 2, 2))
    assert _same(D.make("digits", 10, 64, 3, 2, loss="ce"), D.digits(10, 2, "ce", 3))


@pytest.mark.parametrize("kwargs, name, shown", [
    ({"kind": "nope"}, "data", "'nope'"),
    ({"n": 0}, "n", "n=0"),
    ({"n": -3}, "n", "n=-3"),
    ({"n": 2.5}, "n", "n=2.5"),
    ({"loss": "hinge"}, "loss", "'hinge'"),
])
def test_make_refuses_bad_values(kwargs: dict, name: str, shown: str) -> None:
    args = {"kind": "clusters", "n": 8, "d": 3, "d_out": 2, "seed": 0, "loss": "squared"}
    args.update(kwargs)
    with pytest.raises(UsageError) as info:
        D.make(**args)
    assert info.value.name == name
    assert shown in str(info.value)


def test_make_whitened_refuses_target_rank_above_min_dims() -> None:
    """BUG (verify/data.py whitened): a target rank larger than min(d_0, d_out) is not
    validated; numpy fails with a raw broadcasting ValueError instead of a UsageError."""
    try:
        D.make("whitened", 8, 3, 2, 0, dim=5)
    except UsageError as exc:
        assert "5" in str(exc)
    except ValueError as exc:  # the current behaviour
        raise AssertionError(
            "BUG verify/data.py: whitened(target_rank=5) with d=3, d_out=2 raised a raw "
            f"{type(exc).__name__} ({exc}) instead of a UsageError naming the rank") from exc
    else:
        raise AssertionError("whitened accepted target_rank=5 > min(d, d_out)=2")


@pytest.mark.parametrize("kind, loss", [("teacher", "ce"), ("teacher", "logistic"),
                                        ("whitened", "ce"), ("whitened", "logistic"),
                                        ("subspace", "ce")])
def test_make_honours_or_refuses_the_loss(kind: str, loss: str) -> None:
    """BUG (verify/data.py make): teacher and whitened ignore ``loss`` and subspace ignores
    loss="ce"; they return a squared-loss data set, so e.g. Setting(data="teacher",
    loss="ce") silently trains with the squared loss while recording "ce"."""
    try:
        ds = D.make(kind, 10, 4, 3, 0, loss=loss)
    except UsageError as exc:
        assert loss in str(exc)
        return
    assert ds.loss == loss, (
        f"BUG verify/data.py make({kind!r}, loss={loss!r}) returned a {ds.loss!r} data set "
        "instead of honouring the loss or raising UsageError")
