"""Training to stationarity of F(θ) = L̂(θ) + (λ/2) Σ‖W_k‖_F².

The route: full-batch gradient descent (or mini-batch SGD, :mod:`verify.engine.sgd`) with a
fixed step (the dynamics the theorems and the papers' code use; an ``observer`` sees every
iterate, so exact trajectory identities can be checked), then L-BFGS polishing with a
strong-Wolfe line search in float64 and Newton's method, or — for ReLU-type networks, whose
minimisers sit on kinks where both stall — a short L-BFGS and the kink stage of
:mod:`verify.engine.kinks`, followed by escapes from saddles along revivals of inactive
units (:mod:`verify.engine.revival`). Non-finite losses stop training with a reason.

Every phase stops on an iteration count (``steps``, ``lbfgs_iters``, Newton's, the kink
stage's and the escapes' limits), so the same command gives the same network on a loaded
and an idle machine. ``max_seconds`` is only a safety net far above the cost of a run: a
network that reaches it is marked ``timed_out`` and its certificate is not met, with that
reason (its result would depend on the machine's load).

The first phase steps with an optimiser pair of :mod:`verify.engine.sgd` (gd; momentum and
Adam, coupled decay, also the negative controls of the trajectory identity, THEOREMS.md T4).
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Iterator
from dataclasses import replace

import torch

from verify.engine.kinks import BETAS, continuation
from verify.engine.polish import lbfgs_polish, newton_polish
from verify.engine.residual import relative_residual, stationarity
from verify.engine.result import (
    KinkStage,
    Observer,
    Stage,
    TrainConfig,
    TrainResult,
    TrainStatus,
)
from verify.engine.revival import revival_tests, revive, testable
from verify.engine.sgd import batches, on_batch, optimizer
from verify.nets.activations import Params
from verify.nets.data import check_finite
from verify.nets.objective import Objective

Trace = list[tuple[int, float, float]]  # (step, F, relative residual) as training goes
KINKED_LBFGS = 200  # L-BFGS iterations on a kinked F before the kink stage
ESCAPES = 3  # escapes from saddles along revivals of inactive units (each a kink stage)


def _gd_phase(obj: Objective, params: Params, cfg: TrainConfig, observer: Observer | None,
              deadline: float, trace: Trace) -> Stage:
    # the optimiser is a pure (init, update) pair (verify.engine.sgd), the one the ensemble
    # steps a stack of networks with
    opt = optimizer(cfg.optimizer, cfg.lr, cfg.momentum)
    ps = tuple(p.detach().clone() for p in params)
    state = opt.init(ps)
    # Mini-batch SGD: the batch objective F_b replaces F; decay stays coupled (in ∇F_b).
    sampler = None if cfg.batch is None else batches(obj.data.n, cfg.batch, cfg.batch_seed)
    if observer is not None:
        observer(0, tuple(ps))
    for t in range(1, cfg.steps + 1):
        g = (obj if sampler is None else on_batch(obj, next(sampler))).grad(ps)
        ps, state = opt.update(g, state, ps)
        if observer is not None:
            # an observer measures every iterate: it never sees non-finite weights
            if not all(bool(torch.isfinite(p).all()) for p in ps):
                return Stage(tuple(ps), t, f"diverged: non-finite weights at GD step {t} "
                             f"(lr={cfg.lr:g})", TrainStatus.DIVERGED)
            observer(t, tuple(ps))
        if t % cfg.record_every == 0 or t == cfg.steps:
            F = float(obj.value(tuple(ps)))
            if not math.isfinite(F):
                return Stage(tuple(ps), t,
                             f"diverged: non-finite F at GD step {t} (lr={cfg.lr:g})",
                             TrainStatus.DIVERGED)
            trace.append((t, F, relative_residual(obj, tuple(ps))))
        if time.perf_counter() > deadline:
            return Stage(tuple(ps), t, f"time budget {cfg.max_seconds:g}s spent during GD",
                         TrainStatus.TIME_LIMIT)
    return Stage(tuple(ps), cfg.steps, "gd steps done", TrainStatus.ITERATIONS)


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """TensorFloat-32 on (``tf32``) or off (otherwise) for CUDA matmuls and convolutions,
    restored on exit. Explicitly off for ``float32``: PyTorch lets cuDNN convolutions use
    TF32 by default, which would make "float32" mean two different things."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (
        precision == "tf32")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def at_precision(obj: Objective, params: Params, precision: str
                 ) -> tuple[Objective, Params]:
    """The objective and parameters in the storage dtype of ``precision`` (float64 or
    float32); class-index targets stay integers."""
    dtype = torch.float64 if precision == "float64" else torch.float32
    return (replace(obj, data=obj.data.to(params[0].device, dtype)),
            tuple(p.detach().to(dtype) for p in params))


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "CUDA allocator peak"
    # Linux reports kilobytes; the process peak also holds whatever ran before
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def _first_phase(obj: Objective, init: Params, cfg: TrainConfig, observer: Observer | None,
                 deadline: float, trace: Trace) -> tuple[Stage, dict[str, float | str]]:
    """The GD/SGD phase at ``cfg.precision``, returned in float64, with its cost: seconds
    per step and peak memory (what the large scale reports)."""
    device = init[0].device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    # float64 leaves the inputs' own dtype alone (ensembles, callers with float32 tensors)
    lo_obj, lo_init = ((obj, init) if cfg.precision == "float64"
                       else at_precision(obj, init, cfg.precision))
    t0 = time.perf_counter()
    with matmul_precision(cfg.precision):
        gd = _gd_phase(lo_obj, lo_init, cfg, observer, deadline, trace)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    peak, kind = _peak_memory(device)
    cost: dict[str, float | str] = {
        "precision": (cfg.precision if cfg.precision != "float64"
                      else str(init[0].dtype).removeprefix("torch.")),
        "device": str(device), "steps": gd.iters,
        "seconds_per_step": seconds / gd.iters if gd.iters else math.nan,
        "parameters": sum(p.numel() for p in init), "peak_memory_bytes": peak,
        "memory": kind}
    return replace(gd, params=tuple(p.to(init[0].dtype) for p in gd.params)), cost


