"""Helpers shared by several test modules (fixtures stay in ``conftest.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from hypothesis import settings

from verify.claims.verdict import Verdict
from verify.engine.setting import Context
from verify.nets import data as D
from verify.run.records import CheckKind, CheckRecord
from verify.tolerances import gamma

# Checks that train networks are costly: they draw this many settings under "fast" and
# scale up with the profile's max_examples otherwise (read after conftest loaded the profile).
TRAINING_EXAMPLES = max(2, settings().max_examples // 5)

# One context per test process for the theorem checks (tests/claims): each pinned network
# is trained once, however many modules, mutants and examples check it.
CLAIMS_CTX = Context(tau=1e-6)


def dataset(loss: str, n: int, d: int, d_out: int, seed: int) -> D.Dataset:
    """A small data set for ``loss``: a teacher for squared loss, clusters otherwise."""
    if loss == "squared":
        return D.teacher(n, d, d_out, seed)
    return D.clusters(n, d, d_out if loss == "ce" else 2, seed, loss)


def check_record(theorem: str = "T1", kind: str = "example", index: int = 0,
                 verdict: str = "PASS", **fields: object) -> CheckRecord:
    """A minimal well-formed check record (no training): an example, or a control expecting
    FAIL; ``fields`` override any field."""
    control = kind == "control"
    rec = CheckRecord(
        id=f"{theorem}/control/c{index}" if control else f"{theorem}/ex/s{index}",
        theorem=theorem, kind=CheckKind(kind), index=index, pinned=False, setting={},
        verdict=Verdict(verdict), measured=0.0, bound=1.0, margin=1.0, reason="synthetic",
        certificate=None, details={}, series={}, error=None, seconds=0.1,
        name=f"c{index}" if control else None, description="synthetic" if control else None,
        expected=Verdict.FAIL if control else None,
        as_expected=verdict == "FAIL" if control else None)
    return replace(rec, **fields)  # type: ignore[arg-type]
def _array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def rounding(ops: int, scale: float, dtype: torch.dtype = torch.float64) -> float:
    """γ_ops · scale: how far two computations of one quantity may drift apart through
    rounding, ``ops`` the length of the longest chain of roundings (the sizes of the
    operations, see the table in :mod:`verify.tolerances`) and ``scale`` the size of what was
    summed (not of the result, which may have cancelled)."""
    return gamma(ops, dtype) * float(scale)


def assert_close(actual: Any, expected: Any, *, ops: int = 0, scale: float | None = None,
                 dtype: torch.dtype = torch.float64, bound: float | None = None) -> None:
    """Entrywise |actual − expected| ≤ γ_ops · scale; ``scale`` defaults to the largest
    magnitude of the compared quantities (or give the derived ``bound`` itself). Derived,
    never tuned: a value wrong by one part in 10⁹ of that scale still fails whenever
    γ_ops < 1e-9 (ops < 9·10⁶ in float64)."""
    a, b = _array(actual), _array(expected)
    assert a.shape == b.shape, (a.shape, b.shape)
    if scale is None:
        scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b),
                                                                         initial=0.0)))
    if bound is None:
        bound = rounding(ops, scale, dtype)
    err = float(np.max(np.abs(a - b), initial=0.0)) if a.size else 0.0
    assert err <= bound, f"|actual − expected| = {err:.3g} > {bound:.3g} (ops {ops})"


def within(expected: float, *, ops: int = 0, scale: float | None = None,
           bound: float | None = None) -> Any:
    """``pytest.approx(expected)`` within the rounding bound γ_ops · scale (default scale:
    |expected|), or within a derived ``bound``."""
    import pytest

    s = abs(float(expected)) if scale is None else float(scale)
    return pytest.approx(expected, rel=0.0, abs=rounding(ops, s) if bound is None else bound)


def forward_scale(arch: Any, params: Any, X: torch.Tensor) -> float:
    """What the rounding of an MLP's outputs is relative to: the forward pass on absolute
    values — |W_k|, |b_k|, |X| — with σ replaced by its bound |σ(z)| ≤ |z| + log 2 (≤ |z|
    for relu, leaky relu, tanh and the identity), a running error bound (Higham §3.3).
    Residual blocks add |h_{k−1}|."""
    import math

    L = arch.depth
    Ws = [p.detach().abs() for p in params[:L]]
    bs = [p.detach().abs() for p in params[L:]] if arch.bias else [None] * L
    h = X.detach().abs()
    for k in range(L):
        z = h @ Ws[k].T + (bs[k] if bs[k] is not None else 0.0)
        if k == L - 1:
            return float(z.max()) if z.numel() else 0.0
        a = z + (math.log(2.0) if arch.activation == "softplus" else 0.0)
        h = h + a if (arch.residual and k > 0 and a.shape == h.shape) else a
    raise AssertionError("unreachable")
