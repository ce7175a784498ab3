"""T5 SGD rank bound (THEOREMS.md, T5) [exact + trend].

Galanti, Siegel, Gupte, Poggio, arXiv:2206.05794 v7. Plain mini-batch SGD with coupled decay,
W_{t+1} = (1 − ηλ)W_t − η G_t, batch size B, a weight applied m times per example:
  (a) rank(G_t) ≤ min(d_out, d_in, B·m) at any weights (dense m = 1; a 1-D conv layer with
      m patches), rank measured at the float64 rounding level of the gradient;
  (b) unrolling W_T = (1−ηλ)^s W_{T−s} − η Σ_{j=1}^{s} (1−ηλ)^{j−1} G_{T−j} gives, for every s,
      D_{sBm}(W_T) ≤ (1 − ηλ)^s ‖W_{T−s}‖_F — checked for all s on the streamed norms;
  (c) the paper's ε-rank form rank_ε(W_T/‖W_T‖) ≲ m·B·log(2/ε)/(ηλ_eff), VACUOUS when it is
      ≥ min(d_out, d_in), INCONCLUSIVE when T is shorter than the unrolling it needs;
  (d) [trend] final rank_tol (1e-3) and stable rank of the hidden layers fall with larger λ,
      larger η, smaller B (Spearman ρ with a bootstrap interval over seeds), measured at steady
      state (:mod:`verify.measure.steady`) on networks that fit (:mod:`verify.measure.fit`);
      the B trend under the paper's protocol (fixed epochs, steps ∝ n/B), reported under
      fixed steps too (the number of steps confounds it);
  (e) SGD noise: max_b ‖∇F_b‖ ≥ max(‖∇F‖, ½ max_{b,b'} ‖∇L̂_b − ∇L̂_{b'}‖), the last term
      independent of λ, so batch gradients stay away from 0 while ∇F may be small.
Negative controls: momentum 0.9 and Adam violate (b); a conv layer counted as m = 1 violates
(a); λ = 0 never reaches a steady state (no trend to judge); B = n has no SGD noise.

Steps. Every SGD run here trains T = ⌈c/−log(1 − ηλ)⌉ steps, c = 2·log(2/ε) ≈ 15.2
(:func:`verify.measure.steady.settle_steps`), so that the rank is SGD's and not the
initialisation's; whether it settled is measured and recorded under ``steady_state``.
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
from verify.claims.trends import plot_spec
from verify.claims.verdict import (
    Outcome,
    Verdict,
    combine,
    judge,
    judge_trend_on,
    judge_worst_of,
    noted,
    unmet,
    vacuous,
)
from verify.engine import sgd
from verify.engine.setting import Context, Setting, trajectory
from verify.measure import iterates, spectra
from verify.measure.fit import fit
from verify.measure.grid import Protocol, Study, hidden_ranks, run_study
from verify.measure.steady import Chain, Checkpoints, settle_steps
from verify.nets import conv1d
from verify.nets.activations import Params
from verify.nets.network import weights

TOL = 1e-3  # THEOREMS.md "Spectra": rank_tol as in the Galanti code; also the ε of (c)
CONV = {"channels": 4, "length": 8, "kernel": 4, "stride": 4}  # m = 2 patches, d_in = 16


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the defaults are the theorem. False variants (mutants,
    tests/claims/test_mutants.py): (a) the rank bound scaled by ``rank_scale`` (floored), the
    conv layer's m claimed as ``conv_m``; (b) the bound scaled by ``bound_scale`` (at the
    true claim's worst pair); (c) the ε-rank bound scaled by ``eps_scale``; (e)
    ``noise_half`` in place of the ½; (d) every study's claimed sign multiplied by
    ``trend_sign`` (−1: the rank moves the other way)."""

    rank_scale: float = 1.0
    conv_m: int | None = None
    bound_scale: float = 1.0
    eps_scale: float = 1.0
    noise_half: float = 0.5
    trend_sign: int = 1


