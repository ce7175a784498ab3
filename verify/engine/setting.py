"""Settings and trained networks.

A :class:`Setting` is everything that determines one trained network: architecture, data,
λ (= λ_eff, THEOREMS.md "Notation"), optimiser and seed. It is a frozen record, printed in
the report and hashed for caching. :func:`realise` trains it to stationarity and certifies
it, once per :class:`Context`.

Memory a network will need is estimated before anything is allocated
(:func:`estimate_bytes`, :func:`require_fits`): a size that cannot fit used to fail after a
minute as an allocator traceback; now it is refused up front, with the estimate. The
estimate counts float64 numbers (8 bytes):

* P parameters, held ``PARAM_COPIES`` times: the L-BFGS history (2 × 50 vectors of
  :func:`verify.engine.polish.lbfgs_polish`), plus iterates, gradients and optimiser state;
* P² for the exact Hessian and the dense Newton solve, below their parameter limits;
* the data (n × (d_0 + d_L)) and the per-sample internals of every layer, held
  ``ACTIVATION_COPIES`` times (forward inputs, pre-activations, back-propagated errors and
  their autograd copies): n × Σ_k d_k.

It is an upper estimate for the networks of this project (measured: 64-4096-4096-10 at
n = 256 peaked 886 MiB above the process's start in its first phase, estimate 13 GiB with
the L-BFGS history that phase does not need yet), so a refusal means "would not fit", not
"might be slow".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from verify.engine import cache
from verify.engine.certificate import EXACT_HESSIAN_LIMIT, Certificate, certify
from verify.engine.polish import DENSE_NEWTON
from verify.engine.residual import Stationarity
from verify.engine.result import OPTIMIZERS, PRECISIONS, Observer, TrainConfig, TrainResult
from verify.engine.train import train
from verify.errors import NotJudgeable, UsageError, require
from verify.names import MAX_SEED, MAX_STEPS, MAX_WIDTH
from verify.nets import data as datasets
from verify.nets.activations import ACTIVATIONS, Params
from verify.nets.conv2d import ConvNet
from verify.nets.data import Dataset
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective

# Largest values a setting may hold: far above every scale (the large scale's widths are
# 4096, its step counts in the thousands); a bigger value is a typing mistake, refused up
# front instead of hanging or exhausting memory (memory itself: require_fits below).


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
        """Every field is checked here, at construction, naming the field: a bad value
        never gets as far as training (where it would crash far from its cause)."""
        def number(x: object) -> bool:
            return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

        def integer(x: object) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        require(isinstance(self.widths, tuple) and len(self.widths) >= 2
                and all(integer(w) and 1 <= w <= MAX_WIDTH for w in self.widths), "widths",
                self.widths, "a tuple (d_0, …, d_L) of at least two integers (depth ≥ 1), "
                f"each in [1, {MAX_WIDTH}]")
        require(isinstance(self.activation, str) and self.activation in ACTIVATIONS,
                "activation", self.activation, f"one of {', '.join(ACTIVATIONS)}")
        require(number(self.lam) and self.lam >= 0, "lam", self.lam, "a finite number ≥ 0")
        require(integer(self.n) and self.n >= 1, "n", self.n, "a positive integer")
        require(number(self.lr) and self.lr > 0, "lr", self.lr, "a finite number > 0")
        require(integer(self.steps) and 0 <= self.steps <= MAX_STEPS, "steps", self.steps,
                f"an integer in [0, {MAX_STEPS}]")
        require(integer(self.seed) and 0 <= self.seed <= MAX_SEED, "seed", self.seed,
                f"an integer in [0, {MAX_SEED}]")
        require(number(self.init_scale) and self.init_scale > 0, "init_scale",
                self.init_scale, "a finite number > 0")
        for flag in ("bias", "residual", "reg_bias", "polish"):
            require(isinstance(getattr(self, flag), bool), flag, getattr(self, flag),
                    "True or False")
        require(isinstance(self.data, str) and (self.data in datasets.KINDS
                                                or self.data.startswith("pair:")),
                "data", self.data, f"one of {', '.join(datasets.KINDS)} or a task-pair name")
        require(isinstance(self.loss, str) and self.loss in datasets.LOSSES, "loss",
                self.loss, f"one of {', '.join(datasets.LOSSES)}")
        require(isinstance(self.optimizer, str) and self.optimizer in OPTIMIZERS,
                "optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        require(isinstance(self.precision, str) and self.precision in PRECISIONS,
                "precision", self.precision, f"one of {', '.join(PRECISIONS)}")
        require(self.dim is None or (integer(self.dim) and self.dim >= 1), "dim", self.dim,
                "None or a positive integer")
        require(self.batch is None or (integer(self.batch) and 1 <= self.batch <= self.n),
                "batch", self.batch, f"None (full batch) or an integer in [1, n={self.n}]")
        require(self.conv is None or (isinstance(self.conv, tuple) and len(self.conv) >= 1
                                      and all(integer(c) and 1 <= c <= MAX_WIDTH
                                              for c in self.conv)), "conv", self.conv,
                f"None or a tuple of channel counts in [1, {MAX_WIDTH}]")
        require(self.conv is None or (len(self.widths) == 2 and not self.bias
                                      and not self.residual
                                      and datasets.image_side(self.widths[0]) is not None),
                "widths of a conv net", self.widths,
                "(3·S², d_out) for S×S RGB images, without biases or residual blocks")
        self.architecture()  # validates the rest (e.g. residual blocks, conv shapes)

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
    """What a check may use: certificate level τ, device, the wall-clock safety net per
    network, and a cache of trained networks keyed by setting (so two claims on one network
    train it once). ``used`` collects the on-disk entries this context read or wrote (key →
    digest): a run's record carries them, so an entry edited later is found out."""

    tau: float = 1e-6
    device: str = "cpu"
    max_seconds: float = 300.0
    scale: str = "quick"
    cache_dir: str | None = None  # trained networks on disk, keyed by a hash of the setting
    cache: dict[Setting, Trained] = field(default_factory=dict)
    used: dict[str, str] = field(default_factory=dict)


