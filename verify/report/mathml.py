"""Formulas as text: a LaTeX subset to presentation MathML (HTML) and to Unicode (Markdown).

The theorems state their formulas in LaTeX (``Theorem.latex``). The report shows them as
text, never as images and never through a renderer fetched at view time: the HTML view as
presentation MathML (MathML Core, rendered natively by current browsers), the Markdown view
as a Unicode line (``‖W₁ᴮx‖ ≤ 1/(λn_B) …``). sympy can print MathML only from a sympy
expression, and its LaTeX parser needs antlr4, which the harness does not install; so this
module parses the subset of LaTeX the theorems use (fractions, roots, scripts, fences,
Greek letters, relations, large operators, spacing, ``\\operatorname``) into one small tree
and prints it both ways. Anything outside the subset raises :class:`UnsupportedLatex`
(the report then shows the LaTeX source rather than a guess).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

__all__ = ["UnsupportedLatex", "parse", "to_mathml", "to_unicode"]


class UnsupportedLatex(ValueError):
    """The formula uses LaTeX outside the supported subset."""


GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "upsilon": "υ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
# operators and relations: MathML <mo>, and whether the Unicode line puts spaces around them
RELATIONS = {
    "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈",
    "sim": "∼", "equiv": "≡", "in": "∈", "to": "→", "mapsto": "↦", "lesssim": "≲",
    "nearrow": "↗", "searrow": "↘", "uparrow": "↑", "downarrow": "↓",
    "subseteq": "⊆", "Rightarrow": "⇒", "iff": "⇔",
}
OPERATORS = {"cdot": "·", "times": "×", "pm": "±", "circ": "∘", "otimes": "⊗"}
SYMBOLS = {
    "forall": "∀", "exists": "∃", "nabla": "∇", "partial": "∂", "infty": "∞", "perp": "⊥",
    "ldots": "…", "cdots": "⋯", "dots": "…", "top": "⊤", "emptyset": "∅", "ell": "ℓ",
}
FENCES = {"langle": "⟨", "rangle": "⟩", "|": "‖", "lVert": "‖", "rVert": "‖", "lvert": "|",
          "rvert": "|", "{": "{", "}": "}", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈",
          "rceil": "⌉"}
LARGE = {"sum": "∑", "prod": "∏"}
FUNCTIONS = ("cos", "sin", "tan", "log", "exp", "min", "max", "det", "tr", "rank", "sup",
             "inf", "arcsin", "arccos", "ln", "lim", "diag")
# widths as MathML lengths (strings: Hypothesis mines numeric literals of local modules
# into the settings it draws, so this module adds none)
SPACES = {",": "0.167em", ":": "0.222em", ";": "0.278em", "quad": "1em", "qquad": "2em",
          "!": "0em", " ": "0.25em"}
QUADS = ("1em", "2em")
TEXT_COMMANDS = ("operatorname", "mathrm", "text", "mathit", "mathbf")

SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ",
               strict=True))
SUP = dict(zip("0123456789+-=()ABDEGHIJKLMNOPRTUWabcdefghijklmnoprstuvwxyz",
               "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁᵂᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))
SUB["−"], SUP["−"] = "₋", "⁻"


# --------------------------------------------------------------------------------------------
# the tree


@dataclass(frozen=True)
class Tok:
    """A leaf: ``mi`` (identifier), ``mn`` (number), ``mo`` (operator), ``mtext``."""

    tag: str
    text: str
    relation: bool = False  # spaced in the Unicode line (≤, =, +, …)
    upright: bool = False  # a multi-letter function name


@dataclass(frozen=True)
class Space:
    width: str  # a MathML length, e.g. "0.167em"


@dataclass(frozen=True)
class Row:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Frac:
    num: Node
    den: Node


@dataclass(frozen=True)
class Sqrt:
    body: Node


@dataclass(frozen=True)
class Scripts:
    base: Node
    sub: Node | None
    sup: Node | None


@dataclass(frozen=True)
class Fenced:
    open: str
    body: Row
    close: str


Node = Tok | Space | Row | Frac | Sqrt | Scripts | Fenced

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\.\d+)?|\s+|.", re.S)


class _Parser:
    def __init__(self, latex: str) -> None:
        self.toks = [t for t in _TOKEN.findall(latex) if not t.isspace()]
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        t = self.peek()
        if t is None:
            raise UnsupportedLatex("unexpected end of formula")
        self.i += 1
        return t

    def expect(self, tok: str) -> None:
        got = self.take()
        if got != tok:
            raise UnsupportedLatex(f"expected {tok!r}, found {got!r}")

    def row(self, stop: tuple[str, ...] = ()) -> Row:
        items: list[Node] = []
        while (t := self.peek()) is not None and t not in stop:
            if t in ("}", r"\right"):
                break
            items.append(self.scripted())
        return Row(tuple(items))

    def scripted(self) -> Node:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("_", "^"):
            which = self.take()
            arg = self.argument()
            if which == "_":
                if sub is not None:
                    raise UnsupportedLatex("double subscript")
                sub = arg
            else:
                if sup is not None:
                    raise UnsupportedLatex("double superscript")
                sup = arg
        return base if sub is None and sup is None else Scripts(base, sub, sup)

    def argument(self) -> Node:
        """A command's argument: a braced group, or a single token (``\\frac1n``)."""
        if self.peek() == "{":
            self.take()
            body = self.row()
            self.expect("}")
            return body
        return self.atom()

    def word(self) -> str:
        self.expect("{")
        out = []
        while (t := self.take()) != "}":
            if t.startswith("\\"):
                raise UnsupportedLatex(f"command {t} inside a text argument")
            out.append(t)
        return "".join(out)

    def fence_char(self) -> str:
        t = self.take()
        if t == ".":
            return ""
        name = t[1:] if t.startswith("\\") else t
        if t.startswith("\\") and name in FENCES:
            return FENCES[name]
        if not t.startswith("\\") and t in "()[]|":
            return t
        raise UnsupportedLatex(f"unsupported fence {t}")

    def atom(self) -> Node:
        t = self.take()
        if t == "{":
            body = self.row()
            self.expect("}")
            return body
        if t[0].isdigit():
            return Tok("mn", t)
        if t.isalpha() and len(t) == 1:
            return Tok("mi", t)
        if not t.startswith("\\"):
            if t in "=<>":
                return Tok("mo", t, relation=True)
            if t in "+-":
                return Tok("mo", "−" if t == "-" else "+", relation=True)
            if t in "()[]|,.;:/!'*":
                return Tok("mo", {"'": "′", "*": "∗"}.get(t, t))
            raise UnsupportedLatex(f"unsupported character {t!r}")
        return self.command(t[1:])

    def command(self, name: str) -> Node:
        if name in GREEK:
            return Tok("mi", GREEK[name])
        if name in RELATIONS:
            return Tok("mo", RELATIONS[name], relation=True)
        if name in OPERATORS:
            return Tok("mo", OPERATORS[name], relation=True)
        if name in SYMBOLS:
            return Tok("mi" if name in ("nabla", "partial", "infty", "ell") else "mo",
                       SYMBOLS[name])
        if name in FENCES:
            return Tok("mo", FENCES[name])
        if name in LARGE:
            return Tok("mo", LARGE[name])
        if name in FUNCTIONS:
            return Tok("mi", name, upright=True)
        if name in SPACES:
            return Space(SPACES[name])
        if name in TEXT_COMMANDS:
            text = self.word()
            return Tok("mtext" if name == "text" else "mi", text, upright=True)
        if name == "frac":
            return Frac(self.argument(), self.argument())
        if name == "sqrt":
            if self.peek() == "[":
                raise UnsupportedLatex("n-th roots are not supported")
            return Sqrt(self.argument())
        if name == "left":
            left = self.fence_char()
            body = self.row()
            self.expect(r"\right")
            return Fenced(left, body, self.fence_char())
        raise UnsupportedLatex(f"unsupported command \\{name}")


