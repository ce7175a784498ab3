"""A user's model in the harness's functional form (:mod:`verify.nets`).

Three ways in, one way out (:class:`Model`: an architecture, its float64 parameter tuple and
the names of its weight layers):

* an ``nn.Sequential`` of ``Linear`` and ``Conv2d`` layers and activation modules
  (:func:`from_sequential`);
* a ``state_dict`` plus an architecture — a :class:`~verify.nets.dense.Architecture`, a
  :class:`~verify.nets.conv2d.ConvNet`, or the ``nn.Sequential`` it was saved from
  (:func:`from_state_dict`);
* a file: safetensors, or a ``torch.save(model.state_dict())`` read with
  ``torch.load(weights_only=True)`` only — no pickle of arbitrary objects (:func:`load_weights`).

What the harness cannot represent is refused with one line naming the layer and what is
supported: an MLP f(x) = W_L σ(… σ(W_1 x + b_1) …) + b_L with one σ after every hidden layer
and biases on every layer or on none, or a conv net of 3×3 stride-2 padding-1 bias-free
convolutions, each followed by σ, then one bias-free dense head (:mod:`verify.nets.conv2d`).
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from verify.errors import UsageError, require
from verify.nets.activations import LEAKY_SLOPE, SMOOTH, Params
from verify.nets.conv2d import KERNEL, PADDING, STRIDE, ConvNet
from verify.nets.dense import Architecture
from verify.nets.network import Network

SUPPORTED = ("Linear (with or without bias), Conv2d(kernel 3, stride 2, padding 1, bias=False), "
             f"ReLU, LeakyReLU(negative_slope={LEAKY_SLOPE:g}), Tanh, Softplus(beta=1), "
             "Identity, Flatten")


@dataclass(frozen=True)
class Model:
    """A network in functional form: ``params`` = the weights W_1..W_L (a conv kernel
    c_out × c_in × 3 × 3), then the biases when ``arch.bias``; float64 on the CPU."""

    arch: Network
    params: Params
    names: tuple[str, ...]  # one per weight matrix: the module's name in the Sequential
    kinds: tuple[str, ...]  # "Linear" or "Conv2d"
    dtype: str  # the dtype the weights came in (they are audited in float64)


def _refuse(where: str, what: object, why: str) -> UsageError:
    return UsageError(where, what, f"{why}; supported: {SUPPORTED}")


def _activation(name: str, m: nn.Module) -> str | None:
    """The harness's name for the activation module ``m``; None for Identity (a no-op)."""
    if isinstance(m, nn.Identity):
        return None
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.LeakyReLU):
        if m.negative_slope != LEAKY_SLOPE:
            raise _refuse(f"layer {name} (LeakyReLU)", f"negative_slope={m.negative_slope:g}",
                          f"the harness's leaky ReLU has slope {LEAKY_SLOPE:g}")
        return "leaky_relu"
    if isinstance(m, nn.Tanh):
        return "tanh"
    if isinstance(m, nn.Softplus):
        if m.beta != 1 or m.threshold != 20:
            raise _refuse(f"layer {name} (Softplus)", f"beta={m.beta:g}, threshold={m.threshold:g}",
                          "the harness's softplus is Softplus(beta=1, threshold=20)")
        return "softplus"
    raise _refuse(f"layer {name} ({type(m).__name__})", m, "not a layer the harness represents")


def _check_conv(name: str, m: nn.Conv2d) -> None:
    want = {"kernel_size": (KERNEL, KERNEL), "stride": (STRIDE, STRIDE),
            "padding": (PADDING, PADDING), "dilation": (1, 1), "groups": 1,
            "padding_mode": "zeros"}
    for attr, ok in want.items():
        if getattr(m, attr) != ok:
            raise _refuse(f"layer {name} (Conv2d)", f"{attr}={getattr(m, attr)}",
                          f"the harness's conv layers have {attr}={ok}")
    if m.bias is not None:
        raise _refuse(f"layer {name} (Conv2d)", "bias=True", "conv layers without bias")


