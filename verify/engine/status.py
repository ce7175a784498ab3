"""Why a training stage stopped, as a value (the human message is ``stop_reason``).

Every stage of :func:`verify.engine.train.train` — the GD/SGD phase, L-BFGS, Newton, the
smoothing continuation — returns a :class:`TrainStatus` beside its message, and the
:class:`~verify.engine.train.TrainResult` carries the status of the last stage that ran.
Code decides on the status (e.g. "diverged" means a non-finite F: no polishing, and the
certificate fails); the message is for people and may change wording freely.
"""

from __future__ import annotations

from enum import StrEnum


class TrainStatus(StrEnum):
    """How the last stage of training ended."""

    CONVERGED = "converged"  # the target relative residual was reached
    ITERATIONS = "iterations"  # the stage ran its step/iteration budget (GD: all its steps)
    STALLED = "stalled"  # stopped before the target with budget left (no more progress)
    DIVERGED = "diverged"  # F became non-finite; the parameters are not usable
    TIME_LIMIT = "time_limit"  # the wall-clock budget (TrainConfig.max_seconds) was spent
    GIVEN = "given"  # weights supplied from outside (verify.audit): no stage ran