def parse(latex: str) -> Row:
    """The tree of ``latex`` (surrounding ``$`` and whitespace ignored)."""
    p = _Parser(latex.strip().strip("$"))
    out = p.row()
    if p.peek() is not None:
        raise UnsupportedLatex(f"unbalanced {p.peek()!r}")
    if not out.items:
        raise UnsupportedLatex("empty formula")
    return out


# --------------------------------------------------------------------------------------------
# MathML


def _ml(node: Node) -> str:
    if isinstance(node, Tok):
        text = escape(node.text)
        if node.tag == "mi" and node.upright and len(node.text) > 1:
            return f"<mi>{text}</mi>"  # multi-letter mi is upright by default
        if node.tag == "mi" and node.upright:
            return f'<mi mathvariant="normal">{text}</mi>'
        if node.tag == "mo" and node.text in "∑∏":
            return f'<mo largeop="true" movablelimits="true">{text}</mo>'
        if node.tag == "mo" and node.text in "‖|⟨⟩()[]":
            return f'<mo fence="true" stretchy="false">{text}</mo>'
        return f"<{node.tag}>{text}</{node.tag}>"
    if isinstance(node, Space):
        return f'<mspace width="{node.width}"></mspace>'
    if isinstance(node, Row):
        return "<mrow>" + "".join(_ml(n) for n in node.items) + "</mrow>"
    if isinstance(node, Frac):
        return f"<mfrac>{_ml(node.num)}{_ml(node.den)}</mfrac>"
    if isinstance(node, Sqrt):
        return f"<msqrt>{_ml(node.body)}</msqrt>"
    if isinstance(node, Scripts):
        large = isinstance(node.base, Tok) and node.base.text in "∑∏"
        base = _ml(node.base)
        if node.sub is not None and node.sup is not None:
            tag = "munderover" if large else "msubsup"
            return f"<{tag}>{base}{_ml(node.sub)}{_ml(node.sup)}</{tag}>"
        if node.sub is not None:
            tag = "munder" if large else "msub"
            return f"<{tag}>{base}{_ml(node.sub)}</{tag}>"
        tag = "mover" if large else "msup"
        sup = node.sup if node.sup is not None else Row(())  # parse() never leaves both None
        return f"<{tag}>{base}{_ml(sup)}</{tag}>"
    # Fenced
    opener = f'<mo fence="true">{escape(node.open)}</mo>' if node.open else ""
    closer = f'<mo fence="true">{escape(node.close)}</mo>' if node.close else ""
    return f"<mrow>{opener}{_ml(node.body)}{closer}</mrow>"


