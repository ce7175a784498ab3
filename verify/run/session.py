"""One verification run, start to finish: plan, claim the run folder, execute, summarise.

:func:`run` is what ``python -m verify run`` does once its arguments are parsed: draw the
settings (Hypothesis, seeded), take the folder's lock, resume from the records already
there, execute the rest, and write ``results.json``. The report is rendered from that file
by the caller (:mod:`verify.report` sits above this layer).
"""

from __future__ import annotations

import contextlib
import errno
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verify.claims.scales import SCALES
from verify.claims.theorem import Theorem
from verify.engine.setting import require_fits, setting_key
from verify.errors import UsageError
from verify.run import rundir, runner, trust
from verify.run.executor import check_scheduler
from verify.run.records import CheckRecord, Results, RunInfo
from verify.run.results import write_results


@dataclass(frozen=True)
class Request:
    """What to run: the parsed ``run`` arguments (validated by the CLI)."""

    theorems: tuple[Theorem, ...]
    scale: str
    seed: int
    examples: int | None
    tau: float
    device: str
    workers: int
    scheduler: str | None
    out: Path | None
    overwrite: bool
    command: str = ""


@dataclass(frozen=True)
class Outcome:
    """A finished (or interrupted) run: its folder, results and whether all behaved."""

    out: Path
    results: Results
    ok: bool
    interrupted: bool
    seconds: float
    errors: int = 0  # records with a harness error (verdict ERROR)


Progress = Callable[[CheckRecord, int, int], None]


def _say(text: str) -> None:
    print(f"verify: {text}", file=sys.stderr, flush=True)


def run(req: Request, progress: Progress) -> Outcome:
    """Plan, execute and summarise ``req``; results.json is written to the run folder,
    also when interrupted (Ctrl-C or SIGTERM): the same request resumes it."""
    scale = SCALES[req.scale]
    n = scale.examples if req.examples is None else req.examples
    if req.scheduler:  # an unreachable scheduler is refused before anything is written
        check_scheduler(req.scheduler)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = prepare_out(req.out or Path("reports/runs") / f"{stamp}-{req.scale}-seed{req.seed}")
    head = {"schema": rundir.MANIFEST_SCHEMA, "theorems": [t.id for t in req.theorems],
            "scale": req.scale, "seed": req.seed, "examples": n, "tau": req.tau,
            "device": req.device}
    if not req.overwrite:  # a folder of another run is refused before the settings are drawn
        _refuse_other_run(out, head)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    _say(f"drawing settings with Hypothesis (seed {req.seed}, scale {req.scale}) for "
         f"{', '.join(t.id for t in req.theorems)} …")
    tasks = runner.plan(list(req.theorems), scale, n, req.seed, req.tau)
    require_fits([t.setting for t in tasks], req.device, "--scale", req.scale)
    manifest = {**head, "tasks": [f"{t.id} {setting_key(t.setting, req.tau)}" for t in tasks]}
    with rundir.locked(out), disk_full_is_usage(out):
        prior = claim_out(out, manifest, req.overwrite)
        done = {r.id for r in prior}
        todo = [t for t in tasks if t.id not in done]
        if prior:
            _say(f"resuming {out}: {len(prior)} of {len(tasks)} checks already done")
        _say(f"{len(todo)} checks on {req.device}, {min(req.workers, max(len(todo), 1))} "
             "worker process(es); "
             f"results stream to {out / rundir.RECORDS}")
        ctx_kw = {"tau": req.tau, "device": req.device, "max_seconds": scale.max_seconds,
                  "scale": req.scale, "cache_dir": str(out / rundir.CACHE)}
        recs = list(prior)
        interrupted = False
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for rec in runner.execute(todo, ctx_kw, req.workers, out / rundir.RECORDS,
                                      progress, done_before=len(prior),
                                      scheduler=req.scheduler,
                                      plan=trust.plan_digest(manifest)):
                recs.append(rec)
        except KeyboardInterrupt:
            interrupted = True
            print("verify: interrupted — writing the results finished so far; run the same "
                  "command again to resume", file=sys.stderr)
        finally:
            signal.signal(signal.SIGTERM, previous)
        entries = tuple(runner.summarise(t, [r for r in recs if r.theorem == t.id])
                        for t in req.theorems)
        ok = not interrupted and all(e.behaved for e in entries)
        info = RunInfo(
            started=started.isoformat(timespec="seconds"),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            wall_seconds=time.perf_counter() - t0, seed=req.seed, scale=req.scale,
            device=req.device,
            dtype="float64 (polish, certificates; first phases at each setting's precision)",
            examples=n, tau=req.tau, theorems_requested=tuple(t.id for t in req.theorems),
            command=req.command, versions=_versions(), git_commit=_git_commit(),
            platform=platform.platform(), threads=1, workers=req.workers,
            scheduler=req.scheduler, resumed_records=len(prior), ok=ok,
            interrupted=interrupted)
        results = Results(info, entries)
        write_results(results, out)
    errors = sum(1 for r in recs if r.error)
    return Outcome(out, results, ok, interrupted, time.perf_counter() - t0, errors)


