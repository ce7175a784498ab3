"""MV Mild violations of the assumptions (THEOREMS.md, "Mild violations") [trend].

Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2: "the assumptions only mildly affect the
observations". The observations are T2's alignment (1 − cos(W_k, −g_k) = 0 at a stationary
point) and T3's norm balance (|‖W_k‖² − ‖W_j‖²| = 0 at a stationary point of a homogeneous
net). They are measured on networks outside the assumptions (:mod:`verify.measure.violations`):
regularised biases absorbing an input offset s, ReLU smoothed to softplus(βz)/β, SGD stopped
short of stationarity, tanh, a softplus conv net, a residual block.

The paper gives no constant for "mildly", and none is invented: for the violations with a
size (s, 1/β, the distance from stationarity) the claim tested is the trend — the deviation
grows with the size (Spearman ρ > 0 with a bootstrap interval over the networks, resampled
within each size) — on the excess of the deviation beyond what the residual explains (for
SGD without polish, whose violation is the residual, on the deviation itself). The
violations without a size are measured and reported (VACUOUS: the claim says nothing
checkable there). Alignment at a stationary point is exact for every differentiable network
(T2), so only the SGD family can move it; it is reported for all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.strategies import SMALL_CONVNET, image_convnet
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import (
    Outcome,
    Verdict,
    combine,
    judge_trend_on,
    noted,
    vacuous,
)
from verify.engine.setting import Context, Setting
from verify.measure.trend import rank_trend
from verify.measure.violations import KINDS, SIZE, Family, Point, measure


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the default is the theorem. False variant (mutant,
    tests/claims/test_mutants.py): every trend's claimed sign multiplied by ``trend_sign``
    (−1: the deviation shrinks as the violation grows)."""

    trend_sign: int = 1


CLAIM = Claim()

# which deviation each family's trend is about (the others are reported)
JUDGED = {"biases": ("balance",), "softplus": ("balance",), "sgd": ("alignment", "balance")}


def _trend(fam: Family, points: list[Point], which: str, claim: Claim = CLAIM) -> Outcome:
    """Spearman ρ of the excess of ``which`` against the size, over the networks that count
    (finite; stationary, except for the SGD family whose size is the distance from it)."""
    used = [p for p in points if p.finite and (p.stationary or fam.kind == "sgd")]
    excluded = {k: v for k, v in (("diverged", sum(not p.finite for p in points)),
                                  ("not stationary", sum(p.finite and not p.stationary
                                                         and fam.kind != "sgd"
                                                         for p in points))) if v}
    x = [p.size for p in used]
    # the SGD family's violation is the residual itself: its raw deviation is the measure
    y = [getattr(p.deviation, which if fam.kind == "sgd" else f"{which}_excess")
         for p in used]
    design = None if fam.kind == "sgd" else x  # SGD's sizes are measured, not a design
    tr = rank_trend(x, y, design=design, seed=fam.base.seed)
    levels = len(set(x))
    out = judge_trend_on(trend=tr, sign=claim.trend_sign,
                         what=f"{which} deviation vs {SIZE[fam.kind]}",
                         used=len(used), levels=levels, excluded=excluded,
                         unit="networks")
    return noted(out, _levels(used, which))


def _levels(points: list[Point], which: str) -> str:
    sizes = sorted({p.size for p in points})
    if len(sizes) > 8:  # measured sizes (SGD): the extremes
        sizes = [sizes[0], sizes[-1]]

    def at(v: float) -> float:
        vals = [getattr(p.deviation, which) for p in points if p.size == v]
        return sum(vals) / len(vals)

    return f"{which} deviation by size: " + ", ".join(f"{v:.3g}: {at(v):.3g}" for v in sizes)


def check(fam: Family, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    points = measure(fam, ctx)
    rows = [p.to_json() for p in points]
    details: dict[str, Any] = {"family": fam.kind, "size": SIZE[fam.kind], "rows": rows}
    series = {"size": [p.size for p in points],
              "alignment": [p.deviation.alignment for p in points],
              "balance": [p.deviation.balance for p in points],
              "residual": [p.deviation.residual for p in points]}
    if fam.kind in JUDGED:
        parts = {w: _trend(fam, points, w, claim) for w in JUDGED[fam.kind]}
        return combine(parts, details, series)
    ok = [p for p in points if p.finite]
    bal = sum(p.deviation.balance for p in ok) / len(ok) if ok else math.nan
    ali = sum(p.deviation.alignment for p in ok) / len(ok) if ok else math.nan
    res = max((p.deviation.residual for p in ok), default=math.nan)
    out = vacuous(what=f"{fam.kind}", why=f"no size to vary and no constant given: reported, "
                  f"not judged — balance deviation {bal:.3g}, alignment deviation {ali:.3g} "
                  f"(mean over {len(ok)} networks, max residual {res:.2g})", measured=bal)
    return combine({fam.kind: out}, details, series)


def _base(**kw: Any) -> Setting:
    """T3's control network: 6 → 10 → 10 → 3 on clusters, squared loss, λ = 0.01."""
    s = Setting(widths=(6, 10, 10, 3), activation="relu", lam=0.01, n=20, data="clusters",
                loss="squared", seed=2, lr=0.05, steps=300)
    return replace(s, **kw)


def families(scale: Scale, seed: int = 2) -> tuple[Family, ...]:
    quick = scale.name == "quick"
    seeds = 2 if quick else 4
    linear = _base(activation="identity", seed=seed)
    return (
        Family("biases", replace(linear, widths=(6, 10, 3), bias=True, reg_bias=True,
                                 data="teacher"), (0.0, 0.25, 0.5, 1.0), seeds),
        # β = 64 was measured not to reach r ≤ τ without the continuation: up to β = 16
        Family("softplus", _base(seed=seed), (1.0, 0.25, 1 / 16), seeds),
        Family("sgd", replace(linear, batch=4), (25.0, 100.0, 400.0, 1600.0), seeds),
        Family("tanh", _base(activation="tanh", seed=seed), (1.0,), seeds),
        Family("conv", replace(image_convnet("softplus", **SMALL_CONVNET), seed=seed), (1.0,),
               seeds),
        Family("residual", replace(linear, residual=True), (1.0,), seeds),
    )


@st.composite
def strategy(draw: st.DrawFn, scale: Scale) -> Family:
    """A family at another base seed."""
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**16))
    return next(f for f in families(scale, seed) if f.kind == kind)


