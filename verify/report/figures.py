"""Figures of the report, drawn with matplotlib (headless, PNG bytes).

Five standard figures per theorem from the series its checks recorded — spectra, norms per
layer, alignment against residual, margins, trajectories — plus the theorem's own figures,
described in results.json as plot specs (:mod:`verify.report.plots`). Every figure names
the checks it shows by number, stable id and verdict (:attr:`Figure.subjects`, printed under
it, and in the picture: panel titles, legends, bar labels). A margin of exactly 0 (a bar of
no length) is drawn as a marker. A figure whose data cannot be drawn becomes a
:class:`~verify.report.document.Figure` carrying the error, never a failed report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from verify.claims.verdict import ROUNDING
from verify.report.document import Figure
from verify.report.plots import (
    FIG_SIZE,
    PLOT_SPEC,
    ZERO_MARKER,
    Drawn,
    clip,
    clip_note,
    draw_spec,
    finish,
    integer_locator,
    log_floor,
    render_plot,
    subject,
    tags,
)
from verify.report.values import (
    OTHER_COLOUR,
    VERDICT_COLOURS,
    dicts,
    floats,
    fmt,
    num,
    series,
    strs,
    verdict_text,
    worst_first,
)

__all__ = ["FIGURE_KINDS", "PLOT_SPEC", "draw_margins", "render_plot", "theorem_figures"]

FIGURE_KINDS = ("spectra", "norms", "alignment", "margins", "trajectory")
MAX_SPECTRA = 3
MAX_LEGEND = 8


def _label(i: int, ex: dict) -> str:
    """The in-picture label of example ``i``: number and verdict (the id is in "Shows")."""
    return f"#{i} {verdict_text(ex.get('verdict'))}"


def _draw_spectra(examples: list[dict], known: Sequence[str]) -> Drawn | None:
    picked = []
    for i, ex in worst_first(examples):
        sv = series(ex, "singular_values")
        layers = [floats(layer) for layer in sv] if isinstance(sv, list) else []
        if any(layers):
            picked.append((i, ex, layers))
        if len(picked) == MAX_SPECTRA:
            break
    if not picked:
        return None
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(picked), figsize=FIG_SIZE, squeeze=False, sharey=True)
    floor = log_floor(v for _, _, layers in picked for layer in layers for v in layer)
    clipped = 0
    for ax, (i, ex, layers) in zip(axes[0], picked, strict=True):
        for k, layer in enumerate(layers, start=1):
            if not layer:
                continue
            ys, c = clip(layer, floor)
            clipped += c
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=2.5, lw=1, label=f"$W_{{{k}}}$")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(integer_locator())
        ax.set_xlabel("index $i$", fontsize=8)
        ax.set_title(f"{_label(i, ex)}, margin {fmt(ex.get('margin'))}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(r"singular value $\sigma_i$", fontsize=8)
    if len(picked[0][2]) <= MAX_LEGEND:
        axes[0][0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return Drawn(
        "spectra", "Singular value spectra",
        f"Singular values of each layer W_k (descending) for the {len(picked)} worst-margin "
        f"example(s) that recorded them; the panel titles give the example number and "
        f"verdict." + clip_note(clipped, floor), fig,
        tuple(subject(f"#{i}", ex) for i, ex, _ in picked),
        tags((ex for _, ex, _ in picked), known))


def _draw_norms(examples: list[dict], known: Sequence[str]) -> Drawn | None:
    rows = [(i, ex, floats(series(ex, "layer_norms"))) for i, ex in enumerate(examples)]
    rows = [(i, ex, r) for i, ex, r in rows if r]
    if not rows:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    many = len(rows) > MAX_LEGEND  # thinner, translucent lines so a crowd stays readable
    for i, ex, r in rows:
        ax.plot(range(1, len(r) + 1), r, marker="o", ms=2 if many else 3, lw=0.7 if many else 1,
                alpha=0.6 if many else 1.0, label=_label(i, ex),
                color=VERDICT_COLOURS.get(str(ex.get("verdict")), OTHER_COLOUR) if many
                else None)
    values = [v for _, _, r in rows for v in r]
    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("layer $k$", fontsize=8)
    ax.set_ylabel(r"$\|W_k\|$", fontsize=8)
    ax.xaxis.set_major_locator(integer_locator())
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(rows) <= MAX_LEGEND:
        ax.legend(fontsize=6, title="example", title_fontsize=6)
    fig.tight_layout()
    return Drawn(
        "norms", "Norms per layer",
        f"Norm of each layer's weights for the {len(rows)} example(s) that recorded them "
        "(one line per example" + (", coloured by verdict)." if many else ")."), fig,
        tuple(subject(f"#{i}", ex) for i, ex, _ in rows), tags((ex for _, ex, _ in rows), known))


def _draw_alignment(examples: list[dict], controls: list[dict], known: Sequence[str]
                    ) -> Drawn | None:
    groups: dict[str, tuple[list[float], list[float]]] = {
        "examples": ([], []),
        "controls": ([], []),
    }
    shown: list[tuple[str, dict]] = []
    for name, entries in (("examples", examples), ("controls", controls)):
        for j, entry in enumerate(entries):
            rs, cs = series(entry, "residuals"), series(entry, "cosines")
            if not isinstance(rs, list) or not isinstance(cs, list):
                continue
            before = len(groups[name][0])
            for r, c in zip(rs, cs, strict=False):
                r, c = num(r), num(c)
                if r is not None and c is not None:
                    groups[name][0].append(r)
                    groups[name][1].append(1.0 - c)
            if len(groups[name][0]) > before:
                label = f"#{j}" if name == "examples" else f"control {entry.get('name', j)}"
                shown.append((label, entry))
    if not any(xs for xs, _ in groups.values()):
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    fx = log_floor(x for xs, _ in groups.values() for x in xs)
    fy = log_floor(y for _, ys in groups.values() for y in ys)
    clipped_x = clipped_y = 0
    style = {"examples": ("#0969da", "o"), "controls": ("#cf222e", "x")}
    all_r: list[float] = []
    for name, (xs, ys) in groups.items():
        if not xs:
            continue
        cx, a = clip(xs, fx)
        cy, b = clip(ys, fy)
        clipped_x, clipped_y = clipped_x + a, clipped_y + b
        all_r += cx
        colour, marker = style[name]
        ax.scatter(cx, cy, s=14, c=colour, marker=marker, alpha=0.75, label=name, linewidths=1)
    lo, hi = min(all_r), min(max(all_r), 1.0)
    if lo < 1.0:
        r = np.logspace(math.log10(lo), math.log10(hi), 200) if hi > lo else np.array([lo])
        r = r[r < 1.0]
        bound = r**2 / (1.0 + np.sqrt(1.0 - r**2))  # = 1 - sqrt(1 - r^2) without cancellation
        ax.plot(r, np.maximum(bound, fy), "k--", lw=1, label="bound 1 − √(1−r²)")
    # below ~100 ulp, 1 − cos is float64 rounding, which the verdicts allow for
    ax.axhline(ROUNDING, color="grey", ls=":", lw=1, label="float64 rounding allowance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("residual $r_k$", fontsize=8)
    ax.set_ylabel(r"$1 - \cos(W_k, -g_k)$", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Drawn(
        "alignment", "Alignment vs residual",
        "Each point is one layer of one example or control: misalignment 1 − cos(W_k, −g_k) "
        "against the stationarity residual r_k. The alignment bound cos ≥ √(1−r²) puts points "
        "on or below the dashed curve, up to float64 rounding (dotted line, 100 ulp)."
        + clip_note(clipped_x, fx, "residual(s)")
        + clip_note(clipped_y, fy, "misalignment value(s)"), fig,
        tuple(subject(label, e) for label, e in shown), tags((e for _, e in shown), known))


def draw_margins(examples: list[dict], known: Sequence[str] = ()) -> Drawn | None:
    """Margins as horizontal bars, worst at the top, coloured by verdict; every margin also
    gets a marker at its value — a diamond (:data:`ZERO_MARKER`) where it is exactly 0, so
    that a bar of no length is still seen."""
    rows = [(i, ex, num(ex.get("margin"))) for i, ex in enumerate(examples)]
    have = sorted([(m, i, ex) for i, ex, m in rows if m is not None], key=lambda t: (t[0], t[1]))
    if not have:
        return None
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    height = min(FIG_SIZE[1] + 0.12 * max(0, len(have) - 20), 9.0)
    fig, ax = plt.subplots(figsize=(FIG_SIZE[0], height))
    ys = list(range(len(have)))
    verdicts = [verdict_text(ex.get("verdict")) for _, _, ex in have]
    colours = [VERDICT_COLOURS.get(v, OTHER_COLOUR) for v in verdicts]
    margins = [m for m, _, _ in have]
    ax.barh(ys, margins, color=colours, height=0.7 if len(have) > 3 else 0.4)
    zero = [(m, y, c) for m, y, c in zip(margins, ys, colours, strict=True) if m == 0]
    rest = [(m, y, c) for m, y, c in zip(margins, ys, colours, strict=True) if m != 0]
    for m, y, c in rest:
        ax.plot([m], [y], "|", ms=7, mew=1.5, color=c)
    for m, y, c in zero:
        ax.plot([m], [y], ZERO_MARKER, ms=6, color=c, mec="k", mew=0.6)
    ax.invert_yaxis()  # worst at the top, as in the table
    if len(have) <= 40:
        ax.set_yticks(ys, [f"#{i} {v}" for (_, i, _), v in zip(have, verdicts, strict=True)],
                      fontsize=7)
    else:
        ax.set_yticks([])
    ax.axvline(0.0, color="k", lw=0.8)
    largest = max(abs(m) for m in margins)
    if largest > 10:
        ax.set_xscale("symlog", linthresh=1.0)
    elif largest == 0:
        ax.set_xlim(-1.0, 1.0)  # all exactly 0: centre the markers on a readable axis
    ax.set_xlabel("margin (bound − measured) / scale", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    seen = list(dict.fromkeys(verdicts))
    handles: list[Patch | Line2D] = [
        Patch(color=VERDICT_COLOURS.get(v, OTHER_COLOUR), label=v) for v in seen]
    if zero:
        handles.append(Line2D([], [], marker=ZERO_MARKER, ls="none", color="grey", mec="k",
                              label="margin exactly 0"))
    ax.legend(handles=handles, fontsize=6)
    fig.tight_layout()
    missing = len(rows) - len(have)
    return Drawn(
        "margins", "Margins",
        "Example margins, worst at the top, coloured by verdict; negative means the measured "
        "value exceeded the bound."
        + (f" {len(zero)} margin(s) exactly 0 are drawn as ◆ markers." if zero else "")
        + (f" {missing} example(s) without a finite margin are not shown." if missing else ""),
        fig, tuple(subject(f"#{i}", ex) for _, i, ex in have),
        tags((ex for _, _, ex in have), known))


def _draw_trajectory(examples: list[dict], controls: list[dict], known: Sequence[str]
                     ) -> Drawn | None:
    lines = []
    for i, ex in enumerate(examples):
        t = floats(series(ex, "trajectory"))
        if t:
            lines.append((_label(i, ex), t, "-", subject(f"#{i}", ex), ex))
    for ctl in controls:
        t = floats(series(ctl, "trajectory"))
        if t:
            label = f"control {ctl.get('name', '?')}"
            lines.append((f"{label} {verdict_text(ctl.get('verdict'))}", t, "--",
                          subject(label, ctl), ctl))
    if not lines:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    floor = log_floor(v for _, t, _, _, _ in lines for v in t)
    clipped = 0
    many = len(lines) > MAX_LEGEND
    for label, t, ls, _, _ in lines:
        ys, c = clip(t, floor)
        clipped += c
        short = label if len(label) <= 48 else label[:47] + "…"
        ax.plot(range(len(ys)), ys, ls, lw=0.7 if many else 1, alpha=0.6 if many else 1.0,
                label=short)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(integer_locator())
    ax.set_xlabel("step $t$", fontsize=8)
    ax.set_ylabel("recorded value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(lines) <= MAX_LEGEND:
        ax.legend(fontsize=6)
    fig.tight_layout()
    return Drawn(
        "trajectory", "Trajectory",
        f"Recorded per-step series of {len(lines)} example(s)/control(s) (dashed: controls)."
        + clip_note(clipped, floor), fig,
        tuple(s for _, _, _, s, _ in lines), tags((e for *_, e in lines), known))


def _records(examples: list[dict], controls: list[dict]) -> dict[str, tuple[str, dict]]:
    """The theorem's checks by stable id, with the label figures give them."""
    out: dict[str, tuple[str, dict]] = {}
    for i, ex in enumerate(examples):
        if isinstance(ex.get("id"), str):
            out[ex["id"]] = (f"#{i}", ex)
    for c in controls:
        if isinstance(c.get("id"), str):
            out[c["id"]] = (f"control {c.get('name', '?')}", c)
    return out