@contextlib.contextmanager
def disk_full_is_usage(out: Path) -> Iterator[None]:
    """A full disk (or quota) while writing the run folder is one line naming the folder:
    every finished check is already on disk, so the same command resumes once there is
    room."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise UsageError("--out", str(out), f"a folder on a disk with free space ({exc.strerror}"
                         "); free some space and run the same command again: it resumes "
                         "where it stopped") from None


def prepare_out(out: Path) -> Path:
    """Create ``out`` and prove it writable; refuse a non-empty folder of something else."""
    if out.exists() and not out.is_dir():
        raise UsageError("--out", str(out), "a folder path (this is a file)")
    if out.is_dir() and any(f.name != rundir.LOCK for f in out.iterdir()) and not any(
            (out / m).exists() for m in rundir.RUN_FILES):
        raise UsageError("--out", str(out), "a new or empty folder, or one holding an "
                         "earlier run (this one holds other files)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError("--out", str(out), f"a writable folder ({exc.strerror})") from None
    return out


def _refuse_other_run(out: Path, head: dict[str, Any]) -> None:
    """UsageError when ``out`` holds a run whose manifest differs from ``head`` (the
    manifest without its planned tasks, which :func:`claim_out` compares later)."""
    old = rundir.read_manifest(out)
    if old is None and any((out / m).exists() for m in rundir.RUN_FILES):
        claim_out(out, head, overwrite=False)  # "a finished run from an older version"
    if old is not None and any(old.get(k) != v for k, v in head.items()):
        claim_out(out, {**head, "tasks": old.get("tasks")}, overwrite=False)


def claim_out(out: Path, manifest: dict[str, Any], overwrite: bool) -> list[CheckRecord]:
    """Under the lock: the records to resume from (same manifest), or a clean folder."""
    old = rundir.read_manifest(out) if not overwrite else None
    has_run = any((out / m).exists() for m in rundir.RUN_FILES)
    if has_run and not overwrite:
        if old != manifest:
            why = ("it holds a finished run from an older version" if old is None else
                   "it holds a different run (" + ", ".join(
                       k for k in manifest if old.get(k) != manifest[k]) + " differ)")
            raise UsageError("--out", str(out), f"a folder for this run: {why}; use another "
                             "--out, or --overwrite to replace it")
        where = out / rundir.RECORDS
        raw = trust.vet_records(rundir.read_records(out), old, where)
        trust.vet_cache(out / rundir.CACHE, raw)
        return [CheckRecord.from_json(trust.unseal(r), str(where), r["id"]) for r in raw]
    for name in (*rundir.RUN_FILES, "report.md", "report.html"):
        (out / name).unlink(missing_ok=True)
    for sub in (rundir.CACHE, "figures"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rundir.write_manifest(out, manifest)
    return []


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5,
                               check=False).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import hypothesis
    import numpy
    import scipy
    import sympy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__,
            "sympy": sympy.__version__, "hypothesis": hypothesis.__version__}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
