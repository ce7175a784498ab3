"""Tests of the large scale's pieces: the conv net against a brute-force patch loop, the
synthetic images, mixed-precision training with its float64 re-evaluation, and the conv
net under T2/T3 (homogeneous vs not)."""

from __future__ import annotations

import itertools

import pytest
import torch

from theorems import t2_alignment, t3_norms
from verify.claims.verdict import Verdict
from verify.engine.result import TrainConfig
from verify.engine.setting import Context, Setting, realise
from verify.engine.train import at_precision, matmul_precision, train
from verify.errors import UsageError
from verify.nets.conv2d import KERNEL, PADDING, STRIDE, ConvNet
from verify.nets.data import image_side, images, make
from verify.nets.network import forward, init_params
from verify.nets.objective import Objective

F64 = torch.float64


def _brute_conv(x: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """One image (C, H, W), kernel (c_out, C, k, k): every output pixel as a dot product of
    the kernel with its zero-padded k×k patch."""
    C, H, W = x.shape
    pad = torch.zeros(C, H + 2 * PADDING, W + 2 * PADDING, dtype=x.dtype)
    pad[:, PADDING:PADDING + H, PADDING:PADDING + W] = x
    Ho, Wo = (H + 2 * PADDING - KERNEL) // STRIDE + 1, (W + 2 * PADDING - KERNEL) // STRIDE + 1
    out = torch.zeros(K.shape[0], Ho, Wo, dtype=x.dtype)
    for o, i, j in itertools.product(range(K.shape[0]), range(Ho), range(Wo)):
        patch = pad[:, i * STRIDE:i * STRIDE + KERNEL, j * STRIDE:j * STRIDE + KERNEL]
        out[o, i, j] = (patch * K[o]).sum()
    return out


@pytest.mark.parametrize("activation", ["identity", "tanh", "softplus"])
def test_forward_matches_patch_loop(activation: str) -> None:
    net = ConvNet((3, 5, 5), (2, 3), 4, activation)
    params = net.init(seed=3)
    X = torch.randn(2, 75, dtype=F64, generator=torch.Generator().manual_seed(0))
    act = {"identity": lambda z: z, "tanh": torch.tanh,
           "softplus": torch.nn.functional.softplus}[activation]
    for i in range(2):
        h = X[i].reshape(3, 5, 5)
        for K in params[:-1]:
            h = act(_brute_conv(h, K))
        ref = params[-1] @ h.reshape(-1)
        assert torch.allclose(forward(net, params, X)[i], ref, rtol=1e-12, atol=1e-12)


def test_shapes_widths_and_init() -> None:
    net = ConvNet((3, 32, 32), (16, 32), 10)
    assert net.widths == (3072, 16 * 16 * 16, 32 * 8 * 8, 10)
    assert net.shapes() == [(16, 3, 3, 3), (32, 16, 3, 3), (10, 2048)]
    assert net.depth == 3
    assert net.n_params() == 16 * 27 + 32 * 144 + 10 * 2048
    params = init_params(net, seed=1)
    assert [tuple(p.shape) for p in params] == net.shapes()
    assert all(p.dtype == F64 for p in params)
    assert torch.equal(params[0], init_params(net, seed=1)[0])


def test_identity_conv_net_is_homogeneous_in_every_layer() -> None:
    """Euler (T1) for each layer: ⟨θ_k, ∇_{θ_k}⟨c, f⟩⟩ = ⟨c, f⟩ when σ = identity."""
    net = ConvNet((3, 6, 6), (2, 4), 3, "identity")
    assert net.homogeneous and not ConvNet((3, 6, 6), (2,), 3, "tanh").homogeneous
    ps = tuple(p.requires_grad_(True) for p in net.init(seed=0))
    X = torch.randn(4, 108, dtype=F64, generator=torch.Generator().manual_seed(1))
    value = forward(net, ps, X).sum()
    grads = torch.autograd.grad(value, ps)
    v = float(value.detach())
    for p, g in zip(ps, grads, strict=True):
        assert abs(float((p.detach() * g).sum()) - v) <= 1e-12 * abs(v)


@pytest.mark.parametrize("kwargs, name", [
    ({"image": (3, 8), "channels": (2,), "d_out": 2}, "image"),
    ({"image": (3, 8, 8), "channels": (), "d_out": 2}, "conv channels"),
    ({"image": (3, 8, 8), "channels": (0,), "d_out": 2}, "conv channels"),
    ({"image": (3, 8, 8), "channels": (2,), "d_out": 2, "activation": "relu"},
     "activation of a conv net"),
])
def test_convnet_refuses_bad_shapes(kwargs: dict, name: str) -> None:
    with pytest.raises(UsageError) as err:
        ConvNet(**kwargs)
    assert err.value.name == name


def test_images_are_seeded_and_need_rgb_sizes() -> None:
    assert image_side(3072) == 32 and image_side(3 * 49) == 7
    assert image_side(3073) is None and image_side(64) is None
    a, b = images(20, 192, 4, seed=5), images(20, 192, 4, seed=5)
    assert torch.equal(a.X, b.X) and a.X.shape == (20, 192)
    assert sorted(set(a.labels.tolist())) == [0, 1, 2, 3]
    with pytest.raises(UsageError) as err:
        make("images", 10, 100, 3, 0, "ce")
    assert "3·S²" in str(err.value)


def test_setting_refuses_conv_on_non_image_widths() -> None:
    with pytest.raises(UsageError) as err:
        Setting(widths=(64, 8, 3), conv=(4,), data="images")
    assert err.value.name == "widths of a conv net"
    with pytest.raises(UsageError):
        Setting(widths=(192, 3), conv=(4,), data="images", precision="bfloat16")


def test_new_fields_keep_old_setting_json() -> None:
    """precision and conv are left out of the JSON (and the cache/baseline hash) at their
    defaults, so settings that predate them hash as before."""
    plain = Setting(widths=(4, 6, 3)).to_json()
    assert "precision" not in plain and "conv" not in plain
    conv = Setting(widths=(192, 3), conv=(4,), activation="identity", data="images",
                   precision="tf32").to_json()
    assert conv["precision"] == "tf32" and conv["conv"] == [4] and conv["depth"] == 2


def test_low_precision_phase_then_float64_polish_and_certificate() -> None:
    s = Setting(widths=(8, 16, 3), activation="softplus", lam=0.01, n=24, loss="ce",
                steps=100)
    obj = s.objective()
    cfg = TrainConfig(lr=0.05, steps=100, precision="float32")
    seen: list[torch.dtype] = []
    res = train(obj, s.init(), cfg, lambda t, ps: seen.append(ps[0].dtype))
    assert set(seen) == {torch.float32}  # the observer sees the low-precision iterates
    assert all(p.dtype == F64 for p in res.params)
    assert res.cost["precision"] == "float32" and res.cost["steps"] == 100
    assert res.cost["seconds_per_step"] > 0 and res.cost["peak_memory_bytes"] > 0
    # re-evaluated in float64 after the first phase, then polished in float64
    assert res.cost["residual_float64"] > res.trace_residual[-1]
    assert res.trace_residual[-1] < 1e-8


def test_float32_phase_differs_from_float64_only_by_rounding() -> None:
    s = Setting(widths=(6, 10, 2), activation="tanh", lam=0.01, n=16, steps=50)
    obj = s.objective()
    runs = [train(obj, s.init(), TrainConfig(lr=0.05, steps=50, polish=False, precision=p))
            for p in ("float64", "float32")]
    diff = max(float((a - b).abs().max()) for a, b in zip(runs[0].params, runs[1].params,
                                                            strict=True))
    assert 0 < diff < 1e-4


def test_precision_helpers_restore_state_and_keep_labels() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with matmul_precision("tf32"):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with matmul_precision("float32"):
        assert not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    s = Setting(widths=(4, 6, 3), loss="ce")
    lo, ps = at_precision(s.objective(), s.init(), "tf32")
    assert lo.data.X.dtype == torch.float32 and lo.data.Y.dtype == torch.long
    assert all(p.dtype == torch.float32 for p in ps)
    assert isinstance(lo, Objective)


def test_refuses_unknown_precision() -> None:
    with pytest.raises(UsageError) as err:
        TrainConfig(precision="fp8")
    assert err.value.name == "precision"


SMALL_CONV = dict(widths=(192, 3), conv=(4, 6), lam=0.01, n=24, data="images", loss="ce",
                  steps=100, precision="float32")


def test_conv_net_under_t2_and_t3() -> None:
    """T3 holds on a linear conv net (homogeneous) and fails on a softplus one, both
    certified in float64 after a float32 phase; T2 holds on both."""
    ctx = Context()
    lin = Setting(activation="identity", **SMALL_CONV)
    soft = Setting(activation="softplus", **SMALL_CONV)
    for s in (lin, soft):
        assert realise(s, ctx).certificate.certified
        assert t2_alignment.check(s, ctx).verdict == Verdict.PASS
    assert t3_norms.check(lin, ctx).verdict == Verdict.PASS
    assert t3_norms.check(soft, ctx).verdict == Verdict.FAIL


def test_large_scale_pins_wide_and_conv_networks() -> None:
    """--scale large adds the width-4096 MLPs and the 32×32×3 conv net to T2 and T3, with a
    TF32 first phase; the quick scale does not."""
    from verify.claims.scales import SCALES
    from verify.run.runner import plan

    tasks = plan([t2_alignment.THEOREM, t3_norms.THEOREM], SCALES["large"], 0, 0, 1e-6)
    pinned = [t.setting for t in tasks if t.kind == "example"]
    assert any(s.widths == (64, 4096, 10) for s in pinned)
    assert any(s.conv == (16, 32) and s.widths == (3072, 10) for s in pinned)
    assert all(s.precision == "tf32" for s in pinned if max(s.widths) >= 3072)
    quick = plan([t3_norms.THEOREM], SCALES["quick"], 0, 0, 1e-6)
    assert not any(max(t.setting.widths) >= 3072 for t in quick)


def test_wide_linear_mlp_certifies_in_float64_after_tf32() -> None:
    """End to end at width 4096 on the CPU (~15 s): the TF32 (= float32 here) phase leaves
    r ~ 1 in float64, the float64 polish certifies it, and T3 passes with the
    certificate-derived tolerance."""
    from verify.claims.strategies import wide_mlp

    s = wide_mlp("identity")
    ctx = Context()
    t = realise(s, ctx)
    assert t.certificate.certified and t.certificate.max_residual < 1e-9
    assert t.certificate.cost["precision"] == "tf32"
    assert t.certificate.cost["residual_float64"] > 1e3 * t.certificate.max_residual
    assert t3_norms.check(s, ctx).verdict == Verdict.PASS
