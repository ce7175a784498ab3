"""Where checks run: one interface over a local process pool and a Dask cluster.

``map_unordered(fn, items, lost)`` yields ``fn(item)`` as each finishes. Local: worker
processes, never more than items, each pinned to one torch/BLAS thread (on a small CPU, two
single-threaded processes beat one two-threaded one); a worker that dies costs its item one
retry, then ``lost(item, reason)`` stands in for its result; workers die with the run
(parent-death signal, and a parent-liveness check) and never hold its lock
(:mod:`verify.run.lock`). Dask: the same function shipped to a running distributed
scheduler (``--scheduler tcp://host:8786``); workers pin their threads per task.

Measured on this project's 2-core box: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536``
for its workers, which doubled torch's CPU time through page faults; setting
``distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_`` to 16 MiB before the cluster
starts removed the slowdown. :func:`dask_worker_environ` applies that to clusters this
process starts; start remote workers with the same environment variable.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from verify.errors import UsageError
from verify.names import max_workers  # noqa: F401  (torch-free: the CLI validates early)

MMAP_THRESHOLD = 16 * 2**20


# A worker process that dies while running a check (killed, out of memory, a crash in a
# native library) costs that check one retry; dying again makes it an ERROR record.
ATTEMPTS = 2


Lost = Callable[[Any, str], Any]


class Executor(Protocol):
    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any],
                      lost: Lost | None = None) -> Iterator[Any]:
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

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any],
                      lost: Lost | None = None) -> Iterator[Any]:
        pin_threads()
        for item in items:
            yield fn(item)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """End this worker when the run's process ends, however it ends (SIGKILL included):
    the kernel's parent-death signal on Linux, and everywhere a thread that checks every
    second that the parent is still this worker's parent."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(conn: Connection, fn: Callable[[Any], Any], parent: int) -> None:
    """A worker: run ``fn`` on each item received, send back (index, result)."""
    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the run handles it and ends its workers;
    # a worker must neither print a traceback nor die half-way through a send
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_threads()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        i, item = msg
        conn.send((i, fn(item)))


def _death(proc: BaseProcess) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{why}"
    return f"exited with status {code}"


class LocalExecutor:
    """Worker processes with one thread each, never more than there are items.

    Each worker runs one item at a time, so the item a dying worker was running is known:
    it is retried once on a fresh worker (:data:`ATTEMPTS`), then handed to ``lost`` with
    the reason, and the other items go on. Workers end with the run (:func:`_die_with_parent`)
    and, when the generator is closed (Ctrl-C, an error), are ended by it.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any],
                      lost: Lost | None = None) -> Iterator[Any]:
        todo = list(items)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        mp: Any = multiprocessing.get_context(method)  # typeshed's BaseContext lacks Process
        queue = collections.deque(range(len(todo)))
        tries: collections.Counter[int] = collections.Counter()
        # conn → (process, index it runs or None)
        pool: dict[Connection, tuple[BaseProcess, int | None]] = {}

        def spawn() -> None:
            here, there = mp.Pipe()
            proc = mp.Process(target=_serve, args=(there, fn, os.getpid()), daemon=True)
            proc.start()
            there.close()
            pool[here] = (proc, None)

        try:
            while queue or any(i is not None for _, i in pool.values()):
                while len(pool) < min(self.workers, len(queue) + sum(
                        i is not None for _, i in pool.values())):
                    spawn()
                for conn, (proc, i) in list(pool.items()):
                    if i is None and queue:
                        j = queue.popleft()
                        tries[j] += 1
                        conn.send((j, todo[j]))
                        pool[conn] = (proc, j)
                busy = {c: p for c, (p, i) in pool.items() if i is not None}
                ready = wait([*busy, *(p.sentinel for p in busy.values())])
                for conn, proc in busy.items():
                    _, i = pool[conn]
                    if conn in ready:
                        try:
                            j, out = conn.recv()
                        except (EOFError, OSError):
                            pass  # it died mid-send: handled below as a death
                        else:
                            pool[conn] = (proc, None)
                            yield out
                            continue
                    if proc.sentinel in ready or conn in ready:
                        proc.join(timeout=5)
                        del pool[conn]
                        conn.close()
                        assert i is not None
                        if tries[i] < ATTEMPTS:
                            print(f"verify: a worker process {_death(proc)} during a check; "
                                  "running that check once more", file=sys.stderr, flush=True)
                            queue.appendleft(i)
                        elif lost is not None:
                            yield lost(todo[i], f"its worker process died {ATTEMPTS} times "
                                                f"running it (last {_death(proc)})")
                        else:
                            raise RuntimeError(f"worker process {_death(proc)}")
        finally:
            for conn in pool:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            for conn, (proc, i) in pool.items():
                if i is not None:
                    proc.kill()  # interrupted mid-check: its result is not wanted
                proc.join(timeout=2)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=2)
                conn.close()


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

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any],
                      lost: Lost | None = None) -> Iterator[Any]:
        from distributed import KilledWorker
        from distributed import as_completed as dask_completed

        todo = list(items)
        futs = self.client.map(_pinned(fn), todo, pure=False)
        which = {f.key: item for f, item in zip(futs, todo, strict=True)}
        try:
            for f in dask_completed(futs, loop=self.client.loop):
                try:
                    yield f.result()
                except KilledWorker as exc:  # Dask retried it on other workers already
                    if lost is None:
                        raise
                    yield lost(which[f.key], f"its Dask workers died running it ({exc})")
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


def _check_address(address: str) -> None:
    if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d{1,5})?/?", address):
        raise UsageError("--scheduler", address, "a scheduler address such as "
                         "tcp://host:8786")


def check_scheduler(address: str) -> None:
    """Refuse (UsageError) an address that is not a reachable Dask scheduler: called before
    the run writes anything."""
    _check_address(address)
    DaskExecutor(address).client.close()


def make_executor(workers: int, scheduler: str | None = None) -> Executor:
    if scheduler:
        _check_address(scheduler)
        return DaskExecutor(scheduler)
    return SerialExecutor() if workers <= 1 else LocalExecutor(workers)
