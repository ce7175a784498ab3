"""Console lines of a run: every line that is not a plain PASS carries its reason.

A check's line names its verdict and, when it is not PASS or not the verdict a control
expected, the reason the check gave. A theorem's closing line is ``ok`` only when it behaved
*and* passed; a theorem that behaved without passing (VACUOUS on every example: no example
met the claim's premise; INCONCLUSIVE: no certificate) is printed with its verdict and the
reason of its first example with that verdict, so it is never mistaken for a pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verify.engine.result import TrainResult
    from verify.run.records import CheckRecord, TheoremSummary

WIDTH = 240  # a reason longer than this is cut at a word boundary (the report has it whole)


def _short(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= WIDTH:
        return text
    return text[:WIDTH].rsplit(" ", 1)[0] + " …"


def record_reason(rec: CheckRecord) -> str:
    """``"  — reason"`` for a check that is not PASS or missed its expected verdict; ``""``
    for a plain PASS."""
    missed = rec.expected is not None and not rec.as_expected
    if str(rec.verdict) == "PASS" and not missed:
        return ""
    return f"  — {_short(rec.error or rec.reason)}" if (rec.error or rec.reason) else ""


def _what(rec: CheckRecord) -> str:
    return f"control {rec.name!r}" if rec.name is not None else f"example {rec.index}"


def theorem_line(e: TheoremSummary) -> str:
    """The closing line of a theorem: ``ok``, ``NOT`` (did not behave) or its verdict when it
    behaved without passing, then the counts and, unless it is a plain pass, why."""
    verdict = str(e.verdict)
    mark = ("ok " if verdict == "PASS" else verdict[:3]) if e.behaved else "NOT"
    why = ""
    missed = [c for c in e.controls if not c.as_expected]
    errors = [r for r in (*e.examples, *e.controls) if r.error]
    first = next((r for r in e.examples if str(r.verdict) == verdict), None)
    if errors:
        why = f"{_what(errors[0])} harness error: {_short(errors[0].error or '')}"
    elif verdict != "PASS" and first is not None:
        why = f"{_what(first)} {verdict}: {_short(first.reason)}"
    elif missed:
        c = missed[0]
        why = f"{_what(c)} got {c.verdict}, expected {c.expected}: {_short(c.reason)}"
    elif verdict != "PASS":
        why = f"{verdict}: no example checked"
    return f"{mark} {e.id} {verdict:<12} {e.summary}" + (f"\n      why: {why}" if why else "")


_STAGES = (("gd", "first phase"), ("lbfgs+newton", "polish (L-BFGS, Newton)"),
           ("continuation", "kink stage (continuation)"))


def stage_lines(results: list[TrainResult], seconds: float) -> list[str]:
    """The stages a check went through with their wall times: for each network it trained
    the first phase, polish and kink stage (``TrainResult.stages``), then what is left of the
    check's ``seconds``: certificate and claim together (they are not timed apart)."""
    out: list[str] = []
    for i, r in enumerate(results):
        tag = f"network {i + 1}: " if len(results) > 1 else ""
        iters = {"gd": f"{r.gd_steps} steps", "lbfgs+newton": f"{r.lbfgs_iters} iterations",
                 "continuation": f"{r.continuation_iters} iterations"}
        for key, name in _STAGES:
            if key in r.stages:
                out.append(f"  {tag}{name:<27} {r.stages[key]:7.2f}s  ({iters[key]})")
        for key in sorted(set(r.stages) - {k for k, _ in _STAGES}):
            out.append(f"  {tag}{key:<27} {r.stages[key]:7.2f}s")
    trained = sum(r.seconds for r in results)
    out.append(f"  {'certificate and claim':<27} {max(seconds - trained, 0.0):7.2f}s"
               + ("" if results else "  (no network trained)"))
    return out