def setting_key(setting: Any, tau: float) -> str:
    """A stable hash of a setting and the certificate level (the on-disk cache key)."""
    return setting_key_json(setting.to_json(), tau)


def setting_key_json(setting_json: dict[str, Any], tau: float) -> str:
    """:func:`setting_key` from a setting's JSON form (as stored in results)."""
    blob = json.dumps({"setting": setting_json, "tau": tau}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


CACHE_SUFFIX = ".npz"


def cache_path(setting: Setting, ctx: Context) -> Path | None:
    """The on-disk cache entry of ``setting`` (None without ``ctx.cache_dir``)."""
    return (Path(ctx.cache_dir) / f"{setting_key(setting, ctx.tau)}{CACHE_SUFFIX}"
            if ctx.cache_dir else None)


def is_cached(setting: Setting, ctx: Context) -> bool:
    """In memory or on disk (a torn disk entry is found out, as a miss, by :func:`realise`)."""
    path = cache_path(setting, ctx)
    return setting in ctx.cache or (path is not None and path.exists())


def store(trained: Trained, ctx: Context) -> None:
    """Put ``trained`` into ``ctx.cache`` and, with ``ctx.cache_dir``, on disk (npz + JSON,
    :mod:`verify.engine.cache`): written to a per-process temporary file renamed into place,
    so a concurrent reader never sees a torn file. The disk copy only saves time: when it
    cannot be written (e.g. a full disk) the network is kept in memory only."""
    assert trained.setting is not None, "only networks realised from a Setting are cached"
    ctx.cache[trained.setting] = trained
    path = cache_path(trained.setting, ctx)
    if path is None:
        return
    data, dig = cache.encode({"setting": trained.setting.to_json(), "tau": ctx.tau,
                              "result": trained.result, "certificate": trained.certificate,
                              "stationarity": trained.stationarity})
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return
    ctx.used[path.stem] = dig


def _load(setting: Setting, ctx: Context, path: Path) -> Trained | None:
    """The disk entry of ``setting``, or None when it is missing, torn or not this
    setting's (a cache miss: the network is trained again)."""
    try:
        data = path.read_bytes()
        v = cache.decode(data, ctx.device)
    except (OSError, cache.CacheError):
        return None
    if v.get("setting") != json.loads(json.dumps(setting.to_json())) or v.get(
            "tau") != ctx.tau:
        return None
    res, cert, st = v.get("result"), v.get("certificate"), v.get("stationarity")
    if not (isinstance(res, TrainResult) and isinstance(cert, Certificate)
            and isinstance(st, Stationarity)):
        return None
    init = setting.init(ctx.device)
    if len(res.initial) != len(init) or not all(
            a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
            for a, b in zip(res.initial, init, strict=True)) or [
            p.shape for p in res.params] != [p.shape for p in init]:
        return None
    ctx.used[path.stem] = cache.digest(data)
    return Trained(setting, setting.objective(ctx.device), res, cert, st)


def realise_any(setting: Setting, ctx: Context, observer: Observer | None = None
                ) -> Trained:
    """Train ``setting`` and certify it, whatever came out — diverged networks included
    (see :func:`realise` for the cache)."""
    if observer is None and setting in ctx.cache:
        return ctx.cache[setting]
    path = cache_path(setting, ctx) if observer is None else None
    if path is not None and path.exists():
        got = _load(setting, ctx, path)
        if got is not None:
            ctx.cache[setting] = got
            return got
    obj = setting.objective(ctx.device)
    res = train(obj, setting.init(ctx.device), setting.train_config(ctx.max_seconds), observer)
    cert, st = certify(obj, res, ctx.tau)
    out = Trained(setting, obj, res, cert, st)
    if observer is None:
        store(out, ctx)
    else:
        ctx.cache[setting] = out
    return out


def require_judgeable(t: Trained) -> Trained:
    """``t``, or :class:`~verify.errors.NotJudgeable` when it diverged (non-finite loss or
    weights) or reached the wall-clock safety net: no measure runs on such a network."""
    finite = t.result.finite and all(bool(torch.isfinite(p).all()) for p in t.result.params)
    if not finite:
        why = t.result.stop_reason
        raise NotJudgeable(why if why.startswith("diverged") else f"diverged: {why}",
                           t.certificate)
    if t.result.timed_out:
        raise NotJudgeable(t.certificate.reason, t.certificate)
    return t


def realise(setting: Setting, ctx: Context, observer: Observer | None = None) -> Trained:
    """Train ``setting`` to stationarity and certify it; a network that diverged or reached
    the safety net raises :class:`~verify.errors.NotJudgeable` (its check is INCONCLUSIVE).

    Cached in memory and, with ``ctx.cache_dir``, on disk (npz + JSON, no pickle), so
    re-checks and a resumed run never retrain. A run with an ``observer`` always trains: the
    observer must see every step. (Many settings at once, with batched GD:
    :func:`verify.engine.ensemble.realise_all`.)
    """
    return require_judgeable(realise_any(setting, ctx, observer))


def trajectory(setting: Setting, ctx: Context, observer: Observer | None = None
               ) -> TrainResult:
    """Train ``setting`` without certifying it: for claims about the optimiser's trajectory
    itself (SGD iterates are not stationary points, THEOREMS.md T5)."""
    res = train(setting.objective(ctx.device), setting.init(ctx.device),
                setting.train_config(ctx.max_seconds), observer)
    if res.timed_out:  # a diverged trajectory is a result; a truncated one is not
        raise NotJudgeable(res.stop_reason)
    return res


def default_device(name: str) -> str:
    """Resolve ``auto`` to cuda when present, else cpu; check an explicit choice."""
    require(name in ("auto", "cpu", "cuda"), "device", name, "one of auto, cpu, cuda")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    require(name != "cuda" or torch.cuda.is_available(), "device", name,
            "cuda only when a CUDA GPU is present (none found); use cpu or auto")
    return name


# Memory a network will need (module doc).
PARAM_COPIES = 120
ACTIVATION_COPIES = 6
BYTES = 8  # float64


def estimate_bytes(setting: Any) -> int:
    """Upper estimate of the memory one network of ``setting`` needs (module docstring)."""
    arch = setting.architecture()
    P = arch.n_params()
    n = setting.n
    widths = arch.widths
    numbers = PARAM_COPIES * P + n * (widths[0] + widths[-1])
    numbers += ACTIVATION_COPIES * n * sum(widths)
    if P <= max(EXACT_HESSIAN_LIMIT, DENSE_NEWTON):
        numbers += 3 * P * P
    return BYTES * numbers


def available_bytes(device: str = "cpu") -> int | None:
    """Memory this process could still get on ``device`` (None when unknown)."""
    if device.startswith("cuda"):
        try:
            return int(torch.cuda.mem_get_info()[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def require_fits(settings: Iterable[Any], device: str, name: str, value: object) -> None:
    """UsageError naming ``name``=``value`` when the largest network of ``settings`` (each a
    Setting, or anything with ``settings()``, e.g. a sweep) would not fit in the memory of
    ``device``."""
    flat: list[Any] = []
    for s in settings:
        inner = getattr(s, "settings", None)
        flat.extend(inner() if callable(inner) else [s])
    sized = [s for s in flat if hasattr(s, "architecture") and hasattr(s, "n")]
    if not sized:
        return
    need = max(estimate_bytes(s) for s in sized)
    have = available_bytes(device)
    if have is not None and need > have:
        raise UsageError(name, value, f"a size that fits in memory: one network needs about "
                         f"{_gib(need)}, {_gib(have)} is available on {device}")
