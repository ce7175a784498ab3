"""Theory regression: the committed baseline still holds for a fast subset of theorems, and
the comparison flags a broken measure, a loosened claim and a flipped control."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from verify import cli
from verify.errors import UsageError
from verify.measure import spectra
from verify.run import regression
from verify.run.results import load_results

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baseline" / "quick.json"
SUBSET = ["run", "--theorem", "T0", "--theorem", "T1", "--workers", "1"]


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("regress") / "run"
    assert cli.main([*SUBSET, "--out", str(out)]) == 0
    return out


def test_fast_subset_matches_the_committed_baseline(subset_run: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["regress", str(subset_run), "--baseline", str(BASELINE), "--partial"])
    assert code == 0, capsys.readouterr().out


def test_a_broken_measure_is_a_regression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    real = spectra.singular_values
    monkeypatch.setattr(spectra, "singular_values", lambda W: real(W) * (1 + 1e-3))
    out = tmp_path / "broken"
    cli.main([*SUBSET, "--theorem", "T0", "--out", str(out)])
    code = cli.main(["regress", str(out), "--baseline", str(BASELINE), "--partial"])
    text = capsys.readouterr().out
    assert code == 1
    first = load_results(out)["theorems"][0]["examples"][0]
    assert first["index"] == 0 and first["id"].startswith("T0/ex/")
    assert f"| T0 | {first['id']} | claim held, now fails |" in text
    assert "measured value moved" in text
    # the diff also lands in the run's report
    assert "Regression against" in (out / "report.html").read_text()


def test_compare_flags_each_kind_of_change(subset_run: Path) -> None:
    base = regression.snapshot(load_results(subset_run))
    assert regression.compare(base, base) == []
    now = copy.deepcopy(base)
    t1 = now["theorems"]["T1"]
    ex = list(t1["examples"])  # stable ids, T1/ex/<setting key>
    assert all(i.startswith("T1/ex/") for i in ex) and len(set(ex)) == len(ex) >= 4
    t1["controls"]["T1/control/tanh"]["verdict"] = "PASS"
    t1["examples"][ex[0]]["verdict"] = "INCONCLUSIVE"
    t1["examples"][ex[1]]["measured"] = 1.0
    t1["examples"][ex[2]]["setting"] = "something else"
    t1["examples"]["T1/ex/another"] = t1["examples"].pop(ex[3])  # its setting changed
    rows = regression.compare(base, now)
    whats = {(r["entry"], r["what"]) for r in rows}
    assert ("T1/control/tanh", "control no longer gets its expected verdict") in whats
    assert (ex[0], "turned INCONCLUSIVE") in whats
    assert (ex[1], "measured value moved") in whats
    assert (ex[2], "setting changed (re-accept the baseline)") in whats
    assert (ex[3], "missing now") in whats
    assert ("T1/ex/another", "not in the baseline") in whats
    # the moved value no longer fits the tolerance stated beside it: that is a row too
    assert (ex[1], "tolerance is not the stated rule's (now)") in whats
    assert len(rows) == 7
    del now["theorems"]["T0"]
    assert any(r["what"] == "not run" for r in regression.compare(base, now))
    assert not any(r["what"] == "not run" for r in regression.compare(base, now, partial=True))


def test_baseline_tolerances_are_stated() -> None:
    base = regression.load_baseline(BASELINE)
    assert base["tolerance_rule"] == regression.TOLERANCE_RULE
    for t in base["theorems"].values():
        for e in list(t["examples"].values()) + list(t["controls"].values()):
            assert e["tolerance"] > 0
    assert torch.get_num_threads() == 1


def _ex(t: dict, i: int) -> dict:
    """The i-th example entry of a theorem's baseline (entries are keyed by stable ids)."""
    return t["examples"][sorted(t["examples"])[i]]


TANH = "T1/control/tanh"
TAMPER = {
    "theorem verdict": lambda t: t.__setitem__("verdict", "FAIL"),
    "behaved": lambda t: t.__setitem__("behaved", not t["behaved"]),
    "PASS → VACUOUS": lambda t: _ex(t, 0).__setitem__("verdict", "VACUOUS"),
    "expected verdict": lambda t: t["controls"][TANH].__setitem__("expected", "PASS"),
    "control verdict": lambda t: t["controls"][TANH].__setitem__("verdict", "PASS"),
    "tolerance 1e300": lambda t: _ex(t, 1).__setitem__("tolerance", 1e300),
    "measured null": lambda t: _ex(t, 1).__setitem__("measured", None),
    "measured moved": lambda t: _ex(t, 1).__setitem__("measured", 0.5),
    "bound moved": lambda t: _ex(t, 1).__setitem__("bound", 1.0),
    "part null": lambda t: next(iter(_ex(t, 0)["parts"].values())).__setitem__(
        "measured", None),
    "entry removed": lambda t: t["examples"].pop(sorted(t["examples"])[1]),
    "entry added": lambda t: t["examples"].__setitem__("T1/ex/99", dict(_ex(t, 0))),
    "setting": lambda t: _ex(t, 0).__setitem__("setting", "0" * 24),
}


@pytest.mark.parametrize("what", list(TAMPER))
def test_every_tampering_is_refused_and_every_change_reported_both_ways(
        subset_run: Path, tmp_path: Path, what: str) -> None:
    now = regression.snapshot(load_results(subset_run))
    path = tmp_path / "baseline.json"
    regression.write_baseline(path, now)
    base = json.loads(path.read_text())
    TAMPER[what](base["theorems"]["T1"])
    path.write_text(json.dumps(base))
    with pytest.raises(UsageError, match="digest"):  # edited by hand: refused
        regression.load_baseline(path)
    base.pop("digest")
    base["digest"] = regression.digest(base)  # even re-sealed, every change is a row
    path.write_text(json.dumps(base))
    tampered = regression.load_baseline(path)
    assert regression.compare(tampered, now), what
    assert regression.compare(now, tampered), what