CLAIM = Claim()
# smallest relative error of each part's claim caught (bisection on a pinned setting,
# tests/claims/test_mutants.py)
DETECTION = {"(a)": 1e-16, "(b)": 0.64, "(e)": 0.65}


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    """Small MLPs trained by plain SGD in the stable region (ηλ ∈ [4e-3, 2e-2], η ≤ 0.2),
    with widths > B so that (a) and (b) bite, for T = ⌈c/−log(1−ηλ)⌉ steps (module doc)."""
    depth = draw(st.integers(2, 4))
    top = max(8, scale.max_width)
    batch = draw(st.integers(1, 4))
    hidden = tuple(draw(st.integers(batch + 4, top)) for _ in range(depth - 1))
    n = draw(st.integers(2 * batch + 1, max(2 * batch + 1, scale.max_n)))
    lr = draw(st.sampled_from([0.05, 0.1, 0.2]))
    lam = float(f"{draw(log_uniform(4e-3, 2e-2)) / lr:.3g}")
    return Setting(widths=(draw(st.integers(batch + 4, top)), *hidden, draw(st.integers(2, 3))),
                   activation=draw(st.sampled_from(["relu", "tanh"])), lam=lam, n=n,
                   data="clusters", loss="ce", seed=draw(st.integers(0, 2**16)), lr=lr,
                   steps=settle_steps(lr, lam), batch=batch, polish=False)


# ----------------------------------------------------------------------------------------
# (a) rank of a batch gradient


def _rank_part(G: torch.Tensor, a: torch.Tensor, b: torch.Tensor, bound: int, what: str
               ) -> Outcome:
    r, level = spectra.outer_sum_rank(a, b, G)
    out = judge(float(r), float(bound), float(max(bound, 1)), what, require_certificate=False,
                trivial=float(min(G.shape)))
    return noted(out, f"rounding level {level:.1e}")


def _dense_rank_parts(s: Setting, params: Params, when: str, claim: Claim = CLAIM
                      ) -> dict[str, Outcome]:
    obj = s.objective()
    idx = sgd.epoch(s.n, s.batch or s.n, s.seed)[0]
    b = sgd.on_batch(obj, idx)
    g = b.data_grad(params)
    out = {}
    for k, (delta, h) in enumerate(sgd.layer_terms(b, params)):
        bound = math.floor(claim.rank_scale * min(*g[k].shape, len(idx)))
        out[f"(a) {when} layer {k + 1}"] = _rank_part(g[k], delta, h, bound,
                                                      f"rank G_{k + 1} ({when}), B={len(idx)}")
    return out


def _conv_part(s: Setting, m_claimed: int | None = None, rank_scale: float = 1.0) -> Outcome:
    c = conv1d.Conv1d(out_channels=max(s.widths[1], 8), **CONV)
    W, A = conv1d.init(c, s.seed)
    B = s.batch or s.n
    G, delta, P = conv1d.weight_gradient(c, W, A, *conv1d.signals(c, B, s.seed + 1))
    m = c.patches if m_claimed is None else m_claimed
    return _rank_part(G, delta, P, math.floor(rank_scale * min(*G.shape, B * m)),
                      f"rank of a conv batch gradient, B={B}, m={m}")


# ----------------------------------------------------------------------------------------
# (b) unrolled tail bound and (c) ε-rank


def unrolled_part(sv: torch.Tensor, decay: float, rank_per_step: int, batch: int,
                  bound_scale: float = 1.0) -> tuple[Outcome, dict[str, list[float]]]:
    """(b) D_{s·k}(W_t) ≤ decay^s ‖W_{t−s}‖ + (accumulated rounding) on every pair (t, s),
    from the singular values ``sv`` of W_0 … W_T (:func:`verify.measure.iterates.unrolled_tail`);
    judged at the worst pair. The series keeps the final t = T."""
    u = iterates.unrolled_tail(sv, decay, rank_per_step, batch)
    what = f"(b) D_{u.k}(W_t) at t={u.t}, s={u.s}" if u.checked else "(b) D_{sBm}(W_t)"
    return judge_worst_of(measured=u.D, bound=bound_scale * u.bound, scale=u.scale, what=what,
                          checked=u.checked, informative=u.informative,
                          empty="B·m ≥ min(d_out, d_in): D_{Bm} = 0 trivially"), u.series


