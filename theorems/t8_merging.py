"""T8 Merging by summing weights (THEOREMS.md, T8) [exact + claim].

Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2 (v1 also claimed deep ReLU nets). Nets A and
B are trained by GD with weight decay λ from independent inits on inputs with overlap
ε = max |⟨x^A, x^B⟩|/(‖x^A‖‖x^B‖); the merged net is θ_A + θ_B, every layer summed.

[exact, first layer] W_1^B = R_1^B − g_1^B/λ with g_1^B = (1/n_B) Σ_j δ_{1,j}^B x_j^{Bᵀ}, so at
ANY θ_B and for every input x of task A
    ‖W_1^B x‖ ≤ (1/(λ n_B)) Σ_j ‖δ_{1,j}^B‖ |⟨x_j^B, x⟩| + ‖R_1^B x‖      (= ‖R_1^B x‖ at ε = 0).
[claim] the merged net performs on each training set as well as the individual net (shallow
ReLU by GD; deep linear by gradient flow, here small-step GD). Tolerance, stated: the
first-layer argument moves f_A(x) by at most e(x) = Π_{k≥2}‖W_k^A‖_2 · bound(x), which
keeps every sample whose margin f_y − max_{c≠y} f_c exceeds 2e(x) correct; the claim is
  accuracy of θ_A + θ_B on task A ≥ the fraction of such samples (and likewise for B).
The cross terms above the first layer (e.g. a^{Bᵀ} relu(W^A x)) are not controlled by that
argument: they are measured (‖f_sum − f_A with merged first layer‖/‖f_A‖) and reported.

Every network of a merge must be certified stationary for the claim to be judged (else
INCONCLUSIVE; the leakage bound holds at any θ, so its FAIL stands). The paper's regime is
wide networks (v2 leans on NTK-type arguments), so the claim is judged along a width series
(:class:`WidthSeries`): a trend verdict that the merged/individual loss gap closes as the
hidden width grows (Spearman over the certified merges), beside the verdict at every width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from verify.claims.scales import Scale
from verify.claims.strategies import log_uniform
from verify.claims.theorem import Control, Known, Theorem
from verify.claims.verdict import (
    Outcome,
    Verdict,
    combine,
    judge,
    judge_boundary,
    judge_trend_on,
    noted,
    require_certified,
)
from verify.engine.setting import Context
from verify.measure.grid import widths_with
from verify.measure.merge import MergeReport, MergeSetting, evaluate
from verify.measure.trend import rank_trend

METHODS = ("individual", "sum", "mean", "task arithmetic", "TIES", "concatenation",
           "ensemble", "multitask")


@dataclass(frozen=True)
class OverlapSearch:
    """Hypothesis searches the turning angle of B (hence ε) at which ``base``'s merge breaks."""

    base: MergeSetting
    max_examples: int = 12
    step: int = 1  # angle resolution in degrees (each angle tried trains two nets)

    def to_json(self) -> dict[str, Any]:
        return {"search": True, **self.base.to_json(), "max_examples": self.max_examples,
                "step": self.step}


@st.composite
def strategy(draw: st.DrawFn, scale: Scale) -> MergeSetting:
    """Shallow ReLU or deep linear nets on orthogonal synthetic block pairs (ε = 0)."""
    linear = draw(st.booleans())
    h = draw(st.integers(8, max(8, 2 * scale.max_width)))
    d0 = 2 * draw(st.integers(3, 6))
    K = draw(st.integers(2, 3))
    return MergeSetting("blocks", 0.0, (d0, h, h, K) if linear else (d0, h, K),
                        "identity" if linear else "relu",
                        lam=draw(log_uniform(0.03, 0.1)), n=draw(st.integers(4 * K, 30)),
                        seed=draw(st.integers(0, 2**16)), lr=0.05 if linear else 0.3,
                        steps=600 if linear else 1000, polish=linear)


