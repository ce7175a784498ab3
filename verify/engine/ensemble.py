"""Batched ensembles: K networks of one architecture trained at once.

Each network i has its own initial point θ_i(0), data set D_i (same shapes for all) and
hyperparameters (step η_i, decay λ_i). The objectives

    F_i(θ_i) = L̂_i(θ_i) + (λ_i/2) Σ_k ‖W_{i,k}‖_F²

are independent, so the gradient of their sum Σ_i L̂_i with respect to the stacked
parameters Θ = (θ_1, …, θ_K) is exactly (∇L̂_1(θ_1), …, ∇L̂_K(θ_K)): one backward pass through
one batched forward (:func:`verify.nets.network.forward`, whose dense layers take a leading
network axis: batched matmuls; the loss :func:`verify.nets.objective.data_loss`, which then
reduces per network) gives every network's data gradient. (A ``torch.func.vmap`` of the
whole forward gives the same numbers but measured ~20% slower per step at width 16: its
batching rules add permutes and reshapes around every op.) The full-batch first phase, e.g.
for GD

    θ_i(t+1) = θ_i(t) − η_i (∇L̂_i(θ_i(t)) + λ_i θ_i(t)),

is then one batched update per step by the optimiser pair of the single route
(:func:`verify.engine.sgd.optimizer`: gd, heavy-ball momentum or Adam; η_i and μ_i a (K,)
tensor), the same arithmetic as :func:`verify.engine.train.train` (equal up to the rounding
of a batched vs. a single matmul; tested ≤ 1e-12 relative).

Why: on a small CPU the cost of training a small net is interpreter and dispatch overhead,
not FLOPs; stacking K nets pays that overhead once per step instead of K times.

After GD every network is polished *separately* (L-BFGS must not couple networks: its line
search and curvature pairs are per objective) by the engine's own route — ``train`` with the
GD phase already done, i.e. :func:`verify.engine.polish.lbfgs_polish`,
:func:`verify.engine.polish.newton_polish`
and, for ReLU-type nets, the smoothing continuation — and certified with
:func:`verify.engine.certificate.certify`.

:func:`realise_all` is :func:`verify.engine.setting.realise` for many settings at once: the ones
that can share a batched GD phase are trained as ensembles, the rest one by one, all through
the same cache.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from verify.engine.certificate import Certificate, certify
from verify.engine.residual import relative_residuals
from verify.engine.result import TrainConfig, TrainResult, TrainStatus
from verify.engine.setting import Context, Setting, Trained, is_cached, realise_any, store
from verify.engine.sgd import optimizer, per_network
from verify.engine.train import safety_net_note, train
from verify.errors import UsageError, require
from verify.nets.activations import Params
from verify.nets.data import Dataset, check_finite
from verify.nets.dense import Architecture
from verify.nets.network import Network, forward
from verify.nets.objective import Objective, data_loss

Trace = list[tuple[int, float, float]]


def stack(params: Sequence[Params]) -> Params:
    """Θ: the K parameter tuples stacked along a new leading axis."""
    return tuple(torch.stack(ts) for ts in zip(*params, strict=True))


def unstack(stacked: Params, i: int) -> Params:
    """θ_i out of the stacked Θ (contiguous copies, so later steps cannot alias it)."""
    return tuple(t[i].clone(memory_format=torch.contiguous_format) for t in stacked)


def column_major(stacked: Params, depth: int) -> Params:
    """Θ with every weight stack W (K × d_k × d_{k−1}) stored as the contiguous Wᵀ: the same
    values, another memory layout. Why: the forward multiplies by Wᵀ, whose gradient autograd
    returns as the transpose of a contiguous product, i.e. in this layout; parameters,
    gradients and optimiser state in one layout keep the optimiser's elementwise steps on
    contiguous memory (mixed layouts measured up to ~10× slower per element at width 256),
    and the forward's product is a plain (untransposed) batched matmul."""
    return tuple(p.mT.contiguous().mT if k < depth else p for k, p in enumerate(stacked))