def _eps_rank(sv: torch.Tensor, s: Setting, m: int = 1, eps_scale: float = 1.0) -> Outcome:
    B = s.batch or s.n
    norms = spectra.spectrum_tails(sv)[:, 0]
    ell = math.log(2 / TOL)
    d = sv.shape[1]
    measured = float(spectra.spectrum_rank(sv[-1], TOL))
    what = "(c) rank_ε(W_T)"
    if s.lam == 0:
        return vacuous(what=what, why="λ = 0: bound = ∞", measured=measured, bound=math.inf)
    bound = eps_scale * m * B * ell / (s.lr * s.lam)
    if bound >= d:
        return vacuous(what=what, why=f"{measured:g} ≤ min(d) = {d} ≤ m·B·log(2/ε)/(ηλ) = "
                       f"{bound:.3g}", measured=measured, bound=bound, scale=d)
    steps = math.ceil(ell / -math.log1p(-s.lr * s.lam))
    T = len(norms) - 1
    if steps > T:
        return unmet(what=what, why=f"needs s = {steps} unrolled steps, trajectory has T = {T}",
                     measured=measured, bound=bound)
    if norms[T - steps] > 2 * norms[T]:
        return unmet(what=what, why=f"‖W_(T−s)‖ = {float(norms[T - steps]):.3g} > 2‖W_T‖: the "
                     "heuristic's norm assumption is not met", measured=measured, bound=bound)
    # the claim's constant (``eps_scale``) scales the judged bound, not only the vacuity test
    return judge(measured, eps_scale * float(steps * B * m), float(d), what,
                 require_certificate=False)


# ----------------------------------------------------------------------------------------
# (e) SGD noise


def _noise(s: Setting, params: Params, half: float = 0.5) -> tuple[Outcome, dict[str, Any]]:
    noise = iterates.sgd_noise(s.objective(), params, sgd.epoch(s.n, s.batch or s.n, s.seed))
    info = noise.to_json()
    if len(noise.batch_norms) == 1:
        return vacuous(what="(e)", why="B = n: one batch, no SGD noise", measured=noise.top,
                       bound=noise.full), info
    # the inequality is exact; compare at the rounding level of the gradient norms
    out = judge(max(noise.full, noise.half_spread * half / 0.5), noise.top,
                max(noise.top, iterates.TINY),
                "(e) max(‖∇F‖, ½max‖∇F_b − ∇F_b'‖) ≤ max_b‖∇F_b‖", require_certificate=False)
    return noted(out, f"max_b‖∇F_b‖/‖∇F‖ = {info['ratio_max_batch_to_full']:.3g}"), info


# ----------------------------------------------------------------------------------------
# the check


def check(s: Setting, ctx: Context, parts_wanted: tuple[str, ...] = ("a", "b", "c", "e"),
          claim: Claim = CLAIM) -> Outcome:
    obs = iterates.SpectraObserver(len(s.widths) - 1)
    obj = s.objective(ctx.device)
    ck = Checkpoints(obj, s.steps)
    res = trajectory(s, ctx, Chain(obs, ck))
    if not res.finite:
        return unmet(what="SGD", why=f"diverged: {res.stop_reason}")
    W = weights(s.architecture(), res.params)
    B = s.batch or s.n
    parts: dict[str, Outcome] = {}
    series: dict[str, object] = {}
    if "a" in parts_wanted:
        parts.update(_dense_rank_parts(s, res.initial, "at init", claim))
        parts.update(_dense_rank_parts(s, res.params, "at W_T", claim))
        parts["(a) conv layer"] = _conv_part(s, claim.conv_m, claim.rank_scale)
    if "b" in parts_wanted:
        for k in range(len(W)):
            parts[f"(b) layer {k + 1}"], series[f"unrolled_layer{k + 1}"] = unrolled_part(
                obs.layer(k), 1 - s.lr * s.lam, B, B, claim.bound_scale)
    if "c" in parts_wanted:
        for k in range(len(W)):
            parts[f"(c) layer {k + 1}"] = _eps_rank(obs.layer(k), s, eps_scale=claim.eps_scale)
    details: dict[str, object] = {
        "numerical_ranks": [spectra.numerical_rank(w, TOL) for w in W],
        "stable_ranks": [spectra.stable_rank(w) for w in W],
        "eps_rank_bound": B * math.log(2 / TOL) / (s.lr * s.lam) if s.lam > 0 else math.inf,
        "sgd_steps": res.gd_steps, "seconds": res.seconds,
        "steady_state": ck.state().to_json(),
        "fit": fit(s.architecture(), res.params, obj.data).to_json()}
    if "e" in parts_wanted:
        parts["(e) SGD noise"], details["noise"] = _noise(s, res.params, claim.noise_half)
    series["singular_values"] = [spectra.singular_values(w).tolist() for w in W]
    return combine(parts, details, series)


def check_unrolled(s: Setting, ctx: Context) -> Outcome:
    """Only (b), for the momentum and Adam controls."""
    return check(s, ctx, ("b",))


def check_noise(s: Setting, ctx: Context) -> Outcome:
    """Only (e), for the B = n control."""
    return check(s, ctx, ("e",))


