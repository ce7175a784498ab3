"""T0 calibration: two-layer linear network, closed form (THEOREMS.md, T0) [exact].

f(x) = W_2 W_1 x, squared loss (1/2n)‖Y − W_2W_1X‖², whitened inputs XXᵀ/n = I, hidden
width ≥ rank. min over factorisations of (‖W_1‖² + ‖W_2‖²)/2 is the nuclear norm, so the
global minimiser has W_2W_1 = SVT_λ(M), M = YXᵀ/n, with singular values max(σ_i(M) − λ, 0),
and rank #{σ_i(M) > λ}. Every local minimum is global. This validates trainer, certificate
and measures end to end.
"""

from __future__ import annotations

import sympy as sp
import torch
from hypothesis import assume
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import Outcome, Verdict, combine, judge
from verify.engine.setting import Context, Setting, realise
from verify.measure import spectra

TOL = 1e-6  # relative agreement with the closed form demanded by THEOREMS.md

_s, _lam = sp.symbols("sigma_i lambda", nonnegative=True)
SVT = sp.Max(_s - _lam, 0)  # the singular value map of the minimiser


def svt(sigmas: torch.Tensor, lam: float) -> torch.Tensor:
    """Singular values of SVT_λ(M), evaluated from the sympy statement."""
    f = sp.lambdify((_s, _lam), SVT, "math")
    return torch.tensor([f(float(s), lam) for s in sigmas], dtype=torch.float64)


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


def check(s: Setting, ctx: Context) -> Outcome:
    t = realise(s, ctx)
    W1, W2 = t.result.params[0], t.result.params[1]
    X, Y = t.objective.data.X, t.objective.data.Y
    M = Y.T @ X / X.shape[0]
    sig_M = spectra.singular_values(M).cpu()
    want = svt(sig_M, s.lam)
    got = spectra.singular_values(W2 @ W1)[: len(want)].cpu()
    scale = float(sig_M[0])
    err = float((got - want).abs().max())
    rank_want = int((sig_M > s.lam).sum())
    rank_got = int((got > TOL * scale).sum())
    details = {"sigma_M": sig_M.tolist(), "svt": want.tolist(), "product_sv": got.tolist(),
               "rank_expected": rank_want, "rank_found": rank_got,
               "whitening_error": float((X.T @ X / X.shape[0]
                                         - torch.eye(X.shape[1], dtype=X.dtype)).abs().max())}
    parts = {
        "singular values": judge(err / scale, TOL, 1.0, "max |σ_i(W₂W₁) − SVT_λ(σ_i(M))|/σ₁(M)",
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
    """The two-layer SVT formula applied to the end-to-end map of a deeper linear net."""
    t = realise(s, ctx)
    P = t.result.params[-1]
    for W in reversed(t.result.params[:-1]):
        P = P @ W
    X, Y = t.objective.data.X, t.objective.data.Y
    M = Y.T @ X / X.shape[0]
    sig_M = spectra.singular_values(M).cpu()
    want = svt(sig_M, s.lam)
    got = spectra.singular_values(P)[: len(want)].cpu()
    err = float((got - want).abs().max()) / float(sig_M[0])
    return judge(err, TOL, 1.0, "max |σ_i(W₃W₂W₁) − SVT_λ(σ_i(M))|/σ₁(M)",
                 certificate=t.certificate)


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
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
)
