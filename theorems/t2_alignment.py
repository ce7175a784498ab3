"""T2 Alignment of weights and gradients (THEOREMS.md, T2) [exact at stationarity].

Kuzborskij & Abbasi Yadkori, "Low-rank bias, weight decay, and model merging in neural
networks", arXiv:2502.17340 v2. At a stationary point of F, g_k = −λW_k for every layer of
any differentiable network, so cos(W_k, −g_k) = 1 and cos(θ, −∇L̂) = 1.

Tolerance from the certificate: −g_k/λ = W_k − R_k with ‖R_k‖ = r_k‖W_k‖, and the largest
angle between u and u + e with ‖e‖ ≤ r‖u‖ is arcsin r, so for r_k < 1
cos(W_k, −g_k) ≥ sqrt(1 − r_k²) (proved with sympy below), i.e. 1 − cos ≤ r²/2 + O(r⁴).

This is an IDENTITY CHECK (THEOREMS.md, T2 "Caution"): the inequality holds for any W and g
once r_k is computed from them, so at a certified point the alignment claim *is* the
certificate. It can fail only through the measurement code, and every part says so
(``identity_check``); it is not evidence for the paper's claim. Its false variants
(:class:`Claim`) show that the measurement code would catch a wrong sign or direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
import torch
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.strategies import (
    PAPER_RELU_MLP,
    SMALL_CONVNET,
    image_convnet,
    networks,
    wide_mlp,
)
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import Outcome, Verdict, combine, judge
from verify.engine.setting import Context, Setting, Trained, realise
from verify.measure import spectra
from verify.measure.evidence import network_series
from verify.nets.activations import ACTIVATIONS
from verify.nets.network import Network, weights
from verify.nets.objective import Objective


def cosine_bound_holds() -> bool:
    """sympy: for ‖u‖ = 1 and e = r(cos φ, sin φ) in the plane of u, cos∠(u, u+e) ≥ √(1−r²).

    min over φ of cos∠ is at cos φ = −r, where cos∠ = √(1 − r²): check that this is a
    critical point and that the value there equals the bound.
    """
    r, c = sp.symbols("r c", real=True)
    s = sp.sqrt(1 - c**2)
    cos_angle = (1 + r * c) / sp.sqrt((1 + r * c) ** 2 + (r * s) ** 2)
    crit = sp.simplify(sp.diff(cos_angle, c).subs(c, -r))
    val = sp.simplify(cos_angle.subs(c, -r) - sp.sqrt(1 - r**2))
    return bool(crit == 0 and val.subs(r, sp.Rational(1, 3)) == 0 and sp.simplify(val) == 0)


def settings(scale: Scale) -> st.SearchStrategy[Setting]:
    return networks(scale, ACTIVATIONS, bias=True)


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the defaults are the theorem. A false variant (a mutant,
    tests/claims/test_mutants.py) replaces one: ``sign`` +1 claims W_k ∥ +g_k; ``error``
    turns −g_k by a relative amount e towards a fixed direction orthogonal to it."""

    sign: float = -1.0
    error: float = 0.0


CLAIM = Claim()
# The smallest relative error of each part's claim that the check catches (FAIL), measured by
# bisection on the first pinned setting (tests/claims/test_mutants.py keeps it honest).
DETECTION = {"layer": 2.1e-7}


def _direction(g: torch.Tensor, claim: Claim) -> torch.Tensor:
    d = claim.sign * g
    if claim.error:
        gen = torch.Generator().manual_seed(0)
        u = torch.randn(g.shape, generator=gen, dtype=g.dtype).to(g.device)
        u = u - (u * g).sum() / max(float((g * g).sum()), 1e-300) * g
        d = d + claim.error * float(torch.linalg.norm(g)) * u / float(torch.linalg.norm(u))
    return d


