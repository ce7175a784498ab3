"""The rules of verify.claims.verdict beyond judge: every verdict each rule can return,
FAIL included where the rule can fail, and the properties that make them rules (a mirrored
one-sided rule agrees with judge; a bound at an underestimate never FAILs)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verify.claims.verdict import (
    ROUNDING,
    Verdict,
    judge,
    judge_any_point,
    judge_at_least,
    judge_boundary,
    judge_slope,
    judge_trend_on,
    judge_underestimated,
    judge_worst_of,
    noted,
    require_certified,
    unmet,
    vacuous,
)
from verify.measure.trend import Slope, Trend

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _cert(certified: bool = True, collapsed: bool = False) -> Any:
    """The three fields of a Certificate that the rules read (the rest is evidence)."""
    return SimpleNamespace(certified=certified, collapsed=collapsed,
                           reason="test certificate")


# ------------------------------------------------------------------ unmet, vacuous, noted


def test_unmet_is_inconclusive_and_compares_nothing() -> None:
    out = unmet(what="SGD", why="diverged: loss is nan", measured=3.0, bound=4.0,
                details={"k": 1})
    assert out.verdict == Verdict.INCONCLUSIVE
    assert math.isnan(out.margin)
    assert (out.measured, out.bound, dict(out.details)) == (3.0, 4.0, {"k": 1})
    assert out.reason == "SGD: diverged: loss is nan"


def test_vacuous_keeps_a_margin_only_when_it_is_defined() -> None:
    out = vacuous(what="(c)", why="bound ≥ min(d)", measured=3.0, bound=12.0, scale=6.0)
    assert out.verdict == Verdict.VACUOUS
    assert out.margin == pytest.approx(1.5)
    assert math.isnan(vacuous(what="(c)", why="λ = 0", measured=3.0, bound=math.inf,
                              scale=6.0).margin)
    assert math.isnan(vacuous(what="(e)", why="one batch", measured=1.0, bound=2.0).margin)


def test_noted_adds_to_the_reason_and_changes_nothing_else() -> None:
    out = judge(3.0, 2.0, 1.0, "x", require_certificate=False)
    note = noted(out, "rounding level 1e-15")
    assert (note.verdict, note.measured, note.bound, note.margin) == (
        Verdict.FAIL, out.measured, out.bound, out.margin)
    assert note.reason == f"{out.reason}; rounding level 1e-15"


# ------------------------------------------------------------------ judge_at_least


def test_at_least_every_verdict() -> None:
    def rule(measured: float, bound: float, **kw: Any) -> Verdict:
        return judge_at_least(measured=measured, bound=bound, scale=1.0, what="sr ≥ 1",
                              **kw).verdict

    assert rule(1.5, 1.0, require_certificate=False) == Verdict.PASS
    assert rule(0.5, 1.0, require_certificate=False) == Verdict.FAIL
    # a lower bound no better than the trivial one says nothing
    assert rule(1.5, 0.0, require_certificate=False, trivial=0.0) == Verdict.VACUOUS
    assert rule(math.nan, 1.0, require_certificate=False) == Verdict.INCONCLUSIVE
    assert rule(1.5, 1.0, certificate=_cert(certified=False)) == Verdict.INCONCLUSIVE
    assert rule(0.0, 1.0, certificate=_cert(collapsed=True)) == Verdict.VACUOUS
    assert rule(1.5, 1.0, certificate=_cert()) == Verdict.PASS
    # equal within rounding is not a violation; just beyond it is
    assert rule(1.0 - 0.5 * ROUNDING, 1.0, require_certificate=False) == Verdict.PASS
    assert rule(1.0 - 2 * ROUNDING, 1.0, require_certificate=False) == Verdict.FAIL


def test_at_least_margin_is_measured_minus_bound() -> None:
    out = judge_at_least(measured=3.0, bound=1.0, scale=4.0, what="x",
                         require_certificate=False)
    assert out.margin == pytest.approx(0.5)
    assert (out.measured, out.bound) == (3.0, 1.0)


@given(FINITE, FINITE, st.floats(1e-3, 1e3))
def test_at_least_is_judge_mirrored(measured: float, bound: float, scale: float) -> None:
    mine = judge_at_least(measured=measured, bound=bound, scale=scale, what="x",
                          require_certificate=False)
    ref = judge(-measured, -bound, scale, "x", require_certificate=False)
    assert mine.verdict == ref.verdict
    assert mine.margin == pytest.approx(ref.margin)


# ------------------------------------------------------------------ judge_any_point


def test_any_point_needs_a_certificate_only_to_pass() -> None:
    def rule(measured: float, cert: Any, trivial: float | None = None) -> Verdict:
        return judge_any_point(measured=measured, bound=1.0, scale=2.0, what="D_K",
                               certificate=cert, trivial=trivial).verdict

    uncertified = _cert(certified=False)
    # a violated identity is a FAIL at any θ: no certificate needed (the mutant case)
    assert rule(1.5, uncertified) == Verdict.FAIL
    # a bound no better than the trivial one says nothing at any θ
    assert rule(0.5, uncertified, trivial=1.0) == Verdict.VACUOUS
    # an informative PASS is about the stationary point: it needs the certificate
    assert rule(0.5, uncertified) == Verdict.INCONCLUSIVE
    assert rule(0.5, _cert()) == Verdict.PASS
    assert rule(0.5, _cert(collapsed=True)) == Verdict.VACUOUS
    assert rule(math.nan, _cert()) == Verdict.INCONCLUSIVE


# ------------------------------------------------------------------ judge_worst_of


def test_worst_of_every_verdict_and_the_count() -> None:
    def rule(measured: float, checked: int, informative: int) -> Any:
        return judge_worst_of(measured=measured, bound=1.0, scale=1.0, what="(b) D_2(W_t)",
                              checked=checked, informative=informative,
                              empty="B·m ≥ min(d)")

    nothing = rule(0.0, 0, 0)
    assert nothing.verdict == Verdict.VACUOUS and math.isnan(nothing.margin)
    assert "B·m ≥ min(d)" in nothing.reason
    passed = rule(0.5, 10, 3)
    assert passed.verdict == Verdict.PASS and "non-trivial at 3/10" in passed.reason
    assert rule(0.5, 10, 0).verdict == Verdict.VACUOUS  # holds, but trivially everywhere
    failed = rule(1.5, 10, 0)  # a violation is a FAIL even where the bound is trivial
    assert failed.verdict == Verdict.FAIL and "worst of 10" in failed.reason
    assert rule(math.nan, 10, 3).verdict == Verdict.INCONCLUSIVE


# ------------------------------------------------------------------ judge_underestimated


def test_underestimated_every_verdict() -> None:
    def rule(measured: float, bound: float) -> Verdict:
        return judge_underestimated(measured=measured, bound=bound, scale=10.0, trivial=10.0,
                                    what="D_1(V) ≤ (2B−1)ε̂/μ").verdict

    assert rule(1.0, 2.0) == Verdict.PASS
    # above the bound at ε̂ ≤ ε: not a refutation
    assert rule(3.0, 2.0) == Verdict.INCONCLUSIVE
    assert rule(1.0, 10.0) == Verdict.VACUOUS
    assert rule(1.0, math.inf) == Verdict.VACUOUS
    assert rule(math.nan, 2.0) == Verdict.INCONCLUSIVE
    assert rule(2.0 + ROUNDING, 2.0) == Verdict.PASS  # equal within rounding


@given(FINITE, FINITE, st.floats(1e-3, 1e3))
def test_underestimated_never_fails(measured: float, bound: float, scale: float) -> None:
    out = judge_underestimated(measured=measured, bound=bound, scale=scale, trivial=scale,
                               what="x")
    assert out.verdict != Verdict.FAIL
    # and it agrees with judge wherever judge passes below the trivial bound
    ref = judge(measured, bound, scale, "x", require_certificate=False, trivial=scale)
    if ref.verdict == Verdict.PASS:
        assert out.verdict == Verdict.PASS


# ------------------------------------------------------------------ judge_boundary


def test_boundary_every_verdict() -> None:
    def rule(first_break: float | None) -> Any:
        return judge_boundary(first_break=first_break, claimed=0.0, limit=1.0, name="ε",
                              what="the sum is as accurate", tried=12, where="at 24°",
                              details={"a": 1}, series={"s": [1]})

    none = rule(None)
    assert none.verdict == Verdict.PASS and math.isnan(none.measured)
    beyond = rule(0.4)
    assert beyond.verdict == Verdict.PASS
    assert (beyond.measured, beyond.bound, beyond.margin) == (0.4, 1.0, pytest.approx(0.6))
    inside = rule(0.0)  # breaks where the claim is made: the mutant case
    assert inside.verdict == Verdict.FAIL and inside.margin == 0.0
    assert rule(math.nan).verdict == Verdict.INCONCLUSIVE
    assert dict(beyond.details) == {"a": 1} and dict(beyond.series) == {"s": [1]}


# ------------------------------------------------------------------ judge_trend_on


def test_trend_on_too_few_units_or_levels_is_inconclusive_and_names_what_was_left_out() -> None:
    t = Trend(-0.9, -1.0, -0.8, 3)
    few = judge_trend_on(trend=t, sign=-1, what="r", used=3, levels=2,
                         excluded={"not settled": 2, "at chance": 1})
    assert few.verdict == Verdict.INCONCLUSIVE and math.isnan(few.margin)
    assert "at chance 1, not settled 2" in few.reason
    one = judge_trend_on(trend=t, sign=-1, what="r", used=9, levels=1, excluded={})
    assert one.verdict == Verdict.INCONCLUSIVE and "left out: none" in one.reason


def test_trend_on_enough_units_is_judge_trend_with_the_counts() -> None:
    for t, sign, v in ((Trend(-0.9, -1.0, -0.8, 9), -1, Verdict.PASS),
                       (Trend(-0.9, -1.0, -0.8, 9), +1, Verdict.FAIL),
                       (Trend(0.1, -0.5, 0.6, 9), -1, Verdict.INCONCLUSIVE)):
        out = judge_trend_on(trend=t, sign=sign, what="r", used=9, levels=3,
                             excluded={"diverged": 1}, unit="certified merges")
        assert out.verdict == v and "on 9 certified merges; left out: diverged 1" in out.reason


# ------------------------------------------------------------------ judge_slope


@pytest.mark.parametrize(("lo", "hi", "verdict"), [
    (0.8, 1.3, Verdict.PASS),          # contains 1, excludes 0
    (1.2, 1.9, Verdict.FAIL),          # above 1
    (0.1, 0.7, Verdict.FAIL),          # below 1 (a positive relation, not proportional)
    (-0.5, 1.5, Verdict.INCONCLUSIVE),  # contains both
    (math.nan, 1.0, Verdict.INCONCLUSIVE),
])
def test_slope_against_a_claimed_exponent(lo: float, hi: float, verdict: Verdict) -> None:
    out = judge_slope(slope=Slope((lo + hi) / 2, lo, hi, 10), claimed=1.0, what="d ∝ x^p")
    assert out.verdict == verdict and out.bound == 1.0
    if verdict == Verdict.FAIL:
        gap = lo - 1.0 if lo > 1 else 1.0 - hi
        assert out.margin == pytest.approx(-gap)
    if verdict == Verdict.PASS:
        assert out.margin == pytest.approx(min(abs(lo), abs(hi)))


# ------------------------------------------------------------------ require_certified


def test_require_certified_keeps_what_needs_no_certificate() -> None:
    ok = judge(1.0, 2.0, 1.0, "x", require_certificate=False)
    bad = judge(3.0, 2.0, 1.0, "x", require_certificate=False)
    void = vacuous(what="x", why="trivial")
    assert require_certified(ok, uncertified=[]) is ok
    assert require_certified(ok, uncertified=["net A"]).verdict == Verdict.INCONCLUSIVE
    assert "not certified (net A)" in require_certified(ok, uncertified=["net A"]).reason
    assert require_certified(bad, uncertified=["net B"]).verdict == Verdict.INCONCLUSIVE
    assert require_certified(bad, uncertified=["net B"], any_point=True).verdict == Verdict.FAIL
    assert require_certified(void, uncertified=["net B"]).verdict == Verdict.VACUOUS
    kept = require_certified(ok, uncertified=["net A"])
    assert (kept.measured, kept.bound, kept.margin) == (ok.measured, ok.bound, ok.margin)
