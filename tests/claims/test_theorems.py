"""Property tests: each theorem holds on Hypothesis-drawn settings inside its assumptions,
on the paper's pinned settings, and every negative control gets its expected verdict.

A claim judged at a certified point must PASS there (not merely "not FAIL"); where the
certificate is not met the verdict is INCONCLUSIVE and the certificate's reason is one of the
expected, recorded ones (:data:`EXPECTED_INCONCLUSIVE`); a collapsed net is VACUOUS. Each
such test also asserts a minimum certification rate over its (derandomised) draws, so a
regression that left every network uncertified fails the suite.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import example, given, settings, target
from hypothesis import strategies as st

from tests.helpers import CLAIMS_CTX, TRAINING_EXAMPLES
from theorems import (
    t0_calibration,
    t1_euler,
    t2_alignment,
    t3_norms,
    t4_data_span,
    t5_sgd_rank,
    t7_rank_two,
)
from verify.claims.scales import SCALES
from verify.claims.theorem import registry
from verify.claims.verdict import Outcome, Verdict
from verify.engine.setting import Setting, realise
from verify.measure import spectra
from verify.nets import conv1d

QUICK = SCALES["quick"]
CTX = CLAIMS_CTX

# Why a drawn network may miss the certificate (verify.engine.certificate): a kink stall or
# the budget (first order), a saddle (second order, revival of an inactive ReLU unit
# included), or no decrease of F. Anything else is a harness error, not an INCONCLUSIVE.
EXPECTED_INCONCLUSIVE = ("not stationary", "negative curvature", "did not decrease",
                         "time budget")
# the fraction of drawn networks that must be certified (measured: 10 of 12 for T3's draws;
# dead-unit saddles of ReLU nets are most of the rest)
MIN_CERTIFIED = 0.5


def _judged_at_certificate(out: Outcome, s: object) -> bool:
    """The verdict logic of a claim that needs the certificate; returns whether certified."""
    cert = out.certificate
    assert cert is not None, f"no certificate: {out.reason}"
    where = f"{out.reason}\nsetting: {s}"
    if cert.collapsed:
        # the parts that need the certificate are VACUOUS; those that hold along the whole
        # trajectory (T4(t)) may still PASS
        assert out.verdict in (Verdict.VACUOUS, Verdict.PASS), where
        assert any("trivial stationary point" in p["reason"]
                   for p in out.details.get("parts", {}).values()), where
    elif cert.certified:
        assert out.verdict == Verdict.PASS, where
    else:
        assert out.verdict == Verdict.INCONCLUSIVE, where
        assert any(r in cert.reason for r in EXPECTED_INCONCLUSIVE), where
    return cert.certified


def _certified_property(strategy, check, examples=()) -> None:  # type: ignore[no-untyped-def]
    """Run ``check`` on derandomised draws of ``strategy`` (plus ``examples``), judging each
    with :func:`_judged_at_certificate`, and assert the certification rate."""
    seen: list[bool] = []

    @settings(max_examples=TRAINING_EXAMPLES, derandomize=True, database=None)
    @given(strategy)
    def prop(s) -> None:  # type: ignore[no-untyped-def]
        seen.append(_judged_at_certificate(check(s, CTX), s))

    for e in examples:
        prop = example(e)(prop)
    prop()
    assert sum(seen) >= MIN_CERTIFIED * len(seen), f"{sum(seen)} of {len(seen)} certified"


@given(t0_calibration.settings(QUICK))
@example(t0_calibration.pinned(QUICK)[0])
@settings(max_examples=TRAINING_EXAMPLES)
def test_t0_calibration_matches_closed_form(s) -> None:  # type: ignore[no-untyped-def]
    out = t0_calibration.check(s, CTX)
    # the linear net always reaches the certificate, so T0 must PASS, not merely not fail
    assert out.verdict == Verdict.PASS, f"{out.reason}\n{s}"


@given(t1_euler.settings(QUICK))
@example(t1_euler.pinned(QUICK)[0])
def test_t1_euler_identity(s) -> None:  # type: ignore[no-untyped-def]
    out = t1_euler.check(s, CTX)
    assert out.verdict == Verdict.PASS, f"{out.reason}\n{s}"


def test_t1_symbolic_proof() -> None:
    assert t1_euler.symbolic_proof((2, 2, 2, 1))
    assert t1_euler.symbolic_proof((1, 3, 1))


def test_t2_cosine_bound_is_proved_by_sympy() -> None:
    assert t2_alignment.cosine_bound_holds()


def test_t2_alignment() -> None:
    _certified_property(t2_alignment.settings(QUICK), t2_alignment.check,
                        (t2_alignment.pinned(QUICK)[0],))


def test_t3_norm_preservation() -> None:
    _certified_property(t3_norms.settings(QUICK), t3_norms.check, (t3_norms.pinned(QUICK)[0],))


def test_t4_data_span() -> None:
    # the second example was found by Hypothesis under CI=true: the net collapses and σ_1²
    # underflowed to 0 in (c)
    _certified_property(t4_data_span.settings(QUICK), t4_data_span.check, (
        t4_data_span.pinned(QUICK)[0],
        Setting(widths=(4, 3, 3, 1), activation="relu", lam=0.01, n=2, data="subspace",
                seed=1, lr=0.05, steps=300, dim=1)))


def test_t4b_fails_with_the_projector_of_other_data() -> None:
    """T4(b)'s FAIL branch through the public check: W₁'s row space lies in span(X) of the
    data it was trained on; judged against the span of another draw of the same subspace
    dimension (a false claim: "W₁ avoids that span's complement"), ‖W₁P⊥‖ exceeds
    ‖R₁P⊥‖ + rounding by orders of magnitude. The true claim's allowance is rounding only."""
    s = t4_data_span.pinned(QUICK)[0]
    other = replace(s, seed=s.seed + 1).dataset().X
    wrong = replace(t4_data_span.CLAIM, projector=lambda X: spectra.span_projector(other))
    out = t4_data_span.check(s, CTX, ("b",), claim=wrong)
    part = out.details["parts"]["(b) W₁ outside span(X)"]
    assert out.verdict == Verdict.FAIL and part["verdict"] == "FAIL", out.reason
    assert part["measured"] > 1e6 * part["bound"]
    true = t4_data_span.check(s, CTX, ("b",)).details["parts"]["(b) W₁ outside span(X)"]
    assert true["verdict"] == "PASS"
    t = realise(s, CTX)
    W1 = t.result.params[0]
    # the bound is ‖R₁P⊥‖ plus an allowance below 1e-10‖W₁‖: rounding, not a measured term
    R1P = spectra.outside_span(t.stationarity.R[0], spectra.span_projector(s.dataset().X))
    assert 0 < true["bound"] - R1P < 1e-10 * spectra.frobenius(W1)


