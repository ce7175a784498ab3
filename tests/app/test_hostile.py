"""Hostile input: every bad value gets exit code 2 (CLI) or a typed UsageError (API), one
line naming the value and what is allowed, no traceback, and no existing result damaged."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from verify import cli
from verify.engine.result import TrainConfig
from verify.engine.setting import Setting
from verify.engine.train import train
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
    # every field is judged at construction (a list, a bool, a huge value crash later)
    ({"widths": [4, 5, 2]}, "widths"), ({"n": True}, "n"), ({"steps": True}, "steps"),
    ({"seed": 2**40}, "seed"), ({"steps": 10**12}, "steps"), ({"widths": (4, 2**40, 2)}, "widths"),
    ({"bias": "yes"}, "bias"), ({"polish": 1}, "polish"), ({"residual": None}, "residual"),
    ({"reg_bias": "no"}, "reg_bias"), ({"dim": 0}, "dim"), ({"dim": True}, "dim"),
    ({"batch": True}, "batch"), ({"batch": 0}, "batch"), ({"conv": [4]}, "conv"),
    ({"conv": (0,)}, "conv"), ({"precision": "fp8"}, "precision"), ({"optimizer": 3}, "optimizer"),
    ({"activation": None}, "activation"), ({"init_scale": math.nan}, "init_scale"),
    ({"lr": True}, "lr"), ({"loss": ["squared"]}, "loss"), ({"data": 3}, "data"),
]


@pytest.mark.parametrize(("kw", "name"), API_BAD, ids=[str(k) for k, _ in API_BAD])
def test_api_refuses_bad_settings(kw: dict, name: str) -> None:
    base = {"widths": (4, 5, 2), "n": 8}
    with pytest.raises(UsageError) as err:
        Setting(**{**base, **kw})
    assert name in str(err.value) and "allowed" in str(err.value)
    # the right field is named: the error's own field, not just a word in its text
    assert err.value.name == {"width": "widths", "depth": "widths"}.get(name, name)
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


# --------------------------------------------------------------------------- every subcommand

def _exactly_one_line(code: int, err: str, named: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert named in lines[0] and "allowed" in lines[0], lines[0]
    assert lines[0].startswith(("verify: error: ", "verify.sweep: error: ")), lines[0]


W = ["--widths", "4,5,2"]
CLI_BAD = [
    # negative numbers are parsed as values, then judged
    (["run", "--tau", "-1e-6"], "-1e-6"), (["run", "--seed", "-1"], "-1"),
    (["run", "--tau", "-inf"], "-inf"), (["check", "T3", *W, "--lam", "-1e-6"], "-1e-6"),
    (["check", "T3", *W, "--lr", "-0.5"], "-0.5"), (["check", "T3", *W, "--n", "-5"], "-5"),
    # NaN, inf, huge, non-integers
    (["run", "--tau", "nan"], "nan"), (["run", "--tau", "1e-400"], "1e-400"),
    (["check", "T3", *W, "--lam", "1e400"], "1e400"), (["run", "--seed", "9" * 20], "9" * 20),
    (["check", "T3", *W, "--steps", "1e9"], "1e9"), (["check", "T3", *W, "--seed", str(2**40)],
                                                     str(2**40)),
    # bounded --examples and --workers, with the bound stated
    (["run", "--examples", "0"], "'0'"), (["run", "--examples", "1000000000"], "1000000000"),
    (["run", "--workers", "100000"], "100000"), (["run", "--workers", "0"], "'0'"),
    # malformed lists are refused, never read as something else
    (["check", "T3", "--widths", "8,,16"], "8,,16"), (["check", "T3", "--widths", "8,16,"],
                                                      "8,16,"),
    (["check", "T3", "--widths", ",8,16"], ",8,16"), (["check", "T3", "--widths", "4.5,2"],
                                                      "4.5,2"),
    (["check", "T3", "--widths", "99999999999,3"], "99999999999,3"),
    (["check", "T3", "--widths", "192,3", "--data", "images", "--conv", "4,,8"], "4,,8"),
    # depth 1 refused up front where the claim compares layers; a theorem about pairs
    (["check", "T3", "--widths", "8,3"], "8,3"), (["check", "T0", "--widths", "8,3"], "8,3"),
    (["check", "T8", *W], "T8"),
    # memory estimated before anything is allocated, refused with the estimate
    (["check", "T3", "--widths", "100000,100000,3"], "GiB"),
    (["check", "T3", *W, "--n", "1000000000"], "GiB"),
    # argparse's own errors, reworded to name the value and what is allowed
    (["run", "--scale", "huge"], "huge"), (["run", "--frobnicate"], "--frobnicate"),
    (["run", "--tau"], "--tau"), (["check", "T3"], "--widths"), (["list", "extra"], "extra"),
    (["report"], "DIR"), (["check", "T3", *W, "--activation", "gelu"], "gelu"),
    (["run", "--out", ""], "--out"), (["run", "--out", "a\x00b"], "--out"),
    (["check", "T3", "--widths", "49,5,2", "--data", "mnist"], "mnist"),
    (["run", "--device", "cuda"] if not torch.cuda.is_available() else ["run", "--device",
                                                                        "tpu"], "cuda"),
]


@pytest.mark.parametrize(("args", "named"), CLI_BAD, ids=[" ".join(a) for a, _ in CLI_BAD])
def test_every_bad_value_is_one_line_exit_2(args: list[str], named: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if named == "cuda" and "tpu" in args:
        named = "tpu"
    args = [*args, "--out", str(tmp_path / "o")] if args[0] == "run" and "--out" not in args \
        else args
    _exactly_one_line(cli.main(args), capsys.readouterr().err, named)
    assert not (tmp_path / "o").exists()  # nothing written before the refusal


def test_depth_one_is_supported_where_the_claim_allows_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "T1", "--widths", "8,3", "--n", "12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "PASS"


def _freeze(d: Path, on: bool) -> bool:
    """Make ``d`` read-only (or writable again): chmod, or the immutable flag as root (whom
    permissions do not stop). False when neither is possible here."""
    if os.geteuid() != 0:
        d.chmod(0o555 if on else 0o755)
        return True
    return subprocess.run(["chattr", "+i" if on else "-i", str(d)], capture_output=True,
                          check=False).returncode == 0


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "ro"
    d.mkdir()
    if not _freeze(d, True):
        pytest.skip("running as root without chattr: no read-only folder to test with")
    yield d
    _freeze(d, False)


def test_read_only_places_are_one_line(finished_run: Path, read_only: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _exactly_one_line(cli.main(["run", "--theorem", "T1", "--out", str(read_only / "x")]),
                      capsys.readouterr().err, "writable")
    _exactly_one_line(cli.main(["regress", str(finished_run), "--accept", "--baseline",
                                str(read_only / "b.json")]), capsys.readouterr().err,
                      "b.json")
    _exactly_one_line(cli.main(["regress", str(finished_run), "--accept", "--baseline",
                                str(read_only)]), capsys.readouterr().err, "--baseline")
    copy = read_only.parent / "copy"
    shutil.copytree(finished_run, copy)
    (copy / "report.md").unlink()
    assert _freeze(copy, True)
    try:
        _exactly_one_line(cli.main(["report", str(copy)]), capsys.readouterr().err, str(copy))
    finally:
        _freeze(copy, False)


@pytest.mark.parametrize("shape", ["run is a list", "theorems a string", "examples a dict",
                                   "verdict a number", "parts a list"])
def test_json_of_the_wrong_shape(finished_run: Path, tmp_path: Path, shape: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    data = json.loads((copy / "results.json").read_text())
    t = data["theorems"][0]
    if shape == "run is a list":
        data["run"] = []
    elif shape == "theorems a string":
        data["theorems"] = "T1"
    elif shape == "examples a dict":
        t["examples"] = {}
    elif shape == "verdict a number":
        t["examples"][0]["verdict"] = 3
    else:
        t["examples"][0].setdefault("details", {})["parts"] = [1]
    (copy / "results.json").write_text(json.dumps(data))
    # results are read through their typed records: a wrong shape is refused in one line
    # naming the file by report and regress alike, unless the part is only decoration
    # (details are free-form) — then both work as on the untouched run
    report = cli.main(["report", str(copy)])
    code = cli.main(["regress", str(copy), "--accept", "--baseline", str(tmp_path / "b.json")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if shape == "parts a list":
        assert (report, code) == (cli.main(["report", str(finished_run)]), 0)
    else:
        assert (report, code) == (2, 2), err
        lines = err.strip().splitlines()
        assert len(lines) == 2 and all("results.json" in ln and "is not allowed" in ln
                                       for ln in lines), err
        assert not (tmp_path / "b.json").exists()


def test_sweep_refuses_bad_values_and_files(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from verify import sweep

    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, named in ((["--scale", "huge"], "huge"), (["--out", str(afile / "x")], "afile"),
                        (["--bogus"], "--bogus"), (["--scale"], "--scale"),
                        (["--out", ""], "--out")):
        _exactly_one_line(sweep.main(args), capsys.readouterr().err, named)
    bad = tmp_path / "bad" / "quick"
    bad.mkdir(parents=True)
    (bad / "sweep.jsonl").write_text('[1, 2]\n{"key": "x"}\n')
    before = (bad / "sweep.jsonl").read_bytes()
    _exactly_one_line(sweep.main(["--out", str(tmp_path / "bad")]), capsys.readouterr().err,
                      "line 1")
    assert (bad / "sweep.jsonl").read_bytes() == before
