"""T0 calibration: two-layer linear network, closed form (THEOREMS.md, T0) [exact].

f(x) = W_2 W_1 x, squared loss (1/2n)‖Y − W_2W_1X‖², whitened inputs XXᵀ/n = I, hidden
width ≥ rank. min over factorisations of (‖W_1‖² + ‖W_2‖²)/2 is the nuclear norm, so the
global minimiser has W_2W_1 = SVT_λ(M), M = YXᵀ/n, with singular values max(σ_i(M) − λ, 0),
and rank #{σ_i(M) > λ}. Every local minimum is global. This validates trainer, certificate
and measures end to end.

Tolerance, derived from the certificate (:func:`svt_tolerance`), never a constant: with
E_k = λR_k = ∇_{W_k}F, Z = [W_1ᵀ; W_2] and S_A the symmetric dilation [[0, Aᵀ], [A, 0]],
the stationarity equations read S_M Z = λZ + ½Z(ZᵀZ) − ½JZΔ − E (J = diag(I, −I),
Δ = W_1W_1ᵀ − W_2ᵀW_2 = (E_1W_1ᵀ − W_2ᵀE_2)/λ). With Z = ΨΣΦᵀ the columns of Ψ are
approximate eigenvectors of S_M for λ + σ_{Z,i}²/2, residual η/σ_{Z,i}, η = ‖E‖ + ½‖Z‖‖Δ‖.
Kahan's residual theorem (Parlett, The Symmetric Eigenvalue Problem, Thm 11.5.1) and
Courant–Fischer then give, with k = #{σ_i(M) > λ} and the gap g = λ − σ_{k+1}(M) > 0:
  i ≤ k: |σ_i(W_2W_1) − (σ_i(M) − λ)| ≤ 2η/σ_{Z,k} + ½σ_{Z,1}²‖Δ‖/σ_{Z,k}² + (η/g)²,
  i > k: σ_i(W_2W_1) ≤ (η/g)²,
when 2η/σ_{Z,k} < g + σ_{Z,k}²/2 (else the bound is ∞ and the verdict INCONCLUSIVE), plus the
rounding of the whitening (Householder QR) and of the SVDs (:mod:`verify.tolerances`).
The claimed closed form (:class:`Claim`) enters only the predicted values, never the
tolerance, so a false variant of it fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
import torch
from hypothesis import assume
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import Outcome, Verdict, combine, judge
from verify.engine.residual import layer_errors
from verify.engine.setting import Context, Setting, realise
from verify.measure import spectra
from verify.nets.data import Dataset
from verify.tolerances import factorisation, matmul, unit_roundoff

_s, _lam = sp.symbols("sigma_i lambda", nonnegative=True)
SVT = sp.Max(_s - _lam, 0)  # the singular value map of the minimiser


def svt(sigmas: torch.Tensor, lam: float) -> torch.Tensor:
    """Singular values of SVT_λ(M), evaluated from the sympy statement."""
    f = sp.lambdify((_s, _lam), SVT, "math")
    return torch.tensor([f(float(s), lam) for s in sigmas], dtype=torch.float64)


@dataclass(frozen=True)
class Claim:
    """The pieces of the claimed closed form; the defaults are the theorem. A false variant
    (a mutant, tests/claims/test_mutants.py) replaces one: ``threshold`` is the SVT threshold
    in units of λ (2: the λΣ‖W‖² convention read as λ_eff; 1 + e: a relative error e),
    ``hard`` keeps σ_i(M) unshrunk above the threshold (hard instead of soft thresholding)."""

    threshold: float = 1.0
    hard: bool = False

    def values(self, sigmas: torch.Tensor, lam: float) -> torch.Tensor:
        t = self.threshold * lam
        if self.hard:
            return torch.where(sigmas > t, sigmas, torch.zeros_like(sigmas))
        return svt(sigmas, t)


CLAIM = Claim()
# The smallest relative error of each part's claim that the check catches (FAIL), measured by
# bisection on the pinned setting (tests/claims/test_mutants.py keeps them honest).
DETECTION = {"singular values": 1.7e-9, "rank": 0.67}


@dataclass(frozen=True)
class SvtTolerance:
    """What the certificate allows: |σ_i(W₂W₁) − (σ_i(M) − λ)| ≤ head_i for i ≤ k and
    σ_i(W₂W₁) ≤ tail for i > k (module doc); ∞ when the residuals do not resolve it."""

    k: int
    head: tuple[float, ...]
    tail: float
    eta: float
    gap: float
    rounding: float

    def allowed(self, count: int) -> list[float]:
        return [self.head[i] if i < self.k else self.tail for i in range(count)]


def whitening_rounding(data: Dataset) -> float:
    """A bound on ‖XᵀX/n − I‖₂ for whitened data X = √n·Q, Q from a Householder QR of an
    n × d_0 Gaussian: the loss of orthogonality of Q and the rounding of the product."""
    n, d = data.X.shape
    return 2 * factorisation(n, d) + matmul(n) * d


def _norm2(A: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(A, 2))


def svt_tolerance(W1: torch.Tensor, W2: torch.Tensor, R1: torch.Tensor, R2: torch.Tensor,
                  lam: float, sig_M: torch.Tensor, data: Dataset,
                  terms: tuple[tuple[torch.Tensor, torch.Tensor], ...]) -> SvtTolerance:
    """The bounds of the module doc from the certificate's residuals R_k = W_k + g_k/λ.

    ‖E_k‖ = λ‖R_k‖ is inflated by the rounding of R̂_k = W_k + ĝ_k/λ (ĝ_k = δ_kᵀh_{k−1}
    carries γ_n‖δ_k‖‖h_{k−1}‖; the sum 2u(‖W_k‖ + ‖ĝ_k‖/λ)) and by the whitening defect ω:
    the equations assume XᵀX/n = I, and E_1, E_2 differ from ∇F by W_2ᵀP(I − C) and
    P(I − C)W_1ᵀ (C = XᵀX/n, ‖C − I‖ ≤ ω). ``terms``: (δ_k, h_{k−1}) of both layers.
    """
    n = data.X.shape[0]
    k = int((sig_M > lam).sum())
    P = W2 @ W1
    Pn = _norm2(P)
    omega = whitening_rounding(data)
    u = unit_roundoff()
    e = []
    for W, R, other, (dk, hk) in ((W1, R1, W2, terms[0]), (W2, R2, W1, terms[1])):
        wF, rF = spectra.frobenius(W), spectra.frobenius(R)
        g_err = matmul(n) * spectra.frobenius(dk) * spectra.frobenius(hk)
        e.append(lam * rF + g_err + 2 * u * lam * (2 * wF + rF)
                 + omega * Pn * spectra.frobenius(other))
    delta = (e[0] * _norm2(W1) + _norm2(W2) * e[1]) / lam
    sZ = spectra.singular_values(torch.cat([W1.T, W2]))
    eta = math.hypot(*e) + 0.5 * float(sZ[0]) * delta
    gap = lam - (float(sig_M[k]) if k < len(sig_M) else 0.0)
    rounding = (factorisation(W2.shape[0], W1.shape[1]) * (Pn + float(sig_M[0]))
                + matmul(W1.shape[0]) * spectra.frobenius(W1) * spectra.frobenius(W2)
                + matmul(n) * spectra.frobenius(data.X) * spectra.frobenius(data.Y) / n)
    p_tail = (eta / gap) ** 2 if gap > 0 else math.inf
    tail = p_tail + rounding
    if k > len(sZ) or (k > 0 and float(sZ[k - 1]) == 0.0):
        return SvtTolerance(k, (math.inf,) * k, tail, eta, gap, rounding)
    head: tuple[float, ...] = ()
    if k > 0:
        sk = float(sZ[k - 1])
        res = eta / sk  # ‖S_MΨ_k − Ψ_kΘ_k‖₂
        if not 2 * res < gap + sk * sk / 2:  # Kahan's matching is not resolved
            return SvtTolerance(k, (math.inf,) * k, tail, eta, gap, rounding)
        imbalance = delta / (sk * sk)  # ‖Ψ_kᵀJΨ_k‖₂
        head = tuple(2 * res + 0.5 * float(sZ[i]) ** 2 * imbalance + p_tail + rounding
                     for i in range(k))
    return SvtTolerance(k, head, tail, eta, gap, rounding)


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    d0 = draw(st.integers(2, min(8, scale.max_width)))
    d_out = draw(st.integers(1, min(6, scale.max_width)))
    rank = min(d0, d_out)
    hidden = draw(st.integers(rank, max(rank, scale.max_width)))
    n = draw(st.integers(d0, max(d0, scale.max_n)))
    lam = draw(st.floats(1e-3, 1.5).map(lambda v: float(f"{v:.3g}")))
    # singular values of M are linspace(2, 0.5, rank): keep λ away from them so the rank
    # is well defined at the 1e-6 level
    sig = torch.linspace(2.0, 0.5, rank) if rank > 1 else torch.tensor([2.0])
    assume(float((sig - lam).abs().min()) > 1e-3)
    return Setting(widths=(d0, hidden, d_out), activation="identity", lam=lam, n=n,
                   data="whitened", loss="squared", seed=draw(st.integers(0, 2**16)),
                   init_scale=0.5, lr=0.05, steps=300)


def check(s: Setting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    t = realise(s, ctx)
    W1, W2 = t.result.params[0], t.result.params[1]
    X, Y = t.objective.data.X, t.objective.data.Y
    M = Y.T @ X / X.shape[0]
    sig_M = spectra.singular_values(M).cpu()
    want = claim.values(sig_M, s.lam)
    got = spectra.singular_values(W2 @ W1)[: len(want)].cpu()
    R1, R2 = t.stationarity.R
    tol = svt_tolerance(W1, W2, R1, R2, s.lam, sig_M, t.objective.data,
                        layer_errors(t.objective, t.result.params))
    allowed = torch.tensor(tol.allowed(len(want)), dtype=torch.float64)
    err = (got - want).abs()
    # the worst index relative to what is allowed there decides
    i = int(torch.argmax(err / allowed.clamp_min(1e-300)))
    scale = float(sig_M[0])
    rank_want = int((sig_M > claim.threshold * s.lam).sum())
    rank_got = int((got > tol.tail).sum())
    details = {"sigma_M": sig_M.tolist(), "svt": want.tolist(), "product_sv": got.tolist(),
               "allowed": allowed.tolist(), "eta": tol.eta, "gap": tol.gap,
               "rank_expected": rank_want, "rank_found": rank_got,
               "whitening_error": float((X.T @ X / X.shape[0]
                                         - torch.eye(X.shape[1], dtype=X.dtype)).abs().max())}
    parts = {
        "singular values": judge(float(err[i]) / scale, float(allowed[i]) / scale, 1.0,
                                 f"|σ_{i + 1}(W₂W₁) − SVT_λ(σ_{i + 1}(M))|/σ₁(M)",
                                 certificate=t.certificate),
        # ranks are integers: any mismatch is ≥ 1, so half a unit is the exact tolerance
        "rank": judge(abs(rank_got - rank_want), 0.5, 1.0, "|rank(W₂W₁) − #{σ_i(M) > λ}|",
                      certificate=t.certificate),
    }
    from verify.measure.evidence import network_series

    return combine(parts, details, network_series(t))


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(4, 6, 3), activation="identity", lam=0.2, n=24, data="whitened",
                   loss="squared", seed=1, init_scale=0.5, lr=0.05, steps=300)
    return (
        Control("unwhitened", "anisotropic inputs (XXᵀ/n ≠ I): the closed form does not apply",
                Verdict.FAIL, Setting(**{**base.__dict__, "data": "teacher"})),
        Control("depth 3", "three linear layers: the penalty becomes a Schatten-2/3 "
                "quasi-norm, not the nuclear norm", Verdict.FAIL,
                Setting(**{**base.__dict__, "widths": (4, 6, 6, 3)}), check_depth3),
    )


def check_depth3(s: Setting, ctx: Context) -> Outcome:
    """The two-layer SVT formula applied to the end-to-end map of a deeper linear net, with
    the tolerance the two-layer certificate bound would give for (W₃W₂, W₁)."""
    t = realise(s, ctx)
    W = t.result.params
    P = W[-1]
    for Wk in reversed(W[:-1]):
        P = P @ Wk
    X, Y = t.objective.data.X, t.objective.data.Y
    M = Y.T @ X / X.shape[0]
    sig_M = spectra.singular_values(M).cpu()
    want = svt(sig_M, s.lam)
    got = spectra.singular_values(P)[: len(want)].cpu()
    # the rounding of the SVDs and products: what remains of the tolerance at r = 0
    rounding = (factorisation(*P.shape) + matmul(sum(w.shape[0] for w in W))) * (
        float(torch.linalg.matrix_norm(P, 2)) + float(sig_M[0])) * 2
    err = float((got - want).abs().max()) / float(sig_M[0])
    return judge(err, rounding / float(sig_M[0]), 1.0,
                 "max |σ_i(W₃W₂W₁) − SVT_λ(σ_i(M))|/σ₁(M)", certificate=t.certificate)


def pinned(scale: Scale) -> tuple[Setting, ...]:
    return (Setting(widths=(5, 5, 4), activation="identity", lam=0.6, n=20, data="whitened",
                    loss="squared", seed=0, init_scale=0.5, lr=0.05, steps=300),)


THEOREM = Theorem(
    id="T0",
    title="Calibration: two-layer linear network in closed form",
    source="THEOREMS.md T0 (classical: nuclear-norm variational form of weight decay)",
    statement="For f = W₂W₁x, whitened inputs and squared loss, the minimiser of F has "
              "W₂W₁ = SVT_λ(M), M = YXᵀ/n: σ_i(W₂W₁) = max(σ_i(M) − λ, 0), rank = "
              "#{σ_i(M) > λ}.",
    latex=r"\sigma_i(W_2W_1) = " + sp.latex(SVT).replace(r"\sigma_{i}", r"\sigma_i(M)"),
    assumptions=("identity activation, no biases, depth 2", "whitened inputs XXᵀ/n = I",
                 "squared loss", "hidden width ≥ rank of M",
                 "λ not within 1e-3 of a singular value of M"),
    notes=("Tolerance derived from the certificate's residuals by a perturbation bound on the "
           "singular values of W₂W₁ (module doc of theorems/t0_calibration.py), plus rounding; "
           "THEOREMS.md's fixed 1e-6 was 10⁷ times looser than the trainer's error.",
           "Detection limits (smallest relative error caught, bisection on the pinned "
           f"setting): SVT threshold λ(1 + e) caught from e = "
           f"{DETECTION['singular values']:.1g} (singular values) and "
           f"e = {DETECTION['rank']:.2g} (rank: the threshold must cross a σ_i(M))."),
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
)
