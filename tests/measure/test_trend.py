"""Tests of verify.measure.trend (Spearman with a bootstrap interval) and the diabetes data."""

from __future__ import annotations

import numpy as np
import pytest

from verify.claims.verdict import Verdict, judge_trend
from verify.errors import UsageError
from verify.measure.trend import log_slope, rank_trend, spearman
from verify.nets import data as D

X = np.repeat([1.0, 2.0, 3.0], 4)


def test_clear_trend_passes_and_wrong_sign_fails() -> None:
    y = -X + np.random.default_rng(0).normal(0, 0.3, X.size)
    t = spearman(X, y, seed=1)
    assert t.lo <= t.rho <= t.hi < 0
    assert judge_trend(t, -1, "y").verdict == Verdict.PASS
    assert judge_trend(t, +1, "y").verdict == Verdict.FAIL
    assert spearman(X, y, seed=1) == t  # seeded


def test_noise_and_constants_decide_nothing() -> None:
    y = np.random.default_rng(3).normal(size=X.size)
    assert judge_trend(spearman(X, y), -1, "y").verdict == Verdict.INCONCLUSIVE
    flat = judge_trend(spearman(X, np.ones(X.size)), -1, "y")
    assert flat.verdict == Verdict.INCONCLUSIVE and "undefined" in flat.reason


def test_diabetes_is_standardised_regression() -> None:
    d = D.make("diabetes", 60, 10, 1, seed=2)
    assert d.X.shape == (60, 10) and d.Y.shape == (60, 1) and d.loss == "squared"
    full = D.diabetes(None, 0)
    assert full.n == 442
    assert np.allclose(full.X.mean(0).numpy(), 0, atol=1e-12)
    assert np.allclose(full.X.std(0, unbiased=False).numpy(), 1)
    with pytest.raises(UsageError, match="widths"):
        D.make("diabetes", 20, 8, 1, seed=0)
    with pytest.raises(UsageError, match="loss"):
        D.make("diabetes", 20, 10, 2, seed=0, loss="ce")


def test_log_slope_recovers_an_exponent_and_its_interval_covers_it() -> None:
    x = np.repeat([0.5, 1.0, 2.0, 4.0], 5)
    exact = log_slope(x, 3.0 * x**1.5, design=x)
    assert exact.slope == pytest.approx(1.5) and exact.lo == pytest.approx(1.5)
    noisy = log_slope(x, x * np.exp(np.random.default_rng(0).normal(0, 0.1, x.size)),
                      design=x, seed=2)
    assert noisy.lo <= 1.0 <= noisy.hi and noisy.lo < noisy.slope < noisy.hi
    # twin: numpy's least-squares line through the logs
    p = np.polyfit(np.log(x), np.log(x * np.exp(np.random.default_rng(0).normal(
        0, 0.1, x.size))), 1)[0]
    assert noisy.slope == pytest.approx(p)


def test_log_slope_leaves_out_zeros_and_is_undefined_below_two_points() -> None:
    s = log_slope([1.0, 2.0, 4.0], [0.0, 2.0, 4.0])
    assert s.dropped == 1 and s.runs == 2 and s.slope == pytest.approx(1.0)
    assert np.isnan(log_slope([1.0, 2.0], [0.0, 1.0]).slope)
    assert np.isnan(log_slope([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]).slope)  # x constant


def test_rank_trend_below_two_points_is_undefined() -> None:
    for xs in ([], [1.0]):
        t = rank_trend(xs, xs)
        assert np.isnan(t.rho) and t.runs == len(xs)
