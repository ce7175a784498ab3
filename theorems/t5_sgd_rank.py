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
      larger η, smaller B (Spearman ρ with a bootstrap interval over seeds);
  (e) SGD noise: max_b ‖∇F_b‖ ≥ max(‖∇F‖, ½ max_{b,b'} ‖∇L̂_b − ∇L̂_{b'}‖), the last term
      independent of λ, so batch gradients stay away from 0 while ∇F may be small.
Negative controls: momentum 0.9 and Adam violate (b); a conv layer counted as m = 1 violates
(a); λ = 0 shows no rank trend; B = n has no SGD noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.strategies import log_uniform
from verify.claims.theorem import Control, Theorem
from verify.claims.trends import plot_spec
from verify.claims.verdict import Outcome, Verdict, combine, judge, judge_trend
from verify.engine import sgd
from verify.engine.setting import Context, Setting, trajectory
from verify.engine.train import TrainResult
from verify.measure import spectra
from verify.measure.trend import spearman
from verify.nets import conv1d
from verify.nets.activations import Params
from verify.nets.network import weights
from verify.nets.objective import flat

TOL = 1e-3  # THEOREMS.md "Spectra": rank_tol as in the Galanti code; also the ε of (c)
EPS = spectra.EPS64
# Rounding of one SGD step W − η(G + λW): a handful of float64 operations per entry, each
# within eps of the largest magnitude involved (‖W_t‖, ‖ηG_t‖ ≤ ‖W_t‖ + ‖W_{t+1}‖); the batch
# sum inside G adds B more. Per step ‖E_t‖_F ≤ (B + 4)·eps·(2‖W_t‖ + ‖W_{t+1}‖).
STEP_OPS = 4
CONV = dict(channels=4, length=8, kernel=4, stride=4)  # m = 2 patches, d_in = 16


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the defaults are the theorem. False variants (mutants,
    tests/claims/test_mutants.py): (a) the rank bound scaled by ``rank_scale`` (floored), the
    conv layer's m claimed as ``conv_m``; (b) the bound scaled by ``bound_scale``; (c) the
    ε-rank bound scaled by ``eps_scale``; (e) ``noise_half`` in place of the ½."""

    rank_scale: float = 1.0
    conv_m: int | None = None
    bound_scale: float = 1.0
    eps_scale: float = 1.0
    noise_half: float = 0.5


CLAIM = Claim()
# smallest relative error of each part's claim caught (bisection on the first pinned setting,
# tests/claims/test_mutants.py)
DETECTION = {"(a)": math.nan, "(b)": math.nan, "(e)": math.nan}


@st.composite
def settings(draw: st.DrawFn, scale: Scale) -> Setting:
    """Small MLPs trained by plain SGD in the stable region (ηλ ≤ 5e-3, η ≤ 0.2), with
    widths > B so that (a) and (b) bite."""
    depth = draw(st.integers(2, 4))
    top = max(8, scale.max_width)
    batch = draw(st.integers(1, 4))
    hidden = tuple(draw(st.integers(batch + 4, top)) for _ in range(depth - 1))
    n = draw(st.integers(2 * batch + 1, max(2 * batch + 1, scale.max_n)))
    lr = draw(st.sampled_from([0.02, 0.05, 0.1, 0.2]))
    lam = draw(log_uniform(1e-3, 5e-3 / lr))
    return Setting(widths=(draw(st.integers(batch + 4, top)), *hidden, draw(st.integers(2, 3))),
                   activation=draw(st.sampled_from(["relu", "tanh"])), lam=lam, n=n,
                   data="clusters", loss="ce", seed=draw(st.integers(0, 2**16)), lr=lr,
                   steps=draw(st.integers(50, 200)), batch=batch, polish=False)


class _Spectra:
    """Observer: ‖W_k(t)‖_F and the singular values of every layer at every step (bounded
    memory: T·Σ_k min(d_k, d_{k−1}) floats, no iterates kept)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sv: list[list[np.ndarray]] = [[] for _ in range(depth)]

    def __call__(self, t: int, params: Params) -> None:
        for k in range(self.depth):
            self.sv[k].append(spectra.singular_values(params[k]).cpu().numpy())

    def layer(self, k: int) -> np.ndarray:
        """(T + 1) × min(d_out, d_in) array of singular values of W_k(t)."""
        return np.stack(self.sv[k])


