"""Hostile input: every bad value gets exit code 2 (CLI) or a typed UsageError (API), one
line naming the value and what is allowed, no traceback, and no existing result damaged."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from verify import cli
from verify.engine.setting import Setting
from verify.engine.train import TrainConfig, train
from verify.errors import UsageError
from verify.nets.data import Dataset
from verify.nets.dense import Architecture
from verify.nets.network import init_params
from verify.nets.objective import Objective
from verify.run import rundir

API_BAD = [
    ({"lam": -0.1}, "lam"), ({"lam": math.nan}, "lam"), ({"lam": math.inf}, "lam"),
    ({"lam": "0.1"}, "lam"), ({"lam": True}, "lam"), ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"), ({"lr": math.nan}, "lr"), ({"widths": (4, 0, 2)}, "width"),
    ({"widths": (4,)}, "depth"), ({"widths": (4, 2.5, 2)}, "width"),
    ({"widths": "abc"}, "widths"), ({"widths": (4, True, 2)}, "width"),
    ({"n": 0}, "n"), ({"n": -3}, "n"), ({"n": 2.0}, "n"), ({"steps": -1}, "steps"),
    ({"seed": -1}, "seed"), ({"activation": "gelu"}, "activation"),
    ({"data": "imagenet"}, "data"), ({"loss": "hinge"}, "loss"),
    ({"optimizer": "lion"}, "optimizer"), ({"init_scale": 0.0}, "init_scale"),
]


@pytest.mark.parametrize(("kw", "name"), API_BAD, ids=[str(k) for k, _ in API_BAD])
def test_api_refuses_bad_settings(kw: dict, name: str) -> None:
    base = {"widths": (4, 5, 2), "n": 8}
    with pytest.raises(UsageError) as err:
        Setting(**{**base, **kw})
    assert name in str(err.value) and "allowed" in str(err.value)
    assert "\n" not in str(err.value)


def test_api_refuses_bad_data_combinations() -> None:
    with pytest.raises(UsageError, match="n=2"):
        Setting(widths=(4, 5, 2), data="whitened", n=2).dataset()
    with pytest.raises(UsageError, match="loss for teacher data"):
        Setting(widths=(4, 5, 2), data="teacher", loss="ce").dataset()
    with pytest.raises(UsageError, match="d_out"):
        Setting(widths=(4, 5, 2), loss="logistic").dataset()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_data_is_refused_before_training(bad: float) -> None:
    X = torch.randn(6, 3, dtype=torch.float64)
    X[2, 1] = bad
    data = Dataset(X, torch.zeros(6, 2, dtype=torch.float64), "squared", "user data")
    arch = Architecture((3, 4, 2), "relu")
    with pytest.raises(UsageError, match="non-finite"):
        train(Objective(arch, data, 0.01), init_params(arch, 0), TrainConfig(steps=3))
    Y = torch.zeros(6, 2, dtype=torch.float64)
    Y[0, 0] = bad
    data = Dataset(torch.randn(6, 3, dtype=torch.float64), Y, "squared", "user data")
    with pytest.raises(UsageError, match="targets"):
        train(Objective(arch, data, 0.01), init_params(arch, 0), TrainConfig(steps=3))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["run", "--theorem", "T1", "--examples", "2", "--workers", "1",
                     "--out", str(out)]) == 0
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != rundir.LOCK}


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str], named: str) -> None:
    assert cli.main(args) == 2
    text = capsys.readouterr().err
    err = [ln for ln in text.splitlines() if "error" in ln.lower()]
    assert len(err) == 1 and named in err[0], text
    assert err[0].startswith("verify: error: ") and "allowed" in err[0], err


def test_bad_commands_leave_an_existing_run_intact(finished_run: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(finished_run)
    out = str(finished_run)
    cases = [
        (["run", "--theorem", "T0", "--out", out], "different run"),
        (["run", "--theorem", "T1", "--examples", "3", "--out", out], "different run"),
        (["run", "--theorem", "T1", "--tau", "-1", "--out", out], "--tau"),
        (["run", "--theorem", "TX", "--out", out], "TX"),
        (["regress", out, "--baseline", out + "/nope.json"], "nope.json"),
        (["report", out + "/missing"], "missing"),
    ]
    for args, named in cases:
        _one_line_exit_2(args, capsys, named)
    assert _snapshot(finished_run) == before


@pytest.mark.parametrize("damage", ["truncated", "not json", "wrong schema", "a list"])
def test_damaged_results_file_is_refused(finished_run: Path, tmp_path: Path, damage: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    path = copy / "results.json"
    text = path.read_text()
    path.write_text({"truncated": text[: len(text) // 2], "not json": "hello",
                     "wrong schema": json.dumps({**json.loads(text), "schema": 99}),
                     "a list": "[]"}[damage])
    before = _snapshot(copy)
    _one_line_exit_2(["report", str(copy)], capsys, "results")
    _one_line_exit_2(["regress", str(copy), "--accept", "--baseline",
                      str(tmp_path / "b.json")], capsys, "results")
    assert _snapshot(copy) == before and not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("damage", ["manifest garbage", "manifest schema", "record garbage"])
def test_damaged_store_is_refused_on_resume(finished_run: Path, tmp_path: Path, damage: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    if damage == "manifest garbage":
        (copy / rundir.MANIFEST).write_text("{not json")
    elif damage == "manifest schema":
        (copy / rundir.MANIFEST).write_text(json.dumps({"schema": 99}))
    else:
        lines = (copy / rundir.RECORDS).read_text().splitlines()
        lines[0] = lines[0][: len(lines[0]) // 2]
        (copy / rundir.RECORDS).write_text("\n".join(lines) + "\n")
    before = _snapshot(copy)
    _one_line_exit_2(["run", "--theorem", "T1", "--examples", "2", "--workers", "1",
                      "--out", str(copy)], capsys, str(copy))
    assert _snapshot(copy) == before


def test_baseline_of_another_schema_is_refused(finished_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"schema": 0, "theorems": {}}))
    _one_line_exit_2(["regress", str(finished_run), "--baseline", str(base)], capsys,
                     "baseline schema")
    base.write_text("[1, 2")
    _one_line_exit_2(["regress", str(finished_run), "--baseline", str(base)], capsys,
                     str(base))
