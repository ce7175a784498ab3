"""Benchmark session setup: one torch thread, a ``timed`` fixture over pytest-benchmark,
and benchmarks/results.md written at the end of the session (see table.py)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verify.run.executor import pin_threads

pin_threads(1)

from benchmarks import table  # noqa: E402  (after pinning threads)

RESULTS = Path(__file__).resolve().parent / "results.md"
# a run that skipped or failed some benchmark (-k, a failure) writes here instead, so the
# committed table is always a complete run
PARTIAL = RESULTS.with_name("results-partial.md")
_DESELECTED: list[int] = []
_SESSION: list[pytest.Session] = []


@pytest.fixture
def timed(benchmark: Any) -> Callable[..., tuple[float, Any]]:
    """``timed(fn, rounds, warmup)`` → (median seconds of the timed rounds, last result).

    Runs through ``benchmark.pedantic`` (so pytest-benchmark saves and compares it) and also
    times each call itself, so the table gets numbers under ``--benchmark-disable`` too
    (then pytest-benchmark calls ``fn`` once)."""

    def run(fn: Callable[[], Any], rounds: int = 3, warmup: int = 0) -> tuple[float, Any]:
        times: list[float] = []
        last: list[Any] = [None]

        def wrapped() -> Any:
            t0 = time.perf_counter()
            last[0] = fn()
            times.append(time.perf_counter() - t0)
            return last[0]

        benchmark.pedantic(wrapped, rounds=rounds, iterations=1, warmup_rounds=warmup)
        kept = times[warmup:] or times
        return statistics.median(kept), last[0]

    return run


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION.append(session)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _DESELECTED.append(len(items))


def _target(session: pytest.Session) -> Path:
    complete = not _DESELECTED and session.testsfailed == 0 and session.testscollected > 0
    return RESULTS if complete else PARTIAL


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if table.VALUES:
        _target(session).write_text(table.render(), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if table.VALUES:
        path = _target(_SESSION[-1]) if _SESSION else PARTIAL
        terminalreporter.write_sep("-", f"benchmark table: {path}")
        terminalreporter.write_line(table.render())
