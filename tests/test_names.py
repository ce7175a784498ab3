"""The torch-free lists of allowed values agree with the modules that implement them."""

from __future__ import annotations

import subprocess
import sys

import theorems
from verify import names
from verify.claims.scales import SCALES
from verify.claims.theorem import registry
from verify.engine import result, setting
from verify.nets import activations, data
from verify.run import executor


def test_names_agree_with_the_implementing_modules() -> None:
    assert activations.ACTIVATIONS == names.ACTIVATIONS
    assert activations.HOMOGENEOUS == names.HOMOGENEOUS
    assert activations.SMOOTH == names.SMOOTH
    assert data.KINDS == names.KINDS and data.LOSSES == names.LOSSES
    assert data.SUPPORTED_LOSSES == names.SUPPORTED_LOSSES
    assert set(names.SUPPORTED_LOSSES) <= set(names.KINDS)
    assert all(set(v) <= set(names.LOSSES) for v in names.SUPPORTED_LOSSES.values())
    assert result.PRECISIONS == names.PRECISIONS
    assert tuple(SCALES) == names.SCALE_NAMES
    assert (setting.MAX_WIDTH, setting.MAX_STEPS, setting.MAX_SEED) == (
        names.MAX_WIDTH, names.MAX_STEPS, names.MAX_SEED)
    assert executor.max_workers() == names.max_workers()


def test_theorem_ids_equal_the_registry() -> None:
    assert theorems.THEOREM_IDS == tuple(registry())
    assert len(theorems.THEOREM_IDS) == len(theorems.MODULES)


def test_names_and_theorem_ids_import_without_torch() -> None:
    code = ("import sys, verify.names, theorems; "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy'))")
    subprocess.run([sys.executable, "-c", code], check=True)
