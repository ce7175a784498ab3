"""T1 Euler identity, the foundation of norm balance (THEOREMS.md, T1) [exact].

For a homogeneous network (bias-free, σ positively 1-homogeneous) and ANY θ and x,
⟨W_k, ∇_{W_k} f(x)⟩ = f(x) for every layer k; hence ⟨W_k, g_k⟩ = (1/n) Σ ⟨∂ℓ_i/∂f, f(x_i)⟩
is the same for every layer. Checked in float64 at random θ (relative error ≤ 1e-10) and
proved symbolically with sympy inside a fixed activation pattern, where f is multilinear in
the layers. ``assess`` checks it at a given network's own θ and inputs (verify.audit).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
import torch
from hypothesis import strategies as st
from torch import Tensor

from verify.claims.scales import Scale
from verify.claims.theorem import Control, Theorem, not_homogeneous
from verify.claims.verdict import Outcome, Verdict, combine, judge
from verify.engine.setting import Context, Setting, Trained
from verify.nets.activations import Params
from verify.nets.network import Network, forward, weights
from verify.nets.objective import Objective

TOL = 1e-10  # THEOREMS.md: relative error ≤ 1e-10 in float64


@dataclass(frozen=True)
class Claim:
    """The claimed degree of homogeneity per layer: ⟨W_k, ∇_{W_k}f⟩ = degree·f. The theorem
    is degree 1; a false variant (tests/claims/test_mutants.py) claims 2, or 1 + e."""

    degree: float = 1.0


CLAIM = Claim()
# smallest relative error of the claim caught (bisection on the pinned setting)
DETECTION = {"all samples": 1e-10, "per sample": 1e-10}


def symbolic_proof(widths: tuple[int, ...] = (2, 2, 2, 1)) -> bool:
    """Prove Σ_ij W_k[i,j] ∂f/∂W_k[i,j] = f for every k inside a fixed activation pattern.

    In a pattern σ(z) = d·z with symbolic constants d (1 or 0 for relu, 1 or α for leaky
    relu, 1 for identity), so f = W_L D_{L−1} W_{L−1} ⋯ D_1 W_1 x is a polynomial, linear
    in each W_k, and Euler's theorem for degree-1 homogeneous functions applies per layer.
    """
    L = len(widths) - 1
    Ws = [sp.Matrix(widths[k + 1], widths[k],
                    lambda i, j, k=k: sp.Symbol(f"w{k + 1}_{i}{j}")) for k in range(L)]
    Ds = [sp.diag(*[sp.Symbol(f"d{k + 1}_{i}") for i in range(widths[k + 1])])
          for k in range(L - 1)]
    h = sp.Matrix(widths[0], 1, lambda i, _: sp.Symbol(f"x{i}"))
    for k in range(L):
        h = Ws[k] * h
        if k < L - 1:
            h = Ds[k] * h
    f = sp.expand(h[0])
    return all(sp.expand(sum(w * sp.diff(f, w) for w in W) - f) == 0 for W in Ws)


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    depth = draw(st.integers(1, 4))
    widths = tuple(draw(st.integers(1, scale.max_width)) for _ in range(depth + 1))
    return Setting(widths=widths, activation=draw(st.sampled_from(
        ["relu", "leaky_relu", "identity"])), n=draw(st.integers(1, scale.max_n)),
        data="random_labels", seed=draw(st.integers(0, 2**16)),
        init_scale=draw(st.floats(0.1, 10.0)), steps=0, polish=False)


def euler(arch: Network, params: Params, X: Tensor, V: Tensor,
          proof_widths: tuple[int, ...] | None = None, claim: Claim = CLAIM) -> Outcome:
    """The identity at θ = ``params`` on inputs ``X`` with output weights ``V``: per layer
    over all samples at once, and per sample for the first few."""
    ps = tuple(p.detach().requires_grad_(True) for p in params)
    # φ(θ) = ⟨V, f(X)⟩ covers every sample and output at once; ⟨W_k, ∇_{W_k}φ⟩ = φ for all k
    phi = (V * forward(arch, ps, X)).sum()
    grads = torch.autograd.grad(phi, ps)
    W = tuple(w.detach() for w in weights(arch, ps))
    lhs = [float((w * g).sum()) for w, g in zip(W, grads, strict=False)]
    out = forward(arch, ps, X).detach()
    scale = float((V.abs() * out.abs()).sum()) or 1.0
    phi_v = float(phi.detach())
    err = max(abs(v - claim.degree * phi_v) for v in lhs) / scale
    # per sample: ⟨W_k, ∇_{W_k}φ_i⟩ = φ_i with φ_i = ⟨v_i, f(x_i)⟩ (first few samples)
    per_sample = []
    for i in range(min(X.shape[0], 4)):
        phi_i = (V[i] * forward(arch, ps, X[i : i + 1])[0]).sum()
        gi = torch.autograd.grad(phi_i, ps)
        phi_i = phi_i.detach()
        scale_i = float((V[i].abs() * out[i].abs()).sum()) or 1.0
        per_sample.append(max(abs(float((w * g).sum()) - claim.degree * float(phi_i))
                              for w, g in zip(W, gi, strict=False)) / scale_i)
    details: dict[str, object] = {"euler_lhs": lhs, "phi": phi_v,
                                  "per_sample_rel_error": per_sample}
    if proof_widths == (2, 2, 2, 1):
        details["sympy_proof"] = symbolic_proof(proof_widths)
    parts = {"all samples": judge(err, TOL, 1.0, "max_k |⟨W_k, ∇_{W_k}φ⟩ − φ|/Σ|v||f|",
                                  require_certificate=False),
             "per sample": judge(max(per_sample), TOL, 1.0,
                                 "max_i,k |⟨W_k, ∇_{W_k}φ_i⟩ − φ_i|/Σ|v_i||f_i|",
                                 require_certificate=False)}
    return combine(parts, details)


def check(s: Setting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """At random θ (the setting's init with random biases), per layer and per output."""
    arch = s.architecture()
    params = list(s.init(ctx.device))
    gen = torch.Generator().manual_seed(s.seed + 1)
    for i in range(arch.depth, len(params)):  # non-zero biases so the control bites
        params[i] = torch.randn(params[i].shape, generator=gen, dtype=params[i].dtype)
    X = torch.randn(s.n, s.widths[0], generator=gen, dtype=torch.float64) * s.init_scale
    V = torch.randn(s.n, s.widths[-1], generator=gen, dtype=torch.float64)
    return euler(arch, tuple(params), X, V, tuple(s.widths), claim)


def assess(t: Trained) -> Outcome:
    """At the given θ (any θ will do: the identity needs no stationarity) on the network's
    own inputs, with seeded random output weights V."""
    X = t.objective.data.X
    gen = torch.Generator().manual_seed(1)
    V = torch.randn(X.shape[0], t.objective.arch.widths[-1], generator=gen,
                    dtype=torch.float64).to(device=X.device, dtype=X.dtype)
    return euler(t.objective.arch, t.result.params, X, V)


def applies(arch: Network, obj: Objective) -> str | None:
    """T1's assumption: a homogeneous network (bias-free, σ positively 1-homogeneous, no
    skip connections); λ and the loss play no part."""
    return not_homogeneous(arch)


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(5, 8, 8, 3), activation="relu", n=12, data="random_labels",
                   seed=3, steps=0, polish=False)
    return (
        Control("biases", "relu with non-zero biases (not homogeneous)", Verdict.FAIL,
                Setting(**{**base.__dict__, "bias": True})),
        Control("tanh", "tanh activation (not homogeneous)", Verdict.FAIL,
                Setting(**{**base.__dict__, "activation": "tanh"})),
        Control("softplus", "softplus activation (not homogeneous)", Verdict.FAIL,
                Setting(**{**base.__dict__, "activation": "softplus"})),
    )


