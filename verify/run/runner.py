"""Running theorems: draw settings with Hypothesis, check them, collect verdicts.

Settings for a run are drawn by Hypothesis from each theorem's strategy, reproducibly from
the run's seed (``@seed``, no example database), after the theorem's pinned examples. The
checks then run in a pool of worker processes, one torch thread each (on a small shared CPU
two single-threaded processes beat one two-threaded one). Every finished check is appended
to ``records.jsonl`` in the output folder and flushed to disk, so an interrupted run keeps
what it computed. Checks are typed :class:`~verify.run.records.CheckRecord` s named by
stable ids (``T3/ex/<setting key>``, ``T3/control/<name>``), which resuming keys on.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from verify.claims.scales import SCALES, Scale
from verify.claims.theorem import Control, Theorem, registry, run_check
from verify.claims.verdict import Outcome, Verdict, overall
from verify.engine.setting import Context, setting_key
from verify.run.executor import make_executor
from verify.run.records import (
    CheckKind,
    CheckRecord,
    TheoremSummary,
    control_id,
    example_id,
    unique_ids,
)
from verify.run.results import jsonable
from verify.run.rundir import append_record
from verify.run.trust import seal


@dataclass(frozen=True)
class Task:
    """One check to run: a theorem's example or control, named by its stable ``id``."""

    id: str
    theorem: str
    kind: CheckKind
    index: int  # position among the theorem's examples (pinned first) or controls
    setting: Any
    pinned: bool = False
    control: str | None = None


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis (≥ 6.13x) mixes the numeric literals of every loaded *local* module into
    what it draws, so editing any line of this project — or importing one more module —
    would change the drawn settings of a seeded run, their ids and the regression baseline.
    A run's plan must depend on the seed and the strategies only: inside this block the
    pool of local constants is empty (Hypothesis's own global constants stay). It reaches
    into ``hypothesis.internal`` at the pinned version; without that hook it does nothing,
    and tests/run/test_plan.py notices."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # pragma: no cover - another Hypothesis: nothing to switch off
        yield
        return
    saved = providers._get_local_constants
    providers._get_local_constants = Constants
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


def draw_settings(thm: Theorem, scale: Scale, n: int, run_seed: int) -> list[Any]:
    """Up to ``n`` distinct settings from the theorem's strategy, reproducible from the seed
    alone (not from the project's source text: see :func:`_without_local_constants`)."""
    out: list[Any] = []

    @seed(run_seed)
    @settings(max_examples=max(4 * n, 10), database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(thm.strategy(scale))
    def collect(s: Any) -> None:
        if len(out) < n and s not in out:
            out.append(s)

    with _without_local_constants():
        collect()
    return out


def plan(theorems: list[Theorem], scale: Scale, n: int, run_seed: int, tau: float
         ) -> list[Task]:
    """All tasks of a run, in a fixed order; an example's id carries its setting key at the
    certificate level ``tau`` (see :mod:`verify.run.records`)."""
    tasks: list[Task] = []
    for thm in theorems:
        pinned = list(thm.pinned(scale))
        drawn = draw_settings(thm, scale, max(n - len(pinned), 0) if n > 0 else 0, run_seed)
        settings_ = pinned + drawn
        ids = unique_ids([example_id(thm.id, setting_key(s, tau)) for s in settings_])
        for i, (s, tid) in enumerate(zip(settings_, ids, strict=True)):
            tasks.append(Task(tid, thm.id, CheckKind.EXAMPLE, i, s, pinned=i < len(pinned)))
        controls = thm.controls(scale)
        ids = unique_ids([control_id(thm.id, c.name) for c in controls])
        for i, (c, tid) in enumerate(zip(controls, ids, strict=True)):
            tasks.append(Task(tid, thm.id, CheckKind.CONTROL, i, c.setting, control=c.name))
    return tasks


def _data(x: Any) -> Any:
    """A check's free-form output as JSON data, exactly as records.jsonl gives it back."""
    return jsonable(x, strict=False, finite=False)


def evaluate(task: Task, ctx: Context) -> CheckRecord:
    """Run one task. A network that cannot be judged is INCONCLUSIVE with its reason
    (:func:`~verify.claims.theorem.run_check`); a harness error is an ERROR record marked
    ``error``, with its traceback — never INCONCLUSIVE."""
    thm = registry()[task.theorem]
    t0 = time.perf_counter()
    ctrl = _control(task, ctx.scale)
    fn = (ctrl.check or thm.check) if ctrl is not None else thm.check
    error = None
    try:
        out: Outcome = run_check(fn, task.setting, ctx)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        out = error_outcome(error, traceback.format_exc())
    return finish_record(task, out, error, time.perf_counter() - t0, ctx_ctrl=ctrl,
                         used=ctx.used)


def error_outcome(error: str, trace: str = "") -> Outcome:
    """The outcome of a check whose harness failed: verdict ERROR, nothing was judged."""
    return Outcome(Verdict.ERROR, math.nan, math.nan, math.nan, f"harness error: {error}",
                   details={"traceback": trace} if trace else {})


def finish_record(task: Task, out: Outcome, error: str | None, seconds: float,
                  ctx_ctrl: Control | None, used: dict[str, str] | None = None
                  ) -> CheckRecord:
    """The record of ``task`` from its outcome: identity, timing, the cache entries it used
    (key → digest) and, for a control, its expected verdict."""
    cert = out.to_json()["certificate"]
    return CheckRecord(
        id=task.id, theorem=task.theorem, kind=task.kind, index=task.index,
        pinned=task.pinned, setting=_data(task.setting.to_json()), verdict=out.verdict,
        measured=float(out.measured), bound=float(out.bound), margin=float(out.margin),
        reason=out.reason, certificate=None if cert is None else _data(cert),
        details=_data(out.details), series=_data(out.series), error=error,
        seconds=seconds,
        name=None if ctx_ctrl is None else ctx_ctrl.name,
        description=None if ctx_ctrl is None else ctx_ctrl.description,
        expected=None if ctx_ctrl is None else ctx_ctrl.expected,
        as_expected=None if ctx_ctrl is None else out.verdict == ctx_ctrl.expected,
        cache_entries=dict(sorted((used or {}).items())))


def lost_record(task: Task, ctx_kw: dict[str, Any], reason: str) -> CheckRecord:
    """The record of a task whose worker process died twice (killed, out of memory): an
    ERROR with the reason — the run goes on without it."""
    ctrl = _control(task, ctx_kw.get("scale", "quick"))
    return finish_record(task, error_outcome(reason), reason, 0.0, ctx_ctrl=ctrl)


def _control(task: Task, scale: str) -> Control | None:
    """The control a task checks (None for an example), found by its name."""
    if task.kind is not CheckKind.CONTROL:
        return None
    controls = registry()[task.theorem].controls(SCALES[scale])
    return next(c for c in controls if c.name == task.control)


def _worker(args: tuple[Task, dict[str, Any]]) -> CheckRecord:
    task, ctx_kw = args
    return evaluate(task, Context(**ctx_kw))


def _lost(args: tuple[Task, dict[str, Any]], reason: str) -> CheckRecord:
    task, ctx_kw = args
    return lost_record(task, ctx_kw, reason)


def execute(tasks: list[Task], ctx_kw: dict[str, Any], workers: int,
            records: Path | None = None,
            on_done: Callable[[CheckRecord, int, int], None] | None = None,
            done_before: int = 0, scheduler: str | None = None,
            plan: str | None = None) -> Iterator[CheckRecord]:
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
            if fh is not None:
                append_record(fh, seal(rec.to_json(), plan))
            if on_done is not None:
                on_done(rec, done_before + i, total)
            yield rec
    finally:
        if fh is not None:
            fh.close()


def summarise(thm: Theorem, recs: list[CheckRecord]) -> TheoremSummary:
    """The theorem's entry of results.json from its records."""
    ex = sorted((r for r in recs if r.kind is CheckKind.EXAMPLE), key=lambda r: r.index)
    ct = sorted((r for r in recs if r.kind is CheckKind.CONTROL), key=lambda r: r.index)
    counts = {str(v): sum(r.verdict == v for r in ex) for v in Verdict}
    verdict = overall(r.verdict for r in ex)
    errors = [r for r in ex + ct if r.error]
    ok_controls = sum(bool(r.as_expected) for r in ct)
    # theorem plots and known results read the records as JSON (theorems sit below here)
    ex_json, ct_json = [r.to_json() for r in ex], [r.to_json() for r in ct]
    known = known_results(thm, ex, ex_json)
    behaved = counts["FAIL"] == len(known) and not errors and ok_controls == len(ct)
    summary = (f"{counts['PASS']} pass, {counts['FAIL']} fail, {counts['INCONCLUSIVE']} "
               f"inconclusive, {counts['VACUOUS']} vacuous"
               + (f", {counts['ERROR']} error" if counts["ERROR"] else "")
               + f"; controls as expected {ok_controls}/{len(ct)}")
    if known:
        summary += f"; {len(known)} of the fails known results"
    if errors:
        summary += f"; {len(errors)} harness errors"
    plots = thm.plots(ex_json, ct_json)
    return TheoremSummary(
        id=thm.id, title=thm.title, source=thm.source, statement=thm.statement,
        statement_latex=thm.latex, assumptions=tuple(thm.assumptions),
        notes=tuple(thm.notes), verdict=verdict, behaved=behaved, summary=summary,
        counts=counts, seconds=sum(r.seconds for r in ex + ct),
        # the cache digests guard the run folder only; results.json does not need them
        examples=tuple(replace(r, cache_entries={}) for r in ex),
        controls=tuple(replace(r, cache_entries={}) for r in ct),
        plots=tuple(_data(p) for p in plots), known=known)


def known_results(thm: Theorem, examples: list[CheckRecord], as_json: list[dict[str, Any]]
                  ) -> dict[str, str]:
    """The FAILed examples the theorem explains (:class:`~verify.claims.theorem.Known`,
    first match), check id → ``"name: explanation"``. A FAIL of a harness error is never
    explained."""
    out: dict[str, str] = {}
    for rec, data in zip(examples, as_json, strict=True):
        if rec.verdict is not Verdict.FAIL or rec.error:
            continue
        hit = next((k for k in thm.known if k.applies(data)), None)
        if hit is not None:
            out[rec.id] = f"{hit.name}: {hit.explanation}"
    return out