def _run(s: Setting, ctx: Context) -> tuple[TrainResult, _Spectra]:
    obs = _Spectra(len(s.widths) - 1)
    return trajectory(s, ctx, obs), obs


# ----------------------------------------------------------------------------------------
# (a) rank of a batch gradient


def _rank_part(G: torch.Tensor, a: torch.Tensor, b: torch.Tensor, bound: int, what: str
               ) -> Outcome:
    tol = spectra.outer_sum_rank_tol(a, b, G)
    r = spectra.numerical_rank(G, tol) if tol > 0 else 0
    out = judge(float(r), float(bound), float(max(bound, 1)), what, require_certificate=False,
                trivial=float(min(G.shape)))
    return replace(out, reason=f"{out.reason} (rounding level {tol:.1e})")


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


def _conv_case(s: Setting) -> tuple[conv1d.Conv1d, torch.Tensor, torch.Tensor, torch.Tensor,
                                    torch.Tensor, int]:
    c = conv1d.Conv1d(out_channels=max(s.widths[1], 8), **CONV)
    W, A = conv1d.init(c, s.seed)
    gen = torch.Generator().manual_seed(s.seed + 1)
    B = s.batch or s.n
    X = torch.randn(B, c.channels, c.length, generator=gen, dtype=torch.float64)
    Y = torch.randn(B, c.d_out, generator=gen, dtype=torch.float64)
    return c, W, A, X, Y, B


def _conv_part(s: Setting, m_claimed: int | None = None, rank_scale: float = 1.0) -> Outcome:
    c, W, A, X, Y, B = _conv_case(s)
    G, delta, P = conv1d.weight_gradient(c, W, A, X, Y)
    m = c.patches if m_claimed is None else m_claimed
    return _rank_part(G, delta, P, math.floor(rank_scale * min(*G.shape, B * m)),
                      f"rank of a conv batch gradient, B={B}, m={m}")


# ----------------------------------------------------------------------------------------
# (b) unrolled tail bound and (c) ε-rank


