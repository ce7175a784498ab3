"""Reading and formatting the values of results.json for the report.

The report renders whatever JSON it is given: ``verify report`` checks results.json against
the typed records on loading (:func:`verify.run.results.load_results`), but a report is the
last step of what may have been a long run, so the renderer still never trusts the shape of
the data: every key may be missing and every number may be ``null``, and it degrades to "—"
rather than failing. These helpers are that tolerance, in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from verify.claims.verdict import Verdict

VERDICTS = tuple(str(v) for v in Verdict)
VERDICT_COLOURS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "INCONCLUSIVE": "#bf8700",
    "VACUOUS": "#6e7781",
    "ERROR": "#8250df",  # a harness error: the check itself broke
}
OTHER_COLOUR = "#57606a"
KEY_SETTING_FIELDS = ("widths", "conv", "activation", "lam", "n", "seed", "precision")


def num(x: object) -> float | None:
    """``x`` as a finite float, or ``None`` (bools, strings and non-finite values are not)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def floats(x: object) -> list[float]:
    """The finite numbers in list ``x`` (anything else is dropped)."""
    if not isinstance(x, list):
        return []
    return [v for v in (num(e) for e in x) if v is not None]


def as_dict(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def dicts(x: object) -> list[dict]:
    return [e for e in x if isinstance(e, dict)] if isinstance(x, list) else []


def strs(x: object) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [str(e) for e in x if e is not None] if isinstance(x, list) else []


def series(entry: dict, key: str) -> object:
    return as_dict(entry.get("series")).get(key)


def fmt(x: object) -> str:
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
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in x.items()) + "}"
    return str(x)


def fmt_seconds(x: object) -> str:
    v = num(x)
    if v is None:
        return "—"
    if v < 100:
        return f"{v:.3g} s"
    return f"{v:.0f} s ({v / 60:.1f} min)" if v >= 120 else f"{v:.0f} s"


def check_mark(x: object) -> str:
    return "✓" if x is True else "✗" if x is False else "—"


def setting_text(setting: object, key_only: bool = False) -> str:
    """``key=value`` pairs of a setting, the usual identifying fields first."""
    s = as_dict(setting)
    keys = [k for k in KEY_SETTING_FIELDS if k in s]
    if not key_only:
        keys += [k for k in s if k not in KEY_SETTING_FIELDS]
    return " ".join(f"{k}={fmt(s[k]).replace(', ', ',')}" for k in keys)


def verdict_text(x: object) -> str:
    return x if isinstance(x, str) and x else "—"


def worst_first(examples: Sequence[dict]) -> list[tuple[int, dict]]:
    """``(index, example)`` pairs, worst first.

    Any FAIL comes before anything that is not a FAIL; within each group examples are ordered
    by ascending margin, and examples without a finite margin go last.
    """

    def key(item: tuple[int, dict]) -> tuple[int, int, float, int]:
        i, ex = item
        m = num(ex.get("margin"))
        return (ex.get("verdict") != "FAIL", m is None, m if m is not None else 0.0, i)

    return sorted(enumerate(examples), key=key)


def slugs(theorems: Sequence[dict]) -> list[str]:
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
