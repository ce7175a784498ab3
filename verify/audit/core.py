"""Audit a model in one call: its certificate, its per-layer table, the theorems that apply.

The given weights θ are judged as they are, against F(θ) = L̂(θ) + (λ/2) Σ_k ‖W_k‖_F²
(THEOREMS.md "Notation"; λ = λ_eff, torch's ``weight_decay``):

* the certificate is :func:`verify.engine.certificate.certify` of a training record built
  for θ — per-layer r_k = ‖W_k + g_k/λ‖/‖W_k‖ (the best Clarke subgradient at kinks of a
  ReLU net), the smallest Hessian eigenvalue, collapse. The record's "start" is θ = 0, the
  trivial stationary point of a homogeneous net: "F decreased" means F(θ) < F(0);
* every registered theorem with an ``assess`` hook whose ``applies`` accepts the network
  and objective is judged on θ (no retraining); the others are listed with the reason;
* :meth:`Audit.polish` continues from θ with the engine's polish (no GD phase) towards a
  certified point and audits where it ends, with how far each layer moved.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from verify.audit import convert, render, table
from verify.audit.convert import Model
from verify.audit.data import user_dataset
from verify.claims.theorem import Theorem, registry, select
from verify.claims.verdict import Outcome
from verify.engine.certificate import Certificate, certify
from verify.engine.residual import relative_residual
from verify.engine.result import TrainConfig, TrainResult, TrainStatus
from verify.engine.setting import Trained
from verify.engine.train import train
from verify.errors import require
from verify.nets.network import Network, weights
from verify.nets.objective import Objective

GIVEN = "given weights (not trained by the harness)"


JUDGED, NOT_APPLICABLE, NOT_JUDGED = "judged", "does not apply", "not judged here"


@dataclass(frozen=True)
class Check:
    """One theorem on the audited model. ``status``: ``judged`` (``outcome`` holds the
    verdict), ``does not apply`` (the model or objective is outside its assumptions) or
    ``not judged here`` (the theorem has no ``assess`` hook: it speaks about networks it
    trains itself); ``reason`` says why, or is the outcome's reason."""

    theorem: str
    title: str
    status: str
    reason: str
    outcome: Outcome | None = None

    @property
    def applies(self) -> bool:
        return self.status == JUDGED

    @property
    def verdict(self) -> str | None:
        return None if self.outcome is None else str(self.outcome.verdict)

    def to_json(self) -> dict[str, Any]:
        return {"theorem": self.theorem, "title": self.title, "status": self.status,
                "verdict": self.verdict, "reason": self.reason,
                "outcome": None if self.outcome is None else self.outcome.to_json()}


@dataclass(frozen=True)
class Movement:
    """How far :meth:`Audit.polish` moved the weights: per weight matrix
    ‖W_k' − W_k‖_F/‖W_k‖_F, and over all parameters ‖θ' − θ‖/‖θ‖."""

    relative_change: tuple[float, ...]
    total: float
    F_before: float
    F_after: float
    stop_reason: str
    iterations: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"relative_change": list(self.relative_change), "total": self.total,
                "F_before": self.F_before, "F_after": self.F_after,
                "stop_reason": self.stop_reason, "iterations": self.iterations,
                "seconds": self.seconds}


@dataclass(frozen=True, eq=False)  # eq=False: a DataFrame field has no hash or truth value
class Audit:
    """The audit of one model; see the module docstring. ``layers`` is a pandas DataFrame
    (columns: :mod:`verify.audit.table`); ``seconds`` is the time the audit took."""

    model: Model
    objective: Objective
    trained: Trained
    layers: Any
    checks: tuple[Check, ...]
    source: str
    seconds: float
    moved: Movement | None = None
    theorem_ids: tuple[str, ...] | None = None

    @property
    def certificate(self) -> Certificate:
        return self.trained.certificate

    @property
    def certified(self) -> bool:
        return self.trained.certificate.certified

    @property
    def established(self) -> str:
        """What the certificate established, in one sentence."""
        return render.established(self)

    def polish(self, max_seconds: float = 120.0) -> Audit:
        """Continue from these weights to a certified point: the engine's route
        (:func:`verify.engine.train.train`) with the GD phase skipped — L-BFGS, Newton and,
        for ReLU-type nets, the smoothing continuation — within ``max_seconds``; returns the
        audit of where it ended, with :attr:`moved`."""
        require(self.objective.lam > 0, "lam", self.objective.lam,
                "λ > 0 to polish: without weight decay F has no stationary point to polish to")
        require(math.isfinite(max_seconds) and max_seconds > 0, "max_seconds", max_seconds,
                "a finite number of seconds > 0")
        res = train(self.objective, self.model.params,
                    TrainConfig(steps=0, polish=True, max_seconds=max_seconds))
        before = self.model.params
        W0, W1 = weights(self.model.arch, before), weights(self.model.arch, res.params)
        rel = tuple(float(torch.linalg.norm(b - a)) / max(float(torch.linalg.norm(a)), 1e-300)
                    for a, b in zip(W0, W1, strict=True))
        num = sum(float(((b - a) ** 2).sum()) for a, b in zip(before, res.params, strict=True))
        den = sum(float((a**2).sum()) for a in before)
        moved = Movement(rel, (num / max(den, 1e-300)) ** 0.5,
                         float(self.objective.value(before)), float(self.objective.value(
                             res.params)), res.stop_reason, res.optimizer_steps, res.seconds)
        model = replace(self.model, params=tuple(p.detach() for p in res.params))
        return _audit(model, self.objective, self.certificate.tau, f"{self.source}, polished",
                      self.theorem_ids, res, moved)

    def report(self, out: str | Path) -> tuple[Path, Path]:
        """Write ``audit.md``, ``audit.html`` and ``audit.json`` into ``out``; returns the
        paths of the Markdown and HTML files."""
        return render.write(self, Path(out))

    def summary(self) -> str:
        """A few lines for a console."""
        return render.console(self)

    def to_json(self) -> dict[str, Any]:
        return render.document(self)


