"""The HTML view of the document (``report.html``): one self-contained page.

The page shell (``page.html``, a :class:`string.Template`) and the stylesheet
(``style.css``) are package files; figures and typeset formulas are embedded as base64
PNG, so the page has no scripts and no external URLs and can be mailed or archived as one
file. All text is escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from functools import cache
from html import escape
from importlib import resources
from string import Template

from verify.report.document import (
    Block,
    Bullets,
    Cell,
    Contents,
    Figure,
    Fold,
    Heading,
    Math,
    Paragraph,
    Table,
)
from verify.report.values import VERDICTS

TITLE = "Verification report"
_PARAGRAPH_CLASS = {"ok": "box ok", "bad": "box bad", "warn": "box warn", "muted": "muted",
                    "footer": "muted footer"}


@cache
def _asset(name: str) -> str:
    return resources.files("verify.report").joinpath(name).read_text(encoding="utf-8")


def _e(text: str) -> str:
    return escape(text, quote=True)


def _badge(verdict: str) -> str:
    if verdict == "—":
        return "—"
    cls = f"v-{verdict}" if verdict in VERDICTS else "v-other"
    return f'<span class="badge {cls}">{_e(verdict)}</span>'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _cell(cell: Cell) -> str:
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


def _paragraph(b: Paragraph) -> str:
    inner = _e(b.text)
    if b.verdict:
        inner = _badge(b.verdict) + (f" {inner}" if inner else "")
    if b.label:
        inner = f'<span class="label">{_e(b.label)}:</span>{inner}'
    attr = f' class="{_PARAGRAPH_CLASS[b.style]}"' if b.style in _PARAGRAPH_CLASS else ""
    return f"<p{attr}>{inner}</p>"


def _table(b: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in b.rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _math(b: Math) -> str:
    if b.png is not None:
        return f'<div class="math">{_img(b.png, b.source)}</div>'
    return f'<p><span class="label">LaTeX:</span><code>{_e(b.source)}</code></p>'


def blocks_html(blocks: Iterable[Block]) -> list[str]:
    """One HTML fragment per block; consecutive drawn figures share one flowing row."""
    out: list[str] = []
    figs: list[str] = []

    def flush() -> None:
        if figs:
            out.append('<div class="figs">' + "".join(figs) + "</div>")
            figs.clear()

    for b in blocks:
        if isinstance(b, Figure) and b.png and not b.error:
            figs.append(f"<figure><h4>{_e(b.title)}</h4>{_img(b.png, b.title)}"
                        f"<figcaption>{_e(b.caption)}</figcaption></figure>")
            continue
        flush()
        if isinstance(b, Heading):
            anchor = f' id="{_e(b.anchor)}"' if b.anchor else ""
            badge = _badge(b.verdict) if b.verdict else ""
            out.append(f"<h{b.level}{anchor}>{_e(b.text)}{badge}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(_paragraph(b))
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            out.append(_table(b))
        elif isinstance(b, Math):
            out.append(_math(b))
        elif isinstance(b, Fold):
            inner = "".join(blocks_html(b.blocks))
            out.append(f"<details><summary>{_e(b.summary)}</summary>{inner}</details>")
        elif isinstance(b, Contents):
            items = "".join(f'<li><a href="#{_e(a)}">{_e(t)}</a> {_badge(v)}</li>'
                            for a, t, v in b.entries)
            out.append(f'<nav class="toc"><strong>Contents</strong><ul>{items}</ul></nav>')
        elif isinstance(b, Figure):  # not drawn: its title, and why
            out.append(f"<h4>{_e(b.title)}</h4>")
            if b.error:
                out.append(f'<p class="box warn">{_e(b.failure)}</p>')
    flush()
    return out


def to_html(blocks: Iterable[Block]) -> str:
    """The document as one page: ``page.html`` filled with ``style.css`` and the blocks."""
    return Template(_asset("page.html")).substitute(
        title=_e(TITLE), style=_asset("style.css"), body="\n".join(blocks_html(blocks)))
