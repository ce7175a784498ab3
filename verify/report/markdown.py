"""The Markdown view of the document (``report.md``).

Figures are linked as PNG files (``Figure.path``, relative to the report); formulas are
``$$`` blocks; text is escaped just enough to stay literal (tables included) while staying
readable as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
    flat,
)

_SPECIAL = re.compile(r"([\\`*|<])")  # enough to keep text literal; `_`, `[`, `>` stay readable


def escape(text: str) -> str:
    """Text safe inside Markdown (tables included): specials escaped, newlines flattened."""
    return _SPECIAL.sub(r"\\\1", flat(text))


def _code(text: str) -> str:
    t = flat(text).replace("|", "\\|")
    return f"`` {t} ``" if "`" in t else f"`{t}`"


def _cell(cell: Cell) -> str:
    if cell.kind == "verdict":
        return f"**{escape(cell.text)}**" if cell.text != "—" else "—"
    if cell.kind == "code" and cell.text != "—":
        return _code(cell.text)
    if cell.kind == "link" and cell.anchor:
        return f"[{escape(cell.text)}](#{cell.anchor})"
    return escape(cell.text)


def _paragraph(b: Paragraph) -> str:
    text = escape(b.text)
    if b.verdict:
        text = f"**{escape(b.verdict)}**" + (f" — {text}" if text else "")
    if b.label:
        text = f"**{escape(b.label)}:** {text}"
    if b.style in ("bad", "warn"):
        text = "> " + text
    elif b.style in ("muted", "footer"):
        text = f"*{text}*"
    return text + "\n"


def _table(b: Table) -> str:
    kinds = [c.kind for c in b.rows[0]] if b.rows else ["text"] * len(b.headers)
    lines = ["| " + " | ".join(escape(h) for h in b.headers) + " |",
             "|" + "|".join("---:" if k == "num" else "---" for k in kinds) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in b.rows]
    return "\n".join(lines) + "\n"


def _figure(b: Figure) -> list[str]:
    out = [f"#### {escape(b.title)}\n"]
    if b.error:
        out.append(f"> {escape(b.failure)}\n")
    elif b.path:
        out.append(f"![{escape(b.title)}]({b.path})\n\n*{escape(b.caption)}*\n")
    return out


def blocks_md(blocks: Iterable[Block]) -> list[str]:
    """One Markdown chunk per block (a Fold gives its title and then its blocks)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            if b.anchor:
                out.append(f'<a id="{b.anchor}"></a>\n')
            suffix = f" [{b.verdict}]" if b.verdict else ""
            out.append(f"{'#' * b.level} {escape(b.text)}{suffix}\n")
        elif isinstance(b, Paragraph):
            out.append(_paragraph(b))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {escape(item)}" for item in b.items) + "\n")
        elif isinstance(b, Table):
            out.append(_table(b))
        elif isinstance(b, Math):
            out.append(f"$$\n{b.source}\n$$\n")
        elif isinstance(b, Fold):
            out.append(f"**{escape(b.summary)}**\n")
            out += blocks_md(b.blocks)
        elif isinstance(b, Contents):
            out.append("**Contents:**\n\n" + "\n".join(
                f"- [{escape(text)}](#{anchor}) — **{escape(verdict)}**"
                for anchor, text, verdict in b.entries
            ) + "\n")
        elif isinstance(b, Figure):
            out += _figure(b)
    return out


def to_markdown(blocks: Iterable[Block]) -> str:
    """The document as one Markdown file."""
    return "\n".join(blocks_md(blocks))
