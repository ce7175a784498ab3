"""Results files and human-readable reports of a verification run.

A run writes everything it measured to ``results.json`` (see :func:`write_results`); the
report is rendered from that file alone, so a report can be regenerated, diffed or rendered
on another machine without rerunning anything. :func:`render` writes two views with the same
content: ``report.md`` (figures as PNG files under ``figures/``, linked relatively) and
``report.html``, a single self-contained page (inline CSS, figures embedded as base64 PNG, no
scripts and no external URLs) that can be mailed or archived as one file.

The renderer never trusts the shape of the data beyond the top-level contract: every key may
be missing and every number may be ``null``, and it degrades to "—" or skips a figure
rather than failing, because a report is the last step of what may have been a long run.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # reports are rendered headless; never open a window

from verify.run.results import RESULTS_NAME, atomic_write_bytes, jsonable

ROUNDING = 100 * 2.220446049250313e-16  # as verify.claims.verdict.ROUNDING
MD_NAME = "report.md"
HTML_NAME = "report.html"
FIGURES_DIR = "figures"

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "VACUOUS")
VERDICT_COLOURS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "INCONCLUSIVE": "#bf8700",
    "VACUOUS": "#6e7781",
}


KEY_SETTING_FIELDS = ("widths", "conv", "activation", "lam", "n", "seed", "precision")
FIGURE_KINDS = ("spectra", "norms", "alignment", "margins", "trajectory")
LOG_FLOOR = 1e-18  # lowest floor for values <= 0 on log axes (the caption says how many)
FIG_SIZE = (6.0, 3.2)
# Theorem-specific figures travel in results.json as plot specs under theorem["plots"]:
PLOT_SPEC = """
{"kind": "lines", "title", "caption", "xlabel", "ylabel", "xscale"/"yscale": "log"|"linear",
 "lines": [{"label", "x": [...], "y": [...], "style": "-o"}]}
{"kind": "bars", ..., "categories": [...], "groups": [{"label", "values": [...]}]}
{"kind": "contour", ..., "x": [...], "y": [...], "z": [[row per y] ...]}
{"kind": "table", ..., "columns": [...], "rows": [[cell, ...] ...]}   (drawn as a figure)
"lead": true on any spec: the figure opens its theorem's section
"""
FIG_DPI = 90
MAX_SPECTRA = 3
MAX_LEGEND = 8


# --------------------------------------------------------------------------------------------
# results.json


# --------------------------------------------------------------------------------------------
# small helpers over untrusted data


def _num(x: object) -> float | None:
    """``x`` as a finite float, or ``None`` (bools, strings and non-finite values are not)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _floats(x: object) -> list[float]:
    """The finite numbers in list ``x`` (anything else is dropped)."""
    if not isinstance(x, list):
        return []
    return [v for v in (_num(e) for e in x) if v is not None]


