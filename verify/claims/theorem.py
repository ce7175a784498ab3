"""The shape of an executable theorem, and the registry of them.

A theorem module in ``theorems/`` builds one :class:`Theorem`: its statement (sympy where
there is a formula), source paper and version, assumptions, a Hypothesis strategy over
settings for a given scale, the check (setting → :class:`~verify.claims.verdict.Outcome`), the
paper's own settings pinned as examples, and its negative controls — settings outside the
assumptions with the verdict the harness must report for them. Registering a theorem is
adding its module name to ``theorems.MODULES``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from verify.claims.scales import Scale
from verify.claims.verdict import Outcome, Verdict
from verify.engine.certificate import Certificate
from verify.engine.setting import Context
from verify.errors import DataUnavailable, NotJudgeable, require

Check = Callable[[Any, Context], Outcome]


@dataclass(frozen=True)
class Control:
    """A negative control: a setting outside the assumptions and the verdict it must get.

    ``check`` defaults to the theorem's own check; a control that exercises one part of a
    claim (e.g. a trajectory identity) names its own.
    """

    name: str
    description: str
    expected: Verdict
    setting: Any
    check: Check | None = None


@dataclass(frozen=True)
class Theorem:
    """An executable claim; see module docstring."""

    id: str
    title: str
    source: str
    statement: str
    latex: str
    assumptions: tuple[str, ...]
    strategy: Callable[[Scale], st.SearchStrategy[Any]]
    check: Check
    controls: Callable[[Scale], tuple[Control, ...]]
    pinned: Callable[[Scale], tuple[Any, ...]] = lambda scale: ()
    notes: tuple[str, ...] = ()
    # theorem-level figures from the finished records (see verify.report.PLOT_SPEC)
    plots: Callable[[list[dict], list[dict]], list[dict]] = lambda examples, controls: []


# The built-in theorems live in the ``theorems`` package, one layer above this one: they are
# loaded by name (as plugins are), never imported here, so imports keep flowing one way.
BUILTIN = "theorems"


def registry() -> dict[str, Theorem]:
    """All registered theorems by id, in registration order (``theorems.MODULES``)."""
    modules: tuple[str, ...] = importlib.import_module(BUILTIN).MODULES
    out: dict[str, Theorem] = {}
    for name in modules:
        thm = importlib.import_module(f"{BUILTIN}.{name}").THEOREM
        out[thm.id] = thm
    return out


def select(ids: list[str] | None) -> list[Theorem]:
    """The theorems named by ``ids`` (all when None), refusing unknown ids."""
    reg = registry()
    if not ids:
        return list(reg.values())
    for i in ids:
        require(i.upper() in reg, "--theorem", i, f"one of {', '.join(reg)}")
    return [reg[i.upper()] for i in dict.fromkeys(ids)]


def run_check(check: Check, setting: Any, ctx: Context) -> Outcome:
    """``check(setting, ctx)``, where a network that cannot be judged (it diverged, or
    reached the wall-clock safety net) or a data set whose optional extra is not installed
    makes the outcome INCONCLUSIVE with the reason — the assumptions of the claim are not
    met. Any other exception is a harness error and propagates: the caller reports ERROR,
    never INCONCLUSIVE."""
    try:
        return check(setting, ctx)
    except NotJudgeable as exc:
        cert = exc.certificate if isinstance(exc.certificate, Certificate) else None
        return Outcome(Verdict.INCONCLUSIVE, math.nan, math.nan, math.nan,
                       f"not judgeable: {exc.reason}", cert)
    except DataUnavailable as exc:
        return Outcome(Verdict.INCONCLUSIVE, math.nan, math.nan, math.nan,
                       f"data set unavailable: {exc}")
