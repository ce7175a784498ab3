"""Tests of verify.measure.spectra against brute-force numpy/scipy references on tiny matrices.

Every measurement is recomputed from its definition (THEOREMS.md, "Spectra"): singular values
by numpy's SVD, stable rank as ‖W‖_F²/σ_1², numerical rank by counting σ_i/‖W‖_F > tol, the
distance to rank k by building the truncated SVD W_k and taking ‖W − W_k‖_F (Eckart–Young),
the projector onto span(X)^⊥ from scipy's null_space/orth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.helpers import assert_close, within
from verify.measure import spectra as M
from verify.tolerances import factorisation, gamma

# Bounded finite entries; tiny magnitudes are snapped to 0 so squares never underflow.
ENTRY = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False,
                  allow_subnormal=False).map(lambda v: 0.0 if abs(v) < 1e-6 else v)


@st.composite
def matrices(draw: st.DrawFn, max_side: int = 6) -> np.ndarray:
    m = draw(st.integers(1, max_side))
    n = draw(st.integers(1, max_side))
    return draw(arrays(np.float64, (m, n), elements=ENTRY))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.float64)


def _truncated(W: np.ndarray, k: int) -> np.ndarray:
    """Best rank-≤k approximation by the truncated SVD."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    s = s.copy()
    s[k:] = 0.0
    return (U * s) @ Vt


# --------------------------------------------------------------------------- exact cases


def test_diag_321_exact_values() -> None:
    W = _t(np.diag([3.0, 2.0, 1.0]))
    # SVD of a 3 × 3 matrix: each σ within γ̃_9·‖W‖_F (verify.tolerances); each derived
    # quantity adds a few roundings (≤ 9 squares summed, a square root, a division)
    fro = math.sqrt(14.0)
    sv = factorisation(3, 3) * fro
    assert_close(M.singular_values(W), np.array([3.0, 2.0, 1.0]), bound=sv)
    assert M.frobenius(W) == within(fro, ops=12)
    # ‖W‖²/σ_1²: relative error γ_12 from the sums, plus 2·sv/σ_1 from σ_1
    assert M.stable_rank(W) == within(14.0 / 9.0, bound=(14.0 / 9.0) * (gamma(12)
                                                                          + 2 * sv / 3.0))
    tail = 3 * sv + gamma(6) * fro  # √(Σ_{i>k} σ_i²): ≤ 3 singular values, sums and a root
    assert M.tail_distance(W, 0) == within(fro, bound=tail)
    assert M.tail_distance(W, 1) == within(math.sqrt(5.0), bound=tail)
    assert M.tail_distance(W, 2) == within(1.0, bound=tail)
    assert M.tail_distance(W, 3) == 0.0
    assert M.tail_distance(W, 7) == 0.0
    assert M.relative_tail_distance(W, 1) == within(math.sqrt(5.0 / 14.0), bound=2 * tail / fro)
    assert M.gap_ratio(W, 1) == within(2.0 / 3.0, bound=2 * sv / 3.0 + gamma(1))
    assert M.gap_ratio(W, 2) == within(1.0 / 3.0, bound=2 * sv / 3.0 + gamma(1))
    assert M.gap_ratio(W, 3) == 0.0
    assert M.numerical_rank(W) == 3
    # σ_i/‖W‖_F = 3/√14 ≈ 0.80, 2/√14 ≈ 0.53, 1/√14 ≈ 0.27
    assert M.numerical_rank(W, tol=0.5) == 2
    assert M.numerical_rank(W, tol=0.6) == 1
    assert M.numerical_rank(W, tol=0.9) == 0


def test_zero_matrix_conventions() -> None:
    Z = torch.zeros(3, 4, dtype=torch.float64)
    assert M.stable_rank(Z) == 0.0
    assert M.numerical_rank(Z) == 0
    assert M.relative_tail_distance(Z, 1) == 0.0
    assert M.gap_ratio(Z, 0) == 0.0
    assert M.tail_distance(Z, 0) == 0.0
    assert M.frobenius(Z) == 0.0


def test_rank_one_matrix() -> None:
    u = np.array([1.0, -2.0, 0.5])
    v = np.array([3.0, 1.0])
    W = _t(np.outer(u, v))
    # a 3 × 2 SVD: σ's within γ̃_6·‖W‖_F; the zero σ_2 is at most that
    fro = M.frobenius(W)
    sv = factorisation(3, 2) * fro
    assert M.stable_rank(W) == within(1.0, bound=gamma(8) + 2 * sv / fro)
    assert M.numerical_rank(W) == 1
    assert M.tail_distance(W, 1) <= 2 * sv
    assert M.relative_tail_distance(W, 0) == within(1.0, bound=2 * sv / fro + gamma(8))
    assert M.gap_ratio(W, 0) == within(1.0, bound=2 * sv / fro + gamma(1))


