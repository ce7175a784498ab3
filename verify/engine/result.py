"""The records of training: how to train, why a stage stopped, what training produced.

Both the route (:mod:`verify.engine.train`, :mod:`verify.engine.polish`) and the pure
measurements at its end (:mod:`verify.engine.certificate`, :mod:`verify.engine.cache`) import
these records from here, so the certificate imports nothing from training.

* :class:`TrainStatus` — why a stage stopped, as a value (the human message is
  ``stop_reason``). Every stage of :func:`verify.engine.train.train` — the GD/SGD phase,
  L-BFGS, Newton, the kink stage — returns a :class:`Stage` with its status, and
  :class:`TrainResult` carries the status of the last stage that ran. Code decides on the
  status (e.g. "diverged" means a non-finite F: no polishing, and the certificate fails);
  the message is for people and may change wording freely.
* :class:`TrainConfig` — how to train; :class:`TrainResult` — the trained parameters and how
  they were reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from verify.errors import require
from verify.names import PRECISIONS
from verify.nets.activations import KinkSlopes, Params

OPTIMIZERS = ("gd", "momentum", "adam")


# Precision of the first (GD/SGD) phase (the names: verify.names.PRECISIONS). Polishing and
# the certificate are always float64: a verdict never rests on a low-precision gradient.
# "tf32" is float32 storage with TensorFloat-32 matmuls on CUDA (10-bit mantissa products);
# on a CPU it is plain float32.


Observer = Callable[[int, Params], None]


class TrainStatus(StrEnum):
    """How the last stage of training ended."""

    CONVERGED = "converged"  # the target relative residual was reached
    ITERATIONS = "iterations"  # the stage ran its step/iteration budget (GD: all its steps)
    STALLED = "stalled"  # stopped before the target with budget left (no more progress)
    DIVERGED = "diverged"  # F became non-finite; the parameters are not usable
    TIME_LIMIT = "time_limit"  # the wall-clock safety net (TrainConfig.max_seconds) was hit
    GIVEN = "given"  # weights supplied from outside (verify.audit): no stage ran


@dataclass(frozen=True)
class Stage:
    """What one stage of the route returned: θ, its iterations, a note for people and the
    status code decides on."""

    params: Params
    iters: int
    reason: str
    status: TrainStatus


@dataclass(frozen=True)
class KinkStage(Stage):
    """The kink stage's result: a :class:`Stage` plus the smoothing level β it ended at (the
    smoothing band was 30/β), the slope selection at the kinks and the band |z| ≤ ``band``
    it treats as kinked (all None when no kink stage improved on its start)."""

    beta: float | None = None
    slopes: KinkSlopes | None = None
    band: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``target`` is the relative residual at which polishing stops."""

    lr: float = 0.05
    steps: int = 2000
    optimizer: str = "gd"
    momentum: float = 0.9
    polish: bool = True
    lbfgs_iters: int = 3000
    continuation: bool = True
    target: float = 1e-10
    max_seconds: float = 60.0
    record_every: int = 10
    batch: int | None = None  # mini-batch size B (None: full batch), see verify.engine.sgd
    batch_seed: int = 0
    precision: str = "float64"  # of the first phase only, see PRECISIONS

    def __post_init__(self) -> None:
        require(math.isfinite(self.lr) and self.lr > 0, "lr", self.lr, "a finite number > 0")
        require(isinstance(self.steps, int) and self.steps >= 0, "steps", self.steps,
                "an integer ≥ 0")
        require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer,
                f"one of {', '.join(OPTIMIZERS)}")
        require(isinstance(self.record_every, int) and self.record_every >= 1, "record_every",
                self.record_every, "an integer ≥ 1")
        require(self.precision in PRECISIONS, "precision", self.precision,
                f"one of {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class TrainResult:
    """The trained parameters and how they were reached."""

    params: Params
    initial: Params
    trace_steps: tuple[int, ...]
    trace_F: tuple[float, ...]
    trace_residual: tuple[float, ...]
    gd_steps: int
    lbfgs_iters: int
    continuation_iters: int
    stop_reason: str  # for people; code decides on ``status``
    seconds: float
    status: TrainStatus  # how the last stage that ran ended
    stages: dict[str, float] = field(default_factory=dict)
    kink_band: float | None = None  # |z| ≤ band counts as a kink (from the continuation β)
    slopes: KinkSlopes | None = None  # the slope selection at the kinks training ended with
    cost: dict[str, float | str] = field(default_factory=dict)  # of the first phase
    timed_out: bool = False  # the wall-clock safety net cut training short (see module doc)

    @property
    def optimizer_steps(self) -> int:
        return self.gd_steps + self.lbfgs_iters + self.continuation_iters

    @property
    def finite(self) -> bool:
        """F stayed finite (training did not diverge)."""
        return self.status is not TrainStatus.DIVERGED
