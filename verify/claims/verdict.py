"""Verdicts and the evidence behind them (THEOREMS.md, "Notation": Verdicts).

PASS — the claim holds with margin; FAIL — violated beyond the tolerance the certificate
allows; INCONCLUSIVE — assumptions not met (not stationary, diverged, kink stall);
VACUOUS — the bound holds but is no better than the trivial one; ERROR — the harness itself
failed (a bug, never "assumptions not met"). Every outcome carries the measured value, the
bound and the margin (bound − measured)/scale.

This module is where a verdict is decided; theorems never build an :class:`Outcome` by hand.
Rules: :func:`judge` (measured ≤ bound), :func:`judge_at_least` (measured ≥ bound),
:func:`judge_any_point` (a bound valid at any θ; PASS needs the certificate),
:func:`judge_worst_of` (the worst of many instances, k of m non-trivial),
:func:`judge_underestimated` (a bound at an estimate that underestimates it: never FAIL),
:func:`judge_boundary` (where a searched claim first breaks), :func:`judge_trend` (the sign
of a Spearman ρ), :func:`judge_trend_on` (a trend on the units it may use: settled networks
that fit, certified merges), :func:`judge_slope` (a log-log slope against a claimed exponent);
:func:`unmet` and :func:`vacuous` when an assumption is not met or the claim says nothing,
:func:`require_certified` when a claim about stationary points met uncertified networks,
:func:`combine` and :func:`overall` to put parts together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from verify.engine.certificate import Certificate
from verify.measure.trend import Slope, Trend

# Comparisons of quantities computed in float64 allow for rounding: 100 ulp of the scale of
# the compared quantities (a floating-point fact, not a tuned tolerance).
ROUNDING = 100 * 2.220446049250313e-16


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    VACUOUS = "VACUOUS"
    ERROR = "ERROR"  # a harness error: the check itself broke, nothing was judged


# Severity when several parts of one claim are combined: the worst part decides.
SEVERITY = {Verdict.ERROR: 4, Verdict.FAIL: 3, Verdict.INCONCLUSIVE: 2, Verdict.PASS: 1,
            Verdict.VACUOUS: 0}


@dataclass(frozen=True)
class Outcome:
    """The result of checking one claim (or one part of it) in one setting."""

    verdict: Verdict
    measured: float
    bound: float
    margin: float
    reason: str
    certificate: Certificate | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    series: Mapping[str, Any] = field(default_factory=dict)
    # an identity check holds for any θ once its tolerance is computed from the same θ: it
    # tests the measurement code only, and is no evidence for the paper's claim
    identity_check: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            "verdict": str(self.verdict), "measured": self.measured, "bound": self.bound,
            "margin": self.margin, "reason": self.reason,
            "certificate": None if self.certificate is None else self.certificate.to_json(),
            "details": dict(self.details), "series": dict(self.series),
        }
        if self.identity_check:
            out["identity_check"] = True
        return out


def margin(measured: float, bound: float, scale: float) -> float:
    """(bound − measured)/scale; NaN when undefined."""
    if not (math.isfinite(measured) and math.isfinite(bound)) or scale <= 0:
        return math.nan
    return (bound - measured) / scale


def judge(measured: float, bound: float, scale: float, what: str, *,
          certificate: Certificate | None = None, require_certificate: bool = True,
          trivial: float | None = None, identity_check: bool = False) -> Outcome:
    """Outcome of the claim ``measured ≤ bound`` (both on the scale ``scale``).

    VACUOUS at a collapsed (trivial) stationary point; INCONCLUSIVE when the certificate
    is required and not met or a value is not finite;
    FAIL when measured > bound + ROUNDING·scale; VACUOUS when the bound is no better than the
    ``trivial`` one; PASS otherwise. ``identity_check`` labels a part whose bound holds for
    any θ (it can fail only through the measurement code); the reason says so.
    """
    out = _judge(measured, bound, scale, what, certificate, require_certificate, trivial)
    if identity_check:
        return replace(out, identity_check=True,
                       reason=f"{out.reason} [identity check: not evidence for the claim]")
    return out


def _unjudgeable(measured: float, bound: float, m: float, what: str,
                 certificate: Certificate | None, require_certificate: bool
                 ) -> Outcome | None:
    """What every one-sided rule decides before comparing: VACUOUS at a collapsed stationary
    point, INCONCLUSIVE when a required certificate is not met or a value is not finite;
    None when the comparison decides."""
    if require_certificate and certificate is not None and certificate.collapsed:
        return Outcome(Verdict.VACUOUS, measured, bound, m,
                       f"{what}: trivial stationary point (a layer collapsed to 0)",
                       certificate)
    if require_certificate and certificate is not None and not certificate.certified:
        return Outcome(Verdict.INCONCLUSIVE, measured, bound, m,
                       f"{what}: not certified ({certificate.reason})", certificate)
    if not (math.isfinite(measured) and math.isfinite(bound)):
        return Outcome(Verdict.INCONCLUSIVE, measured, bound, m,
                       f"{what}: non-finite value (measured {measured}, bound {bound})",
                       certificate)
    return None


def _judge(measured: float, bound: float, scale: float, what: str,
           certificate: Certificate | None, require_certificate: bool,
           trivial: float | None) -> Outcome:
    m = margin(measured, bound, scale)
    early = _unjudgeable(measured, bound, m, what, certificate, require_certificate)
    if early is not None:
        return early
    if measured > bound + ROUNDING * scale:
        return Outcome(Verdict.FAIL, measured, bound, m,
                       f"{what}: {measured:.3g} > bound {bound:.3g}", certificate)
    if trivial is not None and bound >= trivial:
        return Outcome(Verdict.VACUOUS, measured, bound, m,
                       f"{what}: holds but the bound {bound:.3g} ≥ trivial {trivial:.3g}",
                       certificate)
    return Outcome(Verdict.PASS, measured, bound, m,
                   f"{what}: {measured:.3g} ≤ {bound:.3g}", certificate)


def combine(parts: Mapping[str, Outcome], details: Mapping[str, Any] | None = None,
            series: Mapping[str, Any] | None = None) -> Outcome:
    """One outcome from several parts of a claim: the most severe part decides.

    Among parts of equal severity the smallest margin is reported. Every part's verdict,
    values and reason go into ``details``.
    """
    if not parts:
        raise ValueError("combine() needs at least one part")

    def key(item: tuple[str, Outcome]) -> tuple[int, float]:
        o = item[1]
        return (SEVERITY[o.verdict], -(o.margin if math.isfinite(o.margin) else math.inf))

    name, worst = max(parts.items(), key=key)
    info = dict(details or {})
    info["parts"] = {k: {"verdict": str(o.verdict), "measured": o.measured, "bound": o.bound,
                         "margin": o.margin, "reason": o.reason,
                         **({"identity_check": True} if o.identity_check else {})}
                     for k, o in parts.items()}
    cert = next((o.certificate for o in parts.values() if o.certificate is not None), None)
    # the outcome is an identity check only when every part is one
    return replace(worst, reason=f"[{name}] {worst.reason}", certificate=cert,
                   details=info, series=dict(series or {}),
                   identity_check=all(o.identity_check for o in parts.values()))


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """Theorem-level verdict: ERROR if the harness failed on any example; else FAIL if any
    example fails; else PASS if any passes; else INCONCLUSIVE if any is inconclusive; else
    VACUOUS (also for no examples)."""
    vs = list(verdicts)
    for v in (Verdict.ERROR, Verdict.FAIL, Verdict.PASS, Verdict.INCONCLUSIVE):
        if v in vs:
            return v
    return Verdict.VACUOUS


def judge_trend(t: Trend, sign: int, what: str) -> Outcome:
    """PASS when the interval lies strictly on the side ``sign`` (±1) of zero, FAIL when it
    lies strictly on the other side, INCONCLUSIVE when it contains zero or is undefined.
    Reported as measured = ρ, bound = 0, margin = the interval's distance from 0 on the
    claimed side (negative when it reaches the wrong side)."""
    near, far = (t.hi, t.lo) if sign < 0 else (t.lo, t.hi)
    desc = (f"{what}: ρ = {t.rho:.3g}, {1 - t.alpha:.0%} CI [{t.lo:.3g}, {t.hi:.3g}] over "
            f"{t.runs} points")
    if not (math.isfinite(t.rho) and math.isfinite(t.lo) and math.isfinite(t.hi)):
        return Outcome(Verdict.INCONCLUSIVE, t.rho, 0.0, math.nan,
                       f"{desc} (undefined: no variation)")
    m = sign * near
    if m > 0:
        return Outcome(Verdict.PASS, t.rho, 0.0, m, f"{desc}: sign {sign:+d} as claimed")
    if sign * far < 0:
        return Outcome(Verdict.FAIL, t.rho, 0.0, m, f"{desc}: the opposite sign")
    return Outcome(Verdict.INCONCLUSIVE, t.rho, 0.0, m, f"{desc}: contains 0")


# ----------------------------------------------------------------------------------------
# Further rules. A theorem never builds an Outcome by hand: every verdict it reports comes
# from one of the rules above or below, so that margins, rounding and wording are decided
# in one place. Each rule is keyword-only and tested for every verdict it can return
# (tests/claims/test_verdict_rules.py).


def unmet(*, what: str, why: str, measured: float = math.nan, bound: float = math.nan,
          details: Mapping[str, Any] | None = None) -> Outcome:
    """INCONCLUSIVE: an assumption of the claim is not met (training diverged, too short a
    trajectory, too few certified networks), so nothing is compared; margin NaN."""
    return Outcome(Verdict.INCONCLUSIVE, measured, bound, math.nan, f"{what}: {why}",
                   details=dict(details or {}))


def vacuous(*, what: str, why: str, measured: float = math.nan, bound: float = math.nan,
            scale: float = math.nan, details: Mapping[str, Any] | None = None) -> Outcome:
    """VACUOUS: the claim says nothing here, known before comparing (an infinite bound at
    λ = 0, a bound at least the trivial one, a collapsed network, a single batch). The margin
    is (bound − measured)/scale when both are finite, else NaN."""
    return Outcome(Verdict.VACUOUS, measured, bound, margin(measured, bound, scale),
                   f"{what}: {why}", details=dict(details or {}))


def noted(out: Outcome, note: str) -> Outcome:
    """The same outcome (verdict, values) with ``note`` added to its reason."""
    return replace(out, reason=f"{out.reason}; {note}")


def judge_at_least(*, measured: float, bound: float, scale: float, what: str,
                   certificate: Certificate | None = None, require_certificate: bool = True,
                   trivial: float | None = None) -> Outcome:
    """Outcome of the claim ``measured ≥ bound``: :func:`judge` with the inequality the
    other way round. Margin (measured − bound)/scale.

    VACUOUS at a collapsed stationary point, INCONCLUSIVE when a required certificate is
    not met or a value is not finite, FAIL when measured < bound − ROUNDING·scale, VACUOUS
    when the lower bound is no better than the ``trivial`` one (bound ≤ trivial), else PASS.
    """
    m = margin(bound, measured, scale)
    early = _unjudgeable(measured, bound, m, what, certificate, require_certificate)
    if early is not None:
        return early
    if measured < bound - ROUNDING * scale:
        return Outcome(Verdict.FAIL, measured, bound, m,
                       f"{what}: {measured:.3g} < bound {bound:.3g}", certificate)
    if trivial is not None and bound <= trivial:
        return Outcome(Verdict.VACUOUS, measured, bound, m,
                       f"{what}: holds but the bound {bound:.3g} ≤ trivial {trivial:.3g}",
                       certificate)
    return Outcome(Verdict.PASS, measured, bound, m,
                   f"{what}: {measured:.3g} ≥ {bound:.3g}", certificate)


def judge_any_point(*, measured: float, bound: float, scale: float, what: str,
                    certificate: Certificate | None, trivial: float | None = None) -> Outcome:
    """``measured ≤ bound`` for a bound that holds at ANY parameters (an identity plus the
    residual, e.g. T6's D_K bound), while the claim is about the stationary point: a FAIL or
    a VACUOUS bound needs no certificate, an informative PASS does (INCONCLUSIVE when the
    certificate is not met, VACUOUS at a collapsed point). Otherwise as :func:`judge`."""
    out = judge(measured, bound, scale, what, certificate=certificate,
                require_certificate=False, trivial=trivial)
    if out.verdict != Verdict.PASS:
        return out
    return judge(measured, bound, scale, what, certificate=certificate, trivial=trivial)


def judge_worst_of(*, measured: float, bound: float, scale: float, what: str, checked: int,
                   informative: int, empty: str = "nothing to check") -> Outcome:
    """``measured ≤ bound`` at the worst of ``checked`` instances of one bound (e.g. T5(b),
    every pair (t, s) of a trajectory), of which ``informative`` have a bound below the
    trivial one. ``measured``, ``bound``, ``scale`` belong to the worst instance.

    VACUOUS when nothing was checked (the reason ``empty``; margin NaN); otherwise as
    :func:`judge` without certificate — FAIL, INCONCLUSIVE (non-finite), PASS — except that
    a PASS with no informative instance is VACUOUS. The reason says k/m non-trivial.
    """
    if checked == 0:
        return Outcome(Verdict.VACUOUS, measured, bound, math.nan, f"{what}: {empty}")
    out = judge(measured, bound, scale, f"{what} (worst of {checked})",
                require_certificate=False)
    if out.verdict == Verdict.PASS and informative == 0:
        out = replace(out, verdict=Verdict.VACUOUS,
                      reason=f"{out.reason}; the bound is trivial at every instance")
    return noted(out, f"non-trivial at {informative}/{checked}")


def judge_underestimated(*, measured: float, bound: float, scale: float, what: str,
                         trivial: float, estimate: str = "the estimate") -> Outcome:
    """``measured ≤ bound`` where ``bound`` is evaluated at an estimate that can only
    underestimate the true bound (T7: ε̂, a maximum over sampled batches, ≤ ε, the maximum
    over all batches). Holding at the estimate proves the claim; failing there does not
    refute it.

    VACUOUS when bound ≥ ``trivial`` (also an infinite bound); INCONCLUSIVE when a value is
    not finite or measured > bound + ROUNDING·scale; PASS otherwise. Never FAIL.
    """
    m = margin(measured, bound, scale)
    if bound >= trivial:
        return Outcome(Verdict.VACUOUS, measured, bound, m,
                       f"{what}: bound = {bound:.3g} ≥ trivial {trivial:.3g} (vacuous)")
    if not (math.isfinite(measured) and math.isfinite(bound)):
        return Outcome(Verdict.INCONCLUSIVE, measured, bound, m,
                       f"{what}: non-finite value (measured {measured}, bound {bound})")
    if measured <= bound + ROUNDING * scale:
        return Outcome(Verdict.PASS, measured, bound, m, f"{what}: {measured:.3g} ≤ {bound:.3g}")
    return Outcome(Verdict.INCONCLUSIVE, measured, bound, m,
                   f"{what}: {measured:.3g} > bound {bound:.3g} at {estimate}, which "
                   "underestimates the bound: not a refutation")


def judge_boundary(*, first_break: float | None, claimed: float, limit: float, what: str,
                   tried: int, name: str = "x", where: str = "",
                   details: Mapping[str, Any] | None = None,
                   series: Mapping[str, Any] | None = None) -> Outcome:
    """A search for the smallest value in [0, ``limit``] of a parameter (T8: the overlap ε)
    at which a claim breaks, where the claim covers values ≤ ``claimed``.

    FAIL when the first break lies inside the claimed range (first_break ≤ claimed +
    ROUNDING·limit); INCONCLUSIVE when it is not finite; PASS when no break was found in
    ``tried`` tries (measured NaN) or it lies beyond — then measured = first_break, bound =
    limit, margin = (limit − first_break)/limit: how much of the range held. ``name`` is the
    parameter's symbol, ``where`` says where the break was found (e.g. the angle).
    """
    info, ser = dict(details or {}), dict(series or {})
    at = f" {where}" if where else ""
    if first_break is None:
        return Outcome(Verdict.PASS, math.nan, limit, math.nan,
                       f"{what}: no break found in {tried} tries up to {name} = {limit:g}",
                       details=info, series=ser)
    if not math.isfinite(first_break):
        return Outcome(Verdict.INCONCLUSIVE, first_break, limit, math.nan,
                       f"{what}: the first break{at} is not finite ({first_break})",
                       details=info, series=ser)
    if first_break <= claimed + ROUNDING * limit:
        return Outcome(Verdict.FAIL, first_break, claimed, margin(first_break, claimed, limit),
                       f"{what}: breaks{at} at {name} = {first_break:.3g}, inside the claimed "
                       f"range {name} ≤ {claimed:g}", details=info, series=ser)
    return Outcome(Verdict.PASS, first_break, limit, margin(first_break, limit, limit),
                   f"{what}: holds at {name} ≤ {claimed:g} and first breaks{at} at "
                   f"{name} = {first_break:.3g} (found over {tried} tries)", details=info,
                   series=ser)


def judge_trend_on(*, trend: Trend, sign: int, what: str, used: int, levels: int,
                   excluded: Mapping[str, int], needed: int = 4,
                   unit: str = "settled networks that fit") -> Outcome:
    """:func:`judge_trend` on the units a trend claim may rest on (THEOREMS.md T5(d), T7:
    settled networks that fit; T8: certified merges). ``used`` units remain at ``levels``
    distinct values of the variable; ``excluded`` counts the others by reason.

    INCONCLUSIVE (margin NaN) when fewer than ``needed`` units or fewer than two levels
    remain — the reason names what was left out and why; otherwise the verdict of
    :func:`judge_trend`, with the counts added to its reason.
    """
    left = ", ".join(f"{k} {v}" for k, v in sorted(excluded.items())) or "none"
    if used < needed or levels < 2:
        return unmet(what=what, why=f"only {used} {unit} at {levels} level(s) ({needed} "
                     f"units at ≥ 2 levels needed); left out: {left}", measured=trend.rho,
                     bound=0.0)
    return noted(judge_trend(trend, sign, what), f"on {used} {unit}; left out: {left}")


def judge_slope(*, slope: Slope, claimed: float, what: str) -> Outcome:
    """A claimed exponent p (``claimed`` ≠ 0; 1 = "proportional") of y ∝ x^p, against the
    measured log-log slope and its bootstrap interval [lo, hi].

    PASS when the interval contains ``claimed`` and excludes 0 (the relation is there and
    consistent with the exponent); FAIL when the interval excludes ``claimed`` (margin: the
    interval's distance from it, negative); INCONCLUSIVE when it contains both (too wide to
    tell) or is undefined. Reported as measured = slope, bound = claimed; a PASS's margin is
    the distance of the nearer end of the interval from 0, relative to |claimed|.
    """
    desc = (f"{what}: slope {slope.slope:.3g}, {1 - slope.alpha:.0%} CI [{slope.lo:.3g}, "
            f"{slope.hi:.3g}] over {slope.runs} points (claimed {claimed:g})")
    if slope.dropped:
        desc += f", {slope.dropped} at 0 left out"
    if not all(math.isfinite(v) for v in (slope.slope, slope.lo, slope.hi)):
        return Outcome(Verdict.INCONCLUSIVE, slope.slope, claimed, math.nan,
                       f"{desc} (undefined)")
    scale = abs(claimed)
    if not slope.lo <= claimed <= slope.hi:
        gap = slope.lo - claimed if slope.lo > claimed else claimed - slope.hi
        return Outcome(Verdict.FAIL, slope.slope, claimed, -gap / scale,
                       f"{desc}: the interval excludes {claimed:g}")
    if slope.lo <= 0 <= slope.hi:
        return Outcome(Verdict.INCONCLUSIVE, slope.slope, claimed, math.nan,
                       f"{desc}: contains 0 as well")
    return Outcome(Verdict.PASS, slope.slope, claimed, min(abs(slope.lo), abs(slope.hi)) / scale,
                   f"{desc}: consistent with it")


def require_certified(out: Outcome, *, uncertified: Sequence[str],
                      any_point: bool = False) -> Outcome:
    """The outcome of a claim about stationary points, given the networks it was measured on
    that are not certified (``uncertified``, by name; empty: ``out`` unchanged).

    Those networks are not the points the claim is about, so a PASS becomes INCONCLUSIVE
    (values kept), and so does a FAIL unless the bound holds at any parameters
    (``any_point``, e.g. T8's leakage bound). A VACUOUS outcome is kept: a bound or a
    tolerance that says nothing says nothing at any parameters.
    """
    if not uncertified:
        return out
    names = ", ".join(uncertified)
    if out.verdict == Verdict.VACUOUS or (any_point and out.verdict == Verdict.FAIL):
        return noted(out, f"{names} not certified")
    return replace(out, verdict=Verdict.INCONCLUSIVE,
                   reason=f"not certified ({names}): {out.reason}")
