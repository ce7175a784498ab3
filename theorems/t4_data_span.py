"""T4 Low rank from the span of the data (THEOREMS.md, T4) [exact].

Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2 ("low-rank bias"). g_k = (1/n) Σ_i
δ_{k,i} h_{k−1,i}ᵀ is a sum of n outer products, so with R_k = W_k + g_k/λ:
  (a) D_n(W_k) ≤ ‖R_k‖_F (rank(W_k) ≤ min(n, d_k, d_{k−1}) at exact stationarity);
  (b) W_1 P_⊥ = R_1 P_⊥ since g_1 P_⊥ = 0: ‖W_1 P_⊥‖_F ≤ ‖R_1 P_⊥‖_F, the row space of W_1
      lies in span(X) up to the residual;
  (c) sr(W_k) = sr(g_k) at exact stationarity; at residual R_k, g_k = −λ(W_k − R_k) and
      Weyl's inequality give sr(g_k) ∈ [(‖W‖−‖R‖)²/(σ_1+‖R‖)², (‖W‖+‖R‖)²/(σ_1−‖R‖)²];
  (t) trajectory identity, exact for full-batch GD with coupled decay at every step t:
      W_1(t) P_⊥ = (1 − ηλ)^t W_1(0) P_⊥ (float64 relative error ≤ 1e-9).
Each identity holds for every slope selection at kinks, so the Clarke residual may be used.
The paper's stable-rank statement has a constant that is not encoded; sr(W_k) is reported.

(b) allows nothing beyond ‖R_1P⊥‖ but the rounding of the computation, derived from machine
epsilon and the sizes (:func:`span_rounding`): an allowance measured from g_1P⊥ would make
the check hold for ANY projector. (c) holds for any W and g once R is computed from them
(Weyl and the triangle inequality): it is an identity check and labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.strategies import log_uniform
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import Outcome, Verdict, combine, judge
from verify.engine.residual import layer_errors
from verify.engine.setting import Context, Setting, Trained, realise, trajectory
from verify.measure import spectra
from verify.measure.evidence import network_series
from verify.nets.activations import ACTIVATIONS
from verify.nets.dense import Architecture
from verify.nets.network import Network, weights
from verify.nets.objective import Objective
from verify.tolerances import EPS, factorisation, matmul, unit_roundoff

TRAJECTORY_TOL = 1e-9  # THEOREMS.md: float64 relative error of the trajectory identity


@dataclass(frozen=True)
class Claim:
    """The pieces of T4's claim; the defaults are the theorem. A false variant (a mutant,
    tests/claims/test_mutants.py) replaces one piece and must come out FAIL.

    ``projector``: X ↦ P⊥, the projector onto span(X)^⊥ ((b) and (t));
    ``rank_scale``: (a) claims rank(W_k) ≤ ⌊rank_scale · min(n, d_k, d_{k−1})⌋;
    ``sr_error``, ``sr_shift``: (c) places sr(g_{k+shift})·(1 + sr_error) in W_k's interval;
    ``decay_lam``, ``decay_offset``: (t) claims the factor (1 − η·decay_lam·λ)^(t+offset)
    (decay_lam = 2: the λΣ‖W‖² convention read as λ_eff).
    """

    projector: Callable[[torch.Tensor], torch.Tensor] = spectra.span_projector
    rank_scale: float = 1.0
    sr_error: float = 0.0
    sr_shift: int = 0
    decay_lam: float = 1.0
    decay_offset: int = 0


CLAIM = Claim()
# The smallest relative error of each part's claim that the check catches (FAIL), measured by
# bisection on the first pinned setting (tests/claims/test_mutants.py keeps them honest).
DETECTION = {"(a)": 1e-16, "(b)": 8.8e-13, "(c)": 3.7e-14, "(t)": 6.7e-9}


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    """Data in a subspace of dimension < d_0 and n < hidden widths, so (a), (b) bite."""
    d0 = draw(st.integers(4, max(4, scale.max_width)))
    dim = draw(st.integers(1, d0 - 1))
    n = draw(st.integers(2, max(2, scale.max_width - 2)))
    depth = draw(st.integers(2, 4))
    hidden = tuple(draw(st.integers(n + 1, max(n + 1, scale.max_width)))
                   for _ in range(depth - 1))
    return Setting(widths=(d0, *hidden, draw(st.integers(1, 3))),
                   activation=draw(st.sampled_from(list(ACTIVATIONS))),
                   lam=draw(log_uniform(1e-3, 1e-1)), n=n, data="subspace", dim=dim,
                   seed=draw(st.integers(0, 2**16)), lr=0.05, steps=300)


class _Trajectory:
    """Observer: worst relative error of W_1(t)P_⊥ = (1−ηλ)^t W_1(0)P_⊥ along GD."""

    def __init__(self, P_perp: torch.Tensor, lr: float, lam: float, offset: int = 0) -> None:
        self.P, self.decay, self.offset = P_perp, 1.0 - lr * lam, offset
        self.start: torch.Tensor | None = None
        self.errors: list[float] = []
        self.ratio: list[float] = []

    def __call__(self, t: int, params: tuple[torch.Tensor, ...]) -> None:
        cur = params[0].detach() @ self.P
        if self.start is None:
            self.start = cur
        ref = self.decay ** (t + self.offset) * self.start
        s0 = float(torch.linalg.norm(self.start))
        self.errors.append(float(torch.linalg.norm(cur - ref)) / max(float(
            torch.linalg.norm(ref)), 1e-300) if s0 > 0 else 0.0)
        self.ratio.append(float(torch.linalg.norm(cur)) / s0 if s0 > 0 else 0.0)


def _observe(s: Setting, ctx: Context, P: torch.Tensor, claim: Claim = CLAIM) -> _Trajectory:
    """The trajectory identity along the first (GD) phase: a run without polishing sees the
    same iterates as the certified run's first phase, and never retrains the certified net."""
    obs = _Trajectory(P, s.lr, s.lam * claim.decay_lam, claim.decay_offset)
    trajectory(replace(s, polish=False), ctx, obs)
    return obs


