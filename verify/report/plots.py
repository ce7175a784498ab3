"""Theorem figures from plot specs, and the drawing helpers every figure of the report uses.

A theorem describes its own figures in results.json as plot specs (:data:`PLOT_SPEC`), built
from its finished records (``Theorem.plots``); a spec that names its ``record`` (the stable
id of the example or control it shows) is labelled with that record's id and verdict.
Figures are drawn headless with matplotlib; a drawing is kept as a :class:`Drawn` (the
matplotlib figure and what the report says about it) until :func:`finish` turns it into
the document's :class:`~verify.report.document.Figure` with PNG bytes, so tests can inspect
the artists (e.g. count the markers drawn at zero) instead of pixels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # reports are rendered headless; never open a window

from verify.claims.trends import symbol
from verify.report.document import Figure
from verify.report.values import dicts, floats, num, verdict_text

LOG_FLOOR = 1e-18  # lowest floor for values <= 0 on log axes (the caption says how many)
FIG_SIZE = (6.0, 3.2)
FIG_DPI = 90
ZERO_MARKER = "D"  # a value exactly 0 (a bar of no length) is drawn as this marker
# Theorem-specific figures travel in results.json as plot specs under theorem["plots"]:
PLOT_SPEC = """
{"kind": "lines", "title", "caption", "xlabel", "ylabel", "xscale"/"yscale": "log"|"linear",
 "record": "<stable id of the example/control shown>" (optional),
 "lines": [{"label", "x": [...], "y": [...], "yerr": [...] (optional), "style": "-o"}]}
{"kind": "bars", ..., "categories": [...], "groups": [{"label", "values": [...]}]}
{"kind": "contour", ..., "x": [...], "y": [...], "z": [[row per y] ...]}
{"kind": "table", ..., "columns": [...], "rows": [[cell, ...] ...]}   (drawn as a figure)
"lead": true on any spec: the figure opens its theorem's section
"""


@dataclass
class Drawn:
    """A drawn matplotlib figure and what the report says about it (see :class:`Figure`)."""

    kind: str
    title: str
    caption: str
    fig: Any
    subjects: tuple[str, ...] = ()
    filters: str = ""


def subject(label: str, entry: dict) -> str:
    """How a figure names one check: ``#i <stable id> VERDICT``."""
    ident = entry.get("id")
    ident = f" {ident}" if isinstance(ident, str) and ident else ""
    return f"{label}{ident} {verdict_text(entry.get('verdict'))}"


def tags(entries: Iterable[dict], known: Sequence[str] = ()) -> str:
    """The verdict filter tags of the checks a figure shows (:attr:`Figure.filters`)."""
    out: list[str] = []
    for e in entries:
        v = e.get("verdict")
        if isinstance(v, str) and v:
            out.append(v)
        if e.get("id") in known:
            out.append("known")
    return " ".join(dict.fromkeys(out))


def png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        # (Hypothesis mines the numeric literals of loaded local modules into the settings
        # it draws, so the report's literals are part of what the run draws: keep them)
        fig.savefig(buf, format="png", dpi=FIG_DPI, bbox_inches="tight", pad_inches=0.06)
    finally:
        plt.close(fig)
    return buf.getvalue()


def finish(d: Drawn) -> Figure:
    """The document's figure (PNG bytes); closes the matplotlib figure."""
    return Figure(d.kind, d.title, d.caption, png(d.fig), subjects=d.subjects,
                  filters=d.filters)


def integer_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def log_floor(values: Iterable[float]) -> float:
    """Where non-positive values are drawn on a log axis.

    A hundredth of the smallest positive value (never below :data:`LOG_FLOOR`), so that an
    exact zero sits just under the data instead of stretching the axis over many decades.
    """
    positive = [v for v in values if v > 0]
    return max(LOG_FLOOR, min(positive) / 100) if positive else LOG_FLOOR


def clip(values: Iterable[float], floor: float) -> tuple[list[float], int]:
    """Values for a log axis: non-positive ones raised to ``floor``, and how many were."""
    vals = list(values)
    clipped = sum(1 for v in vals if v <= 0)
    return [v if v > 0 else floor for v in vals], clipped


def clip_note(n: int, floor: float, what: str = "value(s)") -> str:
    if not n:
        return ""
    return f" {n} {what} ≤ 0 are drawn at {floor:.3g} so they fit on the log axis."


def _values(x: object) -> list[float]:
    """A list of numbers with missing ones as NaN (so positions stay aligned)."""
    if not isinstance(x, list):
        return []
    return [v if v is not None else math.nan for v in (num(e) for e in x)]


def _lines(ax: Any, spec: dict) -> None:
    for line in dicts(spec.get("lines")):
        xs, ys = floats(line.get("x")), floats(line.get("y"))
        n = min(len(xs), len(ys))
        style, label = str(line.get("style", "-o")), str(line.get("label", ""))
        err = _values(line.get("yerr"))
        if len(err) == len(ys) and n == len(ys) and any(e > 0 for e in err if e == e):
            ax.errorbar(xs[:n], ys[:n], yerr=[e if e == e else 0.0 for e in err], fmt=style,
                        ms=3, lw=1, capsize=2.5, elinewidth=0.8, label=label)
        else:
            ax.plot(xs[:n], ys[:n], style, ms=3, lw=1, label=label)
    for axis, setter in (("xscale", ax.set_xscale), ("yscale", ax.set_yscale)):
        if spec.get(axis) in ("log", "symlog"):
            setter(spec[axis])
    ax.legend(fontsize=6)