def _target_parts(out, prefix: str) -> None:  # type: ignore[no-untyped-def]
    """Steer Hypothesis towards the smallest slack of the parts named ``prefix``…"""
    margins = [p["margin"] for k, p in out.details.get("parts", {}).items()
               if k.startswith(prefix) and p["margin"] == p["margin"]]
    if margins:
        target(-min(margins), label=f"-slack {prefix}")


@given(t5_sgd_rank.settings(QUICK))
@example(t5_sgd_rank.pinned(QUICK)[0])
@settings(max_examples=TRAINING_EXAMPLES)
def test_t5_sgd_rank(s) -> None:  # type: ignore[no-untyped-def]
    out = t5_sgd_rank.check(s, CTX)
    _target_parts(out, "(b)")
    _target_parts(out, "(a)")
    # plain SGD never breaks (a), (b) or (e): they PASS or are trivially VACUOUS; (c), the
    # paper's heuristic, is INCONCLUSIVE only for the recorded reasons of THEOREMS.md T5(c)
    for name, part in out.details["parts"].items():
        where = f"{name}: {part['reason']}\nsetting: {s}"
        if name.startswith("(c)"):
            assert part["verdict"] in ("PASS", "VACUOUS", "INCONCLUSIVE"), where
            if part["verdict"] == "INCONCLUSIVE":
                assert "unrolled steps" in part["reason"] or "norm assumption" in part[
                    "reason"], where
        else:
            assert part["verdict"] in ("PASS", "VACUOUS"), where


@given(st.integers(1, 6), st.integers(1, 4), st.integers(2, 5), st.integers(1, 3),
       st.integers(0, 2**16))
