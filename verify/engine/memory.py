"""Memory a network will need, estimated before anything is allocated.

A size that cannot fit used to fail after a minute as an allocator traceback; now it is
refused up front, with the estimate. The estimate counts float64 numbers (8 bytes):

* P parameters, held ``PARAM_COPIES`` times: the L-BFGS history (2 × 50 vectors of
  :func:`verify.engine.polish.lbfgs_polish`), plus iterates, gradients and optimiser state;
* P² for the exact Hessian and the dense Newton solve, below their parameter limits;
* the data (n × (d_0 + d_L)) and the per-sample internals of every layer, held
  ``ACTIVATION_COPIES`` times (forward inputs, pre-activations, back-propagated errors and
  their autograd copies): n × Σ_k d_k.

It is an upper estimate for the networks of this project (measured: 64-4096-4096-10 at
n = 256 peaked 886 MiB above the process's start in its first phase, estimate 13 GiB with
the L-BFGS history that phase does not need yet), so a refusal means "would not fit", not
"might be slow".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from verify.engine.certificate import EXACT_HESSIAN_LIMIT
from verify.engine.polish import DENSE_NEWTON
from verify.errors import UsageError

PARAM_COPIES = 120
ACTIVATION_COPIES = 6
BYTES = 8  # float64


def estimate_bytes(setting: Any) -> int:
    """Upper estimate of the memory one network of ``setting`` needs (module docstring)."""
    arch = setting.architecture()
    P = arch.n_params()
    n = setting.n
    widths = arch.widths
    numbers = PARAM_COPIES * P + n * (widths[0] + widths[-1])
    numbers += ACTIVATION_COPIES * n * sum(widths)
    if P <= max(EXACT_HESSIAN_LIMIT, DENSE_NEWTON):
        numbers += 3 * P * P
    return BYTES * numbers


def available_bytes(device: str = "cpu") -> int | None:
    """Memory this process could still get on ``device`` (None when unknown)."""
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info()[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def require_fits(settings: Iterable[Any], device: str, name: str, value: object) -> None:
    """UsageError naming ``name``=``value`` when the largest network of ``settings`` (each a
    Setting, or anything with ``settings()``, e.g. a sweep) would not fit in the memory of
    ``device``."""
    flat: list[Any] = []
    for s in settings:
        inner = getattr(s, "settings", None)
        flat.extend(inner() if callable(inner) else [s])
    sized = [s for s in flat if hasattr(s, "architecture") and hasattr(s, "n")]
    if not sized:
        return
    need = max(estimate_bytes(s) for s in sized)
    have = available_bytes(device)
    if have is not None and need > have:
        raise UsageError(name, value, f"a size that fits in memory: one network needs about "
                         f"{_gib(need)}, {_gib(have)} is available on {device}")
