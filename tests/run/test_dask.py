"""Sweeps on a cluster: a Dask LocalCluster with 2 workers on loopback runs a small sweep and
gives the same results as the local run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify import cli
from verify.run.executor import dask_worker_environ
from verify.run.results import without_timing

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed")

ARGS = ["run", "--theorem", "T0", "--theorem", "T1", "--examples", "3"]
def _theorems(out: Path) -> list:
    return without_timing(json.loads((out / "results.json").read_text())["theorems"])


def test_dask_cluster_matches_local_run(tmp_path: Path) -> None:
    dask_worker_environ()
    local = tmp_path / "local"
    assert cli.main([*ARGS, "--workers", "1", "--out", str(local)]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = tmp_path / "dask"
        assert cli.main([*ARGS, "--scheduler", cluster.scheduler_address,
                         "--out", str(remote)]) == 0
    res = json.loads((remote / "results.json").read_text())
    assert res["run"]["scheduler"].startswith("tcp://127.0.0.1:")
    assert _theorems(remote) == _theorems(local)


def test_unreachable_scheduler_is_a_usage_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*ARGS, "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--scheduler" in capsys.readouterr().err
    code = cli.main([*ARGS, "--scheduler", "nonsense", "--out", str(tmp_path / "y")])
    assert code == 2
    # refused before anything is written: no folder, no run.json, no lock
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
