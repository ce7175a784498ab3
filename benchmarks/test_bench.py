"""Benchmarks (not part of the default test run): ``nox -s bench``.

Each test times one workload with pytest-benchmark and stores its numbers for the table in
benchmarks/results.md (table.py). Sizes are chosen so the whole session stays under ~10
minutes on a 2-core CPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from benchmarks import cases, table
from verify.engine.train import matmul_precision
from verify.measure import spectra
from verify.run.executor import pin_threads

Timed = Callable[..., tuple[float, Any]]

PEAK_N = 2048
MLP = (64, 64, 64, 64, 10)  # input 64, hidden 64-64-64, 10 outputs
MLP_N = 512
ENSEMBLE_K = 64
ENSEMBLE_STEPS = {16: 50, 64: 40, 256: 8}
SMALL = (16, 16, 16, 4)  # the small-matrix net of the thread comparison
SMALL_N = 64


PRECISIONS = ["float64", "float32", "tf32"]


def _cuda_only(precision: str) -> None:
    if precision == "tf32" and cases.DEVICE != "cuda":
        pytest.skip("TF32 is a CUDA matmul mode; on a CPU it is float32 (measured above)")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_matmul_peak(timed: Timed, precision: str) -> None:
    """The machine's matmul peak: one large torch.matmul (1 thread on a CPU)."""
    _cuda_only(precision)
    n = PEAK_N if cases.DEVICE == "cpu" else 4 * PEAK_N
    A, B = cases.matmul(n, torch.float64 if precision == "float64" else torch.float32)
    with matmul_precision(precision):
        sec, _ = timed(lambda: (A @ B, cases.synchronize()), rounds=3, warmup=1)
    table.put(f"peak/{precision}", {"n": n, "gflops": cases.gflops(cases.matmul_flops(n), sec)})


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gd_step_throughput(timed: Timed, precision: str) -> None:
    """Full-batch GD steps/s of the 64-64-64 ReLU MLP on 512 samples."""
    _cuda_only(precision)
    obj, init = cases.mlp_problem(MLP, "relu", MLP_N)
    steps = 200
    sec, res = timed(lambda: cases.gd_steps(obj, init, steps, precision=precision),
                     rounds=3, warmup=1)
    assert res.gd_steps == steps and res.finite
    flops = cases.gd_step_flops(MLP, MLP_N) * steps
    table.put(f"gd/{precision}", {
        "label": f"ReLU MLP {'-'.join(map(str, MLP))}, n = {MLP_N}",
        "steps_per_s": steps / sec, "gflops": cases.gflops(flops, sec)})


# steps of the first phase per large workload: enough for a stable per-step time, few
# enough for the 2-core CPU (the deep MLP's float64 step measured 2.7–3.5 s there)
LARGE_STEPS = {"cpu": {"MLP 64-4096-10": 20, "MLP 64-4096-4096-10": 3,
                       "conv 3×32×32 → 16 → 32 → 10": 10},
               "cuda": {"MLP 64-4096-10": 200, "MLP 64-4096-4096-10": 100,
                        "conv 3×32×32 → 16 → 32 → 10": 200}}


@pytest.mark.parametrize("precision", ["float64", "tf32"])
@pytest.mark.parametrize("name", sorted(cases.LARGE))
def test_large_scale_step(name: str, precision: str) -> None:
    """Time and peak memory per first-phase step of the large scale's networks, each in a
    fresh process (its own peak RSS on a CPU; the CUDA allocator's peak on a GPU)."""
    steps = LARGE_STEPS[cases.DEVICE][name]
    cost = cases.in_fresh_process(cases.large_step, name, precision, steps)
    assert cost["finite"] and cost["steps"] == steps
    table.put(f"large/{name}/{precision}", cost)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("net", ["small", "mlp"])