def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The modules of a (nested) Sequential, in order, with their dotted names."""
    out: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(m, nn.Sequential):
            out += _leaves(m, f"{full}.")
        else:
            out.append((full, m))
    return out


def _dtype_name(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _float64(t: Tensor, where: str) -> Tensor:
    out = t.detach().to("cpu", torch.float64).clone()
    bad = int((~torch.isfinite(out)).sum())
    require(bad == 0, where, f"{bad} non-finite entries", "finite weights (no NaN or inf)")
    return out


def from_sequential(model: nn.Module, image: tuple[int, int, int] | None = None) -> Model:
    """The :class:`Model` of an ``nn.Sequential`` (nested Sequentials are flattened).

    ``image`` = (C, H, W) of a conv net's input (default: square, from the first conv's
    input channels and the head's width is checked against it).
    """
    require(isinstance(model, nn.Sequential), "model", type(model).__name__,
            "an nn.Sequential (or a state_dict or safetensors file with an architecture)")
    # nn.Linear / nn.Conv2d; Any because torch types their attributes as Tensor | Module
    layers: list[tuple[str, Any]] = []
    slots: list[list[str]] = [[]]  # activations after each weight layer (slots[0]: before)
    flat_at: list[int] = []  # how many weight layers came before each Flatten
    for name, m in _leaves(model):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if isinstance(m, nn.Conv2d):
                _check_conv(name, m)
            layers.append((name, m))
            slots.append([])
        elif isinstance(m, nn.Flatten):
            require(m.start_dim == 1 and m.end_dim == -1, f"layer {name} (Flatten)",
                    f"start_dim={m.start_dim}, end_dim={m.end_dim}", "Flatten() of dims 1..−1")
            flat_at.append(len(layers))
        else:
            act = _activation(name, m)
            if act is not None:
                slots[-1].append(f"{act}@{name}")
    require(bool(layers), "model", "no Linear or Conv2d layer", "at least one weight layer")
    if slots[0]:
        raise _refuse(f"layer {slots[0][0].split('@')[1]}", slots[0][0].split("@")[0],
                      "an activation before the first weight layer")
    if slots[-1]:
        raise _refuse(f"layer {slots[-1][0].split('@')[1]}", slots[-1][0].split("@")[0],
                      "an activation after the last layer (f ends linear; the loss applies "
                      "softmax or the logistic link itself)")
    acts = []
    for k, slot in enumerate(slots[1:-1]):
        if len(slot) > 1:
            raise _refuse(f"layers {', '.join(s.split('@')[1] for s in slot)}",
                          " then ".join(s.split("@")[0] for s in slot),
                          "one activation between two weight layers")
        acts.append(slot[0].split("@")[0] if slot else "identity")
        if acts[-1] != acts[0]:
            raise _refuse(f"after layer {layers[k][0]}", acts[-1],
                          f"one σ for the whole net (σ = {acts[0]} after layer {layers[0][0]})")
    activation = acts[0] if acts else "identity"
    convs = [n for n, m in layers if isinstance(m, nn.Conv2d)]
    if convs:
        return _conv_model(layers, activation, flat_at, image)
    for at in flat_at:
        require(at == 0, "Flatten", f"after layer {layers[at - 1][0]}",
                "Flatten only before the first Linear layer (an MLP on images) or between "
                "the conv layers and the dense head")
    biased = [m.bias is not None for _, m in layers]
    for (name, _), has_bias in zip(layers, biased, strict=True):
        if has_bias != biased[0]:
            raise _refuse(f"layer {name} (Linear)", f"bias={has_bias}",
                          f"biases on every layer or on none (layer {layers[0][0]} has "
                          f"bias={biased[0]})")
    for (n0, a), (n1, b) in itertools.pairwise(layers):
        require(a.out_features == b.in_features, f"layer {n1} (Linear)",
                f"in_features={b.in_features}", f"out_features of layer {n0} = {a.out_features}")
    widths = (layers[0][1].in_features, *(m.out_features for _, m in layers))
    arch = Architecture(tuple(int(w) for w in widths), activation, bias=biased[0])
    W = tuple(_float64(m.weight, f"weights of layer {n}") for n, m in layers)
    B = tuple(_float64(m.bias, f"bias of layer {n}") for n, m in layers) if biased[0] else ()
    return Model(arch, W + B, tuple(n for n, _ in layers), tuple("Linear" for _ in layers),
                 _dtype_name(layers[0][1].weight))


def _conv_model(layers: list[tuple[str, Any]], activation: str, flat_at: list[int],
                image: tuple[int, int, int] | None) -> Model:
    """The conv-net case of :func:`from_sequential`: convs, then Flatten, then one head."""
    m_conv = sum(isinstance(m, nn.Conv2d) for _, m in layers)
    for k, (name, m) in enumerate(layers):
        if (k < m_conv) != isinstance(m, nn.Conv2d):
            raise _refuse(f"layer {name} ({type(m).__name__})", "this position",
                          "a conv net is Conv2d layers, then Flatten, then one Linear head")
    head_name, head = layers[-1]
    require(len(layers) == m_conv + 1, f"layer {layers[-1][0]} (Linear)",
            f"{len(layers) - m_conv} Linear layers after the convolutions",
            "one Linear head after the conv layers")
    require(flat_at == [m_conv], "Flatten", f"after weight layers {flat_at}",
            "one Flatten, between the last Conv2d and the Linear head")
    require(head.bias is None, f"layer {head_name} (Linear)", "bias=True",
            "a bias-free head in a conv net")
    require(activation in SMOOTH, f"activation of the conv net (after layer {layers[0][0]})",
            activation, f"one of {', '.join(SMOOTH)} (no kink handling for conv layers)")
    c0 = int(layers[0][1].in_channels)
    if image is None:
        # square images: the head's width fixes the side through the conv strides
        image = _square_image(c0, [int(m.out_channels) for _, m in layers[:-1]],
                              int(head.in_features), head_name)
    c, h, w = (int(v) for v in image)
    arch = ConvNet((c, h, w), tuple(int(m.out_channels)
                                                       for _, m in layers[:-1]),
                   int(head.out_features), activation)
    for (name, m), shape in zip(layers, arch.shapes(), strict=True):
        require(tuple(m.weight.shape) == shape, f"layer {name} ({type(m).__name__})",
                tuple(m.weight.shape), f"shape {shape} for input images {image}")
    params = tuple(_float64(m.weight, f"weights of layer {n}") for n, m in layers)
    return Model(arch, params, tuple(n for n, _ in layers),
                 tuple(type(m).__name__ for _, m in layers), _dtype_name(head.weight))


def _square_image(c0: int, channels: list[int], head_in: int, head_name: str
                  ) -> tuple[int, int, int]:
    for side in range(1, 1025):
        if ConvNet((c0, side, side), tuple(channels), 1).widths[-2] == head_in:
            return (c0, side, side)
    raise UsageError(f"layer {head_name} (Linear)", f"in_features={head_in}",
                     "c_m·H_m·W_m of a square input image; pass image=(C, H, W)")


def _natural(key: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in key.split("."))


def from_state_dict(state: Mapping[str, Tensor], arch: Network | nn.Module) -> Model:
    """The :class:`Model` of ``state`` (keys ``<prefix>.weight`` / ``<prefix>.bias``, layers
    in the natural order of their prefixes, as ``nn.Sequential`` names them) for ``arch``:
    an Architecture or ConvNet, or the ``nn.Sequential`` the state was saved from."""
    if isinstance(arch, nn.Module):
        skeleton = copy.deepcopy(arch)
        try:
            skeleton.load_state_dict(dict(state), strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise UsageError("state_dict", "; ".join(lines[1:]) or lines[0],
                             "the keys and shapes of the given nn.Sequential") from None
        return from_sequential(skeleton)
    require(isinstance(arch, (Architecture, ConvNet)), "arch", type(arch).__name__,
            "an Architecture, a ConvNet or an nn.Sequential")
    layers: dict[str, dict[str, Tensor]] = {}
    for key, t in state.items():
        prefix, _, leaf = key.rpartition(".")
        require(leaf in ("weight", "bias") and isinstance(t, Tensor), "state_dict key", key,
                "weights and biases of Linear/Conv2d layers only (<name>.weight, <name>.bias)")
        layers.setdefault(prefix, {})[leaf] = t
    order = sorted(layers, key=_natural)
    require(len(order) == arch.depth, "state_dict", f"{len(order)} layers ({', '.join(order)})",
            f"{arch.depth} weight layers for {_describe(arch)}")
    for prefix, shape in zip(order, arch.shapes()[: arch.depth], strict=True):
        got = layers[prefix].get("weight")
        require(got is not None, "state_dict", f"'{prefix}.bias' without '{prefix}.weight'",
                "a weight for every layer")
        assert got is not None  # refused just above; tells the type checker
        require(tuple(got.shape) == shape, f"state_dict '{prefix}.weight'", tuple(got.shape),
                f"shape {shape} for {_describe(arch)}")
        has_bias = "bias" in layers[prefix]
        require(has_bias == arch.bias, f"state_dict '{prefix}'",
                "a bias" if has_bias else "no bias",
                f"{'biases on every layer' if arch.bias else 'no biases'} as the architecture "
                "says (Architecture(..., bias=...))")
        if has_bias:
            require(tuple(layers[prefix]["bias"].shape) == (shape[0],),
                    f"state_dict '{prefix}.bias'", tuple(layers[prefix]["bias"].shape),
                    f"shape ({shape[0]},)")
    W = tuple(_float64(layers[p]["weight"], f"'{p}.weight'") for p in order)
    B = tuple(_float64(layers[p]["bias"], f"'{p}.bias'") for p in order) if arch.bias else ()
    kinds = tuple("Conv2d" if layers[p]["weight"].ndim == 4 else "Linear" for p in order)
    return Model(arch, W + B, tuple(order), kinds, _dtype_name(layers[order[0]]["weight"]))


def _describe(arch: Network) -> str:
    if isinstance(arch, ConvNet):
        return (f"a conv net {arch.image} → {'→'.join(map(str, arch.channels))} → "
                f"{arch.d_out} ({arch.activation})")
    return f"a {'-'.join(map(str, arch.widths))} {arch.activation} MLP"


def describe(arch: Network) -> str:
    """One phrase for ``arch``, e.g. "a 64-32-10 relu MLP"."""
    return _describe(arch) + (" with biases" if arch.bias else "")


FILE_ALLOWED = ("a .safetensors file, or a state_dict saved with "
                "torch.save(model.state_dict(), path) (read with torch.load(weights_only=True))")


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file or of a torch ``state_dict`` file, never unpickling
    anything but tensors (``torch.load(weights_only=True)``)."""
    p = Path(path)
    require(p.is_file(), "FILE", str(p), f"an existing file: {FILE_ALLOWED}")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise UsageError("FILE", str(p), "safetensors files need the audit extra: "
                             "pip install 'lowrank-verify[audit]'") from None
        try:
            return dict(load_file(str(p)))
        except Exception as exc:  # the reader's own error, on one line
            raise UsageError("FILE", str(p), f"a readable safetensors file "
                             f"({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:  # torch's allow-list refused a class: a pickled object, not a tensor
            raise UsageError("FILE", str(p), f"{FILE_ALLOWED}; it holds a pickled "
                             f"{found.group(1)} (a whole model?), and objects other than "
                             "tensors are never unpickled here") from None
        raise UsageError("FILE", str(p), f"{FILE_ALLOWED}; it is not a torch file "
                         f"({_one_line(exc)})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise UsageError("FILE", str(p), f"{FILE_ALLOWED}; torch.load could not read it "
                         f"({type(exc).__name__}: {_one_line(exc)})") from None
    ok = isinstance(obj, Mapping) and all(isinstance(k, str) and isinstance(v, Tensor)
                                          for k, v in obj.items())
    require(ok, "FILE", f"{p} (a {type(obj).__name__})", f"a mapping of names to tensors: "
            f"{FILE_ALLOWED}")
    return dict(obj)


def _one_line(exc: BaseException) -> str:
    """The first sentence of an error message, without terminal escapes, on one line."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
    text = text.split(". ")[0]
    return text if len(text) <= 160 else text[:157] + "…"


def parameter_count(model: Model) -> int:
    return sum(math.prod(p.shape) for p in model.params)
