"""Tests of verify.sweep: grid points are appended as they finish and a rerun resumes; the
contour specs and corners come from the stored points."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from verify import sweep
from verify.errors import UsageError

TINY = sweep.SweepScale("tiny", (64, 6, 10), 24, 5, (0.05, 0.1), (1e-3, 1e-2), (4, 8), 0.1,
                        1e-2)


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(sweep.SWEEPS, "tiny", TINY)
    return "tiny"


def test_sweep_appends_points_and_resumes(tiny: str, tmp_path: Path) -> None:
    logs: list[str] = []
    done = sweep.run(tiny, tmp_path, log=logs.append)
    lines = (tmp_path / "sweep.jsonl").read_text().splitlines()
    assert len(lines) == len(done) > 0
    # an interrupted write leaves a torn last line: it is ignored, the point is redone
    first = json.loads(lines[0])
    (tmp_path / "sweep.jsonl").write_text("\n".join(lines[1:]) + "\n" + lines[0][:10])
    logs.clear()
    again = sweep.run(tiny, tmp_path, log=logs.append)
    assert set(again) == set(done)
    assert sum("average rank" in m for m in logs) == 1 and first["key"] in logs[0]
    assert again[first["key"]]["average_rank"] == first["average_rank"]  # seeded


def test_contours_and_corners(tiny: str, tmp_path: Path) -> None:
    done = sweep.run(tiny, tmp_path, log=lambda m: None)
    specs = sweep.plot_specs(tiny, done)
    assert [s["kind"] for s in specs] == ["contour"] * 4
    for s in specs:
        assert len(s["z"]) == len(s["y"]) and all(len(r) == len(s["x"]) for r in s["z"])
        assert len(sweep.corners(s)) == 4
    path = sweep.write_report(tiny, tmp_path, done)
    assert "Corners" in path.read_text()
    # every point says whether it settled and how it fits; 5 steps settle nothing
    for rec in done.values():
        assert not rec["steady_state"]["settled"] and rec["fit"]["kind"] == "accuracy"
    assert f"{len(done)} of {len(done)} points had not settled" in path.read_text()


def test_unknown_scale_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scale"):
        sweep.run("huge", tmp_path)
    assert sweep.main(["--scale", "huge", "--out", str(tmp_path)]) == 2


def test_scales_grow() -> None:
    q, s, big = (sweep.SWEEPS[k] for k in ("quick", "standard", "large"))
    assert max(q.widths[1:-1]) < max(s.widths[1:-1]) < max(big.widths[1:-1])
    assert 3 <= len(s.widths) - 1 <= 5 and 64 <= max(s.widths[1:-1]) <= 256
    assert replace(q, name="x").steps == q.steps