def pinned(scale: Scale) -> tuple[Family, ...]:
    return families(scale)


def controls(scale: Scale) -> tuple[Control, ...]:
    biases = families(scale)[0]
    return (
        Control("unregularised biases", "the same offsets with biases left out of the decay: "
                "scaling (W_k, b_k, …, b_L) by c scales f by c and ∇_b F = 0, so norm "
                "balance still holds (T3's note) — the deviation stays within the residual "
                "at every offset, no trend", Verdict.INCONCLUSIVE,
                replace(biases, base=replace(biases.base, reg_bias=False), seeds=1)),
    )


def plots(examples: list[dict], ctrls: list[dict]) -> list[dict]:
    """The deviations against the size of each violation, and the table of all of them."""
    out: list[dict] = []
    lines, table = [], []
    for ex in examples:
        det = ex.get("details") or {}
        rows = det.get("rows") or []
        fam = det.get("family")
        if not rows or fam is None:
            continue
        sizes = sorted({r["size"] for r in rows if r["finite"]})
        for which in ("balance", "alignment"):
            ys = [sum(r[which] for r in rows if r["size"] == v)
                  / sum(1 for r in rows if r["size"] == v) for v in sizes]
            if fam in JUDGED and len(sizes) > 1:
                lines.append({"label": f"{fam}: {which}", "x": sizes, "y": ys,
                              "style": "-o" if which == "balance" else "--s"})
        for r in rows:
            size = f"{r['size']:.3g}" if fam in JUDGED else "—"
            table.append([fam, size, str(r["seed"]), f"{r['alignment']:.2e}",
                          f"{r['balance']:.2e}", f"{r['balance_slack']:.1e}",
                          f"{r['residual']:.1e}", str(ex.get("verdict"))])
    if lines:
        out.append({"kind": "lines", "title": "MV: deviation against the size of the violation",
                    "caption": "mean over seeds; sizes: input offset s (biases), 1/β "
                               "(softplus), max_k r_k (SGD without polish)",
                    "xlabel": "size of the violation", "ylabel": "deviation",
                    "xscale": "log", "yscale": "log", "lines": lines})
    if table:
        out.append({"kind": "table", "title": "MV: deviations outside the assumptions",
                    "caption": "alignment 1 − cos(W_k, −g_k) and norm balance |‖W_k‖² − "
                               "‖W_j‖²|/mean (worst layer / pair), the residual's slack for "
                               "the balance, max_k r_k",
                    "columns": ["family", "size", "seed", "alignment", "balance",
                                "balance slack", "residual", "verdict"], "rows": table})
    return out


THEOREM = Theorem(
    id="MV",
    title="Mild violations of the assumptions",
    source="Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2 (\"the assumptions only mildly "
           "affect the observations\")",
    statement="Outside the assumptions (biases, smooth activations, SGD short of "
              "stationarity, conv nets, residual blocks) alignment and norm balance deviate; "
              "the deviation grows with the size of the violation. No constant is given.",
    latex=r"1-\cos(W_k,-g_k),\quad \frac{|\|W_k\|_F^2-\|W_j\|_F^2|}{\mathrm{mean}_k\|W_k\|_F^2}"
          r"\ \nearrow\ \text{size of the violation}",
    assumptions=("networks deliberately outside T2/T3's assumptions, one violation each",
                 "sized violations: trend (Spearman ρ > 0, bootstrap CI) of the deviation's "
                 "excess over the residual's slack; stationary networks (max r_k ≤ τ) except "
                 "for the SGD family"),
    strategy=strategy,
    check=check,
    controls=controls,
    pinned=pinned,
    notes=("The softplus family is ReLU smoothed to softplus(βz)/β, polished without the "
           "smoothing continuation (which would change σ); β → ∞ is ReLU.",
           "The bias family offsets the inputs by s, so the regularised biases must absorb "
           "it; at a stationary point ‖W_k‖² − ‖W_{k+1}‖² = −‖b_k‖² (Euler with biases), "
           "so the balance deviation is the bias share (details: bias_share).",
           "Alignment at a stationary point is exact for any differentiable network (T2): "
           "only the SGD family, stopped short of stationarity, can move it.",
           "Stationarity here is first order (max r_k ≤ τ from the plain gradient of the "
           "objective trained); no second-order test."),
    plots=plots,
)
