"""Verdicts and the evidence behind them (THEOREMS.md, "Notation": Verdicts).

PASS — the claim holds with margin; FAIL — violated beyond the tolerance the certificate
allows; INCONCLUSIVE — assumptions not met (not stationary, diverged, kink stall);
VACUOUS — the bound holds but is no better than the trivial one; ERROR — the harness itself
failed (a bug, never "assumptions not met"). Every outcome carries the measured value, the
bound and the margin (bound − measured)/scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from verify.engine.certificate import Certificate
from verify.measure.trend import Trend

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

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict), "measured": self.measured, "bound": self.bound,
            "margin": self.margin, "reason": self.reason,
            "certificate": None if self.certificate is None else self.certificate.to_json(),
            "details": dict(self.details), "series": dict(self.series),
        }


def margin(measured: float, bound: float, scale: float) -> float:
    """(bound − measured)/scale; NaN when undefined."""
    if not (math.isfinite(measured) and math.isfinite(bound)) or scale <= 0:
        return math.nan
    return (bound - measured) / scale


def judge(measured: float, bound: float, scale: float, what: str, *,
          certificate: Certificate | None = None, require_certificate: bool = True,
          trivial: float | None = None) -> Outcome:
    """Outcome of the claim ``measured ≤ bound`` (both on the scale ``scale``).

    VACUOUS at a collapsed (trivial) stationary point; INCONCLUSIVE when the certificate
    is required and not met or a value is not finite;
    FAIL when measured > bound + ROUNDING·scale; VACUOUS when the bound is no better than the
    ``trivial`` one; PASS otherwise.
    """
    m = margin(measured, bound, scale)
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
                         "margin": o.margin, "reason": o.reason} for k, o in parts.items()}
    cert = next((o.certificate for o in parts.values() if o.certificate is not None), None)
    return replace(worst, reason=f"[{name}] {worst.reason}", certificate=cert,
                   details=info, series=dict(series or {}))


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