def to_mathml(latex: str, alttext: str | None = None) -> str:
    """``latex`` as one displayed ``<math>`` element (raises :class:`UnsupportedLatex`).

    ``alttext`` (default: the Unicode line) is what a screen reader or a browser without
    MathML shows.
    """
    tree = parse(latex)
    alt = to_unicode(latex) if alttext is None else alttext
    return (f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block" '
            f'alttext="{escape(alt, quote=True)}">{_ml(tree)}</math>')


# --------------------------------------------------------------------------------------------
# Unicode


def _script(text: str, table: dict[str, str], mark: str) -> str:
    if text and all(c in table for c in text):
        return "".join(table[c] for c in text)
    return f"{mark}{text}" if len(text) == 1 else f"{mark}{{{text}}}"


def _compound(node: Node) -> bool:
    """Whether ``node`` needs parentheses as a numerator, denominator or root argument."""
    if isinstance(node, Row):
        items = [n for n in node.items if not isinstance(n, Space)]
        return len(items) > 1 or any(_compound(n) for n in items)
    return isinstance(node, Frac)


def _paren(node: Node) -> str:
    text = _text(node)
    return f"({text})" if _compound(node) else text


def _text(node: Node) -> str:
    if isinstance(node, Tok):
        return node.text
    if isinstance(node, Space):
        # a quad is an em space; a thin or medium space a space; a negative one nothing
        return "\u2003" if node.width in QUADS else ("" if node.width == "0em" else " ")
    if isinstance(node, Frac):
        return f"{_paren(node.num)}/{_paren(node.den)}"
    if isinstance(node, Sqrt):
        return f"√{_paren(node.body)}"
    if isinstance(node, Scripts):
        out = _text(node.base)
        # scripts are set tight: no spaces around their operators
        if node.sub is not None:
            out += _script(_text(node.sub).replace(" ", ""), SUB, "_")
        if node.sup is not None:
            out += _script(_text(node.sup).replace(" ", ""), SUP, "^")
        return out
    if isinstance(node, Fenced):
        return f"{node.open}{_row_text(node.body)}{node.close}"
    return _row_text(node)


def _is_operator(node: Node | None) -> bool:
    return node is None or (isinstance(node, Tok) and node.tag == "mo"
                            and node.text not in "‖|⟩)]")


def _large(node: Node | None) -> bool:
    base = node.base if isinstance(node, Scripts) else node
    return isinstance(base, Tok) and base.text in "∑∏"


def _spaced(prev: Node | None, node: Node, before: str, text: str) -> bool:
    """Whether the Unicode line needs a space between ``prev`` and ``node`` to stay
    readable: after a function name, around a large operator, after a script written with
    ``_``/``^`` (``∇_V F``, not ``∇_VF``)."""
    starts_word = text[:1].isalnum() or text[:1] in "‖|√∇"
    if _large(prev):
        return True
    if _large(node):
        return not before.endswith(" ")
    if isinstance(prev, Tok) and prev.upright:
        return starts_word
    if isinstance(prev, Scripts) and ("_" in before or "^" in before):
        return text[:1].isalnum()
    return False


def _row_text(row: Row) -> str:
    out: list[str] = []
    prev: Node | None = None
    for node in row.items:
        if isinstance(node, Tok) and node.relation:
            unary = node.text in "−+" and _is_operator(prev)
            out.append(node.text if unary else f" {node.text} ")
        elif isinstance(node, Tok) and node.text == ",":
            out.append(", ")
        else:
            text = _text(node)
            if out and _spaced(prev, node, out[-1], text):
                text = " " + text
            out.append(text)
        prev = node
    return "".join(out)


def to_unicode(latex: str) -> str:
    """``latex`` as one line of Unicode text (raises :class:`UnsupportedLatex`)."""
    text = re.sub(" +", " ", _row_text(parse(latex)))
    return re.sub(" *\u2003[ \u2003]*", "\u2003", text).strip()
