"""Trained networks on disk without pickle: one ``.npz`` file per network.

A run folder is untrusted input (it is shared, copied, restored from CI caches), so a cache
entry holds only numbers and JSON: the tensors as NumPy arrays (read back with
``allow_pickle=False``, which cannot run code) and everything else as one JSON document
stored in the same archive (array ``__meta__``, UTF-8 bytes). The JSON names each value's
type from a fixed list (:data:`TYPES`: the records a trained network is made of) — never a
class path to import — so a crafted file can at most fail to load.

An entry's digest is the SHA-256 of the file's bytes: :func:`encode` returns it with the
bytes, :func:`decode` checks it when the caller knows what it should be. Records of a run
carry the digests of the entries they used (:mod:`verify.run.trust`), so an entry edited
after the fact is found out on resume.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import json
import math
import typing
import zipfile
from typing import Any

import numpy as np
import torch

from verify.engine.certificate import Certificate, Established
from verify.engine.residual import Stationarity
from verify.engine.result import TrainResult
from verify.engine.revival import Revival
from verify.nets.activations import KinkSlopes

FORMAT = "lowrank-verify trained network"
SCHEMA = 1
META = "__meta__"
# the only record types an entry may hold (by name, never imported from the file)
TYPES: dict[str, type] = {c.__name__: c for c in (TrainResult, Certificate, Stationarity,
                                                  KinkSlopes, Established, Revival)}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "int64": torch.int64, "int32": torch.int32, "bool": torch.bool,
          "uint8": torch.uint8}


class CacheError(ValueError):
    """A cache entry that is not one this module wrote (it is treated as a cache miss)."""


def digest(data: bytes) -> str:
    """SHA-256 of an entry's bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def encode(value: dict[str, Any]) -> tuple[bytes, str]:
    """``value`` (JSON data, tensors and the records of :data:`TYPES`) as an ``.npz``
    archive, and the archive's digest."""
    arrays: dict[str, np.ndarray] = {}
    tree = _pack(value, arrays)
    meta = json.dumps({"format": FORMAT, "schema": SCHEMA, "value": tree}, sort_keys=True,
                      allow_nan=True).encode()
    arrays[META] = np.frombuffer(meta, dtype=np.uint8)
    buf = io.BytesIO()
    # numpy's stub reads **arrays as if a key could be its allow_pickle flag
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    data = buf.getvalue()
    return data, digest(data)


def decode(data: bytes, device: str = "cpu", expect: str | None = None) -> dict[str, Any]:
    """The value :func:`encode` stored; tensors on ``device``. Raises :class:`CacheError`
    for anything else, and when ``expect`` is given and the digest differs."""
    if expect is not None and digest(data) != expect:
        raise CacheError("digest differs from the one recorded")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CacheError(f"not an npz archive ({type(exc).__name__})") from None
    if META not in arrays or arrays[META].dtype != np.uint8:
        raise CacheError("no metadata")
    try:
        meta = json.loads(arrays[META].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CacheError("unreadable metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get(
            "schema") != SCHEMA:
        raise CacheError("another format or schema")
    try:
        out = _unpack(meta.get("value"), arrays, device)
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as exc:
        raise CacheError(f"malformed entry ({type(exc).__name__}: {exc})") from None
    if not isinstance(out, dict):
        raise CacheError("top level is not a mapping")
    return out


def _pack(x: Any, arrays: dict[str, np.ndarray]) -> Any:
    if x is None or isinstance(x, bool | int | str):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else {"float": repr(x)}
    if isinstance(x, enum.Enum):  # e.g. a status enum of a record: stored by its value
        return _pack(x.value, arrays)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        name = f"a{len(arrays)}"
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in DTYPES:  # e.g. bfloat16: stored as float32, cast back on load
            t = t.to(torch.float32)
        arrays[name] = t.numpy()
        return {"tensor": name, "dtype": dtype}
    if isinstance(x, tuple):
        return {"tuple": [_pack(v, arrays) for v in x]}
    if isinstance(x, list):
        return [_pack(v, arrays) for v in x]
    if isinstance(x, dict):
        return {"dict": [[_pack(k, arrays), _pack(v, arrays)] for k, v in x.items()]}
    if dataclasses.is_dataclass(x) and type(x).__name__ in TYPES:
        return {"record": type(x).__name__,
                "fields": {f.name: _pack(getattr(x, f.name), arrays)
                           for f in dataclasses.fields(x)}}
    raise TypeError(f"a cache entry cannot hold a {type(x).__name__}")


def _unpack(x: Any, arrays: dict[str, np.ndarray], device: str) -> Any:
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, list):
        return [_unpack(v, arrays, device) for v in x]
    if not isinstance(x, dict) or len(x) not in (1, 2):
        raise ValueError("unknown node")
    if "float" in x:
        v = float(x["float"])
        if math.isfinite(v):
            raise ValueError("finite float stored as special")
        return v
    if "tensor" in x:
        arr = arrays[x["tensor"]]
        if arr.dtype == object:
            raise ValueError("object array")
        target = {**DTYPES, "bfloat16": torch.bfloat16}[x["dtype"]]
        return torch.from_numpy(np.array(arr)).to(device=device, dtype=target)
    if "tuple" in x:
        return tuple(_unpack(v, arrays, device) for v in x["tuple"])
    if "dict" in x:
        return {_unpack(k, arrays, device): _unpack(v, arrays, device) for k, v in x["dict"]}
    if "record" in x:
        cls = TYPES[x["record"]]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        vals = {k: _unpack(v, arrays, device) for k, v in x["fields"].items()}
        if not set(vals) <= set(fields):
            raise ValueError(f"{cls.__name__} has no field {sorted(set(vals) - set(fields))}")
        hints = typing.get_type_hints(cls)
        for k, v in vals.items():  # enums were stored by value
            hint = hints.get(k)
            if isinstance(hint, type) and issubclass(hint, enum.Enum):
                vals[k] = hint(v)
        return cls(**vals)
    raise ValueError("unknown node")