def _lbfgs_stage(obj: Objective, params: Params, cfg: TrainConfig, deadline: float,
                 trace: Trace, step0: int) -> Stage:
    """L-BFGS in float64 (:func:`verify.engine.polish.lbfgs_polish`). On a kinked F L-BFGS
    stalls early (THEOREMS.md "Kinks"): there it is kept to :data:`KINKED_LBFGS` iterations
    and the kink stage, whose first smoothing level starts with L-BFGS, does the rest."""
    iters = min(cfg.lbfgs_iters, KINKED_LBFGS) if obj.arch.kinked else cfg.lbfgs_iters
    return lbfgs_polish(obj, params, iters, cfg.target, deadline, trace, step0)


def _newton_stage(obj: Objective, params: Params, cfg: TrainConfig, deadline: float,
                  trace: Trace, step0: int) -> Stage:
    """Newton's method on ∇F = 0 (:func:`verify.engine.polish.newton_polish`), traced."""
    nw = newton_polish(obj, params, cfg.target, deadline)
    trace.append((step0 + nw.iters, float(obj.value(nw.params)),
                  relative_residual(obj, nw.params)))
    return nw


def _kink_stage(obj: Objective, params: Params, cfg: TrainConfig, deadline: float,
                trace: Trace, step0: int) -> KinkStage:
    """The kink stage (:func:`verify.engine.kinks.continuation`), then at most
    :data:`ESCAPES` escapes from saddles: where the certificate's revival test
    (:mod:`verify.engine.revival`) finds an inactive unit whose revival lowers F to second
    order by more than κ = λ·max(target, r) (the certificate's threshold at τ = target),
    θ moves along it (:func:`verify.engine.revival.revive`) and the kink stage runs again
    from there, from the saddle's smoothing level β on (a smaller β tends to smooth the
    small revival away: the continuation returns to the saddle) and, when that does not
    converge, from β/100. Its point replaces the saddle when it converged or at least
    lowered F — the saddle is known not to be a local minimum. Traced."""
    ks = continuation(obj, params, cfg.target, deadline)
    total, escaped = ks.iters, 0
    while (escaped < ESCAPES and ks.status is TrainStatus.CONVERGED and testable(obj)
           and time.perf_counter() < deadline):
        r = max(stationarity(obj, ks.params, ks.slopes, "clarke").r)
        kappa = obj.lam * max(cfg.target, r)
        worst = min(revival_tests(obj, ks.params, ks.band, ks.slopes),
                    key=lambda v: v.second_order, default=None)
        if worst is None or worst.second_order >= -kappa:
            break
        moved = revive(obj, ks.params, worst)
        if moved is None:
            break
        escaped += 1
        for low in ((0.0,) if ks.beta is None else (ks.beta, ks.beta / 100)):
            nxt = continuation(obj, moved, cfg.target, deadline,
                               tuple(b for b in BETAS if b >= low))
            total += nxt.iters
            if nxt.status is TrainStatus.CONVERGED:
                break
        if (nxt.status is TrainStatus.CONVERGED
                or float(obj.value(nxt.params)) < float(obj.value(ks.params))):
            ks = nxt
    if escaped:
        ks = replace(ks, iters=total, reason=f"{ks.reason}; {escaped} escape(s) from saddles "
                     "along revivals of inactive units")
    trace.append((step0 + ks.iters, float(obj.value(ks.params)),
                  relative_residual(obj, ks.params)))
    return ks