def test_threads(timed: Timed, threads: int, net: str) -> None:
    """GD steps/s with 1 vs 2 torch threads (float64)."""
    widths, n, steps = (SMALL, SMALL_N, 200) if net == "small" else (MLP, MLP_N, 50)
    obj, init = cases.mlp_problem(widths, "relu", n)
    pin_threads(threads)
    try:
        sec, _ = timed(lambda: cases.gd_steps(obj, init, steps), rounds=2, warmup=1)
    finally:
        pin_threads(1)
    label = f"ReLU MLP {'-'.join(map(str, widths))}, n = {n}, float64"
    entry = table.VALUES.get(f"threads/{label}", {})
    entry[threads] = steps / sec
    table.put(f"threads/{label}", entry)


@pytest.mark.parametrize("width", sorted(ENSEMBLE_STEPS))
def test_ensemble_vs_loop(timed: Timed, width: int) -> None:
    """K = 64 networks, the same GD steps: a loop of train() and one batched ensemble, timed
    back to back in every round (paired, so a change in the machine's load hits both); the
    speedup is the median of the per-round ratios. pytest-benchmark times the pair."""
    objs, inits, lrs = cases.ensemble_problems(ENSEMBLE_K, width)
    steps = ENSEMBLE_STEPS[width]
    times: dict[str, list[float]] = {"loop": [], "ensemble": []}

    def pair() -> None:
        for route, fn in (("loop", cases.loop_gd), ("ensemble", cases.ensemble_gd)):
            t0 = time.perf_counter()
            res = fn(objs, inits, lrs, steps)
            times[route].append(time.perf_counter() - t0)
            assert all(r.gd_steps == steps and r.finite for r in res)

    rounds = 5 if width == 16 else (3 if width == 64 else 2)
    timed(pair, rounds=rounds, warmup=1)
    # under --benchmark-disable there is one (untimed-warmup-free) call: keep what exists
    loop, ens = (times[k][1:] or times[k] for k in ("loop", "ensemble"))
    table.put(f"ensemble/{width}", {
        "K": ENSEMBLE_K, "steps": steps, "rounds": len(loop),
        "loop": statistics.median(loop), "ensemble": statistics.median(ens),
        "speedup": statistics.median(a / b for a, b in zip(loop, ens, strict=True))})


CERT_NETS = {"tanh (8, 16, 16, 3), n = 32": ((8, 16, 16, 3), "tanh", 32),
             "relu (6, 10, 10, 3), n = 24": ((6, 10, 10, 3), "relu", 24)}


@pytest.mark.parametrize("route", ["plain", "engine"])
@pytest.mark.parametrize("net", sorted(CERT_NETS))
def test_time_to_certificate(timed: Timed, net: str, route: str) -> None:
    """Plain fixed-step GD to r ≤ 1e-4 (30 s cap) vs the engine's route, λ = 1e-2."""
    widths, act, n = CERT_NETS[net]
    obj, init = cases.mlp_problem(widths, act, n)
    if route == "plain":
        sec, got = timed(lambda: cases.plain_gd_to(obj, init, max_seconds=30.0), rounds=1)
    else:
        sec, got = timed(lambda: cases.engine_to(obj, init), rounds=1)
    c = got.certificate
    entry = table.VALUES.get(f"cert/{net}", {})
    entry[route] = {"route": got.route, "seconds": sec, "steps": got.steps,
                    "r": c.max_residual, "certified": c.certified, "tau": c.tau,
                    "reason": c.reason}
    table.put(f"cert/{net}", entry)


# of the (16, w, w, 4) nets, relu vs softplus (issue 13's target)
WIDTHS = (8, 16, 32, 64)
WIDTH_N, WIDTH_SEEDS, WIDTH_CAP = 64, (0, 1, 2), 300.0


