"""A user's model in functional form: nn.Sequential, state_dict and files give the same
network as the module itself; what the harness cannot represent is refused with one line
naming the layer; files are read without unpickling objects; the CLI end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.audit.helpers import sgd_trained
from verify import cli
from verify.audit import Architecture, ConvNet, audit, load_weights
from verify.audit.convert import from_sequential
from verify.errors import UsageError
from verify.nets import data as D
from verify.nets.network import forward
from verify.tolerances import gamma

DIGITS = D.digits(200, 0, "ce")


def _mlp(bias: bool = False, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(0)
    return sgd_trained(nn.Sequential(nn.Linear(64, 16, bias=bias), act(),
                                     nn.Linear(16, 10, bias=bias)), DIGITS, steps=10)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Softplus, nn.Identity])
def test_sequential_is_the_same_function(bias: bool, act: type[nn.Module]) -> None:
    model = _mlp(bias, act).double()
    m = from_sequential(model)
    name = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Softplus: "softplus",
            nn.Identity: "identity"}[act]
    assert m.arch == Architecture((64, 16, 10), name, bias) and m.names == ("0", "2")
    out, ref = forward(m.arch, m.params, DIGITS.X), model(DIGITS.X).detach()
    # the same products in another order: rounding of sums of 64 and 16 terms
    assert float((out - ref).abs().max()) <= gamma(64 + 16 + 2) * float(ref.abs().max() + 1)


def test_state_dict_and_files_audit_like_the_module(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = _mlp(bias=True)
    ref = audit(model, DIGITS.X, DIGITS.Y, lam=1e-3, theorems=["T1"])
    arch = Architecture((64, 16, 10), "relu", bias=True)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    skeleton = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    for source, desc in ((model.state_dict(), arch), (tmp_path / "m.pt", arch),
                         (tmp_path / "m.safetensors", arch), (tmp_path / "m.pt", skeleton)):
        a = audit(source, DIGITS.X, DIGITS.Y, lam=1e-3, arch=desc, theorems=["T1"])
        assert a.certificate.residuals == ref.certificate.residuals
        assert a.layers.drop(columns=["name"]).equals(ref.layers.drop(columns=["name"]))
        assert a.model.dtype == "float32"
    # safetensors stores keys sorted as strings: "10.weight" < "2.weight"; layers are
    # ordered by the prefixes' numbers
    deep = nn.Sequential(*[nn.Linear(4, 4, bias=False) if i % 2 == 0 else nn.ReLU()
                           for i in range(11)])
    save_file(deep.state_dict(), str(tmp_path / "deep.safetensors"))
    m = audit(tmp_path / "deep.safetensors", torch.randn(5, 4), torch.zeros(5, dtype=torch.long),
              lam=1e-2, arch=Architecture((4,) * 7, "relu"), theorems=[]).model
    assert m.names == ("0", "2", "4", "6", "8", "10")
    assert all(torch.equal(p, deep[2 * k].weight.double()) for k, p in enumerate(m.params))


def test_files_are_read_without_unpickling_objects(tmp_path: Path) -> None:
    model = _mlp()
    torch.save(model, tmp_path / "whole.pt")  # a pickled nn.Module
    pickled = re.escape("pickled torch.nn.modules.container.Sequential")
    with pytest.raises(UsageError, match=pickled):
        load_weights(tmp_path / "whole.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UsageError, match="not a torch file"):
        load_weights(tmp_path / "junk.pt")
    torch.save({"lr": 0.1}, tmp_path / "cfg.pt")  # loads with weights_only, holds no tensor
    with pytest.raises(UsageError, match="mapping of names to tensors"):
        load_weights(tmp_path / "cfg.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(UsageError, match="readable safetensors"):
        load_weights(tmp_path / "bad.safetensors")
    with pytest.raises(UsageError, match="an existing file"):
        load_weights(tmp_path / "missing.pt")


def test_state_dict_that_does_not_fit_the_architecture_is_refused() -> None:
    sd = _mlp(bias=True).state_dict()
    cases = [
        (Architecture((64, 32, 10), "relu", bias=True), "'0.weight'=(16, 64)"),
        (Architecture((64, 16, 10), "relu", bias=False), "bias"),
        (Architecture((64, 16, 16, 10), "relu", bias=True), "3 weight layers"),
        (ConvNet((1, 8, 8), (4,), 10, "softplus"), "shape"),
        (nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 9)), "size mismatch"),
    ]
    for arch, words in cases:
        with pytest.raises(UsageError, match=re.escape(words)) as e:
            audit(sd, DIGITS.X, DIGITS.Y, lam=1e-3, arch=arch)
        assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="running_mean"):
        audit({**sd, "1.running_mean": torch.zeros(16)}, DIGITS.X, DIGITS.Y, lam=1e-3,
              arch=Architecture((64, 16, 10), "relu", bias=True))


def _conv(**kw: object) -> nn.Conv2d:
    args = {"kernel_size": 3, "stride": 2, "padding": 1, "bias": False, **kw}
    return nn.Conv2d(3, 4, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("layers", "words"), [
    ([nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)], "layer 1 (BatchNorm1d)"),
    ([nn.Linear(4, 4), nn.Dropout(0.1), nn.ReLU(), nn.Linear(4, 2)], "layer 1 (Dropout)"),
    ([nn.Linear(4, 4), nn.LeakyReLU(), nn.Linear(4, 2)], "negative_slope=0.01"),
    ([nn.Linear(4, 4), nn.Softplus(beta=2), nn.Linear(4, 2)], "beta=2"),
    ([nn.Linear(4, 2), nn.ReLU()], "after the last layer"),
    ([nn.ReLU(), nn.Linear(4, 2)], "before the first weight layer"),
    ([nn.Linear(4, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)], "one activation between"),
    ([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)], "one σ"),
    ([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2)], "one σ"),
    ([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)], "layer 2 (Linear)"),
    ([_conv(kernel_size=5), nn.Softplus(), nn.Flatten(), nn.Linear(36, 2, bias=False)],
     "kernel_size=(5, 5)"),
    ([_conv(stride=1), nn.Softplus(), nn.Flatten(), nn.Linear(64, 2, bias=False)],
     "stride=(1, 1)"),
    ([_conv(bias=True), nn.Softplus(), nn.Flatten(), nn.Linear(64, 2, bias=False)],
     "layer 0 (Conv2d)"),
    ([_conv(), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2, bias=False)], "no kink handling"),
    ([_conv(), nn.Softplus(), nn.Flatten(), nn.Linear(64, 8, bias=False), nn.Softplus(),
      nn.Linear(8, 2, bias=False)], "one Linear head"),
    ([_conv(), nn.Softplus(), nn.Flatten(), nn.Linear(64, 2)], "bias-free head"),
])
def test_unsupported_layers_are_refused_with_one_line(layers: list[nn.Module],
                                                      words: str) -> None:
    with pytest.raises(UsageError) as e:
        from_sequential(nn.Sequential(*layers), image=(3, 8, 8))
    msg = str(e.value)
    assert words in msg and "\n" not in msg, msg


def test_cli_audits_a_file_and_refuses_a_pickle_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    model = _mlp()
    save_file(model.state_dict(), str(tmp_path / "mlp.safetensors"))
    out = tmp_path / "report"
    code = cli.main(["audit", str(tmp_path / "mlp.safetensors"), "--widths", "64,16,10",
                     "--activation", "relu", "--data", "digits", "--n", "200", "--lam", "1e-3",
                     "--loss", "ce", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "certificate: not certified" in captured.out and "T3" in captured.out
    assert {p.name for p in out.iterdir()} == {"audit.md", "audit.html", "audit.json"}
    torch.save(model, tmp_path / "whole.pt")
    code = cli.main(["audit", str(tmp_path / "whole.pt"), "--widths", "64,16,10", "--lam",
                     "1e-3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pickled" in err, err
    code = cli.main(["audit", str(tmp_path / "mlp.safetensors"), "--widths", "64,32,10",
                     "--lam", "1e-3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'0.weight'" in err, err


def test_harness_data_defaults_to_every_sample_of_the_classes_kept() -> None:
    from verify.audit.data import harness_dataset

    assert harness_dataset("digits", (64, 32, 10), "ce").n == 1797
    logistic = harness_dataset("digits", (64, 8, 1), "logistic")
    assert logistic.n == 360 and set(logistic.Y.tolist()) == {-1.0, 1.0}  # classes 0 and 1
    assert harness_dataset("clusters", (5, 3), "ce", n=7).n == 7
