"""T7 Approximately rank two (or one) (THEOREMS.md, T7) [exact + trend].

Chen, Yi, Yang, arXiv:2410.02176 v1. Two-layer ReLU f(x) = A relu(V x), SGD with coupled
decay μ (= λ_eff) on V, batch size B. Per-sample gradients ∇ℓ_s have rank one, and at ANY V
  μV = ∇_V F(V) − (1/n) Σ_s ∇ℓ_s(V),
so for every sample i (best i taken)
  [exact]  D_1(V) ≤ ( ‖∇_V F(V)‖_F + (1/n) Σ_s ‖∇ℓ_s(V) − ∇ℓ_i(V)‖_F ) / μ.
[paper, Assumption 2.5] if every batch has ‖∇_V F_b(V)‖_F ≤ ε then D_1(V) ≤ (2B − 1)ε/μ, and
Thm 2.6 states D_2(V) ≤ 2Bε/μ_V. ε is estimated by ε̂ = max over K sampled batches, which
underestimates ε: D ≤ bound(ε̂) is a PASS, D > bound(ε̂) only INCONCLUSIVE; VACUOUS when the
bound is ≥ ‖V‖_F (expected on ordinary SGD runs: SGD noise keeps ε̂ large, T5(e)).
μ_V = (1/B) Σ_j g(x_j, x_j) involves a function g that THEOREMS.md does not define: the D_2
form is evaluated with μ_V = μ (constant decay), and says so.
[phenomenon] after SGD + WD, at steady state and on networks that fit, σ_3/σ_1 and d_2(V) are
small, and with μ = 0 they are not ("WD is necessary"). Judged as its own part, apart from the
bound (:class:`Phenomenon`): plain SGD at every μ of a grid that includes the μ = 0 control,
all at the same steps T = ⌈c/−log(1 − η·μ_min)⌉ (c = 2·log(2/ε),
:mod:`verify.measure.steady`), across hidden widths; networks that did not settle, that sit
at chance, or (regression) fit worse than the least-squares linear map — which a bias-free
ReLU net of width ≥ 2 contains — are left out and counted. Two parts: d_2 and σ_3/σ_1 fall
from the μ = 0 control as μ grows (Spearman within each width), and V is near rank two where
it fits: numerical rank (rank_tol, tol 1e-3, THEOREMS.md "Spectra") ≤ 2 at some μ > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.strategies import log_uniform
from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import (
    Outcome,
    Verdict,
    combine,
    judge,
    judge_trend_on,
    judge_underestimated,
    noted,
    unmet,
    vacuous,
)
from verify.engine import sgd
from verify.engine.setting import Context, Setting, Trained, realise
from verify.measure import spectra
from verify.measure.evidence import network_series
from verify.measure.fit import fit
from verify.measure.grid import Protocol, Study, run_study
from verify.measure.steady import Checkpoints, settle_steps
from verify.nets.activations import Params
from verify.tolerances import gamma

BATCH_SAMPLES = 200  # random batches drawn for ε̂ (plus one epoch's partition)


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the defaults are the theorem. False variants (mutants,
    tests/claims/test_mutants.py): every bound scaled by ``bound_scale``; the exact bound
    without the spread of the per-sample gradients (``spread`` False: V rank one at every
    stationary point); the phenomenon's trends with their claimed sign multiplied by
    ``trend_sign``, and V near rank ``rank`` instead of two."""

    bound_scale: float = 1.0
    spread: bool = True
    trend_sign: int = 1
    rank: float = 2.0