def audit(model: nn.Module | dict[str, torch.Tensor] | str | Path, X: Any, y: Any, *,
          lam: float, loss: str = "ce", arch: Network | nn.Module | None = None,
          tau: float = 1e-6, reg_bias: bool = False,
          image: tuple[int, int, int] | None = None,
          theorems: Sequence[str] | None = None, name: str | None = None,
          data_name: str = "user data", hessian: bool = True) -> Audit:
    """Audit ``model`` on data (``X``: n × …, ``y``: targets for ``loss``) at weight decay
    ``lam`` (= λ_eff: torch's ``weight_decay``; biases decayed only with ``reg_bias``).

    ``model``: an ``nn.Sequential``; or a ``state_dict``, a safetensors file or a
    ``torch.save(state_dict)`` file with ``arch`` (an Architecture, a ConvNet or the
    ``nn.Sequential`` it came from). ``image``: (C, H, W) of a conv net's inputs (default: from
    a 4-D ``X``, else square). ``theorems``: ids to judge (default: all registered);
    ``name`` and ``data_name`` label the report; ``hessian=False`` skips the second-order
    test (Lanczos on a large model), and the certificate says it was skipped.
    A model or data the harness cannot represent raises :class:`~verify.errors.UsageError`.
    """
    t0 = time.perf_counter()
    require(isinstance(lam, (int, float)) and not isinstance(lam, bool) and math.isfinite(lam)
            and lam >= 0, "lam", lam, "a finite number ≥ 0 (λ_eff: torch's weight_decay)")
    require(isinstance(tau, (int, float)) and 0 < tau < 1, "tau", tau, "a number in (0, 1)")
    if image is None and hasattr(X, "ndim") and X.ndim == 4:
        image = tuple(int(v) for v in X.shape[1:])  # type: ignore[assignment]
    source = name or _source(model)
    if isinstance(model, (str, Path)):
        model = convert.load_weights(model)
    if isinstance(model, nn.Module):
        require(arch is None, "arch", type(arch).__name__,
                "None when the model itself is given (its layers are the architecture)")
        m = convert.from_sequential(model, image)
    else:
        require(isinstance(model, dict), "model", type(model).__name__,
                "an nn.Sequential, a state_dict, or a .safetensors / state_dict file path")
        require(arch is not None, "arch", None, "an Architecture, a ConvNet or an "
                "nn.Sequential to read the state_dict into")
        m = convert.from_state_dict(model, arch)  # type: ignore[arg-type]
    data = user_dataset(X, y, loss, data_name)
    obj = Objective(m.arch, data, float(lam), reg_bias)
    ids = tuple(theorems) if theorems is not None else None
    out = _audit(m, obj, float(tau), source, ids, hessian=hessian)
    return replace(out, seconds=time.perf_counter() - t0)


def _source(model: object) -> str:
    if isinstance(model, (str, Path)):
        return str(model)
    return type(model).__name__ if isinstance(model, nn.Module) else "state_dict"


def given_result(obj: Objective, params: tuple[torch.Tensor, ...]) -> TrainResult:
    """A training record for weights the harness did not train: start θ = 0, no steps."""
    F = float(obj.value(params))
    return TrainResult(params=params, initial=tuple(torch.zeros_like(p) for p in params),
                       trace_steps=(0,), trace_F=(F,),
                       trace_residual=(relative_residual(obj, params),), gd_steps=0,
                       lbfgs_iters=0, continuation_iters=0, stop_reason=GIVEN, seconds=0.0,
                       status=TrainStatus.GIVEN if math.isfinite(F) else TrainStatus.DIVERGED)


def _audit(m: Model, obj: Objective, tau: float, source: str, ids: tuple[str, ...] | None,
           polished: TrainResult | None = None, moved: Movement | None = None,
           hessian: bool = True) -> Audit:
    t0 = time.perf_counter()
    if polished is None:
        res = given_result(obj, m.params)
    else:  # the polish's kink selection and stop reason; the start is θ = 0 as for any audit
        res = replace(polished, initial=tuple(torch.zeros_like(p) for p in polished.params))
    cert, st = certify(obj, res, tau, hessian=hessian)
    trained = Trained(None, obj, res, cert, st)
    checks = tuple(judge(thm, trained) for thm in _theorems(ids))
    return Audit(m, obj, trained, table.frame(m, st), checks, source,
                 time.perf_counter() - t0, moved, ids)


def _theorems(ids: tuple[str, ...] | None) -> list[Theorem]:
    return list(registry().values()) if ids is None else select(list(ids))


def judge(thm: Theorem, trained: Trained) -> Check:
    """``thm`` on a network it did not train: its verdict through ``assess`` when its
    assumptions hold (``applies``), else the reason it is not judged. A harness error in
    ``assess`` propagates: it is never reported as a verdict."""
    if thm.assess is None:
        return Check(thm.id, thm.title, NOT_JUDGED, "speaks about the networks it trains "
                     "itself (no assess hook for given weights)")
    why = thm.applies(trained.objective.arch, trained.objective)
    if why is not None:
        return Check(thm.id, thm.title, NOT_APPLICABLE, why)
    out = thm.assess(trained)
    return Check(thm.id, thm.title, JUDGED, out.reason, out)
