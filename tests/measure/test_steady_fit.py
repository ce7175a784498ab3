"""Steady state and fit (verify.measure.steady, verify.measure.fit) against brute-force
twins: the settle steps by repeated multiplication, the drift by explicit averages, the
checkpoints by recomputing every rank from stored parameters, the fit by numpy."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.engine.setting import Context, Setting, trajectory
from verify.measure import fit as F
from verify.measure import spectra, steady
from verify.nets.data import Dataset
from verify.tolerances import gamma

CTX = Context(tau=1e-6)
TINY = Setting(widths=(5, 6, 6, 3), activation="relu", lam=0.05, n=12, data="clusters",
               loss="ce", seed=1, lr=0.2, steps=40, batch=4, polish=False)


@given(st.floats(1e-4, 0.5), st.floats(1e-3, 1.0), st.floats(0.5, 20.0))
@settings(max_examples=50)
def test_settle_steps_is_the_smallest_T_with_the_decay_below_e_minus_c(lr, lam, c) -> None:  # type: ignore[no-untyped-def]
    if not lr * lam < 1:
        return
    T = steady.settle_steps(lr, lam, c)
    # in logs: T·L ≥ c > (T − 1)·L with L = −log(1 − ηλ), up to the rounding of the
    # logarithm, the product and the quotient (γ_3, verify.tolerances)
    L = -math.log1p(-lr * lam)
    assert T * L >= c * (1 - gamma(3)) and (T - 1) * L < c * (1 + gamma(3))


def test_settle_steps_refuses_an_undefined_rate() -> None:
    for lr, lam in ((0.1, 0.0), (1.0, 1.0)):
        with pytest.raises(ValueError):
            steady.settle_steps(lr, lam)


def test_the_constant_is_twice_the_log_of_two_over_the_rank_tolerance() -> None:
    assert steady.SETTLE == pytest.approx(2 * math.log(2 / 1e-3))


def _brute_change(t: list[int], v: list[float]) -> float:
    end = max(t)
    start = end - math.ceil(0.2 * end)
    mid = (start + end) / 2
    a = [x for s, x in zip(t, v, strict=True) if start <= s < mid]
    b = [x for s, x in zip(t, v, strict=True) if mid <= s <= end]
    return abs(np.mean(b) - np.mean(a)) / abs(np.mean(a + b))


@given(st.lists(st.floats(0.5, 10.0), min_size=50, max_size=50))
def test_steady_state_changes_match_explicit_averages(vals) -> None:  # type: ignore[no-untyped-def]
    t = list(range(0, 500, 10))
    out = steady.steady_state(t, vals, vals, vals, steps=490)
    assert out.change["rank"] == pytest.approx(_brute_change(t, vals), rel=1e-12, abs=1e-15)
    assert out.settled == (out.change["rank"] <= steady.DRIFT)


def test_a_drifting_quantity_is_not_settled_and_is_named() -> None:
    t = list(range(0, 101, 2))
    flat = [3.0] * len(t)
    falling = [10.0 - 0.05 * s for s in t]
    out = steady.steady_state(t, flat, flat, falling, steps=100)
    assert not out.settled and "F" in out.reason and "rank" not in out.reason.split(">")[0]
    assert steady.steady_state(t, flat, flat, flat, steps=100).settled


def test_a_run_that_stopped_early_or_has_no_checkpoints_is_not_settled() -> None:
    t = list(range(0, 51, 5))
    flat = [1.0] * len(t)
    assert "stopped" in steady.steady_state(t, flat, flat, flat, steps=100).reason
    assert "few" in steady.steady_state([0, 100], [1.0] * 2, [1.0] * 2, [1.0] * 2,
                                        steps=100).reason
    nan = steady.steady_state(t, flat, flat, [math.nan] * len(t), steps=50)
    assert not nan.settled and "finite" in nan.reason


def test_checkpoints_match_ranks_recomputed_from_stored_iterates() -> None:
    """Twin: keep every iterate, recompute rank_tol, stable rank and F at the checkpoints."""
    kept: dict[int, tuple[torch.Tensor, ...]] = {}
    obj = TINY.objective()
    ck = steady.Checkpoints(obj, TINY.steps, points=8)

    def both(t: int, params: tuple[torch.Tensor, ...]) -> None:
        kept[t] = tuple(p.clone() for p in params)
        ck(t, params)

    trajectory(TINY, CTX, both)
    assert ck.t == sorted({*range(0, TINY.steps + 1, ck.every), TINY.steps})
    for i, t in enumerate(ck.t):
        W = kept[t][:2]  # the hidden layers
        assert ck.F[i] == pytest.approx(float(obj.value(kept[t])), rel=1e-12)
        ranks = [spectra.numerical_rank(w) for w in W]
        state_rank = sum(int(spectra.spectrum_rank(s)) for s in ck.sv[i]) / 2
        assert state_rank == sum(ranks) / 2
    st_ = ck.state()
    assert st_.trace["t"] == [float(t) for t in ck.t] and st_.steps == TINY.steps


def test_chain_calls_every_observer_in_order() -> None:
    seen: list[tuple[str, int]] = []
    chain = steady.Chain(lambda t, p: seen.append(("a", t)), lambda t, p: seen.append(("b", t)))
    chain(3, ())
    assert seen == [("a", 3), ("b", 3)]


# ----------------------------------------------------------------------------------------
# fit


def _classes(pred: list[int], y: list[int], K: int) -> tuple[Dataset, torch.Tensor]:
    out = torch.full((len(pred), K), -1.0, dtype=torch.float64)
    out[torch.arange(len(pred)), torch.tensor(pred)] = 1.0
    data = Dataset(torch.zeros(len(y), 2, dtype=torch.float64), torch.tensor(y), "ce", "t")
    return data, out


def test_accuracy_chance_and_the_binomial_band() -> None:
    y = [0] * 6 + [1] * 3 + [2] * 3
    data, out = _classes(y, y, 3)
    f = F.fit_of(data, out)
    assert f.value == 1.0 and f.chance == 0.5 and not f.at_chance and f.fits
    assert f.classes_predicted == 3 and f.classes == 3
    band = 0.5 + F.Z95 * math.sqrt(0.25 / 12)
    assert F.chance_band(0.5, 12) == pytest.approx(band)
    # always the majority class: accuracy = chance, one class predicted → collapsed
    data, out = _classes([0] * 12, y, 3)
    f = F.fit_of(data, out)
    assert f.value == 0.5 and f.at_chance and f.collapsed and not f.fits


def test_r2_and_the_linear_reference_match_numpy() -> None:
    gen = np.random.default_rng(0)
    X = gen.normal(size=(30, 4))
    Y = X @ gen.normal(size=(4, 2)) + 0.3 * gen.normal(size=(30, 2))
    out = Y + 0.5 * gen.normal(size=(30, 2))
    data = Dataset(torch.tensor(X), torch.tensor(Y), "squared", "t")
    f = F.fit_of(data, torch.tensor(out))
    r2 = 1 - ((out - Y) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
    B = np.linalg.lstsq(X, Y, rcond=None)[0]
    lin = 1 - ((X @ B - Y) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
    assert f.value == pytest.approx(r2) and f.linear == pytest.approx(lin)
    assert not f.at_chance and not f.collapsed
    const = F.fit_of(data, torch.tensor(np.tile(Y.mean(0), (30, 1))))
    assert const.value == pytest.approx(0.0, abs=1e-12) and const.at_chance and const.collapsed


def test_logistic_accuracy_reads_the_sign() -> None:
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    data = Dataset(torch.zeros(4, 2, dtype=torch.float64), y, "logistic", "t")
    f = F.fit_of(data, torch.tensor([[2.0], [-1.0], [-0.5], [-3.0]], dtype=torch.float64))
    assert f.value == 0.75 and f.chance == 0.5 and f.classes_predicted == 2


def test_a_network_under_huge_decay_is_collapsed() -> None:
    s = replace(TINY, lam=50.0, lr=0.01, steps=200)
    res = trajectory(s, CTX)
    f = F.fit(s.architecture(), res.params, s.dataset())
    assert f.collapsed and not f.fits