def test_tail_distance_rejects_negative_k() -> None:
    with pytest.raises(ValueError, match="k=-1"):
        M.tail_distance(torch.eye(2, dtype=torch.float64), -1)


def test_singular_values_is_float64_and_detached() -> None:
    W = torch.tensor([[3.0, 0.0], [0.0, 4.0]], dtype=torch.float32, requires_grad=True)
    s = M.singular_values(W)
    assert s.dtype == torch.float64
    assert not s.requires_grad
    assert torch.allclose(s, torch.tensor([4.0, 3.0], dtype=torch.float64))


# --------------------------------------------------------------------------- properties


@given(matrices())
@settings(max_examples=25, deadline=None)
def test_singular_values_match_numpy(W: np.ndarray) -> None:
    ref = np.linalg.svd(W, compute_uv=False)
    got = M.singular_values(_t(W)).numpy()
    assert got.shape == ref.shape
    assert np.all(np.diff(got) <= 1e-12 * (1.0 + ref[0]))  # non-increasing
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * (1.0 + ref[0]))


@given(matrices())
@settings(max_examples=25, deadline=None)
def test_stable_rank_and_frobenius_by_definition(W: np.ndarray) -> None:
    fro = np.sqrt((W**2).sum())
    assert M.frobenius(_t(W)) == pytest.approx(fro, rel=1e-13, abs=1e-300)
    s1 = np.linalg.svd(W, compute_uv=False)[0]
    if s1 == 0.0:
        assert M.stable_rank(_t(W)) == 0.0
    else:
        ref = fro**2 / s1**2
        got = M.stable_rank(_t(W))
        assert got == pytest.approx(ref, rel=1e-10)
        assert 1.0 - 1e-10 <= got <= min(W.shape) + 1e-10


@given(matrices(), st.sampled_from([1e-3, 1e-2, 0.1, 0.3]))
@settings(max_examples=25, deadline=None)
def test_numerical_rank_by_counting(W: np.ndarray, tol: float) -> None:
    s = np.linalg.svd(W, compute_uv=False)
    fro = np.linalg.norm(W)
    if fro == 0.0:
        assert M.numerical_rank(_t(W), tol) == 0
        return
    ratio = s / fro
    assume(np.all(np.abs(ratio - tol) > 1e-9))  # no singular value on the threshold
    assert M.numerical_rank(_t(W), tol) == int((ratio > tol).sum())


@given(matrices())
@settings(max_examples=25, deadline=None)
def test_tail_distance_is_eckart_young_error(W: np.ndarray) -> None:
    fro = np.linalg.norm(W)
    for k in range(min(W.shape) + 2):
        ref = np.linalg.norm(W - _truncated(W, k))
        assert M.tail_distance(_t(W), k) == pytest.approx(ref, rel=1e-9, abs=1e-12 * (1 + fro))
        rel = M.relative_tail_distance(_t(W), k)
        if fro == 0.0:
            assert rel == 0.0
        else:
            assert rel == pytest.approx(ref / fro, rel=1e-9, abs=1e-12)
            assert 0.0 <= rel <= 1.0 + 1e-12


