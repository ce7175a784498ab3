"""The report's one document model: a list of blocks, rendered twice.

:mod:`verify.report.sections` turns results into blocks; :mod:`verify.report.markdown`
and :mod:`verify.report.html` each render the same blocks, so the two views say the same
thing by construction (tested: every text of the document appears in both, see
:func:`texts`). A renderer may style a block but never adds or drops what it says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

CellKind = Literal["text", "num", "verdict", "check", "code", "link"]
Style = Literal["ok", "bad", "warn", "muted", "footer"]


@dataclass(frozen=True)
class Cell:
    """A table cell; a ``link`` cell points at ``anchor`` in the same document."""

    text: str
    kind: CellKind = "text"
    anchor: str | None = None


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None
    verdict: str | None = None  # shown as a badge after the text


@dataclass(frozen=True)
class Paragraph:
    """``label: verdict — text``, each part optional; ``style`` boxes or mutes it."""

    text: str
    label: str | None = None
    style: Style | None = None
    verdict: str | None = None


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Math:
    """A displayed formula: LaTeX source and, where mathtext could typeset it, a PNG."""

    latex: str
    png: bytes | None = None

    @property
    def source(self) -> str:
        """The formula without surrounding ``$`` and whitespace."""
        return self.latex.strip().strip("$").strip()


@dataclass(frozen=True)
class Fold:
    """A titled group of blocks: collapsible in HTML (``<details>``), a bold title and its
    blocks in Markdown."""

    summary: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Contents:
    entries: tuple[tuple[str, str, str], ...]  # anchor, text, verdict


@dataclass(frozen=True)
class Figure:
    """One figure: PNG bytes and the caption both views print under it, or the error that
    kept it from being drawn. ``path`` is where the PNG was written, relative to the report
    (Markdown links it; HTML embeds the bytes)."""

    kind: str
    title: str
    caption: str
    png: bytes | None = None
    error: str | None = None
    path: str | None = None

    @property
    def failure(self) -> str:
        return f"figure {self.kind} could not be drawn: {self.error}"


Block = Heading | Paragraph | Bullets | Table | Math | Fold | Contents | Figure


def flat(text: str) -> str:
    """``text`` on one line, as both renderers print it."""
    return " ".join(text.split("\n"))


def texts(blocks: Iterable[Block]) -> Iterator[str]:
    """Every piece of text a reader of the document sees, in order (one line each)."""
    for b in blocks:
        if isinstance(b, Heading):
            yield from (b.text, *([b.verdict] if b.verdict else []))
        elif isinstance(b, Paragraph):
            yield from (x for x in (b.label, b.verdict, b.text) if x)
        elif isinstance(b, Bullets):
            yield from b.items
        elif isinstance(b, Table):
            yield from b.headers
            yield from (c.text for row in b.rows for c in row)
        elif isinstance(b, Math):
            yield b.source
        elif isinstance(b, Fold):
            yield b.summary
            yield from texts(b.blocks)
        elif isinstance(b, Contents):
            yield from (t for _, text, v in b.entries for t in (text, v))
        elif isinstance(b, Figure):
            yield b.title
            if b.error:
                yield b.failure
            elif b.png and b.path:
                yield b.caption