def span_rounding(lam: float, X: torch.Tensor, W1: torch.Tensor, R1: torch.Tensor,
                  g1: torch.Tensor, delta1: torch.Tensor) -> float:
    """Rounding allowance of (b), from machine epsilon and the sizes of the operations.

    In exact arithmetic W_1P⊥ = R_1P⊥ − g_1P⊥/λ with g_1 = δ_1ᵀX (a sum of n outer products)
    and XP⊥ = 0. Computed: P̂⊥ comes from a Householder SVD of X (n × d_0) that keeps the
    singular directions above max(n, d_0)·eps·σ_1, so ‖XP̂⊥‖₂ ≤ (max(n, d_0)·eps + 2γ̃_{nd_0})
    ‖X‖₂; ĝ_1 = δ_1ᵀX carries γ_n‖δ_1‖_F‖X‖_F; R̂_1 = W_1 + ĝ_1/λ carries 2u(‖W_1‖ + ‖ĝ_1‖/λ);
    the two products with P̂⊥ carry γ_{d_0}‖·‖_F‖P̂⊥‖_F each.
    """
    n, d0 = X.shape
    Xn2 = float(torch.linalg.matrix_norm(X, 2))
    XnF, Dn = spectra.frobenius(X), spectra.frobenius(delta1)
    proj = max(n, d0) * EPS[torch.float64] + 2 * factorisation(n, d0)
    g_term = Dn * (proj * Xn2 + matmul(n) * XnF) / lam
    products = matmul(d0) * d0**0.5 * (spectra.frobenius(W1) + spectra.frobenius(R1))
    residual = 2 * unit_roundoff() * (spectra.frobenius(W1) + spectra.frobenius(g1) / lam)
    return g_term + products + residual * (1 + proj)


def _trajectory_part(obs: _Trajectory) -> Outcome:
    err = max(obs.errors) if obs.errors else math.nan
    return judge(err, TRAJECTORY_TOL, 1.0,
                 "max_t ‖W₁(t)P⊥ − (1−ηλ)^t W₁(0)P⊥‖/‖(1−ηλ)^t W₁(0)P⊥‖",
                 require_certificate=False)


def check(s: Setting, ctx: Context, parts_wanted: tuple[str, ...] = ("a", "b", "c", "t"),
          claim: Claim = CLAIM) -> Outcome:
    t = realise(s, ctx)
    P = claim.projector(t.objective.data.X)
    obs = _observe(s, ctx, P, claim) if "t" in parts_wanted else None
    return assess(t, claim, parts_wanted, obs)


