"""Where checks run: one interface over a local process pool and a Dask cluster.

``map_unordered(fn, items)`` yields ``fn(item)`` as each finishes. Local: a process pool,
each worker pinned to one torch/BLAS thread (on a small CPU, two single-threaded processes
beat one two-threaded one). Dask: the same function shipped to a running distributed
scheduler (``--scheduler tcp://host:8786``); workers pin their threads per task.

Measured on this project's 2-core box: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536``
for its workers, which doubled torch's CPU time through page faults; setting
``distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_`` to 16 MiB before the cluster
starts removed the slowdown. :func:`dask_worker_environ` applies that to clusters this
process starts; start remote workers with the same environment variable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from verify.errors import UsageError

MMAP_THRESHOLD = 16 * 2**20


class Executor(Protocol):
    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        ...


def pin_threads(n: int = 1) -> None:
    """Limit torch and the BLAS/OpenMP pools of this process to ``n`` threads.

    Measured on a 2-core box: tiny float64 problems ran ~6× slower with 2 torch threads
    than with 1, and two 1-thread processes beat one 2-thread process.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


class SerialExecutor:
    """In this process, in order."""

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        pin_threads()
        for item in items:
            yield fn(item)


class LocalExecutor:
    """A pool of ``workers`` processes with one thread each."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        with ProcessPoolExecutor(max_workers=self.workers, initializer=pin_threads) as pool:
            futs = [pool.submit(fn, item) for item in items]
            try:
                for f in as_completed(futs):
                    yield f.result()
            except BaseException:
                for f in futs:
                    f.cancel()
                raise


def _pinned(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(item: Any) -> Any:
        pin_threads()
        return fn(item)

    return run


class DaskExecutor:
    """Tasks on a running Dask distributed scheduler at ``address``."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler", address, "only with Dask installed (pip install "
                             "'lowrank-verify[dask]')") from None
        try:
            self.client = Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError("--scheduler", address, "the address of a running Dask "
                             f"scheduler, e.g. tcp://host:8786 (could not connect: {exc})"
                             ) from None

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed as dask_completed

        futs = self.client.map(_pinned(fn), list(items), pure=False)
        try:
            for f in dask_completed(futs, loop=self.client.loop):
                yield f.result()
        except BaseException:
            self.client.cancel(futs)
            raise
        finally:
            self.client.close()


def dask_worker_environ() -> None:
    """Set the nanny's pre-spawn environment for clusters started from this process."""
    import dask

    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_":
                     MMAP_THRESHOLD})


def make_executor(workers: int, scheduler: str | None = None) -> Executor:
    if scheduler:
        if "://" not in scheduler:
            raise UsageError("--scheduler", scheduler, "a scheduler address such as "
                             "tcp://host:8786")
        return DaskExecutor(scheduler)
    return SerialExecutor() if workers <= 1 else LocalExecutor(workers)
