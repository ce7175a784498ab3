"""Running theorems: draw settings with Hypothesis, check them, collect verdicts.

Settings for a run are drawn by Hypothesis from each theorem's strategy, reproducibly from
the run's seed (``@seed``, no example database), after the theorem's pinned examples. The
checks then run in a pool of worker processes, one torch thread each (on a small shared CPU
two single-threaded processes beat one two-threaded one). Every finished check is appended
to ``records.jsonl`` in the output folder and flushed to disk, so an interrupted run keeps
what it computed.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from verify.claims.scales import SCALES, Scale
from verify.claims.theorem import Theorem, registry, run_check
from verify.claims.verdict import Outcome, Verdict, overall
from verify.engine.setting import Context
from verify.run.executor import make_executor
from verify.run.rundir import append_record
from verify.run.trust import SEAL_FIELDS, seal


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

    collect()
    return out


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
    """Run one task. A network that cannot be judged is INCONCLUSIVE with its reason
    (:func:`~verify.claims.theorem.run_check`); a harness error is an ERROR record marked
    ``error``, with its traceback — never INCONCLUSIVE."""
    thm = registry()[task.theorem]
    t0 = time.perf_counter()
    ctrl = thm.controls(SCALES[ctx.scale])[task.index] if task.kind == "control" else None
    fn = (ctrl.check or thm.check) if ctrl is not None else thm.check
    try:
        out: Outcome = run_check(fn, task.setting, ctx)
        rec = out.to_json()
        rec["error"] = None
    except Exception as exc:
        rec = error_fields(f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return finish_record(task, rec, time.perf_counter() - t0, ctx.scale, ctx.used)


def error_fields(error: str, trace: str = "") -> dict[str, Any]:
    """The verdict part of an ERROR record: the harness failed, nothing was judged."""
    return {"verdict": str(Verdict.ERROR), "measured": math.nan, "bound": math.nan,
            "margin": math.nan, "reason": f"harness error: {error}", "certificate": None,
            "details": {"traceback": trace} if trace else {}, "series": {}, "error": error}


def finish_record(task: Task, rec: dict[str, Any], seconds: float, scale: str,
                  used: dict[str, str] | None = None) -> dict[str, Any]:
    """``rec`` with the task's identity, timing, the cache entries it used (key → digest)
    and, for a control, its expected verdict."""
    rec.update({"theorem": task.theorem, "kind": task.kind, "index": task.index,
                "setting": task.setting.to_json(), "pinned": task.pinned,
                "seconds": seconds, "cache_entries": dict(sorted((used or {}).items()))})
    if task.kind == "control":
        ctrl = registry()[task.theorem].controls(SCALES[scale])[task.index]
        rec.update({"name": ctrl.name, "description": ctrl.description,
                    "expected": str(ctrl.expected),
                    "as_expected": rec["verdict"] == str(ctrl.expected)})
    return rec


def lost_record(task: Task, ctx_kw: dict[str, Any], reason: str) -> dict[str, Any]:
    """The record of a task whose worker process died twice (killed, out of memory): an
    ERROR with the reason — the run goes on without it."""
    return finish_record(task, error_fields(reason), 0.0, ctx_kw.get("scale", "quick"))


def _worker(args: tuple[Task, dict[str, Any]]) -> dict[str, Any]:
    task, ctx_kw = args
    return evaluate(task, Context(**ctx_kw))


def _lost(args: tuple[Task, dict[str, Any]], reason: str) -> dict[str, Any]:
    task, ctx_kw = args
    return lost_record(task, ctx_kw, reason)


def execute(tasks: list[Task], ctx_kw: dict[str, Any], workers: int,
            records: Path | None = None,
            on_done: Callable[[dict[str, Any], int, int], None] | None = None,
            done_before: int = 0, scheduler: str | None = None,
            plan: str | None = None) -> Iterator[dict[str, Any]]:
    """Run tasks on ``workers`` local processes (never more than tasks; or the Dask
    ``scheduler``), yielding records as they finish. Each record is sealed with the
    ``plan``'s digest and its own (:mod:`verify.run.trust`) and appended to ``records``
    (fsynced) before it is yielded. A task whose worker process dies is retried once, then
    recorded as ERROR with the reason; the run goes on."""
    total = done_before + len(tasks)
    executor = make_executor(min(workers, len(tasks)), scheduler)
    fh = open(records, "a", encoding="utf-8") if records is not None else None
    try:
        items = [(t, ctx_kw) for t in tasks]
        for i, rec in enumerate(executor.map_unordered(_worker, items, _lost), 1):
            rec = seal(rec, plan)
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
               f"inconclusive, {counts['VACUOUS']} vacuous"
               + (f", {counts['ERROR']} error" if counts["ERROR"] else "")
               + f"; controls as expected {ok_controls}/{len(ct)}")
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
    # the seal and cache digests guard the run folder; results.json does not need them
    return {k: v for k, v in r.items()
            if k not in ("theorem", "kind", "cache_entries", *SEAL_FIELDS)}
