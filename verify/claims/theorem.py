"""The shape of an executable theorem, and the registry of them.

A theorem module in ``theorems/`` builds one :class:`Theorem`: its statement (sympy where
there is a formula), source paper and version, assumptions, a Hypothesis strategy over
settings for a given scale, the check (setting → :class:`~verify.claims.verdict.Outcome`), the
paper's own settings pinned as examples, and its negative controls — settings outside the
assumptions with the verdict the harness must report for them. Registering a theorem is
adding its module name to ``theorems.MODULES``.

A theorem that can be judged on weights it did not train itself (a user's model,
:mod:`verify.audit`) also names ``applies`` — whether a network and objective meet its
assumptions, and if not why — and ``assess``, its claim on a given :class:`Trained` network
(certificate included), so that ``check(s, ctx)`` is ``assess`` of the network ``s``
realises.
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
from verify.engine.setting import Context, Trained
from verify.errors import DataUnavailable, NotJudgeable, did_you_mean, require
from verify.nets.activations import HOMOGENEOUS
from verify.nets.network import Network
from verify.nets.objective import Objective

Check = Callable[[Any, Context], Outcome]
Assess = Callable[[Trained], Outcome]
# None: the network and objective meet the theorem's assumptions; else the reason they do not
Applies = Callable[[Network, Objective], str | None]


def _no_assumptions(arch: Network, obj: Objective) -> str | None:
    return None


def not_homogeneous(arch: Network) -> str | None:
    """None for a homogeneous network (bias-free, σ positively 1-homogeneous, no skip
    connections: THEOREMS.md "Notation"), else why it is not, in one phrase."""
    if arch.homogeneous:
        return None
    why = []
    if arch.bias:
        why.append("it has biases")
    if arch.residual:
        why.append("it has skip connections")
    if arch.activation not in HOMOGENEOUS:
        why.append(f"σ = {arch.activation} is not positively 1-homogeneous")
    return "not a homogeneous network: " + ", ".join(why)


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
class Known:
    """A known result: a failure the theorem itself explains (e.g. a claim stated for wide
    networks failing on a narrow one, or a form the paper withdrew in a later version).

    ``applies`` reads one finished check record as JSON (what :attr:`Theorem.plots` reads:
    ``setting``, ``verdict``, ``details`` with its ``parts``, …) and should be as narrow as
    the explanation. The runner records each FAIL it applies to with ``explanation``; the
    verdict stays FAIL, and the theorem is not counted as misbehaving for it (the report
    marks it as a known result rather than as a broken theorem).
    """

    name: str
    explanation: str
    applies: Callable[[dict], bool]


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
    # judging given weights (verify.audit): None = the theorem is judged on its own settings only
    assess: Assess | None = None
    applies: Applies = _no_assumptions
    # failures the theorem explains (see Known); first match wins
    known: tuple[Known, ...] = ()


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
        require(i.upper() in reg, "--theorem", i,
                f"one of {', '.join(reg)}" + did_you_mean(i, reg))
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