def theorem_figures(theorem: dict) -> list[Figure]:
    """All figures for one theorem; a figure whose data breaks plotting becomes an error note.

    A theorem figure that names no record shows the theorem as a whole and says so.
    """
    examples, controls = dicts(theorem.get("examples")), dicts(theorem.get("controls"))
    known = list(dict(theorem["known"]) if isinstance(theorem.get("known"), dict) else [])
    records = _records(examples, controls)
    makers: list[tuple[str, str, Callable[[], Drawn | None]]] = [
        ("spectra", "spectra", lambda: _draw_spectra(examples, known)),
        ("norms", "norms", lambda: _draw_norms(examples, known)),
        ("alignment", "alignment", lambda: _draw_alignment(examples, controls, known)),
        ("margins", "margins", lambda: draw_margins(examples, known)),
        ("trajectory", "trajectory", lambda: _draw_trajectory(examples, controls, known)),
    ]
    makers += [(f"plot{i}", str(spec.get("title", "plot")),
                partial(draw_spec, spec, i, records, known))
               for i, spec in enumerate(dicts(theorem.get("plots")))]
    whole = (f"all checks of {fmt(theorem.get('id'))} (theorem verdict "
             f"{verdict_text(theorem.get('verdict'))})",)
    out = []
    for kind, title, make in makers:
        try:
            drawn = make()
            if drawn is not None and not drawn.subjects:
                drawn.subjects = whole
                drawn.filters = " ".join(strs(theorem.get("verdict")))
            fig = finish(drawn) if drawn is not None else None
        except Exception as exc:  # a broken figure must not cost the whole report
            import matplotlib.pyplot as plt

            plt.close("all")
            fig = Figure(kind, title, "", error=f"{type(exc).__name__}: {exc}")
        if fig is not None:
            out.append(fig)
    return out
