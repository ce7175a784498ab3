"""results.json: everything a run measured, written atomically and read back checked.

The report is rendered from this file alone (:mod:`verify.report`), so it can be
regenerated, diffed or rendered elsewhere without rerunning anything. Non-finite floats are
stored as ``null``; the file carries its schema number and is refused under another one.
Its content is the typed :class:`~verify.run.records.Results`; the JSON Schema is
``results.schema.json`` beside this module. This module also holds the package's one
atomic writer (:func:`atomic_write_bytes`) and one JSON converter (:func:`jsonable`).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import UsageError
from verify.run.records import SCHEMA, Results

RESULTS_NAME = "results.json"
SCHEMA_NAME = "results.schema.json"  # the published JSON Schema (draft 2020-12), package data


def json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (``verify/run/results.schema.json``)."""
    text = resources.files("verify.run").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


# Fields of results.json that measure the machine, not the theorem: two runs of the same
# seed agree on everything else (tested: resumed runs, Dask vs local).
TIMING_FIELDS = frozenset({"seconds", "train_seconds", "wall_seconds", "started", "finished",
                           "command", "resumed_records", "git_commit", "seconds_per_step",
                           "peak_memory_bytes"})


def without_timing(x: Any) -> Any:
    """``x`` (parsed results JSON) with every :data:`TIMING_FIELDS` key removed, at any depth."""
    if isinstance(x, dict):
        return {k: without_timing(v) for k, v in x.items() if k not in TIMING_FIELDS}
    if isinstance(x, list):
        return [without_timing(v) for v in x]
    return x


_ALLOWED = f"a {RESULTS_NAME} with schema {SCHEMA} written by `python -m verify run`"


def jsonable(value: Any, strict: bool = True, finite: bool = True) -> Any:
    """Return ``value`` as plain JSON data, with non-finite floats replaced by ``None``.

    JSON has no NaN/Infinity, and other tools read these files with strict parsers, so a
    non-finite measurement is stored as ``null`` ("no finite value"). NumPy scalars/arrays,
    tuples, mappings and paths are converted because engines naturally produce them. Any
    other object raises ``TypeError`` when ``strict`` (writing), or becomes its ``str``
    (rendering, and the details of a check record). With ``finite=False`` non-finite floats
    are kept (``records.jsonl`` stores them as NaN/Infinity, so that a resumed record equals
    the fresh one the theorem's plots saw).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) or not finite else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, strict, finite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, strict, finite) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return jsonable(float(value), strict, finite)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), strict, finite)
    if not strict:
        return str(value)
    raise TypeError(f"results contain a value JSON cannot store: {type(value).__name__}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same directory, are fsynced, and the file is moved
    over ``path`` with :func:`os.replace` (atomic on POSIX and Windows); an interrupted run
    therefore never leaves a truncated results file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 honours the umask (tempfile.mkstemp would force 0o600, leaving
    # reports unreadable to anyone else); O_EXCL plus a random suffix avoids collisions.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not possible everywhere (e.g. Windows)
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_results(results: Results | dict, out_dir: Path) -> Path:
    """Write ``results`` to ``out_dir/results.json`` atomically and return the file's path.

    Non-finite floats become ``null`` (recursively) so the file is strict JSON. A missing
    ``"schema"`` key is filled in with :data:`SCHEMA`; a different schema is refused, because
    :func:`load_results` would refuse to read the file back.
    """
    if isinstance(results, Results):
        results = results.to_json()
    if not isinstance(results, dict):
        raise UsageError("results", type(results).__name__, "a dict following the results schema")
    data = jsonable(results)
    schema = data.setdefault("schema", SCHEMA)
    if schema != SCHEMA:
        raise UsageError("results schema", schema, f"{SCHEMA} (the schema this version writes)")
    if next(iter(data)) != "schema":  # keep "schema" first so `head results.json` shows it
        data = {"schema": SCHEMA, **{k: v for k, v in data.items() if k != "schema"}}
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path = Path(out_dir) / RESULTS_NAME
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def load_results(out_dir: Path) -> dict:
    """Read ``out_dir/results.json`` (``out_dir`` may also be the file itself) as JSON data,
    checked against the typed records (:meth:`Results.from_json`).

    Raises :class:`~verify.errors.UsageError` naming the file when it is missing, is not
    valid JSON (e.g. truncated), was written with another schema, or has a field of the
    wrong shape (naming the field), so that the CLI can tell the user which file is wrong
    instead of printing a traceback.
    """
    return _load(out_dir)[0]


def read_results(out_dir: Path) -> Results:
    """:func:`load_results` as the typed :class:`~verify.run.records.Results`."""
    return _load(out_dir)[1]


def _load(out_dir: Path) -> tuple[dict, Results]:
    out_dir = Path(out_dir)
    path = out_dir if out_dir.is_file() else out_dir / RESULTS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "results file", str(path), f"{_ALLOWED} (the file does not exist)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            "results file", str(path), f"{_ALLOWED} (cannot read it: {exc})"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            "results file", str(path), f"{_ALLOWED} (not valid JSON, e.g. truncated: {exc})"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(
            "results file", str(path), f"{_ALLOWED} (top level is {type(data).__name__})"
        )
    if data.get("schema") != SCHEMA:
        raise UsageError(
            "results file", str(path), f"{_ALLOWED} (found schema {data.get('schema')!r})"
        )
    return data, Results.from_json(data, str(path))