def _unrolled(sv: np.ndarray, decay: float, k_per_step: int, batch: int,
              bound_scale: float = 1.0) -> tuple[Outcome, dict[str, list[float]]]:
    """D_{s·k}(W_t) ≤ decay^s ‖W_{t−s}‖ + (accumulated rounding), for every t and s ≤ t with
    s·k < min(d_out, d_in) (beyond, D = 0 trivially), from the singular values ``sv`` of the
    iterates W_0..W_T (rows). The series keeps the final t = T."""
    T, r = sv.shape[0] - 1, sv.shape[1]
    norms = np.sqrt((sv**2).sum(axis=1))
    # tails[t, k] = D_k(W_t) = sqrt(Σ_{i>k} σ_i²)
    tails = np.sqrt(np.cumsum((sv**2)[:, ::-1], axis=1)[:, ::-1])
    # per-step rounding E_t ≤ (B + STEP_OPS)·eps·(2‖W_t‖ + ‖W_{t+1}‖); cumulative sums
    step = (batch + STEP_OPS) * EPS * (2 * norms[:-1] + norms[1:])
    cum = np.concatenate([[0.0], np.cumsum(step)])
    worst: tuple[float, int, int, float, float] | None = None  # (margin, t, s, D, bound)
    useful = checked = 0
    for s in range(1, min(T, (r - 1) // k_per_step) + 1):
        t = np.arange(s, T + 1)
        D = tails[t, s * k_per_step]
        bound = bound_scale * decay**s * norms[t - s]
        slack = cum[t] - cum[t - s] + max(r, 1) * EPS * norms[t]  # + SVD backward error
        scale = np.maximum(norms[t], 1e-300)
        margin = (bound + slack - D) / scale
        checked += len(t)
        useful += int((bound < norms[t]).sum())
        i = int(np.argmin(margin))
        if worst is None or margin[i] < worst[0]:
            worst = (float(margin[i]), int(t[i]), s, float(D[i]), float(bound[i] + slack[i]))
    ks = [s * k_per_step for s in range(1, T + 1) if s * k_per_step < r]
    series = {"s": [float(s) for s in range(1, len(ks) + 1)],
              "D": [float(tails[T, k]) for k in ks],
              "bound": [float(decay**s * norms[T - s]) for s in range(1, len(ks) + 1)]}
    if worst is None:
        return Outcome(Verdict.VACUOUS, 0.0, 0.0, math.nan,
                       "(b) B·m ≥ min(d_out, d_in): D_{Bm} = 0 trivially"), series
    _, t, s, D, bound = worst
    out = judge(D, bound, max(float(norms[t]), 1e-300),
                f"(b) D_{s * k_per_step}(W_t) at t={t}, s={s} (worst of {checked} pairs)",
                require_certificate=False)
    if useful == 0 and out.verdict == Verdict.PASS:
        out = replace(out, verdict=Verdict.VACUOUS,
                      reason=f"{out.reason}; bound ≥ ‖W_t‖ at every pair (vacuous)")
    return replace(out, reason=f"{out.reason}; non-trivial at {useful}/{checked}"), series


def _eps_rank(sv: np.ndarray, s: Setting, m: int = 1, eps_scale: float = 1.0) -> Outcome:
    B = s.batch or s.n
    norms = np.sqrt((sv**2).sum(axis=1))
    ell = math.log(2 / TOL)
    d = sv.shape[1]
    measured = float((sv[-1] / max(norms[-1], 1e-300) > TOL).sum())
    if s.lam == 0:
        return Outcome(Verdict.VACUOUS, measured, math.inf, math.nan, "(c) λ = 0: bound = ∞")
    bound = eps_scale * m * B * ell / (s.lr * s.lam)
    if bound >= d:
        return Outcome(Verdict.VACUOUS, measured, bound, (bound - measured) / d,
                       f"(c) rank_ε = {measured:g} ≤ min(d) = {d} ≤ m·B·log(2/ε)/(ηλ) = "
                       f"{bound:.3g}: vacuous")
    steps = math.ceil(ell / -math.log1p(-s.lr * s.lam))
    T = len(norms) - 1
    if steps > T:
        return Outcome(Verdict.INCONCLUSIVE, measured, bound, math.nan,
                       f"(c) needs s = {steps} unrolled steps, trajectory has T = {T}")
    if norms[T - steps] > 2 * norms[T]:
        return Outcome(Verdict.INCONCLUSIVE, measured, bound, math.nan,
                       f"(c) ‖W_(T−s)‖ = {norms[T - steps]:.3g} > 2‖W_T‖: the heuristic's "
                       "norm assumption is not met")
    return judge(measured, float(steps * B * m), float(d), "(c) rank_ε(W_T)",
                 require_certificate=False)


# ----------------------------------------------------------------------------------------
# (e) SGD noise


def _noise(s: Setting, params: Params, half: float = 0.5) -> tuple[Outcome, dict[str, float]]:
    obj = s.objective()
    full = float(torch.linalg.norm(flat(obj.grad(params))))
    grads = [flat(sgd.on_batch(obj, idx).grad(params))
             for idx in sgd.epoch(s.n, s.batch or s.n, s.seed)]
    norms = [float(torch.linalg.norm(g)) for g in grads]
    spread = half * max((float(torch.linalg.norm(a - b)) for a in grads for b in grads),
                       default=0.0)
    top = max(norms)
    info = {"full_grad": full, "max_batch_grad": top, "half_max_batch_spread": spread,
            "batches": len(grads), "ratio_max_batch_to_full": top / full if full else math.inf}
    if len(grads) == 1:
        return Outcome(Verdict.VACUOUS, top, full, math.nan,
                       "(e) B = n: one batch, no SGD noise"), info
    lower = max(full, spread)
    # the identities are exact; compare at the rounding level of the gradient norms
    out = judge(lower, top, max(top, 1e-300), "(e) max(‖∇F‖, ½max‖∇F_b − ∇F_b'‖) ≤ "
                "max_b‖∇F_b‖", require_certificate=False)
    return replace(out, reason=f"{out.reason}; max_b‖∇F_b‖/‖∇F‖ = "
                   f"{info['ratio_max_batch_to_full']:.3g}"), info


# ----------------------------------------------------------------------------------------
# the check


def check(s: Setting, ctx: Context, parts_wanted: tuple[str, ...] = ("a", "b", "c", "e"),
          claim: Claim = CLAIM) -> Outcome:
    res, obs = _run(s, ctx)
    if not res.finite:
        return Outcome(Verdict.INCONCLUSIVE, math.nan, math.nan, math.nan,
                       f"SGD diverged: {res.stop_reason}")
    arch = s.architecture()
    W = weights(arch, res.params)
    parts: dict[str, Outcome] = {}
    series: dict[str, object] = {}
    if "a" in parts_wanted:
        parts.update(_dense_rank_parts(s, res.initial, "at init", claim))
        parts.update(_dense_rank_parts(s, res.params, "at W_T", claim))
        parts["(a) conv layer"] = _conv_part(s, claim.conv_m, claim.rank_scale)
    if "b" in parts_wanted:
        for k in range(len(W)):
            out, ser = _unrolled(obs.layer(k), 1 - s.lr * s.lam, s.batch or s.n,
                                 s.batch or s.n, claim.bound_scale)
            parts[f"(b) layer {k + 1}"] = out
            series[f"unrolled_layer{k + 1}"] = ser
    if "c" in parts_wanted:
        for k in range(len(W)):
            parts[f"(c) layer {k + 1}"] = _eps_rank(obs.layer(k), s, eps_scale=claim.eps_scale)
    details: dict[str, object] = {
        "numerical_ranks": [spectra.numerical_rank(w, TOL) for w in W],
        "stable_ranks": [spectra.stable_rank(w) for w in W],
        "eps_rank_bound": (s.batch or s.n) * math.log(2 / TOL) / (s.lr * s.lam)
        if s.lam > 0 else math.inf,
        "sgd_steps": res.gd_steps, "seconds": res.seconds}
    if "e" in parts_wanted:
        parts["(e) SGD noise"], info = _noise(s, res.params, claim.noise_half)
        details["noise"] = info
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


def hidden_ranks(s: Setting, ctx: Context) -> tuple[float, float]:
    """Mean rank_tol (1e-3) and mean stable rank of the hidden layers W_1..W_{L−1} after
    SGD (NaN when SGD diverged)."""
    res = trajectory(s, ctx)
    if not res.finite:
        return math.nan, math.nan
    W = weights(s.architecture(), res.params)[:-1]
    return (sum(spectra.numerical_rank(w, TOL) for w in W) / len(W),
            sum(spectra.stable_rank(w) for w in W) / len(W))


def trend(s: Setting, ctx: Context, field: str, values: tuple[float, ...], sign: int,
          seeds: int, metrics: tuple[str, ...] = ("rank_tol", "stable_rank"),
          effect: bool = False) -> Outcome:
    """Spearman ρ between ``field`` and the hidden-layer ranks over ``values`` × ``seeds``;
    the claim is that ρ has the sign ``sign``. With ``effect`` the claim also needs the
    mean rank_tol to move by at least one rank unit across the grid: rank is an integer, so
    a smaller move, however consistent in sign, is not a change of rank."""
    xs: list[float] = []
    ys: dict[str, list[float]] = {"rank_tol": [], "stable_rank": []}
    for v in values:
        for j in range(seeds):
            r, sr = hidden_ranks(replace(s, **{field: v}, seed=s.seed + j), ctx)
            if math.isfinite(r):
                xs.append(float(v))
                ys["rank_tol"].append(r)
                ys["stable_rank"].append(sr)
    parts = {m: judge_trend(spearman(xs, ys[m], seed=s.seed), sign,
                            f"(d) {m} vs {field}") for m in metrics}
    if effect and xs:
        ends = [float(np.mean([y for x, y in zip(xs, ys["rank_tol"], strict=True) if x == v]
                              or [math.nan])) for v in (values[0], values[-1])]
        move = (ends[0] - ends[1]) * (-sign)  # > 0 when the rank moves the claimed way
        parts["effect"] = judge(1.0, move, 1.0, f"(d) one rank unit ≤ mean rank_tol change "
                                f"across {field} ({ends[0]:.3g} → {ends[1]:.3g})",
                                require_certificate=False)
    series = {"x": xs, **ys}
    return combine(parts, {"field": field, "values": list(values), "seeds": seeds,
                           "diverged": len(values) * seeds - len(xs)}, series)


TREND_SEEDS = 3


def _trend_check(field: str, values: tuple[float, ...], sign: int,
                 metrics: tuple[str, ...] = ("rank_tol", "stable_rank"), effect: bool = False
                 ) -> Callable[[Setting, Context], Outcome]:
    def run(s: Setting, ctx: Context) -> Outcome:
        return trend(s, ctx, field, values, sign, TREND_SEEDS, metrics, effect)

    run.__name__ = f"trend_{field}"
    return run


def trend_base(scale: Scale) -> Setting:
    """The trend grid's centre: a small ReLU MLP on clustered data, CE loss, plain SGD."""
    w = 24 if scale.name == "quick" else 48
    return Setting(widths=(12, w, w, w, 4), activation="relu", lam=0.03, n=64,
                   data="clusters", loss="ce", seed=11, lr=0.2, steps=800, batch=8,
                   polish=False)


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
        Control("(d) trend in λ", "positive control: ranks fall as λ grows (Spearman CI "
                "below 0)", Verdict.PASS, tb,
                _trend_check("lam", (0.01, 0.03, 0.1), -1)),
        Control("(d) trend in η", "positive control: ranks fall as η grows", Verdict.PASS,
                tb, _trend_check("lr", (0.05, 0.1, 0.3), -1)),
        Control("(d) trend in B", "the paper's B trend at a fixed step count: measured at "
                "quick scale (800 steps, B ∈ {2, 8, 32}, 3 seeds) the effect is within seed "
                "noise (ρ CI contains 0) — NOT reproduced here; expected INCONCLUSIVE",
                Verdict.INCONCLUSIVE, tb,
                _trend_check("batch", (2, 8, 32), +1)),
        Control("λ = 0", "no decay: rank_tol stays (almost) full at every η (measured: mean "
                "hidden rank_tol 20.0 at η ≤ 0.1 and 19.7 in two of three seeds at η = 0.3, "
                "against 4–6 with λ = 0.03). The sign of the η trend can still come out "
                "negative (that tiny drop is consistent across seeds), so the check is the "
                "trend claim with its effect: the mean rank must fall by one rank unit — it "
                "does not", Verdict.FAIL,
                replace(tb, lam=0.0), _trend_check("lr", (0.05, 0.1, 0.3), -1, ("rank_tol",),
                                                   effect=True)),
    )


def pinned(scale: Scale) -> tuple[Setting, ...]:
    """The paper's plain-SGD setting in miniature: a ReLU MLP, CE loss, B = 8, η = 0.5
    (λ scaled so that ηλ stays in the stable region), and digits (real data)."""
    return (Setting(widths=(12, 16, 16, 4), activation="relu", lam=6e-3, n=24,
                    data="clusters", loss="ce", seed=0, lr=0.5, steps=150, batch=8,
                    polish=False),
            Setting(widths=(64, 16, 16, 10), activation="relu", lam=5e-3, n=48,
                    data="digits", loss="ce", seed=0, lr=0.1, steps=150, batch=4,
                    polish=False))


def plots(examples: list[dict], ctrls: list[dict]) -> list[dict]:
    """Rank against each trend's hyperparameter (mean over seeds), from the trend controls."""
    specs = (plot_spec(c, ("rank_tol", "stable_rank"), "hidden-layer rank", "T5")
             for c in ctrls)
    return [s for s in specs if s is not None]


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
    check=check,
    controls=controls,
    pinned=pinned,
    notes=("(d) is checked by the positive controls '(d) trend in …' (a grid × 4 seeds with "
           "a Spearman bootstrap CI), not per drawn example.",
           "(c) is usually VACUOUS: m·B·log(2/ε)/(ηλ) ≥ min(d_out, d_in) for every stable "
           "(η, λ) at these widths; reported as such."),
    plots=plots,
)
