"""Argument types and argv helpers of the command line, importable without torch.

Each type converter refuses a bad value with its name and what is allowed (argparse turns
that into one line, exit 2); the allowed values come from :mod:`verify.names` and
``theorems.THEOREM_IDS``, so a usage error never waits for a heavy import.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

from theorems import THEOREM_IDS
from verify.errors import OneLineParser, did_you_mean
from verify.names import MAX_WIDTH

_Parser = OneLineParser  # argparse with usage errors as one line (exit 2)

# Upper bounds of the integer flags: far above every use (stated in --help); larger values
# would hang (Hypothesis drawing a billion examples) or cannot mean anything.
MAX_EXAMPLES = 1000
_INT = re.compile(r"[+-]?[0-9]+")


def _bad(name: str, text: str, allowed: str) -> argparse.ArgumentTypeError:
    # argparse prefixes "argument NAME: "; the rest names the value and what is allowed
    return argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")


def _int_in(name: str, lo: int, hi: int | None = None) -> Any:
    """An integer in [lo, hi] (decimal ASCII digits only: '1e3', '2.5', '٣' are refused)."""
    def conv(text: str) -> int:
        v = int(text) if _INT.fullmatch(text.strip()) else None
        if v is None or v < lo or (hi is not None and v > hi):
            what = ("a positive integer" if lo == 1 else f"an integer ≥ {lo}")
            raise _bad(name, text, what if hi is None else f"an integer in [{lo}, {hi}]")
        return v

    return conv


def _positive_int(name: str, hi: int | None = None) -> Any:
    return _int_in(name, 1, hi)


def _nonneg_int(name: str, hi: int | None = None) -> Any:
    return _int_in(name, 0, hi)


def _float_in(name: str, lo: float, hi: float, lo_open: bool = False) -> Any:
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
        bracket = "(" if lo_open else "["
        if not ok:
            raise _bad(name, text, f"a finite number in {bracket}{lo:g}, {hi:g}]")
        return v

    return conv


def _path(name: str) -> Any:
    def conv(text: str) -> Path:
        if not text.strip() or "\x00" in text:
            raise _bad(name, text, "a file system path (not empty, no NUL character)")
        return Path(text)

    return conv


def _ints(flag: str, text: str, example: str, lo: int = 1) -> tuple[int, ...]:
    """Comma-separated integers; an empty item (``8,,16``, a trailing comma) is refused,
    never skipped: it is a typing mistake whose intended value is unknown."""
    items = [p.strip() for p in text.split(",")]
    if not all(_INT.fullmatch(p) for p in items):
        raise _bad(flag, text, f"comma-separated positive integers, no empty items, e.g. "
                   f"{example}")
    out = tuple(int(p) for p in items)
    if not all(lo <= v <= MAX_WIDTH for v in out):
        raise _bad(flag, text, f"every item an integer in [{lo}, {MAX_WIDTH}]")
    return out


def _widths(text: str) -> tuple[int, ...]:
    ws = _ints("--widths", text, "8,16,16,3")
    if len(ws) < 2:
        raise _bad("--widths", text, "at least two widths d_0,d_1 (depth ≥ 1)")
    return ws


def _channels(text: str) -> tuple[int, ...]:
    return _ints("--conv", text, "16,32")


def value_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings of ``parser`` and its subcommands that take a value."""
    out: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= value_flags(sub)
        elif action.option_strings and action.nargs != 0:
            out.update(action.option_strings)
    return out


_NUMBERISH = re.compile(r"-(\d|\.\d|inf|nan|infinity)", re.IGNORECASE)


def join_negative_values(argv: list[str], flags: set[str]) -> list[str]:
    """``--tau -1e-6`` → ``--tau=-1e-6``: argparse would take ``-1e-6`` for an option and
    answer "expected one argument"; joined, the value is parsed, then judged (and refused
    with its name and what is allowed)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in flags and i + 1 < len(argv) and _NUMBERISH.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        if a == "--":
            out.extend(argv[i:])
            break
        out.append(a)
        i += 1
    return out


def _theorem_id(name: str) -> Any:
    """A registered theorem id (case ignored), checked against the torch-free
    ``theorems.THEOREM_IDS`` so a mistake is answered before any heavy import."""
    def conv(text: str) -> str:
        if text.strip().upper() not in THEOREM_IDS:
            raise _bad(name, text, f"one of {', '.join(THEOREM_IDS)}"
                       + did_you_mean(text.strip(), THEOREM_IDS))
        return text.strip().upper()

    return conv
