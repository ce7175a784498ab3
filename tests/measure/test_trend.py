"""Tests of verify.measure.trend (Spearman with a bootstrap interval) and the diabetes data."""

from __future__ import annotations

import numpy as np
import pytest

from verify.claims.verdict import Verdict, judge_trend
from verify.errors import UsageError
from verify.measure.trend import spearman
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
