"""Benchmark session setup: one torch thread, a ``timed`` fixture over pytest-benchmark,
and benchmarks/results.md written at the end of the session (see table.py)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verify.runner import pin_threads

pin_threads(1)

from benchmarks import table  # noqa: E402  (after pinning threads)

RESULTS = Path(__file__).resolve().parent / "results.md"


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if table.VALUES:
        RESULTS.write_text(table.render(), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if table.VALUES:
        terminalreporter.write_sep("-", f"benchmark table: {RESULTS}")
        terminalreporter.write_line(table.render())