def _bars(ax: Any, spec: dict) -> int:
    """Grouped bars; a value exactly 0 gets a marker (its bar has no length). Returns how
    many were marked."""
    cats = [str(c) for c in spec.get("categories") or []]
    groups = dicts(spec.get("groups"))
    width = 0.8 / max(len(groups), 1)
    zeros = 0
    for j, g in enumerate(groups):
        vals = _values(g.get("values"))
        pos = np.arange(len(vals)) + j * width
        bars = ax.bar(pos, vals, width, label=str(g.get("label", "")))
        at = [p for p, v in zip(pos, vals, strict=True) if v == 0]
        if at:
            colour = bars.patches[0].get_facecolor() if bars.patches else "k"
            ax.plot(at, [0.0] * len(at), ZERO_MARKER, ms=4, color=colour, mec="k", mew=0.5,
                    linestyle="none")
            zeros += len(at)
    ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, cats, rotation=30, ha="right")
    ax.legend(fontsize=6)
    return zeros


def _contour(fig: Any, ax: Any, spec: dict) -> bool:
    x, y = floats(spec.get("x")), floats(spec.get("y"))
    z = np.array([_values(row) for row in spec.get("z") or []], dtype=float)
    if z.shape != (len(y), len(x)) or min(z.shape, default=0) < 2:
        return False
    cs = ax.contourf(x, y, z, levels=12, cmap="viridis")
    fig.colorbar(cs, ax=ax)
    for axis, setter in (("xscale", ax.set_xscale), ("yscale", ax.set_yscale)):
        if spec.get(axis) == "log":
            setter("log")
    return True


def _table(fig: Any, ax: Any, spec: dict) -> bool:
    cols = [str(c) for c in spec.get("columns") or []]
    rows = [[str(c) for c in r] for r in spec.get("rows") or [] if isinstance(r, list)]
    if not cols or not rows or any(len(r) != len(cols) for r in rows):
        return False  # a malformed table is left out rather than drawn wrong
    fig.set_size_inches(FIG_SIZE[0] * 1.4, 0.22 * (len(rows) + 2))
    ax.axis("off")
    ax.table(cellText=rows, colLabels=cols, loc="center").set_fontsize(6)
    return True


def draw_spec(spec: dict, index: int, records: dict[str, tuple[str, dict]] | None = None,
              known: Sequence[str] = ()) -> Drawn | None:
    """A figure described in the results: ``{"kind": "lines"|"bars"|"contour", "title",
    "caption", ...}`` (see :data:`PLOT_SPEC`), None when it has nothing to draw.

    ``records``: the theorem's checks by stable id, ``id → (label, record)``; a spec naming
    its ``record`` is titled with that check's id and verdict.
    """
    import matplotlib.pyplot as plt

    kind = spec.get("kind")
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    zeros = 0
    if kind == "lines":
        _lines(ax, spec)
    elif kind == "bars":
        zeros = _bars(ax, spec)
    elif kind == "table":
        if not _table(fig, ax, spec):
            plt.close(fig)
            return None
    elif kind != "contour" or not _contour(fig, ax, spec):
        plt.close(fig)
        return None
    # axes carry the theorems' symbols (λ, η, μ), also for specs written before they did
    ax.set_xlabel(symbol(spec.get("xlabel", "")), fontsize=8)
    ax.set_ylabel(symbol(spec.get("ylabel", "")), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    caption = str(spec.get("caption", ""))
    if zeros:
        caption += f" Values exactly 0 ({zeros}) are drawn as ◆ markers."
    rec_id = spec.get("record")
    found = (records or {}).get(rec_id) if isinstance(rec_id, str) else None
    subjects: tuple[str, ...] = ()
    filters = ""
    if found is not None:
        label, rec = found
        subjects = (subject(label, rec),)
        filters = tags([rec], known)
        ax.set_title(f"{rec_id} · {verdict_text(rec.get('verdict'))}", fontsize=7)
    elif isinstance(rec_id, str):
        subjects = (f"{rec_id} (not among the recorded checks)",)
    fig.tight_layout()
    # a spec with "lead": true opens its theorem's section (e.g. T8's width curve)
    kind_name = f"lead{index}" if spec.get("lead") is True else f"plot{index}"
    return Drawn(kind_name, str(spec.get("title", f"Figure {index}")), caption, fig,
                 subjects, filters)


def render_plot(spec: dict) -> bytes | None:
    """PNG bytes of one plot spec (:data:`PLOT_SPEC`), None when it has nothing to draw; for
    reports of their own (verify.sweep)."""
    d = draw_spec(spec, 0)
    return None if d is None else png(d.fig)
