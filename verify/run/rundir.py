"""The run folder as a store that survives interruption.

``run.json`` — the manifest: what the run is (theorems, scale, seed, examples, τ, device)
and the stable ids and setting keys of its planned checks; written before any check starts.
``records.jsonl`` — one :class:`~verify.run.records.CheckRecord` per line, sealed with the
plan's digest and its own (:mod:`verify.run.trust`), appended and fsynced as each check
ends. A run killed at any moment (even SIGKILL) loses at most the line being written;
restarting it with the same ``--out`` and the same manifest resumes: finished checks are
read back by their stable ids, vetted, and nothing is run twice or lost.
``.lock`` — an exclusive advisory lock held while a run writes, naming its PID; a second
run on the same folder refuses instead of interleaving records, a dead run's lock is taken
over (:mod:`verify.run.lock`).
``cache/`` — trained networks keyed by a hash of their setting (see ``realise``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from verify.errors import UsageError
from verify.run.lock import LOCK, locked
from verify.run.results import atomic_write_bytes

MANIFEST = "run.json"
MANIFEST_SCHEMA = 2  # 2: tasks named by stable ids
RECORDS = "records.jsonl"
CACHE = "cache"
RUN_FILES = (MANIFEST, RECORDS, "results.json")
__all__ = ["CACHE", "LOCK", "MANIFEST", "MANIFEST_SCHEMA", "RECORDS", "RUN_FILES",
           "append_record", "locked", "read_manifest", "read_records", "write_manifest"]


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
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


def read_records(out: Path) -> list[dict[str, Any]]:
    """Finished records as written (JSON objects with an ``id``), repairing a line torn by a
    kill (it is dropped and truncated away). A corrupt line anywhere else means the file was
    damaged by something other than an interruption: refuse rather than guess. The records
    are vetted (:func:`verify.run.trust.vet_records`) before they are typed."""
    path = out / RECORDS
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    recs: list[dict[str, Any]] = []
    for i, line in enumerate(complete, 1):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
                raise ValueError("not a record")
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
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
    seen: dict[str, dict[str, Any]] = {}
    for rec in recs:
        seen.setdefault(rec["id"], rec)  # first write wins; a repeat is never kept
    return list(seen.values())


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def append_record(fh: Any, rec: dict[str, Any]) -> None:
    """One line (a sealed record's JSON), flushed and fsynced before the next check starts;
    non-finite floats are kept as NaN/Infinity."""
    fh.write(json.dumps(rec, allow_nan=True) + "\n")
    fh.flush()
    os.fsync(fh.fileno())