@dataclass(frozen=True)
class Claim:
    """The pieces of the claim; the defaults are the theorem. False variants (mutants,
    tests/claims/test_mutants.py): the leakage bound scaled by ``leak_scale``; the bound
    paired with the task's own first layer (``own_layer``); the claim judged on the loss
    instead of the accuracy (``metric``), with no allowance; the width series' trend with
    its claimed sign multiplied by ``trend_sign`` (+1 there: the gap grows with width)."""

    leak_scale: float = 1.0
    own_layer: bool = False
    metric: str = "accuracy"
    trend_sign: int = 1


CLAIM = Claim()
# smallest relative error of each part's claim caught (bisection on pinned #2, the deep ReLU
# digits pair, tests/claims/test_mutants.py)
DETECTION = {"leakage": 1.6e-10}


def _parts(rep: MergeReport, claim: Claim = CLAIM) -> dict[str, Outcome]:
    parts = {}
    for me, other in (("A", "B"), ("B", "A")):
        t = rep.tasks[me]
        if math.isfinite(t.leak_bound):
            parts[f"leakage {other}→{me}"] = judge(
                t.leak_own if claim.own_layer else t.leak_measured,
                claim.leak_scale * t.leak_bound, t.leak_rounding,
                f"‖W₁^{other} X_{me}‖ ≤ Σ_x bound", require_certificate=False,
                trivial=t.leak_own)  # a bound as large as ‖W₁^{me} X_{me}‖ says nothing
        acc, ind = t.accuracy["sum"], t.accuracy["individual"]
        if claim.metric == "loss":
            parts[f"claim on {me}"] = judge(
                t.loss["sum"], t.loss["individual"], max(t.loss["individual"], 1e-300),
                f"loss of the sum on {me} ≤ the individual's", require_certificate=False)
            continue
        # the drop the argument allows; allowing a fall to chance level says nothing
        parts[f"claim on {me}"] = judge(
            ind - acc, ind - t.tolerance_accuracy, 1.0,
            f"accuracy drop of the sum on {me} (individual {ind:.3g} → sum {acc:.3g}; the "
            f"first-layer argument keeps {t.tolerance_accuracy:.3g}; cross term "
            f"{t.cross:.3g}·‖f_{me}‖)", require_certificate=False, trivial=ind - t.chance)
    return parts


def _uncertified(rep: MergeReport) -> list[str]:
    """The merged networks (A, B) that are not certified stationary."""
    return [f"net {k}" for k in ("A", "B") if not rep.certified.get(k, False)]


def merge_parts(rep: MergeReport, claim: Claim = CLAIM) -> dict[str, Outcome]:
    """The parts of one merge, each judged only on certified networks (module doc)."""
    bad = _uncertified(rep)
    return {k: require_certified(o, uncertified=bad, any_point=k.startswith("leakage"))
            for k, o in _parts(rep, claim).items()}


