"""The run folder's lock: one run writes a folder at a time, and a dead run never blocks.

``DIR/.lock`` is held with an exclusive ``flock`` and names its holder (``pid host``).

* The kernel drops a ``flock`` when the last descriptor of its open file closes, so the
  lock dies with the process that took it — provided no child inherited the descriptor.
  Worker processes are forked from the run; :func:`_close_in_child` (registered with
  ``os.register_at_fork``) closes every held lock in each child, so a worker never holds
  the run's lock, even when it outlives the run.
* A run killed with SIGKILL leaves its PID in the file: the next run takes the free lock
  over and says whose it was.
* A lock still held while the PID it names is dead can only be held by leftovers of that
  run (e.g. workers of an older version orphaned by SIGKILL): the run takes it over with a
  message instead of refusing forever. A live holder is refused, named by its PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from verify.errors import UsageError

LOCK = ".lock"
_HELD: set[int] = set()  # descriptors of the locks this process holds


def _close_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _holder(fd: int) -> tuple[int, str] | None:
    try:
        raw = os.pread(fd, 200, 0).decode("ascii", "replace").split()
        return int(raw[0]), raw[1]
    except (OSError, ValueError, IndexError):
        return None


def _say(text: str) -> None:
    print(f"verify: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the duration, or refuse (UsageError) while a live run holds
    it; see the module docstring for stale locks."""
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    me, host = os.getpid(), socket.gethostname()
    try:
        before = _holder(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if before is None or before[1] != host or alive(before[0]):
                who = ("another run" if before is None
                       else f"process {before[0]} on {before[1]}")
                raise UsageError("--out", str(out), "a folder no other run is using ("
                                 f"{who} holds its lock: another `python -m verify run`; "
                                 "wait for it or choose another --out)") from None
            _say(f"the lock of {out} names process {before[0]}, which is gone; leftovers of "
                 "that run still hold it: taking it over")
        else:
            if before is not None and before[0] != me:
                _say(f"taking over the lock of {out} left by process {before[0]} on "
                     f"{before[1]} (no longer running)")
        _HELD.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{me} {host}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # a clean exit leaves no holder behind
    finally:
        _HELD.discard(fd)
        os.close(fd)