def check_conv_as_dense(s: Setting, ctx: Context) -> Outcome:
    """(a) for the conv layer with its weight sharing ignored (m counted as 1)."""
    return combine({"(a) conv layer, m counted as 1": _conv_part(s, m_claimed=1)})


# ----------------------------------------------------------------------------------------
# (d) trends


METRICS = ("rank_tol", "stable_rank")


@dataclass(frozen=True)
class TrendStudy:
    """(d) as a study (:func:`verify.measure.grid.run_study`): ``field`` over ``values`` ×
    ``seeds`` of plain SGD from ``base``, every run under ``protocol``; the hidden-layer ranks
    are claimed to move with the sign ``sign``. ``also`` is a second protocol whose trend is
    reported beside the judged one, with ``confound`` saying why it differs. With ``effect``
    the claim also needs the mean rank_tol to move by at least one rank unit."""

    name: str
    base: Setting
    field: str
    values: tuple[float, ...]
    sign: int
    seeds: int
    protocol: Protocol
    also: Protocol | None = None
    confound: str = ""
    effect: bool = False

    def run(self, ctx: Context, protocol: Protocol) -> Study:
        return run_study(self.base, ctx, self.field, [{self.field: v} for v in self.values],
                         self.seeds, hidden_ranks, protocol)

    def to_json(self) -> dict[str, Any]:
        b = self.base
        return {"study": self.name, "field": self.field, "values": list(self.values),
                "sign": self.sign, "seeds": self.seeds, "protocol": self.protocol.to_json(),
                "also": None if self.also is None else self.also.to_json(),
                "widths": list(b.widths), "activation": b.activation, "lam": b.lam,
                "lr": b.lr, "batch": b.batch, "n": b.n, "data": b.data, "seed": b.seed,
                "base": b.to_json()}


def _judged(study: Study, metric: str, sign: int, seed: int) -> Outcome:
    out = judge_trend_on(trend=study.trend(metric, seed), sign=sign,
                         what=f"(d) {metric} vs {study.field}", used=len(study.usable()),
                         levels=study.levels(), excluded=study.excluded())
    return noted(out, fit_note(study, metric))


def fit_note(study: Study, metric: str) -> str:
    """Each level's mean metric beside its mean fit, over the used runs (the ranks a trend
    rests on, next to how well those networks fit)."""
    cells = study.cells((metric,))
    kind = next((r.fit.kind for r in study.runs), "fit")
    return f"{metric} mean ± sd (mean {kind}) per {study.field}: " + ", ".join(
        f"{c[study.field]:g}: {c[metric]['mean']:.3g} ± {c[metric]['sd']:.2g} "
        f"({c['fit']['mean']:.2f})" for c in cells)


def _effect(study: Study, values: tuple[float, ...], sign: int) -> Outcome:
    """Rank is an integer: a move of the mean rank_tol below one rank unit across the grid,
    however consistent in sign, is not a change of rank."""
    means = {float(c[study.field]): c["rank_tol"]["mean"] for c in study.cells(METRICS)}
    ends = [means.get(float(v), math.nan) for v in (values[0], values[-1])]
    move = (ends[0] - ends[1]) * (-sign)  # > 0 when the rank moves the claimed way
    return judge(1.0, move, 1.0, f"(d) one rank unit ≤ mean rank_tol change across "
                 f"{study.field} ({ends[0]:.3g} → {ends[1]:.3g})", require_certificate=False)