def _dict(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _dicts(x: object) -> list[dict]:
    return [e for e in x if isinstance(e, dict)] if isinstance(x, list) else []


def _strs(x: object) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [str(e) for e in x if e is not None] if isinstance(x, list) else []


def _series(entry: dict, key: str) -> object:
    return _dict(entry.get("series")).get(key)


def _fmt(x: object) -> str:
    """Compact text for any JSON value; ``None`` (missing or non-finite) is "—"."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.3g}" if math.isfinite(x) else str(x)
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in x.items()) + "}"
    return str(x)


def _fmt_seconds(x: object) -> str:
    v = _num(x)
    if v is None:
        return "—"
    if v < 100:
        return f"{v:.3g} s"
    return f"{v:.0f} s ({v / 60:.1f} min)" if v >= 120 else f"{v:.0f} s"


def _check(x: object) -> str:
    return "✓" if x is True else "✗" if x is False else "—"


def _setting_text(setting: object, key_only: bool = False) -> str:
    """``key=value`` pairs of a setting, the usual identifying fields first."""
    s = _dict(setting)
    keys = [k for k in KEY_SETTING_FIELDS if k in s]
    if not key_only:
        keys += [k for k in s if k not in KEY_SETTING_FIELDS]
    return " ".join(f"{k}={_fmt(s[k]).replace(', ', ',')}" for k in keys)


def _verdict(x: object) -> str:
    return x if isinstance(x, str) and x else "—"


def _worst_first(examples: Sequence[dict]) -> list[tuple[int, dict]]:
    """``(index, example)`` pairs, worst first.

    Any FAIL comes before anything that is not a FAIL; within each group examples are ordered
    by ascending margin, and examples without a finite margin go last.
    """

    def key(item: tuple[int, dict]) -> tuple[int, int, float, int]:
        i, ex = item
        m = _num(ex.get("margin"))
        return (ex.get("verdict") != "FAIL", m is None, m if m is not None else 0.0, i)

    return sorted(enumerate(examples), key=key)


def _slugs(theorems: Sequence[dict]) -> list[str]:
    """File-name and anchor-safe, unique stems for the theorems (from their ids)."""
    out: list[str] = []
    for k, th in enumerate(theorems):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(th.get("id") or f"theorem{k + 1}")).strip("._")
        base = base or f"theorem{k + 1}"
        slug, n = base, 2
        while slug in out:
            slug, n = f"{base}_{n}", n + 1
        out.append(slug)
    return out


# --------------------------------------------------------------------------------------------
# figures


@dataclass
class _Figure:
    """One rendered figure: PNG bytes plus the caption both views print under it."""

    kind: str
    title: str
    caption: str
    png: bytes | None = None
    error: str | None = None
    md_path: str | None = None


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


def _fig_spectra(examples: list[dict]) -> _Figure | None:
    picked = []
    for i, ex in _worst_first(examples):
        sv = _series(ex, "singular_values")
        layers = [_floats(layer) for layer in sv] if isinstance(sv, list) else []
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
        ax.set_title(f"#{i} {_verdict(ex.get('verdict'))} margin {_fmt(ex.get('margin'))}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("singular value", fontsize=8)
    if len(picked[0][2]) <= MAX_LEGEND:
        axes[0][0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return _Figure(
        "spectra",
        "Singular value spectra",
        f"Singular values of each layer W_k (descending) for the {len(picked)} worst-margin "
        f"example(s) that recorded them; the panel titles give the example number."
        + _clip_note(clipped, floor),
        _png(fig),
    )


def _fig_norms(examples: list[dict]) -> _Figure | None:
    rows = [(i, _floats(_series(ex, "layer_norms"))) for i, ex in enumerate(examples)]
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
    return _Figure(
        "norms",
        "Norms per layer",
        f"Norm of each layer's weights for the {len(rows)} example(s) that recorded them "
        "(one line per example).",
        _png(fig),
    )


def _fig_alignment(examples: list[dict], controls: list[dict]) -> _Figure | None:
    groups: dict[str, tuple[list[float], list[float]]] = {
        "examples": ([], []),
        "controls": ([], []),
    }
    for name, entries in (("examples", examples), ("controls", controls)):
        for entry in entries:
            rs, cs = _series(entry, "residuals"), _series(entry, "cosines")
            if not isinstance(rs, list) or not isinstance(cs, list):
                continue
            for r, c in zip(rs, cs, strict=False):
                r, c = _num(r), _num(c)
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
    return _Figure(
        "alignment",
        "Alignment vs residual",
        "Each point is one layer of one example or control: misalignment 1 − cos(W_k, −g_k) "
        "against the stationarity residual r_k. The alignment bound cos ≥ √(1−r²) puts points "
        "on or below the dashed curve, up to float64 rounding (dotted line, 100 ulp)."
        + _clip_note(clipped_x, fx, "residual(s)")
        + _clip_note(clipped_y, fy, "misalignment value(s)"),
        _png(fig),
    )


def _fig_margins(examples: list[dict]) -> _Figure | None:
    rows = [(i, ex, _num(ex.get("margin"))) for i, ex in enumerate(examples)]
    have = sorted([(m, i, _verdict(ex.get("verdict"))) for i, ex, m in rows if m is not None])
    if not have:
        return None
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    height = min(FIG_SIZE[1] + 0.12 * max(0, len(have) - 20), 9.0)
    fig, ax = plt.subplots(figsize=(FIG_SIZE[0], height))
    ys = list(range(len(have)))
    colours = [VERDICT_COLOURS.get(v, "#57606a") for _, _, v in have]
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
    ax.legend(handles=[Patch(color=VERDICT_COLOURS.get(v, "#57606a"), label=v) for v in seen],
              fontsize=6)
    fig.tight_layout()
    missing = len(rows) - len(have)
    return _Figure(
        "margins",
        "Margins",
        "Example margins, worst at the top, coloured by verdict; negative means the measured "
        "value exceeded the bound."
        + (f" {missing} example(s) without a finite margin are not shown." if missing else ""),
        _png(fig),
    )


def _fig_trajectory(examples: list[dict], controls: list[dict]) -> _Figure | None:
    lines = []
    for i, ex in enumerate(examples):
        t = _floats(_series(ex, "trajectory"))
        if t:
            label = f"#{i} {_setting_text(ex.get('setting'), key_only=True)}".strip()
            lines.append((label, t, "-"))
    for ctl in controls:
        t = _floats(_series(ctl, "trajectory"))
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
    return _Figure(
        "trajectory",
        "Trajectory",
        f"Recorded per-step series of {len(lines)} example(s)/control(s) (dashed: controls)."
        + _clip_note(clipped, floor),
        _png(fig),
    )


def _fig_plot_spec(spec: dict, index: int) -> _Figure | None:
    """A figure described in the results: ``{"kind": "lines"|"bars"|"contour", "title",
    "caption", ...}`` (see :data:`PLOT_SPEC`)."""
    import matplotlib.pyplot as plt

    kind = spec.get("kind")
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    if kind == "lines":
        for line in _dicts(spec.get("lines")):
            ax.plot(_floats(line.get("x")), _floats(line.get("y")), line.get("style", "-o"),
                    ms=3, lw=1, label=str(line.get("label", "")))
        for axis, setter in (("xscale", ax.set_xscale), ("yscale", ax.set_yscale)):
            if spec.get(axis) in ("log", "symlog"):
                setter(spec[axis])
        ax.legend(fontsize=6)
    elif kind == "bars":
        cats = [str(c) for c in spec.get("categories") or []]
        groups = _dicts(spec.get("groups"))
        width = 0.8 / max(len(groups), 1)
        for j, g in enumerate(groups):
            vals = [v if v is not None else math.nan for v in (g.get("values") or [])]
            ax.bar(np.arange(len(vals)) + j * width, vals, width, label=str(g.get("label", "")))
        ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, cats, rotation=30, ha="right")
        ax.legend(fontsize=6)
    elif kind == "contour":
        x, y = _floats(spec.get("x")), _floats(spec.get("y"))
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
    elif kind == "table":
        cols = [str(c) for c in spec.get("columns") or []]
        rows = [[str(c) for c in r] for r in spec.get("rows") or [] if isinstance(r, list)]
        if not cols or not rows or any(len(r) != len(cols) for r in rows):
            plt.close(fig)
            return None
        fig.set_size_inches(FIG_SIZE[0] * 1.4, 0.22 * (len(rows) + 2))
        ax.axis("off")
        ax.table(cellText=rows, colLabels=cols, loc="center").set_fontsize(6)
        fig.tight_layout()
        return _Figure(f"plot{index}", str(spec.get("title", f"Table {index}")),
                       str(spec.get("caption", "")), _png(fig))
    else:
        plt.close(fig)
        return None
    ax.set_xlabel(str(spec.get("xlabel", "")), fontsize=8)
    ax.set_ylabel(str(spec.get("ylabel", "")), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _Figure(f"plot{index}", str(spec.get("title", f"Figure {index}")),
                   str(spec.get("caption", "")), _png(fig))


def render_plot(spec: dict) -> bytes | None:
    """PNG bytes of one plot spec (:data:`PLOT_SPEC`), None when it has nothing to draw; for
    reports of their own (verify.sweep)."""
    fig = _fig_plot_spec(spec, 0)
    return None if fig is None else fig.png


def _theorem_figures(theorem: dict) -> list[_Figure]:
    """All figures for one theorem; a figure whose data breaks plotting becomes an error note."""
    examples, controls = _dicts(theorem.get("examples")), _dicts(theorem.get("controls"))
    makers = {
        "spectra": lambda: _fig_spectra(examples),
        "norms": lambda: _fig_norms(examples),
        "alignment": lambda: _fig_alignment(examples, controls),
        "margins": lambda: _fig_margins(examples),
        "trajectory": lambda: _fig_trajectory(examples, controls),
    }
    out = []
    for kind in FIGURE_KINDS:
        try:
            fig = makers[kind]()
        except Exception as exc:  # a broken figure must not cost the whole report
            import matplotlib.pyplot as plt

            plt.close("all")
            fig = _Figure(kind, kind, "", error=f"{type(exc).__name__}: {exc}")
        if fig is not None:
            out.append(fig)
    for i, spec in enumerate(_dicts(theorem.get("plots"))):
        try:
            fig = _fig_plot_spec(spec, i)
        except Exception as exc:  # a broken figure must not cost the whole report
            import matplotlib.pyplot as plt

            plt.close("all")
            fig = _Figure(f"plot{i}", str(spec.get("title", "plot")), "",
                          error=f"{type(exc).__name__}: {exc}")
        if fig is not None:
            if spec.get("lead") is True:
                fig.kind = f"lead{i}"
            out.append(fig)
    return out


def _latex_png(latex: str) -> bytes | None:
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


# --------------------------------------------------------------------------------------------
# a tiny document model, rendered twice (Markdown and HTML) so both views say the same thing


@dataclass(frozen=True)
class _Cell:
    """A table cell. ``kind``: text, num, verdict, check, code or link (to ``anchor``)."""

    text: str
    kind: str = "text"
    anchor: str | None = None


@dataclass
class _Heading:
    level: int
    text: str
    anchor: str | None = None
    verdict: str | None = None


@dataclass
class _Para:
    text: str
    label: str | None = None
    style: str | None = None  # ok | bad | warn | muted | footer
    verdict: str | None = None


@dataclass
class _List:
    items: list[str]


@dataclass
class _Table:
    headers: list[str]
    rows: list[list[_Cell]]


@dataclass
class _Math:
    latex: str
    png: bytes | None


@dataclass
class _Fold:
    """Collapsible in HTML (``<details>``), a labelled section in Markdown."""

    summary: str
    blocks: list[Any] = field(default_factory=list)


@dataclass
class _Toc:
    entries: list[tuple[str, str, str]]  # anchor, text, verdict


def _num_cell(x: object) -> _Cell:
    return _Cell(_fmt(x), "num")


def _counts(theorem: dict) -> dict[str, int]:
    raw = _dict(theorem.get("counts"))
    if raw:
        return {v: int(raw[v]) if _num(raw.get(v)) is not None else 0 for v in VERDICTS}
    out = dict.fromkeys(VERDICTS, 0)
    for ex in _dicts(theorem.get("examples")):
        if ex.get("verdict") in out:
            out[ex["verdict"]] += 1
    return out


def _controls_ok(theorem: dict) -> str:
    controls = _dicts(theorem.get("controls"))
    if not controls:
        return "—"
    return f"{sum(1 for c in controls if c.get('as_expected') is True)}/{len(controls)}"


def _certificate_text(cert: object) -> str:
    c = _dict(cert)
    if not c:
        return "—"
    parts = [f"{_fmt(c.get('max_residual'))} ({_fmt(c.get('residual_kind'))})"]
    if c.get("kinks") is not None:
        parts.append(f"kinks {_fmt(c.get('kinks'))}")
    parts.append(f"certified {_check(c.get('certified'))}")
    return ", ".join(parts)


def _entry_detail_line(label: str, entry: dict) -> str | None:
    """Everything about one example/control not already in its table row, on one line."""
    bits = []
    cert = _dict(entry.get("certificate"))
    if cert:
        bits.append("certificate: " + ", ".join(f"{k}={_fmt(v)}" for k, v in cert.items()))
    details = _dict(entry.get("details"))
    if details:
        bits.append("details: " + ", ".join(f"{k}={_fmt(v)}" for k, v in details.items()))
    if not bits:
        return None
    return f"{label} ({_verdict(entry.get('verdict'))}, {_fmt_seconds(entry.get('seconds'))}): " + (
        "; ".join(bits)
    )


def _run_blocks(results: dict) -> list[Any]:
    run = _dict(results.get("run"))
    rows: list[list[_Cell]] = []

    def add(name: str, value: object, kind: str = "text") -> None:
        rows.append([_Cell(name), _Cell(_fmt(value), kind)])

    order = ("started", "finished")
    for key in order:
        add(key, run.get(key))
    rows.append([_Cell("wall time"), _Cell(_fmt_seconds(run.get("wall_seconds")))])
    for key in ("seed", "scale", "device", "dtype", "threads", "examples"):
        add(key, run.get(key))
    requested = run.get("theorems_requested")
    add("theorems requested", ", ".join(_strs(requested)) if requested is not None else None)
    add("git commit", run.get("git_commit"), "code")
    add("platform", run.get("platform"))
    for name, version in _dict(run.get("versions")).items():
        add(f"version: {name}", version)
    add("command", run.get("command"), "code")
    add("ok", run.get("ok"))
    add("interrupted", run.get("interrupted"))
    shown = {*order, "wall_seconds", "seed", "scale", "device", "dtype", "threads", "examples",
             "theorems_requested", "git_commit", "platform", "versions", "command", "ok",
             "interrupted"}
    for key, value in run.items():
        if key not in shown:
            add(key, value)
    return [_Heading(2, "Run", "run"), _Table(["field", "value"], rows)]


def _status_blocks(results: dict, theorems: list[dict]) -> list[Any]:
    run = _dict(results.get("run"))
    bad = [str(t.get("id", "?")) for t in theorems if t.get("behaved") is False]
    blocks: list[Any] = []
    if run.get("ok") is True and not bad:
        blocks.append(_Para("all theorems behaved as expected", "Status", "ok"))
    elif bad:
        blocks.append(_Para("did not behave as expected: " + ", ".join(bad), "Status", "bad"))
    elif run.get("ok") is False:
        blocks.append(_Para("the run reported a failure (ok = false)", "Status", "bad"))
    else:
        blocks.append(_Para("unknown (the run did not record ok)", "Status", "warn"))
    if run.get("interrupted") is True:
        blocks.append(_Para("the run was interrupted; the results below are partial.",
                            "Interrupted", "warn"))
    reported = {str(t.get("id")) for t in theorems}
    missing = [t for t in _strs(run.get("theorems_requested")) if t not in reported]
    if missing:
        blocks.append(_Para(", ".join(missing), "Requested but not reported", "warn"))
    reg = _dict(results.get("regression"))
    if reg:
        rows = _dicts(reg.get("diffs"))
        label = f"Regression against {reg.get('baseline', '?')}"
        if not rows:
            blocks.append(_Para("no change beyond the stated tolerances", label, "ok"))
        else:
            blocks.append(_Para(f"{len(rows)} change(s): see the table", label, "bad"))
            heads = ["theorem", "entry", "what", "baseline", "now", "allowed"]
            blocks.append(_Table(heads, [[_Cell(str(r.get(h, "—"))) for h in heads]
                                         for r in rows]))
    return blocks


def _summary_blocks(theorems: list[dict], slugs: list[str]) -> list[Any]:
    rows = []
    for th, slug in zip(theorems, slugs, strict=True):
        counts = _counts(th)
        rows.append([
            _Cell(_fmt(th.get("id")), "link", f"theorem-{slug}"),
            _Cell(_fmt(th.get("title"))),
            _Cell(_verdict(th.get("verdict")), "verdict"),
            _Cell(_check(th.get("behaved")), "check"),
            *(_Cell(str(counts[v]), "num") for v in VERDICTS),
            _Cell(_controls_ok(th), "num"),
            _Cell(_fmt_seconds(th.get("seconds")), "num"),
        ])
    headers = ["id", "title", "verdict", "behaved", *VERDICTS, "controls as expected", "seconds"]
    if not rows:
        return [_Heading(2, "Summary", "summary"), _Para("No theorems were reported.")]
    return [_Heading(2, "Summary", "summary"), _Table(headers, rows)]


def _examples_blocks(examples: list[dict]) -> list[Any]:
    blocks: list[Any] = [_Heading(3, f"Examples ({len(examples)})")]
    if not examples:
        return [*blocks, _Para("No examples were run.", style="muted")]
    rows = []
    for i, ex in _worst_first(examples):
        rows.append([
            _Cell(f"#{i}", "num"),
            _Cell(_verdict(ex.get("verdict")), "verdict"),
            _num_cell(ex.get("measured")),
            _num_cell(ex.get("bound")),
            _num_cell(ex.get("margin")),
            _Cell(_setting_text(ex.get("setting")) or "—", "code"),
            _Cell(_certificate_text(ex.get("certificate"))),
            _Cell(_fmt(ex.get("reason"))),
        ])
    headers = ["#", "verdict", "measured", "bound", "margin", "setting",
               "certificate: max residual (kind)", "reason"]
    blocks += [_Para("Sorted worst first (FAIL, then ascending margin).", style="muted"),
               _Table(headers, rows)]
    lines = [_entry_detail_line(f"#{i}", ex) for i, ex in _worst_first(examples)]
    lines = [x for x in lines if x]
    if lines:
        blocks.append(_Fold(f"Certificates and details of the examples ({len(lines)})",
                            [_List(lines)]))
    return blocks


def _controls_blocks(controls: list[dict]) -> list[Any]:
    blocks: list[Any] = [_Heading(3, f"Controls ({len(controls)})")]
    if not controls:
        return [*blocks, _Para("No controls were run.", style="muted")]
    rows = []
    for c in controls:
        rows.append([
            _Cell(_fmt(c.get("name")), "code"),
            _Cell(_fmt(c.get("description"))),
            _Cell(_verdict(c.get("expected")), "verdict"),
            _Cell(_verdict(c.get("verdict")), "verdict"),
            _Cell(_check(c.get("as_expected")), "check"),
            _num_cell(c.get("measured")),
            _num_cell(c.get("bound")),
            _num_cell(c.get("margin")),
            _Cell(_fmt(c.get("reason"))),
        ])
    headers = ["name", "description", "expected", "verdict", "as expected", "measured", "bound",
               "margin", "reason"]
    blocks.append(_Table(headers, rows))
    lines = []
    for c in controls:
        setting = _setting_text(c.get("setting"))
        line = _entry_detail_line(f"control {_fmt(c.get('name'))}", c)
        if setting:
            line = (line or f"control {_fmt(c.get('name'))}") + f"; setting: {setting}"
        if line:
            lines.append(line)
    if lines:
        blocks.append(_Fold(f"Settings, certificates and details of the controls ({len(lines)})",
                            [_List(lines)]))
    return blocks


def _theorem_blocks(theorem: dict, slug: str, figures: list[_Figure]) -> list[Any]:
    tid, title = _fmt(theorem.get("id")), _fmt(theorem.get("title"))
    verdict = _verdict(theorem.get("verdict"))
    blocks: list[Any] = [_Heading(2, f"{tid} — {title}", f"theorem-{slug}", verdict)]
    blocks.append(_Para(_fmt(theorem.get("source")), "Source"))
    summary = theorem.get("summary")
    blocks.append(_Para(_fmt(summary) if summary else "", "Verdict", verdict=verdict))
    counts = _counts(theorem)
    blocks.append(_Para(
        " · ".join(f"{v} {counts[v]}" for v in VERDICTS)
        + f"; controls as expected {_controls_ok(theorem)}"
        + f"; behaved {_check(theorem.get('behaved'))}"
        + f"; time {_fmt_seconds(theorem.get('seconds'))}",
        "Counts",
    ))
    lead = [f for f in figures if f.kind.startswith("lead")]  # a plot spec's "lead": true
    figures = [f for f in figures if not f.kind.startswith("lead")]
    blocks += lead
    blocks.append(_Para(_fmt(theorem.get("statement")), "Statement"))
    latex = theorem.get("statement_latex")
    if isinstance(latex, str) and latex.strip():
        blocks.append(_Math(latex, None))  # the HTML writer typesets it
    assumptions = _strs(theorem.get("assumptions"))
    if assumptions:
        blocks += [_Heading(3, "Assumptions"), _List(assumptions)]
    notes = _strs(theorem.get("notes"))
    if notes:
        blocks += [_Heading(3, "Notes"), _List(notes)]
    blocks += _examples_blocks(_dicts(theorem.get("examples")))
    blocks += _controls_blocks(_dicts(theorem.get("controls")))
    blocks.append(_Heading(3, "Figures"))
    if not figures:
        blocks.append(_Para("No recorded series to plot.", style="muted"))
    blocks += figures
    return blocks


def _cost_blocks(theorems: list[dict]) -> list[Any]:
    """Time per step and peak memory of every trained network's first phase (largest first),
    and where it left the residual: the large scale's question (float32/TF32, then float64)."""
    rows = []
    for th in theorems:
        for kind, entries in (("example", th.get("examples")), ("control", th.get("controls"))):
            for i, e in enumerate(_dicts(entries)):
                cert = _dict(e.get("certificate"))
                cost = _dict(cert.get("cost"))
                if not cost:
                    continue
                peak = _num(cost.get("peak_memory_bytes"))
                rows.append((_num(cost.get("parameters")) or 0.0, [
                    _Cell(f"{_fmt(th.get('id'))} {kind} #{i}"),
                    _Cell(_setting_text(e.get("setting"), key_only=True) or "—", "code"),
                    _num_cell(cost.get("parameters")),
                    _Cell(f"{_fmt(cost.get('precision'))} on {_fmt(cost.get('device'))}"),
                    _num_cell(cost.get("steps")),
                    _num_cell(cost.get("seconds_per_step")),
                    _Cell(f"{peak / 2**20:.0f} MiB ({_fmt(cost.get('memory'))})"
                          if peak is not None else "—"),
                    _num_cell(cost.get("residual_float64")),
                    _num_cell(cert.get("max_residual")),
                    _Cell(_fmt_seconds(cert.get("train_seconds")), "num"),
                ]))
    if not rows:
        return []
    rows.sort(key=lambda r: -r[0])
    heads = ["entry", "setting", "parameters", "first phase", "steps", "s/step", "peak memory",
             "r after first phase (float64)", "r certified (float64)", "train time"]
    return [_Fold(f"Training cost ({len(rows)} networks, largest first)", [
        _Para("First phase = the GD/SGD steps at the setting's precision; polishing and the "
              "certificate are float64. Peak memory on a CPU is the worker process's peak "
              "RSS so far (an upper bound); on a GPU, the CUDA allocator's peak during the "
              "phase.", style="muted"),
        _Table(heads, [r for _, r in rows])])]


def _document(results: dict, figures: dict[str, list[_Figure]]) -> list[Any]:
    theorems = _dicts(results.get("theorems"))
    slugs = _slugs(theorems)
    blocks: list[Any] = [_Heading(1, "Verification report")]
    blocks += _status_blocks(results, theorems)
    if theorems:
        blocks.append(_Toc([
            (f"theorem-{s}", f"{_fmt(t.get('id'))} — {_fmt(t.get('title'))}",
             _verdict(t.get("verdict")))
            for t, s in zip(theorems, slugs, strict=True)
        ]))
    blocks += _summary_blocks(theorems, slugs)
    blocks += _cost_blocks(theorems)
    blocks += _run_blocks(results)
    for th, slug in zip(theorems, slugs, strict=True):
        blocks += _theorem_blocks(th, slug, figures.get(slug, []))
    blocks.append(_Para(
        f"Rendered by verify.report from {RESULTS_NAME} (schema {_fmt(results.get('schema'))}). "
        "Numbers are shown to 3 significant digits; — means missing or not finite.",
        style="footer",
    ))
    return blocks


# --------------------------------------------------------------------------------------------
# Markdown


_MD_SPECIAL = re.compile(r"([\\`*|<])")  # enough to keep text literal; `_`, `[`, `>` stay readable


def _md(text: str) -> str:
    """Text safe inside Markdown (tables included): specials escaped, newlines flattened."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split("\n")))


def _md_code(text: str) -> str:
    t = " ".join(text.split("\n")).replace("|", "\\|")
    return f"`` {t} ``" if "`" in t else f"`{t}`"


def _md_cell(cell: _Cell) -> str:
    if cell.kind == "verdict":
        return f"**{_md(cell.text)}**" if cell.text != "—" else "—"
    if cell.kind == "code" and cell.text != "—":
        return _md_code(cell.text)
    if cell.kind == "link" and cell.anchor:
        return f"[{_md(cell.text)}](#{cell.anchor})"
    return _md(cell.text)


def _md_blocks(blocks: list[Any]) -> list[str]:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, _Heading):
            if b.anchor:
                out.append(f'<a id="{b.anchor}"></a>\n')
            suffix = f" [{b.verdict}]" if b.verdict else ""
            out.append(f"{'#' * b.level} {_md(b.text)}{suffix}\n")
        elif isinstance(b, _Para):
            text = _md(b.text)
            if b.verdict:
                text = f"**{_md(b.verdict)}**" + (f" — {text}" if text else "")
            if b.label:
                text = f"**{_md(b.label)}:** {text}"
            if b.style in ("bad", "warn"):
                text = "> " + text
            elif b.style in ("muted", "footer"):
                text = f"*{text}*"
            out.append(text + "\n")
        elif isinstance(b, _List):
            out.append("\n".join(f"- {_md(item)}" for item in b.items) + "\n")
        elif isinstance(b, _Table):
            kinds = [c.kind for c in b.rows[0]] if b.rows else ["text"] * len(b.headers)
            lines = ["| " + " | ".join(_md(h) for h in b.headers) + " |",
                     "|" + "|".join("---:" if k == "num" else "---" for k in kinds) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines) + "\n")
        elif isinstance(b, _Math):
            out.append("$$\n" + b.latex.strip().strip("$").strip() + "\n$$\n")
        elif isinstance(b, _Fold):
            out.append(f"**{_md(b.summary)}**\n")
            out += _md_blocks(b.blocks)
        elif isinstance(b, _Toc):
            out.append("**Contents:**\n\n" + "\n".join(
                f"- [{_md(text)}](#{anchor}) — **{_md(verdict)}**"
                for anchor, text, verdict in b.entries
            ) + "\n")
        elif isinstance(b, _Figure):
            out.append(f"#### {_md(b.title)}\n")
            if b.error:
                out.append(f"> figure {_md(b.kind)} could not be drawn: {_md(b.error)}\n")
            elif b.md_path:
                out.append(f"![{_md(b.title)}]({b.md_path})\n\n*{_md(b.caption)}*\n")
    return out


# --------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 max-width:1180px;margin:1.5em auto 4em;padding:0 1.2em;color:#1f2328;line-height:1.45;
 background:#fff;font-size:15px}
h1{font-size:1.8em;border-bottom:2px solid #d0d7de;padding-bottom:.25em;margin-bottom:.5em}
h2{font-size:1.4em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2.2em}
h3{font-size:1.1em;margin:1.4em 0 .4em}
h4{font-size:1em;margin:.2em 0 .3em}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
p{margin:.35em 0}
.label{font-weight:600;margin-right:.35em}
.muted{color:#57606a;font-size:.9em}
.footer{margin-top:3em;padding-top:.6em;border-top:1px solid #d0d7de}
.box{padding:.55em .9em;border-radius:6px;border:1px solid;margin:.6em 0}
.ok{background:#dafbe1;border-color:#1a7f37}
.bad{background:#ffebe9;border-color:#cf222e}
.warn{background:#fff8c5;border-color:#bf8700}
.scroll{overflow-x:auto;margin:.5em 0 1em}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #d0d7de;padding:.28em .55em;vertical-align:top;text-align:left}
th{background:#f6f8fa;font-weight:600;white-space:nowrap}
tbody tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.check{text-align:center;font-weight:700}
.yes{color:#1a7f37}.no{color:#cf222e}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;
 background:#f6f8fa;padding:.05em .3em;border-radius:4px;word-break:break-word}
.badge{display:inline-block;padding:.08em .6em;border-radius:1em;color:#fff;font-weight:600;
 font-size:.78em;letter-spacing:.02em;vertical-align:middle;white-space:nowrap}
.v-PASS{background:#1a7f37}.v-FAIL{background:#cf222e}.v-INCONCLUSIVE{background:#bf8700}
.v-VACUOUS{background:#6e7781}.v-other{background:#8c959f}
h2 .badge{font-size:.6em;margin-left:.5em}
.math{margin:.5em 0 .8em;padding:.4em .8em;background:#f6f8fa;border-radius:6px;
 display:inline-block}
.math img{display:block;max-width:100%}
ul{margin:.3em 0 .8em;padding-left:1.6em}li{margin:.15em 0}
details{margin:.3em 0 1em;font-size:.88em}
summary{cursor:pointer;color:#0969da}
details li{word-break:break-word}
.toc{border:1px solid #d0d7de;border-radius:6px;padding:.5em 1em;background:#f6f8fa;
 display:inline-block;min-width:40%}
.toc ul{list-style:none;padding-left:.2em;margin:.2em 0}
.figs{display:flex;flex-wrap:wrap;gap:1em 1.5em}
figure{margin:0;flex:0 1 560px}
figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{font-size:.82em;color:#57606a}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _badge(verdict: str) -> str:
    if verdict == "—":
        return "—"
    cls = f"v-{verdict}" if verdict in VERDICTS else "v-other"
    return f'<span class="badge {cls}">{_e(verdict)}</span>'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _html_cell(cell: _Cell) -> str:
    if cell.kind == "verdict":
        return f"<td>{_badge(cell.text)}</td>"
    if cell.kind == "check":
        cls = {"✓": "yes", "✗": "no"}.get(cell.text, "")
        return f'<td class="check {cls}">{_e(cell.text)}</td>'
    if cell.kind == "num":
        return f'<td class="num">{_e(cell.text)}</td>'
    if cell.kind == "code" and cell.text != "—":
        return f"<td><code>{_e(cell.text)}</code></td>"
    if cell.kind == "link" and cell.anchor:
        return f'<td><a href="#{_e(cell.anchor)}">{_e(cell.text)}</a></td>'
    return f"<td>{_e(cell.text)}</td>"


def _html_blocks(blocks: list[Any]) -> list[str]:
    out: list[str] = []
    figs: list[str] = []

    def flush() -> None:
        if figs:
            out.append('<div class="figs">' + "".join(figs) + "</div>")
            figs.clear()

    for b in blocks:
        if not isinstance(b, _Figure):
            flush()
        if isinstance(b, _Heading):
            anchor = f' id="{_e(b.anchor)}"' if b.anchor else ""
            badge = _badge(b.verdict) if b.verdict else ""
            out.append(f"<h{b.level}{anchor}>{_e(b.text)}{badge}</h{b.level}>")
        elif isinstance(b, _Para):
            inner = _e(b.text)
            if b.verdict:
                inner = _badge(b.verdict) + (f" {inner}" if inner else "")
            if b.label:
                inner = f'<span class="label">{_e(b.label)}:</span>{inner}'
            cls = {"ok": "box ok", "bad": "box bad", "warn": "box warn", "muted": "muted",
                   "footer": "muted footer"}
            attr = f' class="{cls[b.style]}"' if b.style in cls else ""
            out.append(f"<p{attr}>{inner}</p>")
        elif isinstance(b, _List):
            out.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, _Table):
            head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
            body = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in b.rows)
            out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                       f"<tbody>{body}</tbody></table></div>")
        elif isinstance(b, _Math):
            png = _latex_png(b.latex)
            if png is not None:
                out.append(f'<div class="math">{_img(png, b.latex)}</div>')
            else:
                out.append(f'<p><span class="label">LaTeX:</span><code>{_e(b.latex)}</code></p>')
        elif isinstance(b, _Fold):
            inner = "".join(_html_blocks(b.blocks))
            out.append(f"<details><summary>{_e(b.summary)}</summary>{inner}</details>")
        elif isinstance(b, _Toc):
            items = "".join(
                f'<li><a href="#{_e(a)}">{_e(t)}</a> {_badge(v)}</li>' for a, t, v in b.entries
            )
            out.append(f'<nav class="toc"><strong>Contents</strong><ul>{items}</ul></nav>')
        elif isinstance(b, _Figure):
            if b.error:
                flush()
                out.append(f'<p class="box warn">figure {_e(b.kind)} could not be drawn: '
                           f"{_e(b.error)}</p>")
            elif b.png:
                figs.append(f"<figure><h4>{_e(b.title)}</h4>{_img(b.png, b.title)}"
                            f"<figcaption>{_e(b.caption)}</figcaption></figure>")
    flush()
    return out


def _html_document(blocks: list[Any]) -> str:
    body = "\n".join(_html_blocks(blocks))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Verification report</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# entry point


def render(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` (with ``figures/*.png``) and ``report.html`` into ``out_dir``.

    Returns ``(md_path, html_path)``. Both files carry the same content; the HTML embeds its
    figures and the typeset statements so it is readable as a single file. Figures from an
    earlier render that this one does not produce are removed so the folder never shows
    stale plots.
    """
    out_dir = Path(out_dir)
    results = jsonable(results, strict=False) if isinstance(results, dict) else {}
    theorems = _dicts(results.get("theorems"))
    fig_dir = out_dir / FIGURES_DIR
    figures: dict[str, list[_Figure]] = {}
    for th, slug in zip(theorems, _slugs(theorems), strict=True):
        figs = _theorem_figures(th)
        made = set()
        for fig in figs:
            if fig.png:
                name = f"{slug}_{fig.kind}.png"
                atomic_write_bytes(fig_dir / name, fig.png)
                fig.md_path = f"{FIGURES_DIR}/{name}"
                made.add(fig.kind)
        for kind in set(FIGURE_KINDS) - made:
            (fig_dir / f"{slug}_{kind}.png").unlink(missing_ok=True)
        figures[slug] = figs
    blocks = _document(results, figures)
    md_path, html_path = out_dir / MD_NAME, out_dir / HTML_NAME
    atomic_write_bytes(md_path, "\n".join(_md_blocks(blocks)).encode("utf-8"))
    atomic_write_bytes(html_path, _html_document(blocks).encode("utf-8"))
    return md_path, html_path