@given(matrices(max_side=5), st.integers(0, 4), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_tail_distance_lower_bounds_any_rank_k_matrix(W: np.ndarray, k: int, seed: int) -> None:
    """Eckart–Young optimality: no rank-≤k matrix is closer to W than D_k(W)."""
    rng = np.random.default_rng(seed)
    m, n = W.shape
    B = rng.standard_normal((m, k)) @ rng.standard_normal((k, n))
    assert np.linalg.norm(W - B) >= M.tail_distance(_t(W), k) - 1e-10 * (1 + np.linalg.norm(W))


@given(matrices())
@settings(max_examples=25, deadline=None)
def test_gap_ratio_by_definition(W: np.ndarray) -> None:
    s = np.linalg.svd(W, compute_uv=False)
    for k in range(len(s) + 2):
        ref = s[k] / s[0] if (k < len(s) and s[0] > 0) else 0.0
        assert M.gap_ratio(_t(W), k) == pytest.approx(ref, rel=1e-9, abs=1e-12)


@given(matrices(), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_cosine_explicit_formula(A: np.ndarray, seed: int) -> None:
    B = np.random.default_rng(seed).standard_normal(A.shape)
    na, nb = np.linalg.norm(A), np.linalg.norm(B)
    got = M.cosine(_t(A), _t(B))
    if na == 0.0:
        assert math.isnan(got)
    else:
        # ⟨A, B⟩/(‖A‖‖B‖): an inner product and two norms of N terms, in two orders; the
        # inner product's rounding is relative to Σ|a||b|, the cosine's to that / (‖A‖‖B‖)
        N = A.size
        scale = float(np.abs(A * B).sum() / (na * nb)) + 1.0
        assert got == within((A * B).sum() / (na * nb), ops=2 * (N + 4), scale=scale)
        assert M.cosine(_t(A), _t(A)) == within(1.0, ops=2 * (N + 4))
        assert M.cosine(_t(A), _t(-A)) == within(-1.0, ops=2 * (N + 4))
        assert M.cosine(_t(3.0 * A), _t(0.5 * B)) == within(got, ops=2 * (N + 5), scale=scale)


def test_cosine_of_sequences_is_cosine_of_concatenation() -> None:
    rng = np.random.default_rng(1)
    As = [rng.standard_normal((3, 2)), rng.standard_normal(4), rng.standard_normal((2, 2))]
    Bs = [rng.standard_normal(a.shape) for a in As]
    a = np.concatenate([x.ravel() for x in As])
    b = np.concatenate([x.ravel() for x in Bs])
    ref = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    N = a.size
    scale = float(np.abs(a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))) + 1.0
    assert M.cosine([_t(x) for x in As], [_t(x) for x in Bs]) == within(ref, ops=2 * (N + 4),
                                                                         scale=scale)
    # float32 inputs are accumulated in float64
    got32 = M.cosine([_t(x).float() for x in As], [_t(x).float() for x in Bs])
    assert got32 == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError):
        M.cosine([_t(x) for x in As], [_t(x) for x in Bs[:2]])
    assert math.isnan(M.cosine(torch.zeros(3), torch.ones(3)))
    assert math.isnan(M.cosine(torch.ones(3), torch.zeros(3)))


def test_cosine_orthogonal_is_zero() -> None:
    A = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    B = torch.tensor([[0.0, 2.0], [0.0, -5.0]], dtype=torch.float64)
    assert M.cosine(A, B) == 0.0


@given(st.lists(matrices(max_side=4), min_size=1, max_size=4))
@settings(max_examples=25, deadline=None)
def test_layer_norms_and_frobenius_all(Ws: list[np.ndarray]) -> None:
    ts = [_t(W) for W in Ws]
    ref = [np.sqrt((W**2).sum()) for W in Ws]
    # norms: sums of N squares (no cancellation) and a root, in two orders
    N = sum(W.size for W in Ws) + len(Ws)
    for got, want in zip(M.layer_norms(ts), ref, strict=True):
        assert got == within(want, ops=2 * (N + 2))
    total = np.sqrt(sum((W**2).sum() for W in Ws))
    assert M.frobenius_all(ts) == within(total, ops=2 * (N + 2))
    assert M.frobenius_all(ts) == within(math.sqrt(sum(r**2 for r in ref)), ops=2 * (N + 4))


# --------------------------------------------------------------------------- data span


