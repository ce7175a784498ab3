"""The allowed values of the harness's named choices, importable without torch.

The command line validates what a user typed (and suggests the closest allowed value)
before any heavy import; the modules that implement these choices import their tuples from
here, and ``tests/test_names.py`` checks that the two agree.
"""

from __future__ import annotations

import os

HOMOGENEOUS = ("relu", "leaky_relu", "identity")  # positively 1-homogeneous activations
SMOOTH = ("tanh", "softplus", "identity")  # C¹ activations (no kinks)
ACTIVATIONS = HOMOGENEOUS[:2] + SMOOTH

LOSSES = ("squared", "logistic", "ce")
KINDS = ("clusters", "teacher", "whitened", "random_labels", "subspace", "digits", "diabetes",
         "mnist", "images")
# regression-only generators: their targets are real vectors
SUPPORTED_LOSSES = {"teacher": ("squared",), "whitened": ("squared",),
                    "subspace": ("squared", "logistic"), "diabetes": ("squared",)}
PRECISIONS = ("float64", "float32", "tf32")
SCALE_NAMES = ("quick", "standard", "large")
DEVICES = ("auto", "cpu", "cuda")

# Upper bounds of integer inputs: far above every use; larger values cannot mean anything.
MAX_WIDTH = 2**20
MAX_STEPS = 10**7
MAX_SEED = 2**31 - 1


def max_workers() -> int:
    """The most worker processes a run may ask for: 4 per CPU core (each worker runs one
    torch thread; more than that only adds memory and start-up time)."""
    return 4 * (os.cpu_count() or 1)
