"""Figures of the report, drawn with matplotlib (headless, PNG bytes).

Five standard figures per theorem from the series its checks recorded — spectra, norms per
layer, alignment against residual, margins, trajectories — plus the theorem's own figures,
described in results.json as plot specs (:data:`PLOT_SPEC`). A figure whose data cannot be
drawn becomes a :class:`~verify.report.document.Figure` carrying the error, never a failed
report. :func:`latex_png` typesets statements for the HTML view.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # reports are rendered headless; never open a window

from verify.claims.verdict import ROUNDING
from verify.report.document import Figure
from verify.report.values import (
    OTHER_COLOUR,
    VERDICT_COLOURS,
    dicts,
    floats,
    fmt,
    num,
    series,
    setting_text,
    verdict_text,
    worst_first,
)

FIGURE_KINDS = ("spectra", "norms", "alignment", "margins", "trajectory")
LOG_FLOOR = 1e-18  # lowest floor for values <= 0 on log axes (the caption says how many)
FIG_SIZE = (6.0, 3.2)
FIG_DPI = 90
MAX_SPECTRA = 3
MAX_LEGEND = 8
# Theorem-specific figures travel in results.json as plot specs under theorem["plots"]:
PLOT_SPEC = """
{"kind": "lines", "title", "caption", "xlabel", "ylabel", "xscale"/"yscale": "log"|"linear",
 "lines": [{"label", "x": [...], "y": [...], "style": "-o"}]}
{"kind": "bars", ..., "categories": [...], "groups": [{"label", "values": [...]}]}
{"kind": "contour", ..., "x": [...], "y": [...], "z": [[row per y] ...]}
"""


def _integer_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=FIG_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _log_floor(values: Iterable[float]) -> float:
    """Where non-positive values are drawn on a log axis.

    A hundredth of the smallest positive value (never below :data:`LOG_FLOOR`), so that an
    exact zero sits just under the data instead of stretching the axis over many decades.
    """
    positive = [v for v in values if v > 0]
    return max(LOG_FLOOR, min(positive) / 100) if positive else LOG_FLOOR


def _clip(values: Iterable[float], floor: float) -> tuple[list[float], int]:
    """Values for a log axis: non-positive ones raised to ``floor``, and how many were."""
    vals = list(values)
    clipped = sum(1 for v in vals if v <= 0)
    return [v if v > 0 else floor for v in vals], clipped


def _clip_note(n: int, floor: float, what: str = "value(s)") -> str:
    if not n:
        return ""
    return f" {n} {what} ≤ 0 are drawn at {floor:.3g} so they fit on the log axis."


def _fig_spectra(examples: list[dict]) -> Figure | None:
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
    floor = _log_floor(v for _, _, layers in picked for layer in layers for v in layer)
    clipped = 0
    for ax, (i, ex, layers) in zip(axes[0], picked, strict=True):
        for k, layer in enumerate(layers, start=1):
            if not layer:
                continue
            ys, c = _clip(layer, floor)
            clipped += c
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=2.5, lw=1, label=f"$W_{{{k}}}$")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(_integer_locator())
        ax.set_xlabel("index", fontsize=8)
        ax.set_title(f"#{i} {verdict_text(ex.get('verdict'))} margin {fmt(ex.get('margin'))}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("singular value", fontsize=8)
    if len(picked[0][2]) <= MAX_LEGEND:
        axes[0][0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return Figure(
        "spectra",
        "Singular value spectra",
        f"Singular values of each layer W_k (descending) for the {len(picked)} worst-margin "
        f"example(s) that recorded them; the panel titles give the example number."
        + _clip_note(clipped, floor),
        _png(fig),
    )


def _fig_norms(examples: list[dict]) -> Figure | None:
    rows = [(i, floats(series(ex, "layer_norms"))) for i, ex in enumerate(examples)]
    rows = [(i, r) for i, r in rows if r]
    if not rows:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    many = len(rows) > MAX_LEGEND  # thinner, translucent lines so a crowd stays readable
    for i, r in rows:
        ax.plot(range(1, len(r) + 1), r, marker="o", ms=2 if many else 3, lw=0.7 if many else 1,
                alpha=0.6 if many else 1.0, label=f"#{i}")
    values = [v for _, r in rows for v in r]
    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("layer $k$", fontsize=8)
    ax.set_ylabel(r"$\|W_k\|$", fontsize=8)
    ax.xaxis.set_major_locator(_integer_locator())
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(rows) <= MAX_LEGEND:
        ax.legend(fontsize=6, title="example", title_fontsize=6)
    fig.tight_layout()
    return Figure(
        "norms",
        "Norms per layer",
        f"Norm of each layer's weights for the {len(rows)} example(s) that recorded them "
        "(one line per example).",
        _png(fig),
    )


def _fig_alignment(examples: list[dict], controls: list[dict]) -> Figure | None:
    groups: dict[str, tuple[list[float], list[float]]] = {
        "examples": ([], []),
        "controls": ([], []),
    }
    for name, entries in (("examples", examples), ("controls", controls)):
        for entry in entries:
            rs, cs = series(entry, "residuals"), series(entry, "cosines")
            if not isinstance(rs, list) or not isinstance(cs, list):
                continue
            for r, c in zip(rs, cs, strict=False):
                r, c = num(r), num(c)
                if r is not None and c is not None:
                    groups[name][0].append(r)
                    groups[name][1].append(1.0 - c)
    if not any(xs for xs, _ in groups.values()):
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    fx = _log_floor(x for xs, _ in groups.values() for x in xs)
    fy = _log_floor(y for _, ys in groups.values() for y in ys)
    clipped_x = clipped_y = 0
    style = {"examples": ("#0969da", "o"), "controls": ("#cf222e", "x")}
    all_r: list[float] = []
    for name, (xs, ys) in groups.items():
        if not xs:
            continue
        cx, a = _clip(xs, fx)
        cy, b = _clip(ys, fy)
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
    return Figure(
        "alignment",
        "Alignment vs residual",
        "Each point is one layer of one example or control: misalignment 1 − cos(W_k, −g_k) "
        "against the stationarity residual r_k. The alignment bound cos ≥ √(1−r²) puts points "
        "on or below the dashed curve, up to float64 rounding (dotted line, 100 ulp)."
        + _clip_note(clipped_x, fx, "residual(s)")
        + _clip_note(clipped_y, fy, "misalignment value(s)"),
        _png(fig),
    )


def _fig_margins(examples: list[dict]) -> Figure | None:
    rows = [(i, ex, num(ex.get("margin"))) for i, ex in enumerate(examples)]
    have = sorted([(m, i, verdict_text(ex.get("verdict"))) for i, ex, m in rows if m is not None])
    if not have:
        return None
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    height = min(FIG_SIZE[1] + 0.12 * max(0, len(have) - 20), 9.0)
    fig, ax = plt.subplots(figsize=(FIG_SIZE[0], height))
    ys = list(range(len(have)))
    colours = [VERDICT_COLOURS.get(v, OTHER_COLOUR) for _, _, v in have]
    ax.barh(ys, [m for m, _, _ in have], color=colours, height=0.7 if len(have) > 3 else 0.4)
    ax.invert_yaxis()  # worst at the top, as in the table
    if len(have) <= 40:
        ax.set_yticks(ys, [f"#{i}" for _, i, _ in have], fontsize=7)
    else:
        ax.set_yticks([])
    ax.axvline(0.0, color="k", lw=0.8)
    if max(abs(m) for m, _, _ in have) > 10:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("margin (bound − measured) / scale", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    seen = list(dict.fromkeys(v for _, _, v in have))
    ax.legend(handles=[Patch(color=VERDICT_COLOURS.get(v, OTHER_COLOUR), label=v) for v in seen],
              fontsize=6)
    fig.tight_layout()
    missing = len(rows) - len(have)
    return Figure(
        "margins",
        "Margins",
        "Example margins, worst at the top, coloured by verdict; negative means the measured "
        "value exceeded the bound."
        + (f" {missing} example(s) without a finite margin are not shown." if missing else ""),
        _png(fig),
    )


def _fig_trajectory(examples: list[dict], controls: list[dict]) -> Figure | None:
    lines = []
    for i, ex in enumerate(examples):
        t = floats(series(ex, "trajectory"))
        if t:
            label = f"#{i} {setting_text(ex.get('setting'), key_only=True)}".strip()
            lines.append((label, t, "-"))
    for ctl in controls:
        t = floats(series(ctl, "trajectory"))
        if t:
            lines.append((f"control {ctl.get('name', '?')}", t, "--"))
    if not lines:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIG_SIZE)
    floor = _log_floor(v for _, t, _ in lines for v in t)
    clipped = 0
    many = len(lines) > MAX_LEGEND
    for label, t, ls in lines:
        ys, c = _clip(t, floor)
        clipped += c
        short = label if len(label) <= 48 else label[:47] + "…"
        ax.plot(range(len(ys)), ys, ls, lw=0.7 if many else 1, alpha=0.6 if many else 1.0,
                label=short)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_integer_locator())
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(lines) <= MAX_LEGEND:
        ax.legend(fontsize=6)
    fig.tight_layout()
    return Figure(
        "trajectory",
        "Trajectory",
        f"Recorded per-step series of {len(lines)} example(s)/control(s) (dashed: controls)."
        + _clip_note(clipped, floor),
        _png(fig),
    )


def _fig_plot_spec(spec: dict, index: int) -> Figure | None:
    """A figure described in the results: ``{"kind": "lines"|"bars"|"contour", "title",
    "caption", ...}`` (see :data:`PLOT_SPEC`)."""
    import matplotlib.pyplot as plt

    kind = spec.get("kind")
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    if kind == "lines":
        for line in dicts(spec.get("lines")):
            ax.plot(floats(line.get("x")), floats(line.get("y")), line.get("style", "-o"),
                    ms=3, lw=1, label=str(line.get("label", "")))
        for axis, setter in (("xscale", ax.set_xscale), ("yscale", ax.set_yscale)):
            if spec.get(axis) in ("log", "symlog"):
                setter(spec[axis])
        ax.legend(fontsize=6)
    elif kind == "bars":
        cats = [str(c) for c in spec.get("categories") or []]
        groups = dicts(spec.get("groups"))
        width = 0.8 / max(len(groups), 1)
        for j, g in enumerate(groups):
            vals = [v if v is not None else math.nan for v in (g.get("values") or [])]
            ax.bar(np.arange(len(vals)) + j * width, vals, width, label=str(g.get("label", "")))
        ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, cats, rotation=30, ha="right")
        ax.legend(fontsize=6)
    elif kind == "contour":
        x, y = floats(spec.get("x")), floats(spec.get("y"))
        z = np.array([[v if v is not None else math.nan for v in row]
                      for row in spec.get("z") or []], dtype=float)
        if z.shape != (len(y), len(x)) or min(z.shape, default=0) < 2:
            plt.close(fig)
            return None
        cs = ax.contourf(x, y, z, levels=12, cmap="viridis")
        fig.colorbar(cs, ax=ax)
        for axis, setter in (("xscale", ax.set_xscale), ("yscale", ax.set_yscale)):
            if spec.get(axis) == "log":
                setter("log")
    else:
        plt.close(fig)
        return None
    ax.set_xlabel(str(spec.get("xlabel", "")), fontsize=8)
    ax.set_ylabel(str(spec.get("ylabel", "")), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Figure(f"plot{index}", str(spec.get("title", f"Figure {index}")),
                   str(spec.get("caption", "")), _png(fig))


def render_plot(spec: dict) -> bytes | None:
    """PNG bytes of one plot spec (:data:`PLOT_SPEC`), None when it has nothing to draw; for
    reports of their own (verify.sweep)."""
    fig = _fig_plot_spec(spec, 0)
    return None if fig is None else fig.png


def theorem_figures(theorem: dict) -> list[Figure]:
    """All figures for one theorem; a figure whose data breaks plotting becomes an error note."""
    examples, controls = dicts(theorem.get("examples")), dicts(theorem.get("controls"))
    makers: list[tuple[str, str, Callable[[], Figure | None]]] = [
        ("spectra", "spectra", lambda: _fig_spectra(examples)),
        ("norms", "norms", lambda: _fig_norms(examples)),
        ("alignment", "alignment", lambda: _fig_alignment(examples, controls)),
        ("margins", "margins", lambda: _fig_margins(examples)),
        ("trajectory", "trajectory", lambda: _fig_trajectory(examples, controls)),
    ]
    makers += [(f"plot{i}", str(spec.get("title", "plot")), partial(_fig_plot_spec, spec, i))
               for i, spec in enumerate(dicts(theorem.get("plots")))]
    out = []
    for kind, title, make in makers:
        try:
            fig = make()
        except Exception as exc:  # a broken figure must not cost the whole report
            import matplotlib.pyplot as plt

            plt.close("all")
            fig = Figure(kind, title, "", error=f"{type(exc).__name__}: {exc}")
        if fig is not None:
            out.append(fig)
    return out


def latex_png(latex: str) -> bytes | None:
    """``latex`` typeset by matplotlib mathtext, or ``None`` if mathtext cannot parse it.

    Mathtext supports only a subset of LaTeX; the caller then shows the source instead.
    """
    import matplotlib.pyplot as plt

    src = " ".join(latex.strip().strip("$").split())
    if not src:
        return None
    fig = plt.figure(figsize=(0.1, 0.1))
    try:
        fig.text(0.0, 0.0, f"${src}$", fontsize=15)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=0.06)
        return buf.getvalue()
    except Exception:  # mathtext raises ValueError on unsupported syntax; be generous
        return None
    finally:
        plt.close(fig)