@settings(max_examples=30)
def test_t5a_conv_gradient_rank(B, channels, kernel, m, seed) -> None:  # type: ignore[no-untyped-def]
    """(a) with weight sharing at random weights: rank ≤ min(c_out, d_in, B·m)."""
    c = conv1d.Conv1d(channels, kernel * m, kernel, kernel, out_channels=12)
    W, A = conv1d.init(c, seed)
    G, delta, P = conv1d.weight_gradient(c, W, A, *conv1d.signals(c, B, seed))
    r, _ = spectra.outer_sum_rank(delta, P, G)
    target(float(r - min(12, c.d_in, B * c.patches)), label="rank − bound")
    assert c.patches == m
    assert r <= min(12, c.d_in, B * m)


@given(t7_rank_two.settings(QUICK))
@example(t7_rank_two.pinned(QUICK)[0])
@settings(max_examples=TRAINING_EXAMPLES)
def test_t7_rank_two(s) -> None:  # type: ignore[no-untyped-def]
    out = t7_rank_two.check(s, CTX)
    _target_parts(out, "exact")
    # the exact form holds at any V (PASS, or VACUOUS after plain SGD); the paper forms are
    # INCONCLUSIVE only because ε̂ underestimates ε (THEOREMS.md T7), never FAIL
    for name, part in out.details["parts"].items():
        where = f"{name}: {part['reason']}\nsetting: {s}"
        if name.startswith("paper") and part["verdict"] == "INCONCLUSIVE":
            assert "ε̂" in part["reason"], where
        else:
            assert part["verdict"] in ("PASS", "VACUOUS"), where


CONTROLS = [(thm.id, c) for thm in registry().values() for c in thm.controls(QUICK)]


@pytest.mark.parametrize(("theorem_id", "control"), CONTROLS,
                         ids=[f"{t}-{c.name}" for t, c in CONTROLS])
def test_negative_control_gets_expected_verdict(theorem_id: str, control) -> None:  # type: ignore[no-untyped-def]
    thm = registry()[theorem_id]
    out = (control.check or thm.check)(control.setting, CTX)
    assert out.verdict == control.expected, (
        f"{theorem_id} control {control.name!r}: expected {control.expected}, got "
        f"{out.verdict}: {out.reason}")


def test_every_theorem_has_a_failing_control() -> None:
    for thm in registry().values():
        expected = {c.expected for c in thm.controls(QUICK)}
        assert expected & {Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.VACUOUS}, thm.id
    # and the claims that can be violated have at least one FAIL control
    for tid in ("T0", "T1", "T3", "T4"):
        assert any(c.expected == Verdict.FAIL for c in registry()[tid].controls(QUICK)), tid


@given(st.integers(1, 3), st.integers(2, 12), st.floats(0.0, 0.2), st.integers(0, 2**16))
@settings(max_examples=40)
def test_t5b_unrolled_bound_on_synthetic_sgd(B, T, eta_lam, seed) -> None:  # type: ignore[no-untyped-def]
    """(b) on W_{t+1} = (1−ηλ)W_t − ηG_t with arbitrary rank-B G_t: never FAILs; reversing
    the coefficients (old gradients weighted more, as momentum does) is caught."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(9, 8, generator=gen, dtype=torch.float64)
    svs = [spectra.singular_values(W)]
    for _ in range(T):
        G = torch.randn(9, B, generator=gen, dtype=torch.float64) @ torch.randn(
            B, 8, generator=gen, dtype=torch.float64)
        W = (1 - eta_lam) * W - 0.1 * G
        svs.append(spectra.singular_values(W))
    out, _ = t5_sgd_rank.unrolled_part(torch.stack(svs), 1 - eta_lam, B, B)
    if out.margin == out.margin:
        target(-out.margin, label="-slack (b) synthetic")
    assert out.verdict != Verdict.FAIL, out.reason


def test_t5b_detects_growing_old_directions() -> None:
    """A trajectory whose step is full rank (W_{t+1} = 2W_t) violates (b) at s = 1."""
    sv = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
    out, _ = t5_sgd_rank.unrolled_part(sv, 0.99, 1, 1)
    assert out.verdict == Verdict.FAIL
