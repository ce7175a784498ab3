"""Running theorems: draw settings with Hypothesis, check them, collect verdicts.

Settings for a run are drawn by Hypothesis from each theorem's strategy, reproducibly from
the run's seed (``@seed``, no example database), after the theorem's pinned examples. The
checks then run in a pool of worker processes, one torch thread each (on a small shared CPU
two single-threaded processes beat one two-threaded one). Every finished check is appended
to ``records.jsonl`` in the output folder and flushed to disk, so an interrupted run keeps
what it computed.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, given, seed, settings

from verify.claims.scales import SCALES, Scale
from verify.claims.theorem import Theorem, registry
from verify.claims.verdict import Outcome, Verdict, overall
from verify.engine.setting import Context
from verify.run.executor import make_executor
from verify.run.rundir import append_record


@dataclass(frozen=True)
class Task:
    """One check to run: a theorem's example or control."""

    theorem: str
    kind: str  # "example" or "control"
    index: int
    setting: Any
    pinned: bool = False
    control: str | None = None


def draw_settings(thm: Theorem, scale: Scale, n: int, run_seed: int) -> list[Any]:
    """Up to ``n`` distinct settings from the theorem's strategy, reproducible from the seed."""
    out: list[Any] = []

    @seed(run_seed)
    @settings(max_examples=max(4 * n, 10), database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(thm.strategy(scale))
    def collect(s: Any) -> None:
        if len(out) < n and s not in out:
            out.append(s)

    with _no_local_constants():
        collect()
    return out


def _no_local_constants() -> contextlib.AbstractContextManager[Any]:
    """Hypothesis (≥ 6.1xx) mixes the literals of every loaded local module into what it
    draws, so the plan of a seed would change whenever any module of the project gains a
    number — a new theorem changed T0's drawn settings. Drawing without that pool makes a
    run's settings depend on its seed and the strategies only. (A private hook of the
    pinned Hypothesis; without it, nothing is patched.)"""
    from hypothesis.internal.conjecture import providers

    if not hasattr(providers, "_get_local_constants"):
        return contextlib.nullcontext()
    return mock.patch.object(providers, "_get_local_constants", providers.Constants)


def plan(theorems: list[Theorem], scale: Scale, n: int, run_seed: int) -> list[Task]:
    """All tasks of a run, in a fixed order."""
    tasks: list[Task] = []
    for thm in theorems:
        pinned = list(thm.pinned(scale))
        drawn = draw_settings(thm, scale, max(n - len(pinned), 0) if n > 0 else 0, run_seed)
        for i, s in enumerate(pinned + drawn):
            tasks.append(Task(thm.id, "example", i, s, pinned=i < len(pinned)))
        for i, c in enumerate(thm.controls(scale)):
            tasks.append(Task(thm.id, "control", i, c.setting, control=c.name))
    return tasks


def evaluate(task: Task, ctx: Context) -> dict[str, Any]:
    """Run one task; a harness error becomes an INCONCLUSIVE record marked ``error``."""
    thm = registry()[task.theorem]
    t0 = time.perf_counter()
    ctrl = thm.controls(SCALES[ctx.scale])[task.index] if task.kind == "control" else None
    fn = (ctrl.check or thm.check) if ctrl is not None else thm.check
    try:
        out: Outcome = fn(task.setting, ctx)
        rec = out.to_json()
        rec["error"] = None
    except Exception as exc:
        rec = {"verdict": str(Verdict.INCONCLUSIVE), "measured": math.nan, "bound": math.nan,
               "margin": math.nan, "reason": f"harness error: {type(exc).__name__}: {exc}",
               "certificate": None, "details": {"traceback": traceback.format_exc()},
               "series": {}, "error": f"{type(exc).__name__}: {exc}"}
    rec.update({"theorem": task.theorem, "kind": task.kind, "index": task.index,
                "setting": task.setting.to_json(), "pinned": task.pinned,
                "seconds": time.perf_counter() - t0})
    if ctrl is not None:
        rec.update({"name": ctrl.name, "description": ctrl.description,
                    "expected": str(ctrl.expected),
                    "as_expected": rec["verdict"] == str(ctrl.expected)})
    return rec


def _worker(args: tuple[Task, dict[str, Any]]) -> dict[str, Any]:
    task, ctx_kw = args
    return evaluate(task, Context(**ctx_kw))


def execute(tasks: list[Task], ctx_kw: dict[str, Any], workers: int,
            records: Path | None = None,
            on_done: Callable[[dict[str, Any], int, int], None] | None = None,
            done_before: int = 0, scheduler: str | None = None) -> Iterator[dict[str, Any]]:
    """Run tasks on ``workers`` local processes (or the Dask ``scheduler``), yielding records
    as they finish. Each record is appended to ``records`` (fsynced) before it is yielded."""
    total = done_before + len(tasks)
    executor = make_executor(workers if len(tasks) > 1 else 1, scheduler)
    fh = open(records, "a", encoding="utf-8") if records is not None else None
    try:
        items = [(t, ctx_kw) for t in tasks]
        for i, rec in enumerate(executor.map_unordered(_worker, items), 1):
            if fh is not None:
                append_record(fh, rec)
            if on_done is not None:
                on_done(rec, done_before + i, total)
            yield rec
    finally:
        if fh is not None:
            fh.close()


def task_key(task: Task) -> tuple[str, str, int]:
    return (task.theorem, task.kind, task.index)


def summarise(thm: Theorem, recs: list[dict[str, Any]]) -> dict[str, Any]:
    """The theorem's entry of results.json from its records."""
    ex = sorted((r for r in recs if r["kind"] == "example"), key=lambda r: r["index"])
    ct = sorted((r for r in recs if r["kind"] == "control"), key=lambda r: r["index"])
    counts = {str(v): sum(r["verdict"] == str(v) for r in ex) for v in Verdict}
    verdict = overall(Verdict(r["verdict"]) for r in ex)
    errors = [r for r in ex + ct if r.get("error")]
    ok_controls = sum(bool(r["as_expected"]) for r in ct)
    behaved = counts["FAIL"] == 0 and not errors and ok_controls == len(ct)
    summary = (f"{counts['PASS']} pass, {counts['FAIL']} fail, {counts['INCONCLUSIVE']} "
               f"inconclusive, {counts['VACUOUS']} vacuous; controls as expected "
               f"{ok_controls}/{len(ct)}")
    if errors:
        summary += f"; {len(errors)} harness errors"
    return {
        "id": thm.id, "title": thm.title, "source": thm.source, "statement": thm.statement,
        "statement_latex": thm.latex, "assumptions": list(thm.assumptions),
        "notes": list(thm.notes), "verdict": str(verdict), "behaved": behaved,
        "summary": summary, "counts": counts,
        "seconds": sum(r["seconds"] for r in ex + ct),
        "examples": [_strip(r) for r in ex], "controls": [_strip(r) for r in ct],
        "plots": thm.plots(ex, ct),
    }


def _strip(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("theorem", "kind")}