def _dense(arch: Network) -> Architecture:
    """``arch`` as a dense MLP: an ensemble batches dense layers only (conv nets are trained
    one at a time, see :func:`_batchable`)."""
    if not isinstance(arch, Architecture):
        raise UsageError("architecture of an ensemble", arch,
                         "a dense MLP (conv nets have no batched forward)")
    return arch


def _check_compatible(objectives: Sequence[Objective], inits: Sequence[Params]) -> Architecture:
    require(len(objectives) >= 1, "ensemble size", len(objectives), "at least one network")
    require(len(inits) == len(objectives), "inits", len(inits),
            f"one initial point per objective ({len(objectives)})")
    first = objectives[0]
    for i, obj in enumerate(objectives):
        require(obj.arch == first.arch, f"architecture of network {i}", obj.arch,
                f"the ensemble's architecture {first.arch}")
        require(obj.data.loss == first.data.loss, f"loss of network {i}", obj.data.loss,
                f"the ensemble's loss {first.data.loss}")
        require(obj.reg_bias == first.reg_bias, f"reg_bias of network {i}", obj.reg_bias,
                f"the ensemble's reg_bias {first.reg_bias}")
        require(obj.beta is None, f"smoothing β of network {i}", obj.beta,
                "None (the continuation runs per network, after GD)")
        for part, a, b in (("inputs", obj.data.X, first.data.X),
                           ("targets", obj.data.Y, first.data.Y)):
            require(a.shape == b.shape and a.dtype == b.dtype, f"{part} of network {i}",
                    f"{tuple(a.shape)} {a.dtype}", f"{tuple(b.shape)} {b.dtype} as network 0")
        shapes = [tuple(p.shape) for p in inits[i]]
        require(shapes == [tuple(s) for s in first.arch.shapes()], f"init of network {i}",
                shapes, f"the shapes {first.arch.shapes()}")
    return _dense(first.arch)


def batched_losses(arch: Architecture, kind: str, stacked: Params, X: Tensor,
                   Y: Tensor) -> Tensor:
    """(L̂_i(θ_i))_i for every network i: the one forward (:func:`verify.nets.network.forward`,
    whose dense layers take a leading network axis: batched matmuls, K × n × d_L out) and the
    one loss (:func:`verify.nets.objective.data_loss`, which reduces per network when given
    that axis). (A ``torch.func.vmap`` of ``data_loss`` gives the same numbers but measured
    ~20% of a step at width 16.)"""
    return data_loss(Dataset(X, Y, kind, "stack"), forward(arch, stacked, X))


CHUNK_ELEMENTS = 2**18  # numbers per chunk: 2 MiB in float64 (measured best, see below)


