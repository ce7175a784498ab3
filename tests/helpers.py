"""Helpers shared by several test modules (fixtures stay in ``conftest.py``)."""

from __future__ import annotations

from hypothesis import settings

from verify.engine.setting import Context
from verify.nets import data as D

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
