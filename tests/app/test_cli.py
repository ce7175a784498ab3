"""The command line: runs end to end, re-renders reports, and refuses bad input with one
clear line (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import check_record
from verify import cli
from verify.claims.theorem import registry
from verify.run import runner

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "verify", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_run_writes_results_and_reports(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = cli.main(["run", "--theorem", "T1", "--examples", "2", "--out", str(out),
                     "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == 2 and res["run"]["ok"] is True
    (t1,) = res["theorems"]
    assert t1["id"] == "T1" and t1["verdict"] == "PASS" and len(t1["examples"]) == 2
    assert {c["name"] for c in t1["controls"]} == {"biases", "tanh", "softplus"}
    assert all(c["verdict"] == "FAIL" and c["as_expected"] for c in t1["controls"])
    for key in ("setting", "verdict", "measured", "bound", "margin", "certificate"):
        assert key in t1["examples"][0]
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 3
    assert (out / "report.html").stat().st_size > 1000 and (out / "report.md").exists()
    assert "[  5/5]" in err  # progress display
    # report re-renders from results.json alone
    (out / "report.html").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert (out / "report.html").exists()


def test_run_refuses_to_overwrite_an_earlier_run(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{}")
    assert cli.main(["run", "--theorem", "T1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.json").read_text() == "{}"


BAD = [
    (["run", "--theorem", "T99"], "T99"),
    (["run", "--scale", "huge"], "huge"),
    (["run", "--seed", "-1"], "-1"),
    (["run", "--seed", "abc"], "abc"),
    (["run", "--examples", "2.5"], "2.5"),
    (["run", "--tau", "0"], "0"),
    (["run", "--tau", "nan"], "nan"),
    (["run", "--workers", "0"], "0"),
    (["run", "--device", "tpu"], "tpu"),
    (["check", "T3", "--widths", "4,0,2"], "4,0,2"),
    (["check", "T3", "--widths", "4"], "'4'"),
    (["check", "T3", "--widths", "a,b"], "a,b"),
    (["check", "T3", "--widths", "4,5,2", "--lam", "-0.1"], "-0.1"),
    (["check", "T3", "--widths", "4,5,2", "--lam", "inf"], "inf"),
    (["check", "T3", "--widths", "4,5,2", "--n", "0"], "'0'"),
    (["check", "T3", "--widths", "4,5,2", "--lr", "0"], "'0'"),
    (["check", "T3", "--widths", "4,5,2", "--data", "imagenet"], "imagenet"),
    (["check", "T3", "--widths", "4,5,2", "--activation", "gelu"], "gelu"),
    (["check", "T3", "--widths", "4,5,2", "--data", "whitened", "--n", "2"], "n=2"),
    (["check", "T3", "--widths", "4,5,2", "--data", "digits", "--n", "5000"], "5000"),
    (["check", "T3", "--widths", "192,3", "--data", "images", "--conv", "4,x"], "4,x"),
    (["check", "T3", "--widths", "192,3", "--data", "images", "--conv", "0"], "'0'"),
    (["check", "T3", "--widths", "64,3", "--data", "images", "--conv", "4",
      "--activation", "identity"], "(64, 3)"),
    (["check", "T3", "--widths", "192,3", "--data", "images", "--conv", "4"], "'relu'"),
    (["check", "T3", "--widths", "100,3", "--data", "images", "--activation", "tanh"], "100"),
    (["check", "T3", "--widths", "4,5,2", "--precision", "fp8"], "fp8"),
    (["report", "/nonexistent/run"], "/nonexistent/run"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "named"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_clear_line(args: list[str], named: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # in-process: an exception escaping main() would fail the test with its traceback
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert named in lines[0], lines
    assert "allowed" in lines[0] or "invalid choice" in lines[0], lines


def test_bad_input_from_a_real_process_has_no_traceback() -> None:
    p = _cli("check", "T3", "--widths", "4,5,2", "--lam", "-1")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and "--lam" in p.stderr


def test_foreign_or_unwritable_out_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "foreign.txt").write_text("keep me")
    assert cli.main(["run", "--theorem", "T1", "--out", str(ro)]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (ro / "foreign.txt").read_text() == "keep me"
    f = tmp_path / "afile"
    f.write_text("x")
    assert cli.main(["run", "--theorem", "T1", "--out", str(f / "sub")]) == 2
    assert "writable" in capsys.readouterr().err


def test_list_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    for tid in registry():
        assert tid in listing
    assert cli.main(["check", "T1", "--widths", "3,4,4,2", "--activation", "leaky_relu",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "PASS"


def test_summary_marks_a_misbehaving_control() -> None:
    thm = registry()["T1"]
    recs = [check_record(), check_record(kind="control", verdict="PASS")]
    entry = runner.summarise(thm, recs)
    assert entry.behaved is False and entry.verdict == "PASS"
    recs[1] = check_record(kind="control", verdict="FAIL")
    assert runner.summarise(thm, recs).behaved is True
    recs[0] = check_record(verdict="FAIL")
    entry = runner.summarise(thm, recs)
    assert entry.behaved is False and entry.verdict == "FAIL"
    recs[0] = check_record(verdict="INCONCLUSIVE", error="RuntimeError: boom")
    entry = runner.summarise(thm, recs)
    assert entry.behaved is False and "1 harness errors" in entry.summary