def check(s: Setting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    return assess(realise(s, ctx), claim)


def assess(t: Trained, claim: Claim = CLAIM) -> Outcome:
    """Alignment at the trained (or given, verify.audit) θ, against its certificate."""
    W = weights(t.objective.arch, t.result.params)
    parts: dict[str, Outcome] = {}
    for k, (w, g, r) in enumerate(zip(W, t.stationarity.g, t.stationarity.r, strict=False)):
        cos = spectra.cosine(w, _direction(g, claim))
        bound = 1 - math.sqrt(1 - r * r) if r < 1 else math.inf
        parts[f"layer {k + 1}"] = judge(1 - cos, bound, 1.0, f"1 − cos(W_{k + 1}, −g_{k + 1})",
                                        certificate=t.certificate, identity_check=True)
    gW = t.stationarity.g[: len(W)]
    details = {"cos_theta": spectra.cosine(W, [-g for g in gW]),
               "residual_kind": t.stationarity.kind,
               "weight_norm_initial": spectra.frobenius_all(t.result.initial),
               "weight_norm_final": spectra.frobenius_all(t.result.params)}
    return combine(parts, details, network_series(t))


def applies(arch: Network, obj: Objective) -> str | None:
    """T2 needs coupled weight decay (λ > 0); any differentiable network."""
    return None if obj.lam > 0 else "λ = 0: no weight decay, g_k = −λW_k says nothing"


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(6, 10, 10, 3), activation="softplus", lam=0.01, n=20,
                   data="clusters", loss="squared", seed=5, lr=0.05, steps=300)
    return (
        Control("early stopped", "20 GD steps, no polishing: the certificate is not met, "
                "cos < 1 must be reported INCONCLUSIVE, not FAIL", Verdict.INCONCLUSIVE,
                Setting(**{**base.__dict__, "steps": 20, "polish": False})),
        Control("λ = 0, separable logistic", "no finite stationary point: ‖θ‖ grows "
                "without bound (see details: initial vs final norm)", Verdict.INCONCLUSIVE,
                Setting(**{**base.__dict__, "lam": 0.0, "loss": "logistic",
                           "widths": (6, 10, 10, 1), "activation": "relu", "steps": 2000})),
    )


def pinned(scale: Scale) -> tuple[Setting, ...]:
    """The paper's ReLU MLP and a small conv net; at the large scale a width-4096 MLP and a
    conv net on 32×32×3 images (TF32 first phase, float64 certificate)."""
    large = (wide_mlp("softplus"), image_convnet("softplus")) if scale.name == "large" else ()
    return (PAPER_RELU_MLP, image_convnet("softplus", **SMALL_CONVNET), *large)


THEOREM = Theorem(
    id="T2",
    title="Alignment of weights and gradients at stationary points",
    source="Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2",
    statement="At a stationary point of F, g_k = −λW_k for every layer, so "
              "cos(W_k, −g_k) = 1; at residual r_k, cos(W_k, −g_k) ≥ √(1 − r_k²).",
    latex=r"\cos(W_k, -g_k) \geq \sqrt{1 - r_k^2}",
    assumptions=("F = L̂ + (λ/2)Σ‖W_k‖² with λ > 0 (coupled decay)",
                 "any differentiable network (relu/leaky_relu via Clarke subgradients), "
                 "dense or convolutional",
                 "θ certified stationary: max r_k ≤ τ"),
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
    assess=assess,
    applies=applies,
    notes=("sympy checks cos∠(u, u+e) ≥ √(1−r²) for ‖e‖ ≤ r‖u‖: "
           f"{'proved' if cosine_bound_holds() else 'NOT proved'}.",
           "Identity check: cos(W_k, −g_k) ≥ √(1 − r_k²) holds for ANY W and g once r_k is "
           "computed from them, so every part can fail only through the measurement code; "
           "it is labelled so and is not evidence for the paper. The paper's empirical "
           "content is the size of the deviation under mild violations of its assumptions.",
           "Detection limit (measured by bisection on the pinned ReLU MLP, tests/claims/"
           f"test_mutants.py): turning −g_k by a relative e ≥ {DETECTION['layer']:.1g} towards "
           "an orthogonal direction is caught (1 − cos ≈ e²/2 against r_k²/2 and 100 ulp)."),
)