def check_study(ts: TrendStudy, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """(d) on the settled runs that fit, under ``ts.protocol``; ``ts.also`` reported beside."""
    study = ts.run(ctx, ts.protocol)
    sign = ts.sign * claim.trend_sign
    parts = {m: _judged(study, m, sign, ts.base.seed) for m in METRICS}
    if ts.effect and study.usable():
        parts["effect"] = _effect(study, ts.values, sign)
    details: dict[str, Any] = {"protocol": ts.protocol.describe(),
                               **study.details(METRICS)}
    series: dict[str, Any] = dict(study.series(METRICS))
    if ts.also is not None:
        other = ts.run(ctx, ts.also)
        rep = {m: _judged(other, m, sign, ts.base.seed) for m in METRICS}
        details["also"] = {"protocol": ts.also.describe(), "confound": ts.confound,
                           "trends": {m: o.to_json() for m, o in rep.items()},
                           **other.details(METRICS)}
        series |= {f"also_{k}": v for k, v in other.series(METRICS).items()}
        for m, o in rep.items():
            tr = other.trend(m, ts.base.seed)
            parts[m] = noted(parts[m], f"under {ts.also.describe()} (reported, not judged): "
                             f"ρ = {tr.rho:.3g}, CI [{tr.lo:.3g}, {tr.hi:.3g}], {o.verdict} "
                             f"for sign {sign:+d}; {ts.confound}")
    return combine(parts, details, series)


def check_any(s: Setting | TrendStudy, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    return (check_study(s, ctx, claim) if isinstance(s, TrendStudy)
            else check(s, ctx, claim=claim))


TREND_SEEDS = 3


def trend_base(scale: Scale) -> Setting:
    """The trend studies' centre: a small ReLU MLP on clustered data, CE loss, plain SGD."""
    w = 24 if scale.name == "quick" else 48
    return Setting(widths=(12, w, w, w, 4), activation="relu", lam=0.05, n=64,
                   data="clusters", loss="ce", seed=11, lr=0.2, steps=1, batch=8,
                   polish=False)


CONFOUND = ("the B trend is confounded with the number of steps: at fixed steps a larger B "
            "sees more samples per step and a smaller B more steps per epoch")


def studies(scale: Scale) -> tuple[TrendStudy, ...]:
    """λ and η at the settle protocol; B under the paper's protocol (fixed epochs, enough
    for the largest B to settle: its steps are the settle steps) and under fixed steps."""
    tb = trend_base(scale)
    quick = scale.name == "quick"
    seeds = TREND_SEEDS if quick else 4
    lams = (0.02, 0.05, 0.1) if quick else (0.01, 0.02, 0.05, 0.1, 0.2)
    lrs = (0.1, 0.2, 0.4) if quick else (0.05, 0.1, 0.2, 0.4)
    bs = (4, 8, 16) if quick else (2, 4, 8, 16, 32)
    # ηλ = 0.02 for the B grid: its T stays affordable at fixed epochs (at λ = 0.1 the nets
    # underfit: accuracy 0.58 on four clusters, measured)
    bl = replace(tb, lr=0.4)
    T = settle_steps(bl.lr, bl.lam)
    return (
        TrendStudy("λ", replace(tb, lr=0.4), "lam", lams, -1, seeds, Protocol("settle")),
        TrendStudy("η", tb, "lr", lrs, -1, seeds, Protocol("settle")),
        TrendStudy("B", bl, "batch", bs, +1, seeds,
                   Protocol("fixed epochs", epochs=T * max(bs) / bl.n),
                   also=Protocol("fixed steps", steps=T), confound=CONFOUND))


def controls(scale: Scale) -> tuple[Control, ...]:
    base = Setting(widths=(10, 12, 12, 3), activation="relu", lam=0.01, n=24,
                   data="clusters", loss="ce", seed=3, lr=0.1, steps=60, batch=2,
                   polish=False)
    tb = trend_base(scale)
    return (
        Control("momentum 0.9", "heavy-ball SGD with coupled decay, B = 1, strong decay "
                "(ηλ = 0.1): the buffer keeps adding gradients from before step t−s with "
                "coefficients (1−β^k)/(1−β) that grow with age, so the tail after the s·B "
                "newest directions exceeds (1−ηλ)^s‖W_{t−s}‖. At ηλ ≤ 5e-3 and He init the "
                "same buffer effect stays inside the bound's slack (measured: no violation), "
                "hence this setting", Verdict.FAIL,
                Setting(widths=(40, 16, 12), activation="relu", lam=0.5, n=40, data="teacher",
                        seed=3, lr=0.2, steps=30, batch=1, polish=False,
                        optimizer="momentum", init_scale=0.1), check_unrolled),
        Control("Adam", "Adam with coupled decay from a small init (scale 1e-3): its "
                "per-entry scaling makes the first update full rank and ≫ ‖W_0‖, so (b) "
                "breaks at t = s = 1", Verdict.FAIL,
                replace(base, optimizer="adam", lr=0.01, init_scale=1e-3), check_unrolled),
        Control("conv as dense", "a conv weight applied at m = 2 patches, counted as m = 1: "
                "rank G ≤ B fails", Verdict.FAIL, base, check_conv_as_dense),
        Control("B = n", "full batch: one batch, no SGD noise; (e) says nothing",
                Verdict.VACUOUS, replace(base, batch=base.n), check_noise),
        Control("λ = 0", "no decay: nothing pulls the weights to a steady state — with CE on "
                "separable clusters F keeps falling (measured: relative change of F over the "
                "last fifth 0.14–0.15 at every η) while rank_tol stays near full (≈ 20 of 24, "
                "against 4 with λ = 0.05). No run settles, so (d) cannot be judged: its trend "
                "claim needs λ > 0", Verdict.INCONCLUSIVE,
                TrendStudy("λ = 0", replace(tb, lam=0.0), "lr", (0.1, 0.4), -1, 2,
                           Protocol("fixed steps", steps=settle_steps(tb.lr, tb.lam)),
                           effect=True), check_study),
    )


def pinned(scale: Scale) -> tuple[Setting | TrendStudy, ...]:
    """The paper's plain-SGD setting in miniature: a ReLU MLP, CE loss, B = 8, η = 0.5
    (λ scaled so that ηλ stays in the stable region), and digits (real data), each trained
    to its settle steps; then the (d) studies."""
    return (Setting(widths=(12, 16, 16, 4), activation="relu", lam=0.02, n=24,
                    data="clusters", loss="ce", seed=0, lr=0.5, steps=settle_steps(0.5, 0.02),
                    batch=8, polish=False),
            Setting(widths=(64, 16, 16, 10), activation="relu", lam=0.05, n=48,
                    data="digits", loss="ce", seed=0, lr=0.2, steps=settle_steps(0.2, 0.05),
                    batch=4, polish=False),
            *studies(scale))


def plots(examples: list[dict], ctrls: list[dict]) -> list[dict]:
    """Rank against each study's hyperparameter (mean over the used seeds); the B study's
    fixed-steps trend beside its fixed-epochs one."""
    out = []
    for ex in examples:
        if not (ex.get("details") or {}).get("field"):
            continue
        spec = plot_spec(ex, METRICS, "hidden-layer rank", "T5")
        if spec is None:
            continue
        ser = ex.get("series") or {}
        if ser.get("also_x"):
            also = plot_spec({**ex, "series": {"x": ser["also_x"],
                                               "rank_tol": ser.get("also_rank_tol")}},
                             ("rank_tol",), "", "")
            for line in (also or {}).get("lines", []):
                spec["lines"].append({**line, "label": f"{line['label']}, fixed steps",
                                      "style": "--o"})
        out.append(spec)
    return out


THEOREM = Theorem(
    id="T5",
    title="SGD rank bound",
    source="Galanti, Siegel, Gupte, Poggio, arXiv:2206.05794 v7",
    statement="Under plain mini-batch SGD with coupled weight decay a batch gradient has rank "
              "≤ min(d_out, d_in, B·m), so W_T is within (1−ηλ)^s‖W_{T−s}‖ of rank s·B·m for "
              "every s; ranks fall with λ and η and rise with B; batch gradients stay away "
              "from 0.",
    latex=r"\operatorname{rank} G_t \le \min(d_{out}, d_{in}, Bm),\quad "
          r"D_{sBm}(W_T) \le (1-\eta\lambda)^s \|W_{T-s}\|_F",
    assumptions=("plain SGD (no momentum, no Adam), coupled weight decay, λ > 0",
                 "a weight applied m times per example (m = 1 dense)",
                 "(c) and (d) are the paper's heuristic and trend forms; constants not encoded"),
    strategy=settings,
    check=check_any,
    controls=controls,
    pinned=pinned,
    notes=("Detection limits (smallest relative error caught, bisection; tests/claims/"
           f"test_mutants.py): (a) rank bound understated by e = {DETECTION['(a)']:.1g} (an "
           "integer bound that the rank attains: one unit less is caught); (b) bound scaled "
           f"by 1 − e from e = {DETECTION['(b)']:.1g} (it is that loose on the pinned net); "
           f"(e) the ½ off by e = {DETECTION['(e)']:.1g} (pinned digits net; on the clusters "
           "net ‖∇F‖ decides and no e ≤ 1 is caught).",
           "(d) is checked by the pinned studies: a grid × ≥ 3 seeds of plain SGD, each run "
           "for its settle steps (T = ⌈2·log(2/ε)/−log(1−ηλ)⌉), Spearman ρ with a bootstrap "
           "CI over the runs that settled and fit; the others are left out and counted.",
           "The B trend is judged under the paper's protocol (a fixed number of epochs: steps "
           "∝ n/B, enough epochs for the largest B to settle) and reported under fixed steps "
           "too: the number of steps confounds it.",
           "(c) is usually VACUOUS: m·B·log(2/ε)/(ηλ) ≥ min(d_out, d_in) for every stable "
           "(η, λ) at these widths; reported as such."),
    plots=plots,
)