CLAIM = Claim()
# smallest relative error of each part's claim caught (tests/claims/test_mutants.py)
DETECTION = {"exact": 0.92}


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    """Two-layer bias-free ReLU nets on diabetes (regression) or digits (10 classes, CE),
    plain SGD in the stable region (ημ ∈ [4e-3, 2e-2]) for T = ⌈c/−log(1−ημ)⌉ steps (module
    doc), optionally polished to stationarity afterwards."""
    data = draw(st.sampled_from(["diabetes", "digits"]))
    h = draw(st.integers(6, max(6, scale.max_width)))
    n = draw(st.integers(16, max(16, 2 * scale.max_n)))
    d0, d_out, loss = (10, 1, "squared") if data == "diabetes" else (64, 10, "ce")
    lr = draw(st.sampled_from([0.05, 0.1]))
    mu = float(f"{draw(log_uniform(4e-3, 2e-2)) / lr:.3g}")
    return Setting(widths=(d0, h, d_out), activation="relu", lam=mu,
                   n=n, data=data, loss=loss, seed=draw(st.integers(0, 2**16)),
                   lr=lr, steps=settle_steps(lr, mu), batch=draw(st.integers(1, 8)),
                   # polishing a ReLU net to a certificate costs seconds per 100 parameters
                   polish=data == "diabetes" and h <= 10 and draw(st.booleans()))


def _eps_hat(t: Trained, batch: int, seed: int) -> tuple[float, int]:
    """ε̂ = max ‖∇_V F_b(V)‖_F over one epoch's batches and BATCH_SAMPLES random batches of
    size ``batch`` (seeded); returns (ε̂, number of batches)."""
    obj, params, n = t.objective, t.result.params, t.objective.data.n
    gen = torch.Generator().manual_seed(seed + 31337)
    idxs = [b for b in sgd.epoch(n, batch, seed) if len(b) == batch]
    idxs += [torch.randperm(n, generator=gen)[:batch] for _ in range(BATCH_SAMPLES)]
    eps = max(float(torch.linalg.norm(sgd.on_batch(obj, i).grad(params)[0])) for i in idxs)
    return eps, len(idxs)


def _paper_part(D: float, bound: float, V_norm: float, what: str) -> Outcome:
    """PASS when D ≤ bound(ε̂), INCONCLUSIVE above it (ε̂ ≤ ε), VACUOUS when bound ≥ ‖V‖."""
    return judge_underestimated(measured=D, bound=bound, scale=V_norm, trivial=V_norm,
                                what=what, estimate="ε̂ (a max over sampled batches ≤ ε)")


