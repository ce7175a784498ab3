"""Usage errors of the command line (issue 15 item 4): several theorem ids after one
``--theorem``, "did you mean" for ids and named choices, the positional ID named as such,
and every usage error answered before torch is imported."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verify import cli

ROOT = Path(__file__).resolve().parents[2]


def _parse(argv: list[str]) -> argparse.Namespace:
    p = cli.build_parser()
    return p.parse_args(cli.join_negative_values(argv, cli.value_flags(p)))


@pytest.mark.parametrize("argv", [
    ["run", "--theorem", "T2", "T3"],
    ["run", "--theorem", "T2", "--theorem", "T3"],
    ["run", "--theorem", "t2", "--theorem", "t3", "--seed", "1"],
])
def test_theorem_takes_several_ids_in_either_form(argv: list[str]) -> None:
    assert _parse(argv).theorem == ["T2", "T3"]


def test_no_theorem_means_all() -> None:
    assert _parse(["run"]).theorem is None


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, named, suggestion", [
    (["run", "--theorem", "T33"], "argument --theorem: 'T33'", "did you mean T3?"),
    (["run", "--theorem", "T2", "T9"], "argument --theorem: 'T9'", None),
    (["check", "T99", "--widths", "4,4"], "argument ID: 'T99'", None),
    (["check", "T33", "--widths", "4,4"], "argument ID: 'T33'", "did you mean T3?"),
    (["check", "T3", "--widths", "4,4", "--activation", "rleu"], "--activation: 'rleu'",
     "did you mean relu?"),
    (["check", "T3", "--widths", "4,4", "--data", "clustrs"], "--data: 'clustrs'",
     "did you mean clusters?"),
    (["check", "T3", "--widths", "4,4", "--loss", "squard"], "--loss: 'squard'",
     "did you mean squared?"),
    (["check", "T3", "--widths", "4,4", "--loss", "zzz"], "--loss: 'zzz'", None),
    (["run", "--scale", "quik"], "--scale: 'quik'", "did you mean quick?"),
    (["check", "T3", "--widths", "4,4", "--data", "diabetes", "--loss", "ce"],
     "--loss='ce' is not allowed: one of squared for --data diabetes", None),
])
def test_bad_names_one_line_with_suggestion(argv: list[str], named: str,
                                            suggestion: str | None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line(argv, capsys)
    assert named in err and "is not allowed: one of" in err, err  # value and what is allowed
    if suggestion is None:
        assert "did you mean" not in err, err
    else:
        assert suggestion in err, err
    if argv[0] == "check":  # the positional ID is never blamed on a flag the user did not type
        assert "--theorem" not in err, err


def _fresh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import sys\nfrom verify import cli\nrc = cli.main(sys.argv[1:])\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'scipy', 'hypothesis') "
            "if m in sys.modules)\nprint(rc, heavy)\n")
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("argv", [
    ["run", "--theorem", "T99"],
    ["run", "--theorem", "T2", "T3", "--examples", "0"],
    ["run", "--scale", "huge"],
    ["check", "T99", "--widths", "4,4"],
    ["check", "T3", "--widths", "4,,4"],
    ["check", "T3", "--widths", "4,4", "--activation", "rleu"],
    ["check", "T3", "--widths", "4,4", "--data", "teacher", "--loss", "ce"],
    ["audit", "m.safetensors", "--widths", "4,4", "--lam", "0.1", "--loss", "mse"],
])
def test_usage_errors_arrive_before_heavy_imports(argv: list[str]) -> None:
    p = _fresh(argv)
    assert p.stdout.strip() == "2 []", (p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr


def test_a_good_parse_is_also_torch_free() -> None:
    """Building the parser and parsing valid input imports nothing heavy: the lists of
    allowed values live in :mod:`verify.names` and ``theorems.THEOREM_IDS``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import sys\nfrom verify import cli\n"
            "a = cli.build_parser().parse_args(['run', '--theorem', 'T2', 'T3'])\n"
            "assert a.theorem == ['T2', 'T3']\n"
            "assert 'torch' not in sys.modules, 'torch imported by the parser'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


def test_run_json_prints_results_and_reasons(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli.main(["run", "--theorem", "T1", "--examples", "1", "--workers", "1",
                     "--json", "--out", str(out)]) == cli.EXIT_OK
    cap = capsys.readouterr()
    data = json.loads(cap.out)  # stdout is the JSON alone
    assert data == json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [t["id"] for t in data["theorems"]] == ["T1"]
    # T1's controls end FAIL (as expected): their progress lines say why
    fails = [ln for ln in cap.err.splitlines() if " control " in ln and " FAIL " in ln]
    assert fails and all(" — " in ln and "bound" in ln for ln in fails), cap.err


def test_check_says_what_it_trains_then_its_stages(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    assert cli.main(["check", "T3", "--widths", "4,8,3", "--steps", "50", "--n", "16",
                     "--json"]) == cli.EXIT_OK
    cap = capsys.readouterr()
    assert json.loads(cap.out)["verdict"] == "PASS"
    err = cap.err.splitlines()
    assert err[0].startswith("verify: T3: training 4,8,3 relu") and "50 steps" in err[0]
    names = [ln.split()[0] for ln in err[1:]]
    assert names[0] == "first" and names[-1] == "certificate" and "polish" in names