def pinned(scale: Scale) -> tuple[Setting, ...]:
    return (Setting(widths=(2, 2, 2, 1), activation="relu", n=4, data="random_labels",
                    seed=0, steps=0, polish=False),)


THEOREM = Theorem(
    id="T1",
    title="Euler identity for homogeneous networks",
    source="THEOREMS.md T1 (Euler's theorem for positively homogeneous functions)",
    statement="For a bias-free network with positively 1-homogeneous σ, at any θ and x: "
              "⟨W_k, ∇_{W_k} f(x)⟩ = f(x) for every layer k.",
    latex=r"\langle W_k, \nabla_{W_k} f(x)\rangle = f(x)\quad \forall k",
    assumptions=("no biases", "σ ∈ {relu, leaky_relu, identity} (positively 1-homogeneous)",
                 "any θ, any x (pre-activations ≠ 0 almost surely)"),
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
    assess=assess,
    applies=applies,
    notes=("sympy proves the identity symbolically for a 2-2-2-1 network inside a fixed "
           "activation pattern (see details of the pinned example).",
           "Detection limit (bisection on the pinned setting): a claimed degree 1 + e is "
           f"caught from e = {DETECTION['all samples']:.1g} (all samples) and "
           f"{DETECTION['per sample']:.1g} (per sample): THEOREMS.md's 1e-10."),
)