def default_chunk(arch: Architecture, n: int) -> int:
    """How many networks to batch together: as many as keep a chunk's footprint — per network
    one layer's activations (n × widest layer) plus the largest weight matrix — within
    :data:`CHUNK_ELEMENTS`, at least one.

    Why: for small widths the step is overhead-bound and one big batch wins; for wide
    layers it is compute- and memory-bound, and a chunk whose activations, weights and
    gradients spill out of the CPU's caches runs its elementwise steps (σ, σ', decay, the
    optimiser) at memory speed (measured, K = 64, 128 samples, (16, w, w, 4), 2-core AMD
    EPYC with 1 MiB L2 per core: width 16 fastest in one chunk, width 64 in chunks of ~16,
    width 256 in chunks of 2–4; this budget gives 64, 16 and 2).
    """
    largest = max(a * b for a, b in itertools.pairwise(arch.widths))
    return max(1, CHUNK_ELEMENTS // max(1, n * max(arch.widths) + largest))


class Ensemble:
    """K objectives of one architecture, stacked for batched evaluation.

    :meth:`grad` returns (∇F_i(θ_i))_i stacked and the data losses; :meth:`value_and_residual`
    the vectors F_i(θ_i) and r_i = max_k ‖∇_{W_k} F_i‖/(λ_i ‖W_{i,k}‖) (∞ for λ_i = 0 or a zero
    layer), the relative residual of :func:`verify.engine.residual.relative_residual`.
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = list(objectives)
        first = self.objectives[0]
        self.arch = _dense(first.arch)
        self.loss_kind = first.data.loss
        self.reg_bias = first.reg_bias
        self.X = torch.stack([o.data.X for o in self.objectives])
        self.Y = torch.stack([o.data.Y for o in self.objectives])
        dtype = first.data.X.dtype if first.data.X.is_floating_point() else torch.float64
        self.lam = torch.tensor([float(o.lam) for o in self.objectives], dtype=dtype,
                                device=self.X.device)

    def _regularised(self, i: int) -> bool:
        return self.reg_bias or not self.arch.bias or i < self.arch.depth

    def grad(self, stacked: Params) -> tuple[Params, Tensor]:
        """(∇F_i(θ_i))_i stacked — ∇L̂_i + λ_i W (coupled decay, as
        :meth:`verify.nets.objective.Objective.grad`) — and the data losses L̂_i(θ_i)."""
        ps = tuple(p.detach().requires_grad_(True) for p in stacked)
        losses = batched_losses(self.arch, self.loss_kind, ps, self.X, self.Y)
        # the networks are independent: ∂(Σ_i L̂_i)/∂θ_i = ∇L̂_i(θ_i), exactly
        g = torch.autograd.grad(losses.sum(), ps)
        grads = tuple(gi + per_network(self.lam, p) * p if self._regularised(i) else gi
                      for i, (gi, p) in enumerate(zip(g, stacked, strict=True)))
        return grads, losses.detach()

    @torch.no_grad()
    def value_and_residual(self, stacked: Params, grads: Params,
                           losses: Tensor) -> tuple[Tensor, Tensor]:
        """F_i = L̂_i + (λ_i/2)Σ‖·‖² and r_i from the gradients :meth:`grad` returned."""
        pen = sum((p * p).flatten(1).sum(1) for i, p in enumerate(stacked)
                  if self._regularised(i))
        lam = self.lam.to(losses.dtype)
        F = losses + 0.5 * lam * pen
        d = self.arch.depth
        return F, relative_residuals(stacked[:d], grads[:d], lam)


def _configs(n: int, cfgs: TrainConfig | Sequence[TrainConfig] | None,
             lrs: Sequence[float] | None, steps: int | None) -> list[TrainConfig]:
    if cfgs is None:
        cfgs = TrainConfig()
    out = [cfgs] * n if isinstance(cfgs, TrainConfig) else list(cfgs)
    require(len(out) == n, "configs", len(out), f"one TrainConfig per network ({n})")
    if lrs is not None:
        require(len(lrs) == n, "lrs", len(lrs), f"one step size per network ({n})")
        out = [replace(c, lr=float(lr)) for c, lr in zip(out, lrs, strict=True)]
    if steps is not None:
        out = [replace(c, steps=steps) for c in out]
    for i, c in enumerate(out):
        require(c.optimizer == out[0].optimizer, f"optimizer of network {i}", c.optimizer,
                f"the ensemble's optimizer {out[0].optimizer} (one optimiser steps the stack)")
        require(c.batch is None, f"batch of network {i}", c.batch,
                "None (the batched phase is full-batch; SGD draws batches per network)")
        require(c.precision == "float64", f"precision of network {i}", c.precision,
                "float64 (the batched phase has no low-precision first phase)")
    return out


def _chunks(K: int, size: int) -> list[slice]:
    """range(K) in ⌈K/size⌉ consecutive chunks of (nearly) equal length, none over ``size``
    (equal lengths: a remainder chunk of a few networks would cost a whole step's overhead)."""
    m = -(-K // size)
    cuts = [K * j // m for j in range(m + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(cuts)]


def gd_ensemble(objectives: Sequence[Objective], inits: Sequence[Params],
                cfgs: Sequence[TrainConfig], deadline: float, chunk: int | None = None
                ) -> tuple[list[Params], list[int], list[str], list[TrainStatus], list[Trace]]:
    """The batched first phase: for every network its parameters, steps taken, stop reason,
    stop status and trace (step, F, r) recorded at the same steps as
    :func:`verify.engine.train.train`.

    Each chunk of networks (:func:`default_chunk`) is one stack Θ stepped by the optimiser
    pair of the single route (:func:`verify.engine.sgd.optimizer`: gd, momentum or Adam, with
    the per-network step sizes and momentum coefficients as (K,) tensors); its state is
    stacked like Θ. A chunk's gradient, decay and update run back to back, so its working
    set stays in the CPU caches (a whole stack of wide nets does not: measured slower).
    A network stops on its own: after its ``cfg.steps`` steps, or when F_i turns non-finite
    (then it keeps the iterate at which that was seen, as ``train`` does); the others go on.
    The trace needs no extra gradient: F and ∇F at step t come from the evaluation that
    step t+1 needs anyway (step 0 included: the initial point's F and r).
    """
    K = len(objectives)
    arch = _dense(objectives[0].arch)
    parts = _chunks(K, chunk or default_chunk(arch, objectives[0].data.n))
    ens = [Ensemble(objectives[c]) for c in parts]
    ps = [column_major(tuple(p.detach() for p in stack(inits[c])), arch.depth) for c in parts]
    dev, dtype = ps[0][0].device, ps[0][0].dtype
    opts = [optimizer(cfgs[0].optimizer,
                      torch.tensor([x.lr for x in cfgs[c]], dtype=dtype, device=dev),
                      torch.tensor([x.momentum for x in cfgs[c]], dtype=dtype, device=dev))
            for c in parts]
    states = [o.init(p) for o, p in zip(opts, ps, strict=True)]
    every = [c.record_every for c in cfgs]
    traces: list[Trace] = [[] for _ in range(K)]
    reasons = [""] * K
    statuses = [TrainStatus.ITERATIONS] * K
    done = [c.steps == 0 for c in cfgs]
    taken = [0] * K
    horizon = max(c.steps for c in cfgs)
    # the steps at which some network records its trace or stops: only there is the
    # per-network bookkeeping (F, r, Python loop over K, a read of F to the host) done
    events = {0} | {c.steps for c in cfgs} | {t for c in cfgs
                                        for t in range(c.record_every, c.steps + 1,
                                                       c.record_every)}
    active: list[Tensor | None] = [None] * len(parts)  # None: every network of a chunk steps
    for t in range(horizon + 1):
        evals = [e.grad(p) for e, p in zip(ens, ps, strict=True)]
        if t in events:
            Fr = [e.value_and_residual(p, g, loss)
                  for e, p, (g, loss) in zip(ens, ps, evals, strict=True)]
            Fl = torch.cat([F for F, _ in Fr]).tolist()
            rl = torch.cat([r for _, r in Fr]).tolist()
            for i in range(K):
                if t == 0:  # the initial point, as train() records it
                    traces[i].append((0, Fl[i], rl[i]))
                    continue
                if reasons[i] or t > cfgs[i].steps:
                    continue
                if t % every[i] == 0 or t == cfgs[i].steps:
                    if not math.isfinite(Fl[i]):
                        reasons[i] = (f"diverged: non-finite F at GD step {t} "
                                      f"(lr={cfgs[i].lr:g})")
                        statuses[i] = TrainStatus.DIVERGED
                        done[i] = True
                        continue
                    traces[i].append((t, Fl[i], rl[i]))
                if t == cfgs[i].steps:
                    reasons[i], done[i] = "gd steps done", True
            active = [None if not any(done[c]) else
                      torch.tensor([not d for d in done[c]], device=dev) for c in parts]
        if all(done) or t == horizon:
            break
        if time.perf_counter() > deadline:
            for i in range(K):
                if not reasons[i]:
                    reasons[i] = f"time budget {cfgs[i].max_seconds:g}s spent during GD"
                    statuses[i] = TrainStatus.TIME_LIMIT
            break
        for j, (opt, (g, _)) in enumerate(zip(opts, evals, strict=True)):
            new, states[j] = opt.update(g, states[j], ps[j])
            keep = active[j]
            # a stopped network keeps its iterate (its optimiser state is never read again)
            ps[j] = new if keep is None else tuple(
                torch.where(keep.view(-1, *([1] * (p.ndim - 1))), q, p)
                for q, p in zip(new, ps[j], strict=True))
        for i in range(K):
            if not done[i]:
                taken[i] = t + 1
    for i in range(K):
        reasons[i] = reasons[i] or "gd steps done"
    return ([unstack(p, i) for p in ps for i in range(int(p[0].shape[0]))], taken, reasons,
            statuses, traces)


def train_ensemble(objectives: Sequence[Objective], inits: Sequence[Params],
                   cfgs: TrainConfig | Sequence[TrainConfig] | None = None,
                   lrs: Sequence[float] | None = None, steps: int | None = None,
                   polish: bool | None = None, chunk: int | None = None
                   ) -> list[TrainResult]:
    """Train K networks: a batched full-batch first phase (GD, momentum or Adam: one
    optimiser for all K), then each polished on its own.

    ``cfgs``: one TrainConfig for all or one per network (default ``TrainConfig()``); ``lrs``
    and ``steps`` override the step sizes and the GD step count; ``polish`` overrides
    ``cfg.polish``; ``chunk`` how many networks are batched together (default
    :func:`default_chunk`). λ_i comes from ``objectives[i]``. The polish of network i is exactly the
    polish of :func:`verify.engine.train.train` (L-BFGS, Newton, continuation for kinked nets),
    under the time left of its ``max_seconds`` after the shared GD phase. Each result's
    ``seconds`` counts the whole batched GD phase (the network waited for it) plus its own
    polish; ``stages["gd"]`` is the batched phase's wall time, shared by all K.
    """
    cfg_list = _configs(len(objectives), cfgs, lrs, steps)
    if polish is not None:
        cfg_list = [replace(c, polish=polish) for c in cfg_list]
    _check_compatible(objectives, inits)
    for obj in objectives:
        check_finite(obj.data.X, obj.data.Y, obj.data.name)
    t0 = time.perf_counter()
    deadline = t0 + min(c.max_seconds for c in cfg_list)
    params, taken, reasons, statuses, traces = gd_ensemble(objectives, inits, cfg_list,
                                                           deadline, chunk)
    gd_seconds = time.perf_counter() - t0
    gd_over = time.perf_counter() > deadline  # the shared GD phase reached the safety net
    out = []
    for i, (obj, init, cfg) in enumerate(zip(objectives, inits, cfg_list, strict=True)):
        trace = list(traces[i])
        finite = statuses[i] is not TrainStatus.DIVERGED
        timed_out = gd_over
        res = TrainResult(
            params=params[i], initial=tuple(init), trace_steps=(), trace_F=(),
            trace_residual=(), gd_steps=taken[i], lbfgs_iters=0, continuation_iters=0,
            stop_reason=reasons[i] + (f"; {safety_net_note(cfg.max_seconds)}" if timed_out
                                      else ""),
            seconds=gd_seconds, status=TrainStatus.TIME_LIMIT if timed_out else statuses[i],
            stages={"gd": gd_seconds}, timed_out=timed_out)
        left = cfg.max_seconds - gd_seconds
        if finite and cfg.polish and obj.lam > 0 and left > 0 and not timed_out:
            # the engine's polish, unchanged: train() with its GD phase already done
            pol = train(obj, params[i], replace(cfg, steps=0, max_seconds=left))
            trace += [(taken[i] + s, f, r) for s, f, r in zip(
                pol.trace_steps[1:], pol.trace_F[1:], pol.trace_residual[1:], strict=True)]
            res = replace(res, params=pol.params, lbfgs_iters=pol.lbfgs_iters,
                          continuation_iters=pol.continuation_iters,
                          stop_reason=pol.stop_reason, seconds=gd_seconds + pol.seconds,
                          status=pol.status, stages={"gd": gd_seconds, **{
                              k: v for k, v in pol.stages.items() if k != "gd"}},
                          kink_band=pol.kink_band, slopes=pol.slopes,
                          timed_out=pol.timed_out)
        out.append(replace(res, trace_steps=tuple(s for s, _, _ in trace),
                           trace_F=tuple(f for _, f, _ in trace),
                           trace_residual=tuple(r for _, _, r in trace)))
    return out


def certify_ensemble(objectives: Sequence[Objective], results: Sequence[TrainResult],
                     tau: float, hessian: bool = True) -> list[Certificate]:
    """:func:`verify.engine.certificate.certify` for every network (each on its own objective)."""
    return [certify(obj, res, tau, hessian)[0]
            for obj, res in zip(objectives, results, strict=True)]


def _batchable(setting: Setting) -> bool:
    """Full-batch first phases are batched (gd, momentum, Adam: one optimiser pair steps a
    stack); mini-batch SGD draws batches per network, which :func:`gd_ensemble` does not."""
    # conv nets and low-precision first phases have no batched forward here
    return setting.batch is None and setting.conv is None and setting.precision == "float64"


def _batch_key(obj: Objective, setting: Setting) -> Hashable:
    """What networks must share to be trained in one ensemble (:func:`_check_compatible`,
    one optimiser). λ, step size, momentum coefficient, step count, seed (so data values
    and initial point) and the polish flag may differ: they are per network."""
    X, Y = obj.data.X, obj.data.Y
    return (obj.arch, obj.data.loss, obj.reg_bias, tuple(X.shape), X.dtype, str(X.device),
            tuple(Y.shape), Y.dtype, setting.optimizer)


def realise_all(settings: Sequence[Setting], ctx: Context,
                chunk: int | None = None) -> list[Trained]:
    """:func:`verify.engine.setting.realise` of every setting, in input order; the uncached ones
    that can share a batched first phase (:func:`_batchable`, same :func:`_batch_key`)
    trained together.

    Each group of two or more is trained by :func:`train_ensemble` — batched, then each
    network polished on its own by the engine's route — with each setting's own
    ``train_config(ctx.max_seconds)``, certified by :func:`verify.engine.certificate.certify` at
    ``ctx.tau`` and cached exactly as ``realise`` caches (same key, same file). Everything
    else (cache hits, mini-batch SGD, groups of one) goes through ``realise`` itself.

    Why it is the same network: the batched first phase is the single route's (the same
    optimiser pair) up to the rounding of a batched matmul (≤ 1e-12 relative), and polish
    and certificate are the single route's (measured after polish: parameters within ~1e-14
    relative on the test grid; T6's quick sweep: every reported number above 1e-8 within
    5e-11, verdict and trends identical). So a cached network may come from either route.

    ``chunk``: how many networks :class:`Ensemble` evaluates together (memory and cache
    locality only, see :func:`default_chunk`). The time budget ``ctx.max_seconds`` is per
    network, as in ``realise``, but a network waits for the whole batched GD phase of its
    group, and that phase counts against its budget.
    """
    groups: dict[Hashable, list[tuple[Setting, Objective]]] = {}
    for s in dict.fromkeys(settings):  # in order, each setting once
        if _batchable(s) and not is_cached(s, ctx):
            obj = s.objective(ctx.device)
            groups.setdefault(_batch_key(obj, s), []).append((s, obj))
    for group in groups.values():
        if len(group) < 2:
            continue
        objs = [obj for _, obj in group]
        results = train_ensemble(objs, [s.init(ctx.device) for s, _ in group],
                                 [s.train_config(ctx.max_seconds) for s, _ in group],
                                 chunk=chunk)
        for (s, obj), res in zip(group, results, strict=True):
            cert, st = certify(obj, res, ctx.tau)
            store(Trained(s, obj, res, cert, st), ctx)
    return [realise_any(s, ctx) for s in settings]
