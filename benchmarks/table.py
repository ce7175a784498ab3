"""Collects the benchmark numbers of one pytest session and renders benchmarks/results.md.

Each benchmark stores what it measured under a key; :func:`render` derives the ratios
(FLOP/s as a fraction of the measured matmul peak, ensemble speedups, thread ratios) and
states which targets were met. A benchmark that did not run leaves its rows out.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
from typing import Any

import torch

from benchmarks import cases

VALUES: dict[str, Any] = {}


def put(key: str, value: Any) -> None:
    VALUES[key] = value


def _f(x: float | None, spec: str = ".3g") -> str:
    return "–" if x is None else format(x, spec)


def _peak_rows(v: dict[str, Any]) -> list[str]:
    rows = []
    for prec in ("float64", "float32", "tf32"):
        p = v.get(f"peak/{prec}")
        if p:
            rows.append(f"| torch.matmul {p['n']}×{p['n']} (peak) | {prec} | – | "
                        f"{_f(p['gflops'])} | {_f(p['gflops'])} | 1 |")
        g = v.get(f"gd/{prec}")
        if g:
            frac = g["gflops"] / p["gflops"] if p else None
            rows.append(f"| GD step, {g['label']} | {prec} | {_f(g['steps_per_s'])} | "
                        f"{_f(g['gflops'])} | {_f(p['gflops'] if p else None)} | "
                        f"{_f(frac, '.1%') if frac is not None else '–'} |")
    return rows


def _large_rows(v: dict[str, Any]) -> list[str]:
    rows = []
    for key, c in v.items():
        if not key.startswith("large/"):
            continue
        _, name, prec = key.split("/")
        peak = c["peak_memory_bytes"] / 2**20
        extra = (f"{(c['peak_memory_bytes'] - c['rss_before_bytes']) / 2**20:.0f}"
                 if c["memory"] == "process peak RSS" else "–")
        rows.append(f"| {name} | {c['parameters']:,} | {prec} on {c['device']} | {c['steps']} "
                    f"| {1e3 * c['seconds_per_step']:.3g} | {peak:.0f} ({c['memory']}) | "
                    f"{extra} |")
    return rows


def _width_rows(v: dict[str, Any], targets: list[str]) -> list[str]:
    """ReLU vs softplus time to a certificate against width (issue 13's 3× target)."""
    widths = sorted(int(k.split("/")[1]) for k in v if k.startswith("width/"))
    if not widths:
        return []
    out = ["## ReLU vs softplus: time to a certificate against width", "",
           "Nets (16, w, w, 4), n = 64, λ = 1e-2, clustered data (the same data and "
           "initialisation for both activations, per seed), `verify.engine.train.train` "
           "defaults then the certificate at τ = 1e-6; times include certification; each net "
           "has a 300 s wall-clock safety net on training (reaching it means not certified). "
           "Times are medians over the seeds; the ratio is ReLU median / softplus median.", "",
           "| width w | seeds | ReLU certified | ReLU s (median; min–max) | softplus certified | "
           "softplus s (median; min–max) | ratio ReLU/softplus |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for w in widths:
        x = v[f"width/{w}"]
        cells = []
        meds = {}
        for act in ("relu", "softplus"):
            runs = x.get(act, [])
            secs = sorted(r["seconds"] for r in runs)
            meds[act] = statistics.median(secs) if secs else None
            ok = sum(r["certified"] for r in runs)
            cells += [f"{ok}/{len(runs)}",
                      f"{_f(meds[act])} ({_f(secs[0])}–{_f(secs[-1])})" if secs else "–"]
        ratio = (meds["relu"] / meds["softplus"]
                 if meds["relu"] is not None and meds["softplus"] else None)
        seeds = max(len(x.get("relu", [])), len(x.get("softplus", [])))
        out.append(f"| {w} | {seeds} | {' | '.join(cells)} | {_f(ratio, '.1f')}× |")
        relu_ok = all(r["certified"] for r in x.get("relu", []))
        if ratio is not None:
            targets.append(f"ReLU time to a certificate within 3× of softplus, (16, {w}, {w}, "
                           f"4), n = 64: {ratio:.1f}× ({'all' if relu_ok else 'not all'} ReLU "
                           f"nets certified) — {'met' if ratio <= 3 and relu_ok else 'NOT met'}")
    misses = [(w, act, r) for w in widths for act in ("relu", "softplus")
              for r in v[f"width/{w}"].get(act, []) if not r["certified"]]
    if misses:
        out += ["", "Not certified:", *[f"- w = {w}, {act}, seed {r['seed']}: {r['reason']}"
                                        for w, act, r in misses]]
    return [*out, ""]


def _wide_rows(v: dict[str, Any], targets: list[str]) -> list[str]:
    """The width-1024 and width-4096 ReLU nets on digits (issue 13's targets)."""
    wide = sorted((int(k.split("/")[1]), x) for k, x in v.items() if k.startswith("wide/"))
    if not wide:
        return []
    out = ["## Wide ReLU nets: time to a certificate", "",
           "(64, w, 10) ReLU, λ = 1e-3, cross-entropy on 256 digits images; "
           "`verify.engine.train.train` defaults, then the certificate at τ = 1e-6; one run "
           "each, times include certification.", "",
           "| width | parameters | device | seconds | certified | max r | kinks | "
           "second-order test |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for w, x in wide:
        out.append(f"| {w} | {x['parameters']:,} | {x['device']} | {_f(x['seconds'])} | "
                   f"{x['certified']} | {_f(x['r'])} | {x['kinks']} | {x['hessian']} |")
        cpu = cases.DEVICE == "cpu"
        if (w == 1024 and cpu) or (w == 4096 and not cpu):
            limit, where = (300, "one CPU thread") if cpu else (60, "a GPU")
            ok = x["certified"] and x["seconds"] <= limit
            targets.append(f"(64, {w}, 10) ReLU on 256 digits certified in ≤ {limit} s on "
                           f"{where}: {_f(x['seconds'])} s, certified {x['certified']} — "
                           f"{'met' if ok else 'NOT met'}")
        elif w == 4096:
            targets.append(f"(64, 4096, 10) ReLU certified in ≤ 60 s on a GPU: not measured "
                           f"(no GPU); on the CPU {_f(x['seconds'])} s, certified "
                           f"{x['certified']}")
    out += ["", *[f"- w = {w}: {x['stop_reason']}; certificate: {x['reason']}"
                  for w, x in wide], ""]
    return out


def render() -> str:
    v = VALUES
    out = ["# Benchmark results", "",
           f"Generated by `nox -s bench` on {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC; "
           f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
           f"torch {torch.__version__}, device: {cases.device_name()}; 1 torch thread "
           "unless stated.",
           "The machine is a shared 2-core box: timings are noisy (other processes compete "
           "for the cores); each time is the median over the rounds stated.", ""]
    targets: list[str] = []

    rows = _peak_rows(v)
    if rows:
        out += ["## Training step throughput", "",
                "Full-batch GD steps of `verify.engine.train.train` (polish off). FLOPs count the "
                "matrix products only (6·n·Σ d_k d_{k−1} − 2·n·d_0 d_1 per step).", "",
                "| workload | precision | steps/s | GFLOP/s | matmul peak GFLOP/s | "
                "fraction of peak |", "| --- | --- | --- | --- | --- | --- |", *rows, ""]
    rows = _large_rows(v)
    if rows:
        out += ["## Large scale: time and memory per step", "",
                "The first (GD) phase of the `--scale large` networks, n = 256, polish off, "
                "each in a fresh process. On a CPU the peak is the process's peak RSS "
                "(Python, torch and the data included); the last column subtracts the RSS "
                "before training. On a GPU it is the CUDA allocator's peak during the phase.",
                "", "| network | parameters | precision | steps | ms/step | peak MiB | "
                "peak − before MiB |", "| --- | --- | --- | --- | --- | --- | --- |", *rows, ""]

    th = [(k.split("/", 1)[1], x) for k, x in v.items() if k.startswith("threads/")]
    if th:
        out += ["## Torch threads: 1 vs 2", "",
                "| workload | 1 thread steps/s | 2 threads steps/s | 2-thread / 1-thread |",
                "| --- | --- | --- | --- |"]
        for label, x in th:
            out.append(f"| {label} | {_f(x[1])} | {_f(x[2])} | {_f(x[2] / x[1], '.2f')} |")
        out += ["", "Default: 1 thread per process (`verify.run.executor.pin_threads`); the "
                "harness parallelises over processes instead. Two threads gain little on an "
                "idle box and lose badly on a busy one: the same rows measured 0.15–0.18 "
                "(2 threads 5–7× slower) while another process used the second core.", ""]

    ens = sorted((int(k.split("/")[1]), x) for k, x in v.items() if k.startswith("ensemble/"))
    if ens:
        out += ["## Ensemble vs loop", "",
                "K networks (16, w, w, 4), ReLU, 128 samples each, own data/init/λ/lr; the "
                "same number of GD steps either way: `verify.engine.ensemble.train_ensemble` "
                "(polish off) vs a loop of `verify.engine.train.train` (polish off).", "",
                "Timed back to back in each round; times are medians, the speedup is the "
                "median of the per-round ratios.", "",
                "| width w | K | GD steps | rounds | loop s | ensemble s | speedup |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for w, x in ens:
            sp = x["speedup"]
            out.append(f"| {w} | {x['K']} | {x['steps']} | {x['rounds']} | {_f(x['loop'])} | "
                       f"{_f(x['ensemble'])} | {_f(sp, '.1f')}× |")
            if w == 16 and sp is not None:
                need = 50 if cases.DEVICE == "cuda" else 5
                targets.append(f"ensemble ≥ {need}× a loop at width 16 on the "
                               f"{cases.device_name()}: {sp:.1f}× — "
                               f"{'met' if sp >= need else 'NOT met'}")
        out.append("")

    cert = [(k.split("/", 1)[1], x) for k, x in v.items() if k.startswith("cert/")]
    if cert:
        out += ["## Time to a certificate", "",
                "Plain GD: fixed step η = 0.05 until r ≤ 1e-4 (checked every 10 steps) or "
                "the cap, then the certificate at τ = 1e-4. Engine: `verify.engine.train.train` "
                "defaults (GD 2000 steps + L-BFGS + Newton; ReLU: smoothing continuation), "
                "then the certificate at τ = 1e-6. Times include certification.", "",
                "| net | route | seconds | optimizer steps | max residual r | certified | "
                "reason |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for label, x in cert:
            for route in ("plain", "engine"):
                c = x.get(route)
                if c:
                    out.append(f"| {label} | {c['route']} | {_f(c['seconds'])} | {c['steps']} "
                               f"| {_f(c['r'], '.2e')} | {c['certified']} (τ={c['tau']:.0e}) "
                               f"| {c['reason']} |")
            p, e = x.get("plain"), x.get("engine")
            if p and e:
                gd_ok = p["r"] <= 1e-4
                met = e["certified"] and e["r"] <= 1e-4 and e["seconds"] < p["seconds"]
                gd_txt = (f"plain GD reached r ≤ 1e-4 in {p['seconds']:.1f} s" if gd_ok else
                          f"plain GD did not reach r ≤ 1e-4 within its cap "
                          f"({p['seconds']:.1f} s, r = {p['r']:.1e})")
                targets.append(f"certified faster than plain GD to r ≤ 1e-4, {label}: engine "
                               f"{e['seconds']:.1f} s to r = {e['r']:.1e}; {gd_txt} — "
                               f"{'met' if met else 'NOT met'}")
        out.append("")

    out += _width_rows(v, targets)
    out += _wide_rows(v, targets)

    sp = v.get("spectra")
    if sp:
        out += ["## Spectra", "",
                f"Singular values of every layer of a {sp['depth']}-layer width-{sp['width']} "
                "MLP (float64).", "", "| tool | seconds | note |", "| --- | --- | --- |",
                f"| verify.measure.spectra.singular_values | {_f(sp['ours'])} | "
                f"{sp['rounds']} rounds, median |",
                f"| weightwatcher analyze() | {_f(sp.get('ww'))} | {sp['ww_note']} |", ""]
        if sp.get("ww") is not None:
            targets.append(f"spectra faster than WeightWatcher: {sp['ours']:.2f} s vs "
                           f"{sp['ww']:.2f} s — {'met' if sp['ours'] < sp['ww'] else 'NOT met'}")
        else:
            targets.append(f"spectra faster than WeightWatcher: not measured ({sp['ww_note']})")

    aud = [(k.split("/", 1)[1], x) for k, x in v.items() if k.startswith("audit/")]
    if aud:
        out += ["## Auditing a model", "",
                "`verify.audit.audit` of a 64-32-10 MLP trained by torch SGD (300 full-batch "
                "steps, lr 0.5, weight_decay 1e-3, float32) on all 1797 digits, λ = 1e-3, "
                "cross-entropy, on the CPU: conversion, certificate, layer table, theorems.",
                "", "| σ | seconds | certified | max r_k | Hessian | judged |",
                "| --- | --- | --- | --- | --- | --- |"]
        for act, x in aud:
            out.append(f"| {act} | {_f(x['seconds'])} | {x['certified']} | {x['r']:.2e} | "
                       f"{x['hessian']} | {x['judged']} |")
            targets.append(f"audit of the 64-32-10 {act} MLP on digits well under a minute: "
                           f"{x['seconds']:.1f} s — {'met' if x['seconds'] < 30 else 'NOT met'}")
        out.append("")

    if cases.DEVICE != "cuda":
        targets.append("ensemble ≥ 50× a loop at width 16 on a GPU: not measured (no GPU in "
                       "this run; `nox -s bench` on a CUDA machine measures it)")
    if targets:
        out += ["## Targets", "", *[f"- {t}" for t in targets], ""]
    return "\n".join(out)