def check_bound(s: Setting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """The exact and paper-form bounds on one network, beside its steady state and fit."""
    ck = Checkpoints(s.objective(ctx.device), s.steps)
    t = realise(s, ctx, ck)  # the observer sees the SGD phase (before any polishing)
    if not t.result.finite:
        return unmet(what="training", why=f"diverged: {t.result.stop_reason}")
    obj, params = t.objective, t.result.params
    V = params[0]
    V_norm = spectra.frobenius(V)
    D1, D2 = spectra.tail_distance(V, 1), spectra.tail_distance(V, 2)
    if V_norm == 0.0:
        return vacuous(what="V", why="collapsed to 0: rank 0, every bound trivial",
                       measured=0.0, bound=0.0)
    details = {"sigma3_over_sigma1": spectra.gap_ratio(V, 2), "d_2": D2 / V_norm,
               "d_1": D1 / V_norm, "V_norm": V_norm, "rank_tol": spectra.numerical_rank(V),
               "steady_state": ck.state().to_json(),
               "fit": fit(obj.arch, params, obj.data).to_json()}
    if s.lam == 0:
        return vacuous(what="μ = 0", why="every bound is infinite (weight decay is necessary)",
                       measured=D1, bound=math.inf, details=details)
    mu = s.lam
    per = sgd.per_sample_grads(obj, params)[0].reshape(s.n, -1)
    spread = torch.cdist(per, per).mean(dim=1)  # (1/n) Σ_s ‖∇ℓ_s − ∇ℓ_i‖ for every i
    i_best = int(spread.argmin())
    gF = spectra.frobenius(obj.grad(params)[0])
    exact = claim.bound_scale * (gF + (float(spread[i_best]) if claim.spread else 0.0)) / mu
    # the identity is exact; its float64 evaluation carries the rounding of two n-term sums
    # (inside ∇_V F and the mean here), each within γ_n·Σ_s‖∇ℓ_s‖ (verify.tolerances)
    slack = 2 * gamma(s.n) * float(per.norm(dim=1).sum()) / mu
    parts = {"exact D_1(V)": judge(D1, exact + slack, V_norm, "D_1(V) ≤ (‖∇_V F‖ + "
                                   "min_i mean_s‖∇ℓ_s − ∇ℓ_i‖)/μ", require_certificate=False,
                                   trivial=V_norm)}
    B = s.batch or s.n
    eps, K = _eps_hat(t, B, s.seed)
    parts["paper D_1(V)"] = _paper_part(D1, claim.bound_scale * (2 * B - 1) * eps / mu, V_norm,
                                        "D_1(V) ≤ (2B−1)ε̂/μ")
    parts["paper D_2(V)"] = _paper_part(D2, claim.bound_scale * 2 * B * eps / mu, V_norm,
                                        "D_2(V) ≤ 2Bε̂/μ_V (μ_V = μ)")
    details.update({"eps_hat": eps, "batches_sampled": K, "batch": B, "best_i": i_best,
                    "grad_V_F": gF, "exact_bound": exact,
                    "paper_D1_bound": (2 * B - 1) * eps / mu,
                    "paper_D2_bound": 2 * B * eps / mu,
                    "certified": t.certificate.certified})
    return combine(parts, details, network_series(t))


# ----------------------------------------------------------------------------------------
# the phenomenon


SHAPE = ("d_2", "sigma3/sigma1", "rank_tol")


def _shape(s: Setting, params: Params) -> dict[str, float]:
    V = params[0]
    return {"sigma3/sigma1": spectra.gap_ratio(V, 2),
            "d_2": spectra.relative_tail_distance(V, 2),
            "rank_tol": float(spectra.numerical_rank(V))}


@dataclass(frozen=True)
class Phenomenon:
    """V's shape after plain SGD from ``base`` at every μ in ``mus`` (0 = the control) and
    hidden width in ``widths``, ``seeds`` seeds each, all at the same steps (module doc)."""

    base: Setting
    mus: tuple[float, ...]
    widths: tuple[int, ...]
    seeds: int

    def steps(self) -> int:
        return settle_steps(self.base.lr, min(m for m in self.mus if m > 0))

    def run(self, ctx: Context) -> Study:
        # init scaled by sqrt(16/width): at He scale the first steps of a wider net need a
        # smaller η (measured: width 64 on diabetes diverges at η = 0.05–0.2); the steady
        # state forgets the init (that is what the steps are for), and d_2, σ_3/σ_1 and the
        # μ = 0 control's shape do not depend on the scale
        return run_study(self.base, ctx, "lam",
                         [{"lam": m, "width": w, "init_scale": math.sqrt(16 / w)}
                          for w in self.widths for m in self.mus],
                         self.seeds, _shape, Protocol("fixed steps", steps=self.steps()),
                         stratum="width", controls=(0.0,), linear=True)

    def to_json(self) -> dict[str, Any]:
        b = self.base
        return {"phenomenon": True, "data": b.data, "mus": list(self.mus),
                "hidden_widths": list(self.widths), "seeds": self.seeds, "steps": self.steps(),
                "widths": list(b.widths), "activation": b.activation, "lr": b.lr,
                "batch": b.batch, "n": b.n, "seed": b.seed, "base": b.to_json()}


def _near_rank_two(study: Study, claim: Claim = CLAIM) -> Outcome:
    """V near rank two where it fits: the smallest median numerical rank of V over the
    (μ > 0, width) cells with used runs, against 2."""
    cells = [c for c in study.cells(SHAPE) if c["lam"] > 0 and c["used"]]
    what = "near rank two: median rank_tol(V) at the best (μ > 0, width) where nets fit"
    if not cells:
        return unmet(what=what, why="no network with μ > 0 settled and fit")
    medians = {}
    for c in cells:
        ranks = sorted(r.metrics["rank_tol"] for r in study.usable()
                       if r.point["lam"] == c["lam"] and r.point["width"] == c["width"])
        medians[(c["lam"], c["width"])] = ranks[len(ranks) // 2]
    (mu, w), best = min(medians.items(), key=lambda kv: (kv[1], kv[0]))
    return judge(best, claim.rank, claim.rank, f"{what} (μ = {mu:g}, width {w:g})",
                 require_certificate=False)


def check_phenomenon(ph: Phenomenon, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """The phenomenon part (module doc): the fall from the μ = 0 control, and rank two."""
    study = ph.run(ctx)
    parts: dict[str, Outcome] = {}
    for m, name in (("d_2", "d_2(V)"), ("sigma3/sigma1", "σ_3/σ_1")):
        tr = judge_trend_on(trend=study.trend(m, ph.base.seed), sign=-claim.trend_sign,
                            what=f"{name} vs μ (μ = 0 control, same {ph.steps()} steps; "
                                 "within widths)", used=len(study.usable()),
                            levels=study.levels(), excluded=study.excluded())
        parts[m] = noted(tr, _levels_note(study, m))
    parts["rank two"] = noted(_near_rank_two(study, claim), _levels_note(study, "rank_tol"))
    return combine(parts, study.details(SHAPE), study.series(SHAPE))


def _levels_note(study: Study, metric: str) -> str:
    cells = study.cells((metric,))
    kind = next((r.fit.kind for r in study.runs), "fit")
    return f"{metric} (mean {kind}; used/trained) per (μ, width): " + ", ".join(
        f"({c['lam']:g}, {c['width']:g}): {c[metric]['mean']:.3g} ({c['fit']['mean']:.2f}; "
        f"{c['used']}/{c['runs']})" for c in cells)


def check(s: Setting | Phenomenon, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    return (check_phenomenon(s, ctx, claim) if isinstance(s, Phenomenon)
            else check_bound(s, ctx, claim))


def phenomena(scale: Scale) -> tuple[Phenomenon, ...]:
    """diabetes (regression) and digits (classification, CE), B = 4, n = 48; μ = 0 is the
    control."""
    quick = scale.name == "quick"
    mus = (0.0, 0.1, 0.3) if quick else (0.0, 0.01, 0.03, 0.1, 0.3)
    widths = (16, 64) if quick else (16, 64, 256)
    seeds = 2 if quick else 4
    return (Phenomenon(Setting(widths=(10, 16, 1), activation="relu", lam=0.1, n=48,
                               data="diabetes", seed=0, lr=0.1, steps=1, batch=4,
                               polish=False), mus, widths, seeds),
            Phenomenon(Setting(widths=(64, 16, 10), activation="relu", lam=0.1, n=48,
                               data="digits", loss="ce", seed=0, lr=0.2, steps=1, batch=4,
                               polish=False), mus, widths, seeds))


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(10, 16, 1), activation="relu", lam=0.02, n=48, data="diabetes",
                   seed=5, lr=0.05, steps=400, batch=4, polish=False)
    return (
        Control("μ = 0", "no weight decay: μV = … has no solution, every bound is infinite "
                "(WD is necessary); σ_3/σ_1 and d_2 reported", Verdict.VACUOUS,
                replace(base, lam=0.0)),
        Control("ordinary SGD", "plain SGD without polishing: SGD noise keeps ε̂ large, so "
                "the paper-form bounds exceed ‖V‖_F (expected VACUOUS, as THEOREMS.md "
                "says)", Verdict.VACUOUS, base),
    )


def pinned(scale: Scale) -> tuple[Setting | Phenomenon, ...]:
    """Real data as in the paper's experiments (diabetes for California Housing, digits for
    MNIST — both bundled with scikit-learn), each SGD run for its settle steps: SGD then
    polished to stationarity (diabetes), plain SGD (digits; polishing its 1k-parameter ReLU
    net costs ~30 s); then the phenomenon on both."""
    return (Setting(widths=(10, 16, 1), activation="relu", lam=0.1, n=48, data="diabetes",
                    seed=0, lr=0.05, steps=settle_steps(0.05, 0.1), batch=4, polish=True),
            Setting(widths=(64, 16, 10), activation="relu", lam=0.1, n=48, data="digits",
                    loss="ce", seed=0, lr=0.2, steps=settle_steps(0.2, 0.1), batch=4,
                    polish=False),
            # strong decay: measured σ_3/σ_1 ≈ 1e-16 at the certified point (V has rank 2),
            # while the rank-one bound stays vacuous
            Setting(widths=(10, 16, 1), activation="relu", lam=0.3, n=48, data="diabetes",
                    seed=0, lr=0.05, steps=settle_steps(0.05, 0.3), batch=4, polish=True),
            *phenomena(scale))


def plots(examples: list[dict], ctrls: list[dict]) -> list[dict]:
    """d_2(V) against μ per width (mean over the used seeds; μ = 0, the control, drawn at
    the left end of a symlog axis), one figure per data set of the phenomenon."""
    out = []
    for ex in examples:
        ser = ex.get("series") or {}
        if not (ex.get("setting") or {}).get("phenomenon") or not ser.get("x"):
            continue
        lines = []
        for w in sorted(set(ser.get("stratum") or [])):
            for m in ("d_2", "sigma3/sigma1"):
                pts = [(x, y) for x, y, s in zip(ser["x"], ser.get(m) or [], ser["stratum"],
                                                 strict=False) if s == w]
                xs = sorted({x for x, _ in pts})
                ys = [sum(y for x, y in pts if x == v) / sum(1 for x, _ in pts if x == v)
                      for v in xs]
                lines.append({"label": f"{m}, width {w:g}", "x": xs, "y": ys,
                              "style": "-o" if m == "d_2" else "--s"})
        out.append({"kind": "lines", "title": f"T7 phenomenon: {ex['setting'].get('data')}",
                    "caption": f"V after plain SGD, settled networks that fit (μ = 0: the "
                               f"control at the same steps) — {ex.get('reason')}",
                    "xlabel": "μ", "ylabel": "d_2(V), σ_3/σ_1", "xscale": "symlog",
                    "lines": lines})
    return out


THEOREM = Theorem(
    id="T7",
    title="Approximately rank two (or one)",
    source="Chen, Yi, Yang, arXiv:2410.02176 v1",
    statement="For f = A relu(Vx) with weight decay μ on V, μV is the batch-free gradient "
              "minus the mean of rank-one per-sample gradients, so V is within "
              "(‖∇_V F‖ + mean spread of per-sample gradients)/μ of rank one; under the "
              "paper's ε-assumption D_1(V) ≤ (2B−1)ε/μ and D_2(V) ≤ 2Bε/μ_V.",
    latex=r"D_1(V) \le \frac{\|\nabla_V F\|_F + \frac1n\sum_s\|\nabla\ell_s-\nabla\ell_i\|_F}"
          r"{\mu},\quad D_1(V)\le\frac{(2B-1)\varepsilon}{\mu}",
    assumptions=("two-layer bias-free ReLU net, coupled weight decay μ > 0 on V",
                 "phenomenon: plain SGD at steady state, on networks that fit",
                 "paper forms: every batch gradient ≤ ε (estimated by ε̂ over sampled "
                 "batches, so only PASS/INCONCLUSIVE/VACUOUS)"),
    strategy=settings,
    check=check,
    controls=controls,
    pinned=pinned,
    notes=("Detection limit (bisection on the certified strong-decay net, tests/claims/"
           f"test_mutants.py): the exact bound scaled by 1 − e is caught from e = "
           f"{DETECTION['exact']:.1g} — it is 13× loose there; dropping the per-sample spread "
           "(V rank one at stationarity) fails it.",
           "μ_V = (1/B)Σ_j g(x_j, x_j) of Thm 2.6 needs a function g that THEOREMS.md does not "
           "define; the D_2 form is evaluated with μ_V = μ.",
           "ε̂ is a maximum over sampled batches (see details: eps_hat, batches_sampled).",
           "The exact bound holds at any V; it is typically VACUOUS after plain SGD "
           "(‖∇_V F‖/μ is large at a non-stationary point) and informative after polishing.",
           "The phenomenon is judged apart from the bound (pinned 'phenomenon' examples): "
           "plain SGD at every μ of a grid with the μ = 0 control, all at the same steps T = "
           "⌈2·log(2/ε)/−log(1 − η·μ_min)⌉, across hidden widths (init scaled by "
           "sqrt(16/width) so the first steps are stable); networks that did not settle, sit "
           "at chance, collapsed, or (diabetes) fit worse than the least-squares linear map "
           "are left out and counted. 'Near rank two' is numerical rank (tol 1e-3) ≤ 2 at "
           "some μ > 0 where networks fit.",
           "Every network records its steady state and fit (details: steady_state, fit)."),
    plots=plots,
)