@st.composite
def low_rank_data(draw: st.DrawFn) -> np.ndarray:
    """Row-wise data X (n × d) of rank r ≤ min(n, d), well conditioned on its span."""
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 6))
    r = draw(st.integers(0, min(n, d)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    C = rng.standard_normal((n, r)) + 3.0 * np.eye(n, r)
    return C @ Q[:, :r].T


@given(low_rank_data())
@settings(max_examples=25, deadline=None)
def test_span_projector_matches_scipy_null_space(X: np.ndarray) -> None:
    d = X.shape[1]
    P = M.span_projector(_t(X), rtol=1e-8).numpy()
    N = scipy.linalg.null_space(X, rcond=1e-8)
    np.testing.assert_allclose(P, N @ N.T, atol=1e-10)
    if np.linalg.matrix_rank(X, tol=1e-8 * max(1.0, np.linalg.norm(X, 2))) > 0:
        U = scipy.linalg.orth(X.T, rcond=1e-8)
        np.testing.assert_allclose(P, np.eye(d) - U @ U.T, atol=1e-10)
    # an orthogonal projector that annihilates the data
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    np.testing.assert_allclose(P @ P, P, atol=1e-10)
    np.testing.assert_allclose(X @ P, 0.0, atol=1e-9 * (1 + np.abs(X).max()))
    assert np.trace(P) == pytest.approx(N.shape[1], abs=1e-9)


def test_span_projector_default_tolerance_on_exact_cases() -> None:
    # data supported on the first two coordinates of R^4: P_⊥ projects on e_3, e_4
    X = _t(np.array([[1.0, 2.0, 0.0, 0.0], [3.0, -1.0, 0.0, 0.0], [4.0, 1.0, 0.0, 0.0]]))
    # a projector from the SVD of a 3 × 4 matrix: I − VVᵀ, V within γ̃_12 (relative to σ_min
    # of the span, ≥ 1 here), then products of 4 terms
    proj = factorisation(3, 4) * float(np.linalg.norm(X.numpy())) / float(
        np.linalg.svd(X.numpy(), compute_uv=False)[1]) + gamma(6)
    assert_close(M.span_projector(X), np.diag([0.0, 0.0, 1.0, 1.0]), bound=2 * proj)
    # zero data: nothing is in the span
    np.testing.assert_array_equal(M.span_projector(torch.zeros(3, 2, dtype=torch.float64)),
                                  np.eye(2))
    # full-rank data: nothing is outside it
    rng = np.random.default_rng(0)
    Xf = rng.standard_normal((6, 3))
    sf = np.linalg.svd(Xf, compute_uv=False)
    proj = factorisation(6, 3) * float(np.linalg.norm(Xf)) / float(sf[-1]) + gamma(6)
    assert_close(M.span_projector(_t(Xf)), np.zeros((3, 3)), bound=2 * proj)
    assert_close(M.span_projector(_t(Xf)), scipy.linalg.null_space(Xf)
                 @ scipy.linalg.null_space(Xf).T, bound=4 * proj)


@given(low_rank_data(), st.integers(1, 4), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_outside_span_matches_numpy(X: np.ndarray, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((h, X.shape[1]))
    N = scipy.linalg.null_space(X, rcond=1e-8)
    P = M.span_projector(_t(X), rtol=1e-8)
    ref = np.linalg.norm(W1 @ N @ N.T)
    assert M.outside_span(_t(W1), P) == pytest.approx(ref, rel=1e-9, abs=1e-10)
    # rows of W1 inside span(X) (combinations of data points) are not outside it
    inside = rng.standard_normal((h, X.shape[0])) @ X
    assert M.outside_span(_t(inside), P) <= 1e-9 * (1 + np.linalg.norm(inside))


# --------------------------------------------------------------- from singular values


@given(matrices(), st.sampled_from([1e-3, 1e-2, 0.1, 0.3]))
@settings(max_examples=25, deadline=None)
def test_spectrum_tails_and_rank_by_definition(W: np.ndarray, tol: float) -> None:
    """D_k for every k and rank_tol from given singular values, against numpy sums."""
    s = np.linalg.svd(W, compute_uv=False)
    tails = M.spectrum_tails(_t(s))
    assert tails.shape == (len(s) + 1,) and float(tails[-1]) == 0.0
    fro = float(np.linalg.norm(s))
    for k in range(len(s) + 1):
        ref = math.sqrt(float(np.sum(s[k:] ** 2)))
        # two sums of ≤ r squares and a square root: within γ_{2r+2} of ‖σ‖² under the root
        assert abs(float(tails[k]) - ref) <= math.sqrt(gamma(2 * len(s) + 2)) * fro
    ratio = s / fro if fro > 0 else s
    assume(np.all(np.abs(ratio - tol) > 1e-9))  # no singular value on the threshold
    assert int(M.spectrum_rank(_t(s), tol)) == (int((ratio > tol).sum()) if fro > 0 else 0)


def test_spectrum_functions_batch_over_rows() -> None:
    """One row per iterate of a trajectory: each row as on its own, zero rows included."""
    S = _t(np.array([[3.0, 2.0, 1.0], [1.0, 1e-4, 0.0], [0.0, 0.0, 0.0]]))
    tails, ranks = M.spectrum_tails(S), M.spectrum_rank(S, 1e-3)
    for i in range(3):
        assert torch.equal(tails[i], M.spectrum_tails(S[i]))
        assert int(ranks[i]) == int(M.spectrum_rank(S[i], 1e-3))
    assert ranks.tolist() == [3, 1, 0]
    assert tails[0].tolist() == pytest.approx([math.sqrt(14.0), math.sqrt(5.0), 1.0, 0.0])


def test_outer_sum_rank_counts_terms_above_rounding() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    G = a.T @ b  # Σ_k a_k b_kᵀ: rank 3; rounding leaves σ_4, σ_5 below the level
    r, level = M.outer_sum_rank(a, b, G)
    assert r == 3 and 0 < level == M.outer_sum_rank_tol(a, b, G)
    assert M.outer_sum_rank(a, b, torch.zeros(7, 5, dtype=torch.float64)) == (0, 0.0)
