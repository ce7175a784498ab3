"""Human-readable reports of a verification run, rendered from ``results.json`` alone.

A report can be regenerated, diffed or rendered on another machine without rerunning
anything. :func:`render` writes two views with the same content: ``report.md`` (figures as
PNG files under ``figures/``, linked relatively) and ``report.html``, a single
self-contained page (inline CSS, figures embedded as base64 PNG, no scripts and no external
URLs) that can be mailed or archived as one file.

The package, in the order the data flows:

* :mod:`.values` — reading and formatting untrusted JSON values ("—" for missing);
* :mod:`.figures` — matplotlib figures, and theorem plot specs (:data:`PLOT_SPEC`);
* :mod:`.sections` — results → the blocks of :mod:`.document`, the one document model;
* :mod:`.markdown` and :mod:`.html` — the two renderers of the same blocks
  (``page.html`` and ``style.css`` are the page shell and stylesheet, as files).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from verify.report.document import Figure
from verify.report.figures import FIGURE_KINDS, PLOT_SPEC, render_plot, theorem_figures
from verify.report.html import to_html
from verify.report.markdown import to_markdown
from verify.report.sections import document
from verify.report.values import dicts, slugs
from verify.run.records import Results
from verify.run.results import atomic_write_bytes, jsonable

__all__ = ["FIGURES_DIR", "HTML_NAME", "MD_NAME", "PLOT_SPEC", "render", "render_plot"]

MD_NAME = "report.md"
HTML_NAME = "report.html"
FIGURES_DIR = "figures"


def render(results: Results | dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` (with ``figures/*.png``) and ``report.html`` into ``out_dir``.

    Returns ``(md_path, html_path)``. Both files carry the same content; the HTML embeds its
    figures and the typeset statements so it is readable as a single file. Figures from an
    earlier render that this one does not produce are removed so the folder never shows
    stale plots.
    """
    out_dir = Path(out_dir)
    if isinstance(results, Results):
        results = results.to_json()
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
    blocks = document(data, figures)
    md_path, html_path = out_dir / MD_NAME, out_dir / HTML_NAME
    atomic_write_bytes(md_path, to_markdown(blocks).encode("utf-8"))
    atomic_write_bytes(html_path, to_html(blocks).encode("utf-8"))
    return md_path, html_path