def train(obj: Objective, init: Params, cfg: TrainConfig,
          observer: Observer | None = None) -> TrainResult:
    """Train ``init`` on ``obj`` following ``cfg``; never raises on divergence.

    The route, top to bottom: the first phase (GD/SGD at ``cfg.precision``); then, when
    polishing (λ > 0), L-BFGS; Newton while the relative residual is above ``cfg.target``;
    and for kinked networks still above it, the kink stage. Each stage returns a
    :class:`~verify.engine.result.Stage`; a diverged stage ends the route.
    Data containing NaN or inf is refused (UsageError) before any step.
    """
    check_finite(obj.data.X, obj.data.Y, obj.data.name)
    t0 = time.perf_counter()
    deadline = t0 + cfg.max_seconds
    trace: Trace = [(0, float(obj.value(init)), relative_residual(obj, init))]
    stages: dict[str, float] = {}
    first, cost = _first_phase(obj, init, cfg, observer, deadline, trace)
    stages["gd"] = time.perf_counter() - t0
    last: Stage = first
    reason = first.reason
    if cfg.precision != "float64" and first.status is not TrainStatus.DIVERGED:
        # where the low-precision phase left θ, measured in float64: what polishing starts
        # from, and what a verdict would rest on without it
        cost["residual_float64"] = relative_residual(obj, first.params)
    lb_iters = cont_iters = 0
    kink: KinkStage | None = None
    if (first.status is not TrainStatus.DIVERGED and cfg.polish and obj.lam > 0
            and time.perf_counter() < deadline):
        t1 = time.perf_counter()
        last = _lbfgs_stage(obj, first.params, cfg, deadline, trace, first.iters)
        lb_iters, reason = last.iters, last.reason
        kink_next = cfg.continuation and obj.arch.kinked  # Newton stalls at kinks too
        if (last.status is not TrainStatus.DIVERGED and not kink_next
                and relative_residual(obj, last.params) > cfg.target):
            last = _newton_stage(obj, last.params, cfg, deadline, trace,
                                 first.iters + lb_iters)
            lb_iters += last.iters
            reason = f"{reason}; {last.reason}"
        stages["lbfgs+newton"] = time.perf_counter() - t1
        if (last.status is not TrainStatus.DIVERGED and cfg.continuation and obj.arch.kinked
                and relative_residual(obj, last.params) > cfg.target):
            t2 = time.perf_counter()
            kink = last = _kink_stage(obj, last.params, cfg, deadline, trace,
                                      first.iters + lb_iters)
            cont_iters = kink.iters
            stages["continuation"] = time.perf_counter() - t2
            reason = f"{reason}; {kink.reason}"
    timed_out = time.perf_counter() > deadline  # some phase may have stopped on the clock
    if timed_out:
        reason = f"{reason}; {safety_net_note(cfg.max_seconds)}"
    return TrainResult(
        params=tuple(p.detach() for p in last.params), initial=tuple(init),
        trace_steps=tuple(s for s, _, _ in trace), trace_F=tuple(f for _, f, _ in trace),
        trace_residual=tuple(r for _, _, r in trace), gd_steps=first.iters,
        lbfgs_iters=lb_iters, continuation_iters=cont_iters, stop_reason=reason,
        seconds=time.perf_counter() - t0, status=last.status, stages=stages,
        kink_band=None if kink is None else kink.band,
        slopes=None if kink is None else kink.slopes, cost=cost, timed_out=timed_out)


def safety_net_note(max_seconds: float) -> str:
    """The stop reason of a network that reached the wall-clock safety net."""
    return (f"wall-clock safety limit of {max_seconds:g}s reached before the iteration "
            "budget was spent (the result would depend on the machine's load)")
