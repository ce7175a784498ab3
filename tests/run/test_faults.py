"""Faults: a killed worker costs its check one retry, twice is an ERROR record (never the
run); a harness error is ERROR with its own exit status, never INCONCLUSIVE; a diverging
network is INCONCLUSIVE with its reason and no measure sees its weights; training stops on
iteration counts, so a loaded machine gives the same results, and a network that reaches
the wall-clock safety net is INCONCLUSIVE with that reason."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from verify import cli
from verify.claims.theorem import registry, run_check
from verify.claims.verdict import Verdict
from verify.engine.setting import Context, Setting, realise_any
from verify.measure import spectra
from verify.run import rundir, runner
from verify.run.records import CheckKind

ARGS = ["run", "--theorem", "T1", "--examples", "2", "--workers", "2"]


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / rundir.RECORDS).read_text().splitlines()]


def _die_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, times: int) -> None:
    """Example 1's worker kills itself (SIGKILL, as the OOM killer would) ``times`` times."""
    real = runner.evaluate
    count = tmp_path / "attempts"

    def dying(task: runner.Task, ctx: Context) -> dict:
        if task.kind == "example" and task.index == 1:
            n = int(count.read_text()) if count.exists() else 0
            count.write_text(str(n + 1))
            if n < times:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(task, ctx)

    monkeypatch.setattr(runner, "evaluate", dying)


def test_a_killed_worker_costs_one_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _die_on(monkeypatch, tmp_path, times=1)
    out = tmp_path / "run"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    assert "killed by SIGKILL" in capsys.readouterr().err
    recs = _records(out)
    assert len(recs) == 5 and not any(r["error"] for r in recs)
    assert (tmp_path / "attempts").read_text() == "2"


def test_a_worker_killed_twice_is_an_error_record_not_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _die_on(monkeypatch, tmp_path, times=2)
    out = tmp_path / "run"
    assert cli.main([*ARGS, "--out", str(out)]) == cli.EXIT_ERROR
    recs = {(r["kind"], r["index"]): r for r in _records(out)}
    assert len(recs) == 5
    bad = recs[("example", 1)]
    assert bad["verdict"] == "ERROR" and "died 2 times" in bad["reason"]
    assert "SIGKILL" in bad["reason"]
    assert all(r["verdict"] != "ERROR" for k, r in recs.items() if k != ("example", 1))
    results = json.loads((out / "results.json").read_text())
    assert results["theorems"][0]["counts"]["ERROR"] == 1
    assert "ERROR" in (out / "report.md").read_text()
    assert "harness error" in capsys.readouterr().err


def test_a_harness_error_is_error_not_inconclusive(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def broken(W: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a bug in a measure")

    monkeypatch.setattr(spectra, "singular_values", broken)
    code = cli.main(["check", "T0", "--widths", "4,6,3", "--activation", "identity",
                     "--data", "whitened", "--n", "12", "--lam", "0.1"])
    assert code == cli.EXIT_ERROR
    out = capsys.readouterr()
    assert out.out.startswith("T0 ERROR: harness error: RuntimeError: a bug in a measure")
    assert "Traceback" not in out.err
    run = tmp_path / "run"
    assert cli.main(["run", "--theorem", "T0", "--examples", "1", "--workers", "1",
                     "--out", str(run)]) == cli.EXIT_ERROR
    recs = _records(run)
    assert recs and all(r["verdict"] == "ERROR" and r["error"] for r in recs)
    assert "traceback" in recs[0]["details"]


DIVERGING = [("T0", "identity", "whitened"), ("T2", "relu", "clusters"),
             ("T3", "relu", "clusters"), ("T4", "relu", "clusters"),
             ("T5", "relu", "clusters"), ("T6", "tanh", "clusters"),
             ("T7", "relu", "teacher")]


@pytest.mark.parametrize(("tid", "act", "data"), DIVERGING, ids=[t for t, _, _ in DIVERGING])
def test_a_diverging_network_is_inconclusive_with_its_reason(
        tid: str, act: str, data: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = spectra.singular_values

    def finite_only(W: torch.Tensor) -> torch.Tensor:  # no measure sees non-finite weights
        assert bool(torch.isfinite(W).all()), "a measure ran on non-finite weights"
        return real(W)

    monkeypatch.setattr(spectra, "singular_values", finite_only)
    code = cli.main(["check", tid, "--widths", "6,8,3", "--activation", act, "--data", data,
                     "--n", "16", "--lr", "500", "--json"])
    assert code == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["verdict"] == "INCONCLUSIVE" and "diverged" in rec["reason"], rec["reason"]


def test_a_diverging_network_in_a_run_is_inconclusive_not_error() -> None:
    s = Setting(widths=(6, 8, 3), activation="relu", n=16, lr=500.0, steps=50)
    rec = runner.evaluate(runner.Task("T3/ex/diverging", "T3", CheckKind.EXAMPLE, 0, s),
                          Context())
    assert rec.verdict == "INCONCLUSIVE" and not rec.error
    assert "diverged" in rec.reason


SMOOTH = Setting(widths=(4, 6, 3), activation="tanh", lam=0.03, n=12, steps=200)


def test_iteration_counts_decide_not_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same network on an idle machine and on one 50× slower (a clock running 50×
    faster): bitwise the same, because every phase stops on its iteration budget."""
    idle = realise_any(SMOOTH, Context(max_seconds=300.0))
    real = time.perf_counter
    t0 = real()
    monkeypatch.setattr(time, "perf_counter", lambda: t0 + 50 * (real() - t0))
    loaded = realise_any(SMOOTH, Context(max_seconds=300.0))
    monkeypatch.undo()
    assert not idle.result.timed_out and not loaded.result.timed_out
    assert all(torch.equal(a, b) for a, b in zip(idle.result.params, loaded.result.params,
                                                 strict=True))
    assert idle.certificate.certified and loaded.certificate.max_residual == \
        idle.certificate.max_residual


def test_the_safety_net_makes_a_network_inconclusive_with_the_reason() -> None:
    t = realise_any(SMOOTH, Context(max_seconds=0.0))
    assert t.result.timed_out and not t.certificate.certified
    assert "wall-clock safety limit" in t.certificate.reason
    thm = registry()["T6"]
    out = run_check(thm.check, SMOOTH, Context(max_seconds=0.0))
    assert out.verdict == Verdict.INCONCLUSIVE and "wall-clock safety limit" in out.reason
    assert out.certificate is not None and math.isnan(out.measured)