def assess(t: Trained, claim: Claim = CLAIM, parts_wanted: tuple[str, ...] = ("a", "b", "c"),
           obs: _Trajectory | None = None) -> Outcome:
    """(a)–(c) at the trained (or given, verify.audit) θ; (t) needs the training trajectory
    of a setting (``obs``, from :func:`check`)."""
    X = t.objective.data.X
    n, lam = X.shape[0], t.objective.lam
    P = claim.projector(X)
    cert = t.certificate
    W = weights(t.objective.arch, t.result.params)
    R, g = t.stationarity.R, t.stationarity.g
    parts: dict[str, Outcome] = {}
    if "a" in parts_wanted:
        for k, (w, Rk) in enumerate(zip(W, R, strict=True)):
            rank = math.floor(claim.rank_scale * min(n, *w.shape))
            parts[f"(a) layer {k + 1}"] = judge(
                spectra.tail_distance(w, max(rank, 0)), spectra.frobenius(Rk),
                spectra.frobenius(w), f"D_{rank}(W_{k + 1})", certificate=cert,
                trivial=0.0 if rank >= min(w.shape) else None)
    if "b" in parts_wanted and lam > 0:
        delta1 = layer_errors(t.objective, t.result.params, t.stationarity.slopes)[0][0]
        allowance = span_rounding(lam, X, W[0], R[0], g[0], delta1)
        parts["(b) W₁ outside span(X)"] = judge(
            spectra.outside_span(W[0], P), spectra.outside_span(R[0], P) + allowance,
            spectra.frobenius(W[0]), "‖W₁P⊥‖_F ≤ ‖R₁P⊥‖_F + rounding", certificate=cert,
            trivial=0.0 if float(torch.linalg.norm(P)) == 0 else None)
    if "c" in parts_wanted:
        for k, (w, Rk) in enumerate(zip(W, R, strict=False)):
            gk = g[(k + claim.sr_shift) % len(W)]
            fro, rn = spectra.frobenius(w), spectra.frobenius(Rk)
            s1 = float(spectra.singular_values(w)[0])
            # ratios before squaring: a collapsed layer has σ_1 ~ 1e-170, whose square is 0
            lo = ((fro - rn) / (s1 + rn)) ** 2 if fro > rn else 0.0
            hi = ((fro + rn) / (s1 - rn)) ** 2 if s1 > rn else math.inf
            srg = spectra.stable_rank(gk) * (1 + claim.sr_error)
            mid = 0.5 * (lo + hi) if math.isfinite(hi) else lo
            parts[f"(c) layer {k + 1}"] = judge(abs(srg - mid), 0.5 * (hi - lo), max(mid, 1.0),
                                                f"|sr(g_{k + 1}) − centre of its interval|",
                                                certificate=cert, identity_check=True)
    if obs is not None:
        parts["(t) trajectory"] = _trajectory_part(obs)
    details = {"stable_ranks": [spectra.stable_rank(w) for w in W],
               "numerical_ranks": [spectra.numerical_rank(w) for w in W],
               "span_dim": round(float(torch.trace(torch.eye(P.shape[0]) - P))),
               "outside_span_fraction": spectra.outside_span(W[0], P) / max(
                   spectra.frobenius(W[0]), 1e-300)}
    series = network_series(t)
    if obs is not None:
        details["P_perp_decay_final"] = obs.ratio[-1] if obs.ratio else None
        series["trajectory"] = obs.errors[:: max(1, len(obs.errors) // 200)]
    return combine(parts, details, series)


def check_trajectory(s: Setting, ctx: Context) -> Outcome:
    """Only the trajectory identity (for the momentum and Adam controls)."""
    obs = _observe(s, ctx, spectra.span_projector(s.dataset().X))
    return combine({"(t) trajectory": _trajectory_part(obs)},
                   {"P_perp_decay_final": obs.ratio[-1] if obs.ratio else None},
                   {"trajectory": obs.errors[:: max(1, len(obs.errors) // 200)]})


def check_rank(s: Setting, ctx: Context) -> Outcome:
    """Only part (a) (for the n > min(d_k, d_{k−1}) control)."""
    return check(s, ctx, ("a",))


def check_no_decay(s: Setting, ctx: Context) -> Outcome:
    """λ = 0: the claim's prediction at a τ-certified point, ‖W₁P⊥‖ ≤ τ‖W₁‖, is tested on a
    net trained without decay; the P⊥ part keeps its initial size, so it fails."""
    t = realise(s, ctx)
    P = spectra.span_projector(s.dataset().X)
    obs = _observe(s, ctx, P)
    W1 = t.result.params[0]
    frac = spectra.outside_span(W1, P) / max(spectra.frobenius(W1), 1e-300)
    return combine({"(b) without decay": judge(frac, ctx.tau, 1.0, "‖W₁P⊥‖/‖W₁‖",
                                              require_certificate=False)},
                   {"P_perp_decay_final": obs.ratio[-1] if obs.ratio else None,
                    "grad_norm": t.certificate.grad_norm},
                   {"trajectory": obs.errors[:: max(1, len(obs.errors) // 200)]})


def applies(arch: Network, obj: Objective) -> str | None:
    """(a)–(c) need coupled weight decay (λ > 0) and fully connected layers (a conv kernel is
    applied at many patches: its gradient is not a sum of n outer products)."""
    if not obj.lam > 0:
        return "λ = 0: no weight decay, no stationary point to bound"
    if not isinstance(arch, Architecture):
        return "a conv net: its gradient is a sum over patches, not of n outer products"
    return None


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(8, 12, 12, 2), activation="relu", lam=0.01, n=6, data="subspace",
                   dim=3, seed=4, lr=0.05, steps=300)
    return (
        Control("λ = 0", "no weight decay: the P⊥ part of W₁ never decays", Verdict.FAIL,
                Setting(**{**base.__dict__, "lam": 0.0, "steps": 1000}), check_no_decay),
        Control("momentum 0.9", "heavy-ball GD with coupled decay: the trajectory identity "
                "breaks", Verdict.FAIL,
                Setting(**{**base.__dict__, "optimizer": "momentum", "steps": 200,
                           "polish": False}), check_trajectory),
        Control("Adam", "Adam with coupled decay: the trajectory identity breaks",
                Verdict.FAIL, Setting(**{**base.__dict__, "optimizer": "adam", "lr": 0.01,
                                         "steps": 200, "polish": False}), check_trajectory),
        Control("n > width", "n = 40 samples with widths ≤ 12: (a) holds only trivially",
                Verdict.VACUOUS, Setting(**{**base.__dict__, "n": 40, "data": "clusters",
                                            "dim": None}), check_rank),
    )


def pinned(scale: Scale) -> tuple[Setting, ...]:
    """A synthetic subspace and real data: 12 scikit-learn digits span 12 of 64 pixel
    dimensions, so W_1 must leave the other 52 alone."""
    return (Setting(widths=(10, 12, 12, 2), activation="relu", lam=0.01, n=8,
                    data="subspace", dim=4, seed=0, lr=0.05, steps=300),
            Setting(widths=(64, 16, 16, 10), activation="relu", lam=0.01, n=12,
                    data="digits", loss="ce", seed=0, lr=0.05, steps=300))


THEOREM = Theorem(
    id="T4",
    title="Low rank from the span of the data",
    source="Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2",
    statement="g_k is a sum of n outer products, so at stationarity rank(W_k) ≤ "
              "min(n, d_k, d_{k−1}), the row space of W_1 lies in span(X) and "
              "sr(W_k) = sr(g_k); along GD with coupled decay W_1(t)P⊥ = (1−ηλ)^t W_1(0)P⊥.",
    latex=r"D_n(W_k) \leq \|R_k\|_F,\quad \|W_1P_\perp\|_F \leq \|R_1P_\perp\|_F,"
          r"\quad W_1(t)P_\perp = (1-\eta\lambda)^t\,W_1(0)P_\perp",
    assumptions=("λ > 0, coupled weight decay, full-batch GD for the trajectory identity",
                 "fully connected layers (no weight sharing)",
                 "n < min(d_k, d_{k−1}) for (a) to say something; dim span(X) < d_0 for (b)",
                 "θ certified stationary for (a)–(c)"),
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
    assess=assess,
    applies=applies,
    notes=("The paper's stable-rank bound has a constant that is not encoded here: "
           "sr(W_k) is reported in the details of each example.",
           "(c) is an identity check: sr(g_k) lies in the interval from W_k and R_k for any W "
           "and g once R_k is computed from them (Weyl); it tests the measurement code only.",
           "(b) allows only the rounding of its own computation (machine epsilon and sizes); "
           "a projector tilted off span(X)^⊥ fails it.",
           "Detection limits (smallest relative error caught, bisection on the first pinned "
           f"setting): (a) rank bound understated by e = {DETECTION['(a)']:.1g} (the bound is an "
           "integer: one rank unit less is caught where the rank attains it, layer 3; on "
           "layers 1–2 only from e = 0.5, the rank lies below n); (b) P⊥ tilted by "
           f"an angle {DETECTION['(b)']:.1g} rad; (c) sr(g_k) off by {DETECTION['(c)']:.1g}; "
           f"(t) λ in (1−ηλ)^t off by {DETECTION['(t)']:.1g}."),
)