def check_merge(ms: MergeSetting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    rep = evaluate(ms, ctx)
    return combine(merge_parts(rep, claim), rep.to_json())


def check_merge_as_trained(ms: MergeSetting, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """The claim on the networks as GD left them, certified or not: for λ = 0, where no
    stationarity certificate exists (R = W + g/λ is undefined)."""
    rep = evaluate(ms, ctx)
    return combine(_parts(rep, claim), rep.to_json())


# ----------------------------------------------------------------------------------------
# the width series


@dataclass(frozen=True)
class WidthSeries:
    """``base`` merged at every hidden width in ``widths`` with ``seeds`` seeds each (the
    task pair and inits follow the seed)."""

    base: MergeSetting
    widths: tuple[int, ...]
    seeds: int

    def merges(self) -> list[MergeSetting]:
        return [replace(self.base, widths=widths_with(self.base.widths, w),
                        seed=self.base.seed + j) for w in self.widths for j in range(self.seeds)]

    def to_json(self) -> dict[str, Any]:
        return {"width_series": True, **self.base.to_json(), "hidden_widths": list(self.widths),
                "seeds": self.seeds}


def _gaps(rep: MergeReport) -> dict[str, float]:
    """The worst task's gaps of the sum: accuracy drop, relative loss rise, cross term."""
    t = rep.tasks
    return {"accuracy_gap": max(t[k].accuracy["individual"] - t[k].accuracy["sum"] for k in t),
            "loss_gap": max((t[k].loss["sum"] - t[k].loss["individual"])
                            / max(t[k].loss["individual"], 1e-300) for k in t),
            "cross": max(t[k].cross for k in t)}


def _gap_note(rows: list[dict[str, Any]]) -> str:
    """Per width: mean loss gap, accuracy gap and cross term over the seeds (certified/all)."""
    out = []
    for w in sorted({r["width"] for r in rows}):
        mine = [r for r in rows if r["width"] == w]

        def mean(k: str, mine: list[dict[str, Any]] = mine) -> float:
            return sum(r[k] for r in mine) / len(mine)

        out.append(f"{w}: {mean('loss_gap'):.3g} / {mean('accuracy_gap'):.3g} / "
                   f"{mean('cross'):.3g} ({sum(r['certified'] for r in mine)}/{len(mine)} "
                   "certified)")
    return "loss gap / accuracy gap / cross term per width: " + ", ".join(out)


def check_width_series(ws: WidthSeries, ctx: Context, claim: Claim = CLAIM) -> Outcome:
    """The claim at every width (worst merge of that width) and the trend of the loss gap
    over the certified merges; the widest width's verdict and the trend decide."""
    rows: list[dict[str, Any]] = []
    per_width: dict[int, dict[str, Outcome]] = {}
    for ms in ws.merges():
        rep = evaluate(ms, ctx, multitask=False)
        merged = combine(merge_parts(rep, claim))
        w = ms.widths[1]
        rows.append({"width": w, "seed": ms.seed, "certified": not _uncertified(rep),
                     "verdict": str(merged.verdict), "reason": merged.reason, **_gaps(rep),
                     "accuracy_individual": min(t.accuracy["individual"]
                                                for t in rep.tasks.values()),
                     "accuracy_sum": min(t.accuracy["sum"] for t in rep.tasks.values())})
        per_width.setdefault(w, {})[f"seed {ms.seed}"] = merged
    widths = {w: combine(parts) for w, parts in per_width.items()}
    used = [r for r in rows if r["certified"]]
    tr = rank_trend([r["width"] for r in used], [r["loss_gap"] for r in used],
                    design=[r["width"] for r in used], seed=ws.base.seed)
    trend = judge_trend_on(trend=tr, sign=-claim.trend_sign, what="the sum's loss gap vs width",
                           used=len(used), levels=len({r["width"] for r in used}),
                           excluded={"not certified": len(rows) - len(used)}
                           if len(used) < len(rows) else {}, unit="certified merges")
    trend = noted(trend, _gap_note(rows))
    if len(used) < len(rows):  # the curve of all merges, certified or not: reported
        tr_all = rank_trend([r["width"] for r in rows], [r["loss_gap"] for r in rows],
                            design=[r["width"] for r in rows], seed=ws.base.seed)
        trend = noted(trend, f"over all {len(rows)} merges, certified or not (reported, not "
                      f"judged): ρ = {tr_all.rho:.3g}, CI [{tr_all.lo:.3g}, {tr_all.hi:.3g}]")
    widest = max(widths)
    parts = {"gap closes with width": trend, f"claim at width {widest}": widths[widest]}
    details = {"per_width": {str(w): {"verdict": str(o.verdict), "reason": o.reason}
                             for w, o in sorted(widths.items())},
               "merges": rows, "certified": len(used), "trained_merges": len(rows)}
    series = {k: [r[k] for r in rows] for k in ("width", "seed", "certified", "accuracy_gap",
                                                "loss_gap", "cross")}
    return combine(parts, details, series)


def check_search(search: OverlapSearch, ctx: Context) -> Outcome:
    """The smallest angle (shrunk by Hypothesis) at which the sum performs worse than the
    individual net on some task: the claim's own words, "as well as", with no tolerance
    (the first-layer tolerance widens with ε until it allows chance accuracy, so it cannot
    locate a boundary)."""
    seen: dict[int, dict[str, Any]] = {}

    def breaks(angle: int) -> bool:
        rep = evaluate(replace(search.base, angle=float(angle)), ctx, multitask=False)
        drop = max(rep.tasks[t].accuracy["individual"] - rep.tasks[t].accuracy["sum"]
                   for t in "AB")
        seen[angle] = {"angle": angle, "overlap": rep.overlap, "broke": drop > 0,
                       "leak_ratio": max(rep.tasks[t].leak_ratio for t in "AB"),
                       "accuracy_ratio": min(rep.tasks[t].accuracy["sum"]
                                             / max(rep.tasks[t].accuracy["individual"], 1e-300)
                                             for t in "AB"),
                       "cross": max(rep.tasks[t].cross for t in "AB"),
                       "uncertified": [f"{n} at {angle}°" for n in _uncertified(rep)]}
        return drop > 0

    try:
        angle = find(st.integers(0, 90 // search.step).map(lambda i: i * search.step), breaks,
                     settings=settings(
            max_examples=search.max_examples, database=None, deadline=None,
            derandomize=True,  # the same angles every run: results never vary run to run
            phases=[Phase.generate, Phase.shrink], verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        angle = None
    curve = sorted(seen.values(), key=lambda r: r["angle"])
    held = [r["angle"] for r in curve if not r["broke"] and (angle is None or r["angle"] < angle)]
    details = {"boundary_angle": angle, "evaluated": curve,
               "boundary_overlap": seen[angle]["overlap"] if angle is not None else None,
               "largest_angle_held_below": max(held, default=None)}
    series = {"overlap_curve": curve}
    # the claim is made at ε = 0 (orthogonal inputs, angle 0°, where ε is exactly 0)
    out = judge_boundary(first_break=None if angle is None else seen[angle]["overlap"],
                         claimed=0.0, limit=1.0, name="ε", where=f"at {angle}°",
                         what="the sum is as accurate as the individual nets",
                         tried=len(seen), details=details, series=series)
    bad = sorted({n for r in seen.values() for n in r["uncertified"]})
    return require_certified(out, uncertified=bad)


def check(s: MergeSetting | OverlapSearch | WidthSeries, ctx: Context,
          claim: Claim = CLAIM) -> Outcome:
    if isinstance(s, OverlapSearch):
        return check_search(s, ctx)
    if isinstance(s, WidthSeries):
        return check_width_series(s, ctx, claim)
    return check_merge(s, ctx, claim)


def _digits(scale: Scale, **kw: Any) -> MergeSetting:
    return MergeSetting("digits", 0.0, (64, 16, 4), "relu", lam=0.1, n=30, lr=0.3,
                        steps=1000, **kw)


def series(scale: Scale) -> tuple[WidthSeries, ...]:
    """The width series. Deep linear (v2's gradient-flow claim: small steps, polished) on
    the synthetic block pair: its certificate's exact Hessian test stays affordable up to
    width 32 (beyond, the Lanczos test takes 160–190 s per net here — a deep linear net's
    O(h) symmetry leaves a cluster of zero eigenvalues — measured on the digits pair).
    Shallow ReLU (v2's GD claim) on the digits pair: certifying a ReLU net (kinks,
    THEOREMS.md "Kinks") costs 15–75 s here, so at the quick scale that series runs GD only —
    its curve is measured, its verdict INCONCLUSIVE (not certified)."""
    quick = scale.name == "quick"
    seeds = 2 if quick else 4
    linear = MergeSetting("blocks", 0.0, (8, 16, 16, 3), "identity", lam=0.03, n=24, lr=0.05,
                          steps=600, polish=True)
    relu = replace(_digits(scale), polish=not quick)
    return (WidthSeries(linear, (16, 24, 32), seeds),
            WidthSeries(relu, (16, 32, 64) if quick else (16, 32, 64, 128, 256), seeds))


def pinned(scale: Scale) -> tuple[MergeSetting | OverlapSearch | WidthSeries, ...]:
    """The width series, deep ReLU on the digits pair (claimed in v1 only), and the overlap
    search on synthetic blocks."""
    quick = scale.name == "quick"
    search_net = MergeSetting("blocks", 0.0, (8, 16, 3), "relu", lam=0.1, n=24, lr=0.3,
                              polish=not quick)
    return (*series(scale), replace(_digits(scale), widths=(64, 16, 16, 4), lr=0.1),
            OverlapSearch(search_net, 4, 3) if quick else OverlapSearch(search_net, 20))


def controls(scale: Scale) -> tuple[Control, ...]:
    return (
        Control("λ = 0", "no weight decay: W₁^B keeps its init part on task A's inputs, "
                "leakage O(1), the sum degrades (judged on the GD output: without decay "
                "there is no stationarity certificate)", Verdict.FAIL,
                replace(_digits(scale), lam=0.0), check_merge_as_trained),
        Control("ε large", "B's pixels turned fully onto A's (90°): the leakage bound is of "
                "the order of the signal and the claim's tolerance allows chance accuracy",
                Verdict.VACUOUS, replace(_digits(scale), angle=90.0)),
    )


def width_curves(examples: list[dict]) -> list[dict]:
    """The width series' curves: the sum's loss gap, accuracy gap and cross term against
    the hidden width (mean over seeds; certified merges solid, uncertified dashed). Marked
    ``lead``: T8's section opens with them."""
    out = []
    for ex in examples:
        ser = ex.get("series") or {}
        if not (ex.get("setting") or {}).get("width_series") or not ser.get("width"):
            continue
        lines = []
        for cert, style in ((True, "-o"), (False, "--x")):
            for metric in ("loss_gap", "accuracy_gap", "cross"):
                pts = [(w, y) for w, y, c in zip(ser["width"], ser.get(metric) or [],
                                                 ser.get("certified") or [], strict=False)
                       if bool(c) == cert]
                xs = sorted({w for w, _ in pts})
                if not xs:
                    continue
                ys = [sum(y for w, y in pts if w == x) / sum(1 for w, _ in pts if w == x)
                      for x in xs]
                lines.append({"label": f"{metric}{'' if cert else ' (not certified)'}",
                              "x": xs, "y": ys, "style": style})
        st_ = ex["setting"]
        out.append({"kind": "lines", "lead": True, "xscale": "log",
                    "title": f"T8 width series: {st_.get('source')} {st_.get('activation')} "
                             f"depth {len(st_.get('widths', [])) - 1}",
                    "caption": "the summed net against the individual ones, worst task, mean "
                               f"over seeds — {ex.get('reason')}",
                    "xlabel": "hidden width", "ylabel": "gap of the sum", "lines": lines})
    return out


def plots(examples: list[dict], ctrls: list[dict]) -> list[dict]:
    out = width_curves(examples)
    for ex in examples + ctrls:
        det = ex.get("details") or {}
        tasks = det.get("tasks")
        st_ = ex.get("setting") or {}
        name = (f"{st_.get('source')} {st_.get('activation')} depth "
                f"{len(st_.get('widths', [])) - 1} λ={st_.get('lam')} {st_.get('angle')}°")
        if tasks:
            cats = [m for m in METHODS if m in tasks["A"]["accuracy"]]
            for metric in ("accuracy", "loss"):
                out.append({"kind": "bars", "record": ex.get("id"),
                            "title": f"T8 merge {metric}: {name}",
                            "caption": f"training {metric} per method on each task",
                            "xlabel": "method", "ylabel": metric, "categories": cats,
                            "groups": [{"label": f"task {t}",
                                        "values": [tasks[t][metric][m] for m in cats]}
                                       for t in "AB"]})
        curve = det.get("evaluated")
        if curve:
            xs = [r["overlap"] for r in curve]
            out.append({"kind": "lines", "record": ex.get("id"),
                        "title": f"T8 overlap search: {name}",
                        "caption": "points Hypothesis evaluated; boundary angle "
                                   f"{det.get('boundary_angle')}°",
                        "xlabel": "overlap ε", "ylabel": "value", "lines": [
                            {"label": "leakage ‖W₁^B X_A‖/‖W₁^A X_A‖", "x": xs,
                             "y": [r["leak_ratio"] for r in curve]},
                            {"label": "accuracy sum/individual (worst task)", "x": xs,
                             "y": [r["accuracy_ratio"] for r in curve]},
                            {"label": "cross term /‖f‖", "x": xs,
                             "y": [r["cross"] for r in curve]}]})
    return out


WIDE = 64  # hidden width from which the sum matched the individual nets (notes)


def _only_the_claim_failed(rec: dict) -> bool:
    """Every failed part is a "claim on" part: the exact leakage bound held."""
    parts = (rec.get("details") or {}).get("parts") or {}
    failed = [k for k, p in parts.items() if isinstance(p, dict) and p.get("verdict") == "FAIL"]
    return bool(failed) and all(k.startswith("claim on ") for k in failed)


def _narrow_shallow_relu(rec: dict) -> bool:
    s, w = rec.get("setting") or {}, (rec.get("setting") or {}).get("widths") or []
    return (s.get("activation") == "relu" and len(w) == 3 and w[1] < WIDE
            and s.get("angle") == 0 and _only_the_claim_failed(rec))


KNOWN = (
    Known("width qualifier", f"a wide-network claim: below hidden width {WIDE} the cross term "
          "above the first layer is about half of ‖f‖ and the sum loses accuracy (digits, "
          f"ε = 0; equal accuracy from h = {WIDE} on, see the notes)", _narrow_shallow_relu),
)

THEOREM = Theorem(
    id="T8",
    title="Merging by summing weights",
    source="Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2 (v1 also claimed deep ReLU)",
    statement="Nets trained with weight decay on inputs of overlap ε: ‖W₁^B x‖ ≤ (1/(λn_B)) "
              "Σ_j ‖δ_{1,j}^B‖|⟨x_j^B, x⟩| + ‖R₁^B x‖ for x of task A, and the summed net "
              "θ_A + θ_B performs on each task as well as the individual net.",
    latex=r"\|W_1^B x\| \leq \frac{1}{\lambda n_B}\sum_j \|\delta^B_{1,j}\|\,"
          r"|\langle x^B_j, x\rangle| + \|R_1^B x\|",
    assumptions=("λ > 0, coupled decay, GD (shallow ReLU) or small-step GD (deep linear)",
                 "independent inits; inputs of the two tasks nearly orthogonal (ε small)",
                 "the leakage bound holds at any θ; the claim is judged on training accuracy "
                 "with the tolerance the first-layer argument gives"),
    strategy=strategy,
    check=check,
    controls=controls,
    pinned=pinned,
    notes=("Detection limit (bisection on the deep ReLU digits pair, pinned #2, "
           "tests/claims/test_mutants.py): the leakage bound scaled by 1 − e is caught from "
           f"e = {DETECTION['leakage']:.1g}: on that pair (not certified at the quick scale) "
           "the bound is met with equality up to rounding (‖W₁^B X_A‖ and the bound both "
           "≈ 4e-4).",
           "Tolerance of the claim: samples whose margin under f_A exceeds 2·Π_{k≥2}‖W_k^A‖₂ "
           "times the leakage bound must stay correct; cross terms above the first layer "
           "are outside the argument and are reported, not excused.",
           "The claim is judged along width series (the paper's regime is wide networks): "
           "a trend verdict that the sum's loss gap (L_sum − L_individual)/L_individual, worst "
           "task, closes as the hidden width grows (Spearman over the certified merges) beside "
           "the verdict at the widest width; every width's verdict is in the details and the "
           "curve opens this section. Deep linear on the block pair (widths 16–32: beyond, the "
           "certificate's Lanczos test of a deep linear net takes minutes), shallow ReLU on "
           "the digits pair (16–64 quick, GD only; 16–256 polished from the standard scale).",
           "Every network of a merge must be certified stationary, else the claim is "
           "INCONCLUSIVE (the leakage bound holds at any θ: its FAIL stands). ReLU nets that "
           "are trained by fixed-step GD only (drawn examples, the quick scale's ReLU series, "
           "deep ReLU, the quick overlap search) are therefore INCONCLUSIVE, with their "
           "measurements reported. The λ = 0 control has no certificate at all and is judged "
           "on the GD output.",
           "Loss ratios are reported in the details; the loss of the sum is not within the "
           "first-layer tolerance whenever a cross term is non-zero.",
           "The overlap search asks for the smallest angle at which the sum is less "
           "accurate than an individual net on its task (the claim's words, no tolerance)."),
    plots=plots,
    known=KNOWN,
)
