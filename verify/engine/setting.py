"""Settings and trained networks.

A :class:`Setting` is everything that determines one trained network: architecture, data,
λ (= λ_eff, THEOREMS.md "Notation"), optimiser and seed. It is a frozen record, printed in
the report and hashed for caching. :func:`realise` trains it to stationarity and certifies
it, once per :class:`Context`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from verify.engine.certificate import Certificate, certify
from verify.engine.residual import Stationarity
from verify.engine.train import Observer, TrainConfig, TrainResult, train
from verify.errors import require
from verify.nets import data as datasets
from verify.nets.activations import Params
from verify.nets.conv2d import ConvNet
from verify.nets.data import Dataset
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective


@dataclass(frozen=True)
class Setting:
    """One network to train: see module docstring. ``dim`` is the data subspace dimension
    (``subspace`` data) or the target rank (``whitened`` data)."""

    widths: tuple[int, ...]
    activation: str = "relu"
    lam: float = 1e-2
    n: int = 16
    data: str = "clusters"
    loss: str = "squared"
    seed: int = 0
    bias: bool = False
    residual: bool = False
    reg_bias: bool = False
    init_scale: float = 1.0
    lr: float = 0.05
    steps: int = 1000
    optimizer: str = "gd"
    polish: bool = True
    dim: int | None = None
    batch: int | None = None  # mini-batch size B of the first phase; None = full batch
    precision: str = "float64"  # of the first phase; polish and certificate are float64
    conv: tuple[int, ...] | None = None  # conv channels: a verify.nets.conv2d.ConvNet on images

    def __post_init__(self) -> None:
        require(isinstance(self.lam, (int, float)) and not isinstance(self.lam, bool)
                and math.isfinite(self.lam)
                and self.lam >= 0, "lam", self.lam, "a finite number ≥ 0")
        require(isinstance(self.n, int) and self.n >= 1, "n", self.n, "a positive integer")
        require(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
                "lr", self.lr, "a finite number > 0")
        require(isinstance(self.steps, int) and self.steps >= 0, "steps", self.steps,
                "an integer ≥ 0")
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed,
                "an integer ≥ 0")
        require(isinstance(self.init_scale, (int, float)) and math.isfinite(self.init_scale)
                and self.init_scale > 0, "init_scale", self.init_scale, "a finite number > 0")
        require(isinstance(self.widths, (tuple, list)), "widths", self.widths,
                "a tuple of positive integers (d_0, …, d_L)")
        require(isinstance(self.data, str) and (self.data in datasets.KINDS
                                                or self.data.startswith("pair:")),
                "data", self.data, f"one of {', '.join(datasets.KINDS)} or a task-pair name")
        require(self.loss in datasets.LOSSES, "loss", self.loss,
                f"one of {', '.join(datasets.LOSSES)}")
        TrainConfig(lr=self.lr, steps=self.steps, optimizer=self.optimizer,
                    precision=self.precision)  # validates
        require(self.batch is None or (isinstance(self.batch, int)
                                       and 1 <= self.batch <= self.n), "batch", self.batch,
                f"None (full batch) or an integer in [1, n={self.n}]")
        require(self.conv is None or (len(self.widths) == 2 and not self.bias
                                      and not self.residual
                                      and datasets.image_side(self.widths[0]) is not None),
                "widths of a conv net", self.widths,
                "(3·S², d_out) for S×S RGB images, without biases or residual blocks")
        self.architecture()  # validates widths and activation

    def architecture(self) -> Architecture | ConvNet:
        if self.conv is not None:
            side = datasets.image_side(self.widths[0])
            return ConvNet((3, side, side), tuple(self.conv), self.widths[-1],
                           self.activation)
        return Architecture(tuple(self.widths), self.activation, self.bias, self.residual)

    def dataset(self) -> Dataset:
        return datasets.make(self.data, self.n, self.widths[0], self.widths[-1], self.seed,
                             self.loss, self.dim)

    def objective(self, device: str = "cpu") -> Objective:
        return Objective(self.architecture(), self.dataset().to(device), float(self.lam),
                         self.reg_bias)

    def init(self, device: str = "cpu") -> Params:
        return init_params(self.architecture(), self.seed + 7919, self.init_scale,
                           device=device)

    def train_config(self, max_seconds: float) -> TrainConfig:
        return TrainConfig(lr=self.lr, steps=self.steps, optimizer=self.optimizer,
                           polish=self.polish, max_seconds=max_seconds, batch=self.batch,
                           batch_seed=self.seed + 104729, precision=self.precision)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        # fields added later are left out at their defaults, so the hashes (cache keys,
        # the regression baseline) of settings that do not use them stay as they were
        for name in ("precision", "conv"):
            if d[name] == Setting.__dataclass_fields__[name].default:
                del d[name]
        if self.conv is not None:
            d["conv"] = list(self.conv)
        d["widths"] = list(self.widths)
        d["depth"] = self.architecture().depth
        d["lam_eff"] = self.lam  # F = L̂ + (λ/2)Σ‖W‖²: λ_eff = λ
        return d


@dataclass(frozen=True)
class Trained:
    """A trained network with its certificate and the residuals behind it."""

    setting: Setting | None  # None: weights given from outside (a model audited by verify.audit)
    objective: Objective
    result: TrainResult
    certificate: Certificate
    stationarity: Stationarity


@dataclass
class Context:
    """What a check may use: certificate level τ, device, time budget, and a cache of
    trained networks keyed by setting (so two claims on one network train it once)."""

    tau: float = 1e-6
    device: str = "cpu"
    max_seconds: float = 300.0
    scale: str = "quick"
    cache_dir: str | None = None  # trained networks on disk, keyed by a hash of the setting
    cache: dict[Setting, Trained] = field(default_factory=dict)


def setting_key(setting: Any, tau: float) -> str:
    """A stable hash of a setting and the certificate level (the on-disk cache key)."""
    return setting_key_json(setting.to_json(), tau)


def setting_key_json(setting_json: dict[str, Any], tau: float) -> str:
    """:func:`setting_key` from a setting's JSON form (as stored in results)."""
    blob = json.dumps({"setting": setting_json, "tau": tau}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cache_path(setting: Setting, ctx: Context) -> Path | None:
    """The on-disk cache entry of ``setting`` (None without ``ctx.cache_dir``)."""
    return (Path(ctx.cache_dir) / f"{setting_key(setting, ctx.tau)}.pt"
            if ctx.cache_dir else None)


def is_cached(setting: Setting, ctx: Context) -> bool:
    """In memory or on disk (a torn disk entry is found out, as a miss, by :func:`realise`)."""
    path = cache_path(setting, ctx)
    return setting in ctx.cache or (path is not None and path.exists())


def store(trained: Trained, ctx: Context) -> None:
    """Put ``trained`` into ``ctx.cache`` and, with ``ctx.cache_dir``, on disk: written to a
    per-process temporary file renamed into place, so a concurrent reader never sees a torn
    file."""
    assert trained.setting is not None, "only networks realised from a Setting are cached"
    ctx.cache[trained.setting] = trained
    path = cache_path(trained.setting, ctx)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(trained, tmp)
        os.replace(tmp, path)


def realise(setting: Setting, ctx: Context, observer: Observer | None = None) -> Trained:
    """Train ``setting`` to stationarity and certify it.

    Cached in memory and, with ``ctx.cache_dir``, on disk (torch.save), so re-checks and a
    resumed run never retrain. A run with an ``observer`` always trains: the observer must
    see every step. (Many settings at once, with batched GD:
    :func:`verify.engine.ensemble.realise_all`.)
    """
    if observer is None and setting in ctx.cache:
        return ctx.cache[setting]
    path = cache_path(setting, ctx) if observer is None else None
    if path is not None and path.exists():
        try:
            out = torch.load(path, map_location=ctx.device, weights_only=False)
            if isinstance(out, Trained) and out.setting == setting:
                ctx.cache[setting] = out
                return out
        except Exception:  # a torn or foreign file is only a cache miss
            pass
    obj = setting.objective(ctx.device)
    res = train(obj, setting.init(ctx.device), setting.train_config(ctx.max_seconds), observer)
    cert, st = certify(obj, res, ctx.tau)
    out = Trained(setting, obj, res, cert, st)
    if observer is None:
        store(out, ctx)
    else:
        ctx.cache[setting] = out
    return out


def trajectory(setting: Setting, ctx: Context, observer: Observer | None = None
               ) -> TrainResult:
    """Train ``setting`` without certifying it: for claims about the optimiser's trajectory
    itself (SGD iterates are not stationary points, THEOREMS.md T5)."""
    return train(setting.objective(ctx.device), setting.init(ctx.device),
                 setting.train_config(ctx.max_seconds), observer)


def default_device(name: str) -> str:
    """Resolve ``auto`` to cuda when present, else cpu; check an explicit choice."""
    require(name in ("auto", "cpu", "cuda"), "device", name, "one of auto, cpu, cuda")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    require(name != "cuda" or torch.cuda.is_available(), "device", name,
            "cuda only when a CUDA GPU is present (none found); use cpu or auto")
    return name
