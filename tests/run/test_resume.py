"""Results survive interruption: a run killed with SIGKILL and restarted on the same --out
resumes with nothing lost or duplicated, and ends with the same results as an uninterrupted
run with the same seed (which also shows the run is deterministic); two runs on one folder
at once are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import check_record
from verify import cli
from verify.run import rundir
from verify.run.results import without_timing

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["run", "--theorem", "T0", "--theorem", "T1", "--examples", "6", "--workers", "2"]


def _cmd(out: Path, args: list[str] = ARGS) -> list[str]:
    return [sys.executable, "-m", "verify", *args, "--out", str(out)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def _start(out: Path, records: int, args: list[str] = ARGS
           ) -> tuple[subprocess.Popen[bytes], list[int]]:
    """The run in its own process group, once ``records`` checks are done; with the PIDs
    of its worker processes."""
    # SIGINT back to its default in the child: a suite started in the background (nohup,
    # `cmd &` in a script) passes SIGINT on as ignored, and Ctrl-C would never arrive
    proc = subprocess.Popen(_cmd(out, args), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path = out / rundir.RECORDS
    deadline = time.time() + 600
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= records:
            break
        time.sleep(0.05)
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    return proc, [int(x) for x in kids.read_text().split()] if kids.exists() else []


def _gone(pid: int, wait: float = 10.0) -> bool:
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_sigkill_of_the_main_process_then_resume_equals_uninterrupted_run(tmp_path: Path
                                                                          ) -> None:
    """SIGKILL of the main process only (what a job manager or the OOM killer does): its
    workers die with it and do not hold the folder's lock, so the same command resumes at
    once, with nothing lost or duplicated and the results of an uninterrupted run."""
    ref = tmp_path / "ref"
    p = subprocess.run(_cmd(ref), env=_env(), capture_output=True, text=True, timeout=900,
                       check=False)
    assert p.returncode == 0, p.stderr
    total = len((ref / rundir.RECORDS).read_text().splitlines())

    out = tmp_path / "killed"
    proc, workers = _start(out, 3)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, mid-way
    proc.wait()
    records = out / rundir.RECORDS
    done_before = len(records.read_text().splitlines())
    assert 3 <= done_before < total, (done_before, total)
    assert not (out / "results.json").exists()
    if Path("/proc").is_dir():
        assert workers and all(_gone(w) for w in workers), workers  # died with the run

    p = subprocess.run(_cmd(out), env=_env(), capture_output=True, text=True, timeout=900,
                       check=False)  # at once: no "wait for it"
    assert p.returncode == 0, p.stderr
    assert f"resuming {out}: {done_before} of {total}" in p.stderr
    lines = [json.loads(x) for x in records.read_text().splitlines()]
    keys = [r["id"] for r in lines]
    assert len(keys) == total and len(set(keys)) == total  # nothing lost, none duplicated
    assert set(keys) == {json.loads(x)["id"] for x in (ref / rundir.RECORDS).read_text()
                         .splitlines()}  # the same stable ids as the uninterrupted run
    assert (without_timing(_results(out)["theorems"])
            == without_timing(_results(ref)["theorems"]))
    # re-checks read trained networks from the cache instead of retraining
    assert any((out / rundir.CACHE).iterdir())


def test_torn_last_line_is_repaired(tmp_path: Path) -> None:
    rec = check_record().to_json()
    path = tmp_path / rundir.RECORDS
    path.write_text(json.dumps(rec) + "\n" + json.dumps(check_record(index=1).to_json())[:17])
    assert [r["id"] for r in rundir.read_records(tmp_path)] == [rec["id"]]
    assert rundir.read_records(tmp_path) == [rec]  # read back equal (typed after vetting)
    assert path.read_text() == json.dumps(rec) + "\n"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")  # a repeat is dropped
    assert len(rundir.read_records(tmp_path)) == 1


# a line that is not a record at all; a record of the wrong shape or an edited one is refused
# when the records are vetted (tests/run/test_untrusted.py)
@pytest.mark.parametrize("bad", ["{garbage", "[1, 2]", json.dumps({"no": "id"}),
                                 json.dumps({"id": 3})])
def test_corrupt_record_in_the_middle_is_refused(tmp_path: Path, bad: str) -> None:
    rec = json.dumps(check_record().to_json())
    (tmp_path / rundir.RECORDS).write_text(rec + "\n" + bad + "\n" + rec + "\n")
    before = (tmp_path / rundir.RECORDS).read_bytes()
    with pytest.raises(cli.UsageError, match="line 2"):
        rundir.read_records(tmp_path)
    assert (tmp_path / rundir.RECORDS).read_bytes() == before  # not damaged


def test_second_run_on_the_same_out_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    with rundir.locked(out):
        assert cli.main(["run", "--theorem", "T1", "--examples", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"process {os.getpid()}" in err and "holds its lock" in err
    assert not (out / rundir.RECORDS).exists()


def test_same_seed_gives_identical_results(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert cli.main(["run", "--theorem", "T0", "--theorem", "T1", "--examples", "3",
                         "--workers", "1", "--out", str(out)]) == 0
        outs.append(without_timing(_results(out)["theorems"]))
    assert outs[0] == outs[1]  # bitwise: floats compared with ==


def test_ctrl_c_is_exit_130_without_traceback(tmp_path: Path) -> None:
    """Ctrl-C is never swallowed (exit 130) and never a traceback, from the run or its
    workers; what finished is reported (resuming is the SIGKILL test's)."""
    out = tmp_path / "interrupted"
    # the interrupt after the first record, while T8's checks (each trains pairs of nets for
    # seconds) still run: a run of quick checks alone could finish inside the 50 ms poll
    proc, _ = _start(out, 1, ["run", "--theorem", "T0", "--theorem", "T8", "--examples", "1",
                              "--workers", "1"])
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "interrupted" in text
    assert json.loads((out / "results.json").read_text())["run"]["interrupted"]
