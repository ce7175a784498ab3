"""Human-readable reports of a verification run, rendered from ``results.json`` alone.

A report can be regenerated, diffed or rendered on another machine without rerunning
anything. :func:`render` writes two views with the same content: ``report.md`` (figures as
PNG files under ``figures/``, linked relatively) and ``report.html``, a single
self-contained page (inline CSS, figures embedded as base64 PNG, formulas as MathML, a
CSS-only filter by verdict; no scripts and no external URLs) that can be mailed or archived
as one file.

The package, in the order the data flows:

* :mod:`.values` — reading and formatting untrusted JSON values ("—" for missing);
* :mod:`.plots` and :mod:`.figures` — matplotlib figures: theorem plot specs
  (:data:`PLOT_SPEC`) and the drawing helpers, then the standard figures;
* :mod:`.mathml` — formulas as MathML and Unicode text (a LaTeX subset);
* :mod:`.status` and :mod:`.sections` — results → the blocks of :mod:`.document`, the one
  document model (the banner and the changes since the baseline in :mod:`.status`);
* :mod:`.spec` — the theorems' specifications as Markdown (``docs/theorems.md``);
* :mod:`.markdown` and :mod:`.html` — the two renderers of the same blocks
  (``page.html`` and ``style.css`` are the page shell and stylesheet, as files).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from verify.report.document import Figure
from verify.report.figures import FIGURE_KINDS, PLOT_SPEC, render_plot, theorem_figures
from verify.report.html import to_html
from verify.report.markdown import to_markdown
from verify.report.sections import SPEC_DOC, document
from verify.report.values import dicts, slugs
from verify.run.records import Results
from verify.run.results import atomic_write_bytes, jsonable

__all__ = ["FIGURES_DIR", "HTML_NAME", "MD_NAME", "PLOT_SPEC", "render", "render_plot"]

MD_NAME = "report.md"
HTML_NAME = "report.html"
FIGURES_DIR = "figures"


def spec_link(out_dir: Path) -> str | None:
    """``docs/theorems.md`` of the checkout this package runs from, relative to
    ``out_dir``; None for an installed package (the report then names the file only)."""
    doc = Path(__file__).resolve().parents[2] / SPEC_DOC
    if not doc.is_file():
        return None
    return Path(os.path.relpath(doc, Path(out_dir).resolve())).as_posix()


def render(results: Results | dict, out_dir: Path, previous: Results | dict | None = None,
           previous_name: str = "the previous run") -> tuple[Path, Path]:
    """Write ``report.md`` (with ``figures/*.png``) and ``report.html`` into ``out_dir``.

    Returns ``(md_path, html_path)``. Both files carry the same content; the HTML embeds its
    figures and formulas so it is readable as a single file. ``previous``: an earlier run's
    results, listed as changes when the results carry no regression. Figures from an
    earlier render that this one does not produce are removed so the folder never shows
    stale plots.
    """
    out_dir = Path(out_dir)
    if isinstance(results, Results):
        results = results.to_json()
    if isinstance(previous, Results):
        previous = previous.to_json()
    data = jsonable(results, strict=False) if isinstance(results, dict) else {}
    theorems = dicts(data.get("theorems"))
    fig_dir = out_dir / FIGURES_DIR
    figures: dict[str, list[Figure]] = {}
    for th, slug in zip(theorems, slugs(theorems), strict=True):
        figs = []
        for fig in theorem_figures(th):
            if fig.png:
                name = f"{slug}_{fig.kind}.png"
                atomic_write_bytes(fig_dir / name, fig.png)
                fig = replace(fig, path=f"{FIGURES_DIR}/{name}")
            figs.append(fig)
        made = {f.kind for f in figs if f.path}
        for kind in set(FIGURE_KINDS) - made:
            (fig_dir / f"{slug}_{kind}.png").unlink(missing_ok=True)
        figures[slug] = figs
    blocks = document(data, figures, previous=previous, previous_name=previous_name,
                      spec=spec_link(out_dir))
    md_path, html_path = out_dir / MD_NAME, out_dir / HTML_NAME
    atomic_write_bytes(md_path, to_markdown(blocks).encode("utf-8"))
    atomic_write_bytes(html_path, to_html(blocks).encode("utf-8"))
    return md_path, html_path
