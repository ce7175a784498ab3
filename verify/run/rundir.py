"""The run folder as a store that survives interruption.

``run.json`` — the manifest: what the run is (theorems, scale, seed, examples, τ, device)
and the keys of its planned checks; written before any check starts.
``records.jsonl`` — one :class:`~verify.run.records.CheckRecord` per line, appended and
fsynced as each check ends. A run killed at any moment (even SIGKILL) loses at most the line
being written; restarting it with the same ``--out`` and the same manifest resumes: finished
checks are read back by their stable ids, nothing is run twice and nothing is lost.
``.lock`` — an exclusive advisory lock (fcntl.flock) held while a run writes; a second run
on the same folder refuses instead of interleaving records.
``cache/`` — trained networks keyed by a hash of their setting (see ``realise``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from verify.errors import UsageError
from verify.run.records import CheckRecord
from verify.run.results import atomic_write_bytes

MANIFEST = "run.json"
MANIFEST_SCHEMA = 2  # 2: tasks named by stable ids
RECORDS = "records.jsonl"
LOCK = ".lock"
CACHE = "cache"
RUN_FILES = (MANIFEST, RECORDS, "results.json")


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the folder's lock, or refuse with a UsageError if another run holds it."""
    fh = open(out / LOCK, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError("--out", str(out), "a folder no other run is using (another "
                             "`python -m verify run` holds its lock; wait for it or choose "
                             "another --out)") from None
        yield
    finally:
        fh.close()


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise UsageError("run manifest", str(path), "a run.json written by `python -m verify "
                         "run` (this one is unreadable; use a new --out or --overwrite)"
                         ) from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise UsageError("run manifest", str(path), f"schema {MANIFEST_SCHEMA} (use a new "
                         "--out or --overwrite)")
    return data


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True)
    atomic_write_bytes(out / MANIFEST, text.encode("utf-8"))


def read_records(out: Path) -> list[CheckRecord]:
    """Finished records, repairing a line torn by a kill (it is dropped and truncated away).

    A corrupt line anywhere else means the file was damaged by something other than an
    interruption: refuse rather than guess.
    """
    path = out / RECORDS
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    recs: list[CheckRecord] = []
    for i, line in enumerate(complete, 1):
        try:
            rec = CheckRecord.from_json(json.loads(line), f"{path} line {i}")
        except (json.JSONDecodeError, UnicodeDecodeError, UsageError):
            if i == len(complete) and not tail:
                # the last newline-terminated line may also be torn mid-write by a kill
                # on a filesystem that reorders; treat it like a torn tail
                _truncate(path, len(raw) - len(line) - 1)
                break
            raise UsageError("records file", f"{path} line {i}", "JSON lines written by "
                             "`python -m verify run` (this line is corrupt; use a new --out "
                             "or --overwrite)") from None
        recs.append(rec)
    if tail:  # no newline yet: the write was interrupted
        _truncate(path, len(raw) - len(tail))
    seen: dict[str, CheckRecord] = {}
    for rec in recs:
        seen.setdefault(rec.id, rec)  # first write wins; a repeat is never kept
    return list(seen.values())


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def append_record(fh: Any, rec: CheckRecord) -> None:
    """One line, flushed and fsynced before the next check starts. The record's data is
    JSON already (the runner normalises it); non-finite floats are kept as NaN/Infinity."""
    fh.write(json.dumps(rec.to_json(), allow_nan=True) + "\n")
    fh.flush()
    os.fsync(fh.fileno())
