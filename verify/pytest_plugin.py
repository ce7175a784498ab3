"""Theorems as pytest tests: ``pytest --verify-theorem T1 --verify-scale quick``.

Registered under the ``pytest11`` entry point, so it is loaded into every pytest run where
this package is installed — and does nothing there unless ``--verify-theorem`` is given (no
item, no hook with an effect, nothing heavy imported). With it, the run's plan
(:func:`verify.run.runner.plan`: the pinned examples, then settings drawn by Hypothesis from
``--verify-seed``, then the negative controls) becomes one test item per example and
control:

* an example: PASS passes; FAIL fails with the evidence (reason, measured, bound, margin,
  certificate, the parts); INCONCLUSIVE and VACUOUS skip with the reason;
* a control passes when it gets its expected verdict and fails otherwise.

A harness error inside a check is an error of the test, never a verdict.

Theorems: the built-in ones (``theorems.MODULES``), those other packages register under the
entry-point group ``verify.theorems`` (an entry point names a module defining ``THEOREM``, or
a :class:`~verify.claims.theorem.Theorem` itself), and ``--theorem-module pkg.mod`` (a module
defining ``THEOREM``, importable from the test run).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from verify.errors import did_you_mean

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

GROUP = "verify.theorems"
SCALES = ("quick", "standard", "large")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("verify", "executable theorems (lowrank-verify)")
    g.addoption("--verify-theorem", action="append", default=None, metavar="ID",
                help="collect one test per example and control of theorem ID (repeatable); "
                     "without it this plugin does nothing")
    g.addoption("--verify-scale", default="quick", choices=SCALES,
                help="size of the drawn settings (default: quick)")
    g.addoption("--verify-examples", type=int, default=None, metavar="N",
                help="examples per theorem, pinned ones included (default: by scale)")
    g.addoption("--verify-seed", type=int, default=0, metavar="N",
                help="seed of the Hypothesis draws (default: 0)")
    g.addoption("--verify-tau", type=float, default=1e-6, metavar="T",
                help="certificate level τ (default: 1e-6)")
    g.addoption("--theorem-module", action="append", default=[], metavar="PKG.MOD",
                help="also offer the THEOREM defined by this module")


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("--verify-theorem"))


def _as_theorem(obj: Any, origin: str) -> Any:
    from verify.claims.theorem import Theorem

    thm = getattr(obj, "THEOREM", obj)
    if not isinstance(thm, Theorem):
        raise pytest.UsageError(f"{origin} does not define a THEOREM (a verify.claims.theorem."
                                "Theorem)")
    return thm


def available(config: pytest.Config) -> dict[str, Any]:
    """Theorems by id: built-in, then the entry-point group, then ``--theorem-module``."""
    from verify.claims.theorem import registry

    out: dict[str, Any] = dict(registry())
    for ep in entry_points(group=GROUP):
        thm = _as_theorem(ep.load(), f"entry point {ep.name!r} ({ep.value})")
        out[thm.id] = thm
    for name in config.getoption("--theorem-module"):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise pytest.UsageError(f"--theorem-module={name!r} cannot be imported: {exc}"
                                    ) from None
        thm = _as_theorem(module, f"--theorem-module={name!r}")
        out[thm.id] = thm
    return out


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    from verify.run.executor import pin_threads

    pin_threads(1)  # the harness's rule: one torch thread per process
    n = config.getoption("--verify-examples")
    if n is not None and n < 0:
        raise pytest.UsageError(f"--verify-examples={n} is not allowed: an integer ≥ 0")
    config.addinivalue_line("markers", "verify_theorem(id): a theorem's example or control")


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection sees the items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if not _active(config):
        return
    known = available(config)
    wanted: list[Any] = []
    for i in config.getoption("--verify-theorem"):
        thm = known.get(i.upper()) or known.get(i)
        if thm is None:
            raise pytest.UsageError(f"--verify-theorem={i!r} is not allowed: one of "
                                    f"{', '.join(known)}{did_you_mean(i, known)}")
        if thm not in wanted:
            wanted.append(thm)
    collector = TheoremCollector.from_parent(session, name="verify", nodeid="verify",
                                             theorems=wanted)
    # collected through the hooks, so reporting, counts and collection errors are pytest's own
    rep = config.hook.pytest_make_collect_report(collector=collector)
    config.hook.pytest_collectreport(report=rep)
    items.extend(x for x in (rep.result or []) if isinstance(x, pytest.Item))


class TheoremCollector(pytest.Collector):
    """The theorems' items: the plan of a run (they come from no file)."""

    def __init__(self, *, theorems: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theorems = theorems

    def collect(self) -> list[pytest.Item]:
        from verify.claims.scales import SCALES as BY_NAME
        from verify.engine.setting import Context
        from verify.run.runner import plan

        config = self.config
        scale = BY_NAME[config.getoption("--verify-scale")]
        n = config.getoption("--verify-examples")
        tasks = plan(self.theorems, scale, scale.examples if n is None else n,
                     config.getoption("--verify-seed"), config.getoption("--verify-tau"))
        ctx = Context(tau=config.getoption("--verify-tau"), max_seconds=scale.max_seconds,
                      scale=scale.name)
        by_id = {t.id: t for t in self.theorems}
        out: list[pytest.Item] = []
        for task in tasks:
            thm = by_id[task.theorem]
            control = thm.controls(scale)[task.index] if task.kind == "control" else None
            name = (f"{task.theorem}::control[{task.control}]" if control is not None else
                    f"{task.theorem}::example[{task.index}{'-pinned' if task.pinned else ''}]")
            item = TheoremItem.from_parent(self, name=name, nodeid=f"verify::{name}",
                                           theorem=thm, task=task, control=control, ctx=ctx)
            item.add_marker(pytest.mark.verify_theorem(task.theorem))
            out.append(item)
        return out


class VerdictFailure(Exception):
    """A FAIL verdict, or a control that missed its expected verdict: the evidence."""


class TheoremItem(pytest.Item):
    """One example or control of one theorem."""

    def __init__(self, *, theorem: Any, task: Any, control: Any, ctx: Any,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theorem, self.task, self.control, self.ctx = theorem, task, control, ctx

    def runtest(self) -> None:
        from verify.claims.verdict import Verdict

        check = (self.control.check or self.theorem.check) if self.control else \
            self.theorem.check
        out = check(self.task.setting, self.ctx)
        if self.control is not None:
            if out.verdict != self.control.expected:
                raise VerdictFailure(
                    f"control {self.control.name!r} ({self.control.description}) expected "
                    f"{self.control.expected}, got {out.verdict}\n{_evidence(out)}")
            return
        if out.verdict == Verdict.FAIL:
            raise VerdictFailure(_evidence(out))
        if out.verdict in (Verdict.INCONCLUSIVE, Verdict.VACUOUS):
            pytest.skip(f"{out.verdict}: {out.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, VerdictFailure):
            return f"{self.theorem.id} {self.theorem.title}\n{excinfo.value}"
        return super().repr_failure(excinfo, style)  # a harness error: its traceback

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        # a harness error: its traceback from this item's runtest on (pytest's own frames
        # above it say nothing), as pytest does for test functions
        tb = excinfo.traceback
        cut = tb.cut(path=Path(__file__))
        return (cut if cut else tb).filter(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.theorem.id}: {self.name}"


def _evidence(out: Any) -> str:
    """The outcome's verdict, values, certificate and parts, one per line."""
    lines = [f"{out.verdict}: {out.reason}",
             f"measured {out.measured:.6g}, bound {out.bound:.6g}, margin {out.margin:.4g}"]
    if out.certificate is not None:
        c = out.certificate
        lines.append(f"certificate: {c.reason}; max r_k = {c.max_residual:.3g} "
                     f"({c.residual_kind}); λ_min(∇²F) = {c.min_hessian_eig} "
                     f"({c.hessian_method})")
    for name, p in (out.details.get("parts") or {}).items():
        lines.append(f"  [{name}] {p['verdict']}: {p['reason']}")
    return "\n".join(lines)