@pytest.mark.parametrize("seed", WIDTH_SEEDS)
@pytest.mark.parametrize("activation", ["relu", "softplus"])
@pytest.mark.parametrize("width", WIDTHS)
def test_certificate_vs_width(timed: Timed, width: int, activation: str, seed: int) -> None:
    """Time to a certificate (engine defaults, τ = 1e-6, train + certify) of (16, w, w, 4)
    nets, n = 64, λ = 1e-2, clustered data: ReLU and softplus on the same shapes, data and
    initialisation; the safety net is ``WIDTH_CAP`` seconds per net."""
    obj, init = cases.mlp_problem((16, width, width, 4), activation, WIDTH_N, seed=seed)
    sec, got = timed(lambda: cases.engine_to(obj, init, max_seconds=WIDTH_CAP), rounds=1)
    c = got.certificate
    entry = table.VALUES.get(f"width/{width}", {})
    entry.setdefault(activation, []).append(
        {"seed": seed, "seconds": sec, "certified": c.certified, "r": c.max_residual,
         "kinks": c.kinks, "reason": c.reason})
    table.put(f"width/{width}", entry)


def test_spectra(timed: Timed) -> None:
    """Singular values of all 10 layers of a width-1024 MLP; WeightWatcher when importable."""
    Ws = cases.deep_weights(10, 1024)
    sec, svs = timed(lambda: [spectra.singular_values(W) for W in Ws], rounds=2)
    assert len(svs) == 10 and all(len(s) == 1024 for s in svs)
    entry = {"depth": 10, "width": 1024, "ours": sec, "rounds": 2, "ww": None}
    try:
        import weightwatcher  # noqa: F401
    except ImportError as exc:
        entry["ww_note"] = (f"skipped: `import weightwatcher` failed ({exc}); it is not a "
                            "dependency of this project and is not installed here")
    else:
        t0 = time.perf_counter()
        cases.weightwatcher_analyze(Ws)
        entry["ww"] = time.perf_counter() - t0
        entry["ww_note"] = "1 round (its own SVDs plus power-law fits)"
    table.put("spectra", entry)


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_audit_digits_mlp(timed: Timed, activation: str) -> None:
    """``verify.audit.audit`` of a torch-trained 64-32-10 MLP on the 1797 digits: conversion,
    certificate (Lanczos Hessian: 2,368 parameters), layer table and the theorems judged on
    given weights (target: well under a minute)."""
    from verify.audit import audit

    model, ds = cases.digits_mlp(activation)
    sec, a = timed(lambda: audit(model, ds.X, ds.Y, lam=1e-3, loss="ce"), rounds=3)
    # the theorems an audit judges on given weights (T1–T4: verify.audit); which apply depends
    # on the model and its certificate
    assert len(a.layers) == 2
    assert {c.theorem for c in a.checks if c.applies} <= {"T1", "T2", "T3", "T4"}
    table.put(f"audit/{activation}", {
        "seconds": sec, "parameters": 2368, "n": ds.n,
        "certified": a.certified, "r": a.certificate.max_residual,
        "hessian": a.certificate.hessian_method,
        "judged": ", ".join(f"{c.theorem} {c.verdict}" for c in a.checks if c.applies)})


# one-hidden-layer ReLU nets on 256 digits images, cross-entropy (issue 13: width 1024 in
# ≤ 5 min on one CPU thread; width 4096 ≤ 1 min on a GPU, "as fast as it goes" on a CPU)
WIDE = {1024: 900.0, 4096: 600.0}  # width: wall-clock safety net of training (s)


@pytest.mark.parametrize("width", sorted(WIDE))
def test_wide_relu_certificate(timed: Timed, width: int) -> None:
    """(64, w, 10) ReLU, λ = 1e-3, cross-entropy on 256 digits: the engine's route, then the
    certificate at τ = 1e-6; the time and the route's stages."""
    obj, init = cases.digits_problem(width, 256)
    sec, got = timed(lambda: cases.engine_to(obj, init, max_seconds=WIDE[width]), rounds=1)
    c = got.certificate
    table.put(f"wide/{width}", {
        "seconds": sec, "parameters": sum(p.numel() for p in init), "certified": c.certified,
        "r": c.max_residual, "kinks": c.kinks, "hessian": c.hessian_method,
        "reason": c.reason, "stop_reason": c.stop_reason, "device": cases.device_name()})
