"""Helpers shared by several test modules (fixtures stay in ``conftest.py``)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import settings

from verify.claims.verdict import Verdict
from verify.engine.setting import Context
from verify.nets import data as D
from verify.run.records import CheckKind, CheckRecord

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
