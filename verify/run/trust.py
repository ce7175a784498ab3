"""What a resumed run may trust from its folder: sealed records and vouched cache entries.

A run folder is untrusted input (shared, copied, restored from CI caches). Every record is
sealed as it is written: it carries the digest of the run's plan (the manifest: theorems,
scale, seed, examples, τ, device and every planned check with its setting's hash) and a
digest of its own canonical JSON, and it names the cache entries its check used with their
digests (:mod:`verify.engine.cache`). On resume:

* a record outside the plan (a check the manifest does not list, or a listed check with
  another setting), a record of another plan, or a record edited after it was written
  (digest mismatch) is refused, naming it — the folder needs a new ``--out`` or
  ``--overwrite``;
* a cache entry is kept only when a record vouches for it with the same digest; any other
  file in ``cache/`` (an entry of a check that was interrupted, a torn temporary file, an
  edited or planted entry) is removed with a message and its network retrained if needed.

Digests are SHA-256 (hex). They protect against edits and mix-ups, not against someone who
rewrites a record and recomputes its digest: that person could as well edit the code.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from verify.engine.cache import digest as file_digest
from verify.engine.setting import CACHE_SUFFIX, setting_key_json
from verify.errors import UsageError

SEAL_FIELDS = ("plan", "digest")  # written last into each records.jsonl line


def _default(o: Any) -> Any:
    return list(o) if isinstance(o, tuple) else str(o)


def canonical(x: Any) -> bytes:
    """The JSON text a digest is taken of: normalised as written, then with sorted keys."""
    plain = json.loads(json.dumps(x, default=_default, allow_nan=True))
    return json.dumps(plain, sort_keys=True, allow_nan=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def plan_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def _record_digest(rec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in rec.items() if k != "digest"})
                          ).hexdigest()


def seal(rec: dict[str, Any], plan: str | None) -> dict[str, Any]:
    """``rec`` with the plan's digest and its own (the last fields written)."""
    out = {k: v for k, v in rec.items() if k not in SEAL_FIELDS}
    if plan is None:
        return out
    out["plan"] = plan
    out["digest"] = _record_digest(out)
    return out


def unseal(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` without its seal: the record as :class:`~verify.run.records.CheckRecord`
    reads it."""
    return {k: v for k, v in rec.items() if k not in SEAL_FIELDS}


def _planned(manifest: dict[str, Any]) -> dict[str, str]:
    """Planned check id → its setting key (manifest tasks are ``"<id> <key>"``)."""
    out: dict[str, str] = {}
    for entry in manifest.get("tasks", []):
        cid, _, key = str(entry).rpartition(" ")
        out[cid] = key
    return out


def vet_records(recs: list[dict[str, Any]], manifest: dict[str, Any], where: Path
                ) -> list[dict[str, Any]]:
    """``recs`` when every one is sealed, of this plan and unedited; else UsageError
    naming the first that is not (see module docstring)."""
    plan, planned = plan_digest(manifest), _planned(manifest)
    tau = manifest.get("tau")
    tau = float(tau) if isinstance(tau, int | float) and not isinstance(tau, bool) else math.nan
    allowed = "records written by this run (use a new --out, or --overwrite to start over)"
    for rec in recs:
        key = name = str(rec.get("id"))
        if rec.get("digest") is None:
            raise UsageError("record", f"{where} {name}", f"{allowed}; this one is not "
                             "sealed (an older version, or written by hand)")
        if rec["digest"] != _record_digest(rec):
            raise UsageError("record", f"{where} {name}", f"{allowed}; this one was edited "
                             "after it was written (its digest does not match)")
        if key not in planned:
            raise UsageError("record", f"{where} {name}", f"{allowed}; this check is not in "
                             f"the plan of {len(planned)} checks")
        setting = rec.get("setting")
        if not isinstance(setting, dict) or setting_key_json(setting, tau) != planned[key]:
            raise UsageError("record", f"{where} {name}", f"{allowed}; its setting is not "
                             "the planned one")
        if rec.get("plan") != plan:
            raise UsageError("record", f"{where} {name}", f"{allowed}; it belongs to another "
                             "plan")
    return recs


def vet_cache(cache_dir: Path, recs: list[dict[str, Any]]) -> int:
    """Remove every file of ``cache_dir`` no record vouches for (module docstring); returns
    how many were removed, and says so."""
    vouched: dict[str, set[str]] = {}
    for rec in recs:
        for key, dig in (rec.get("cache_entries") or {}).items():
            vouched.setdefault(str(key), set()).add(str(dig))
    if not cache_dir.is_dir():
        return 0
    removed: list[str] = []
    edited = 0
    for path in sorted(cache_dir.iterdir()):
        key = path.name.removesuffix(CACHE_SUFFIX)
        ok = path.is_file() and path.name.endswith(CACHE_SUFFIX) and key in vouched
        if ok:
            try:
                ok = file_digest(path.read_bytes()) in vouched[key]
            except OSError:
                ok = False
            edited += not ok
        if not ok:
            removed.append(path.name)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    if removed:
        why = (f"{edited} differ from the digest their record holds (edited?), "
               if edited else "")
        print(f"verify: {cache_dir}: {len(removed)} cache file(s) no record vouches for "
              f"({why}left by an interrupted check, or not written by this run) removed; "
              "their networks are retrained when needed", file=sys.stderr, flush=True)
    return len(removed)
