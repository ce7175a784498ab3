"""The pytest plugin: one test per example and control, verdicts mapped to pass / fail /
skip, theorems from other modules, and nothing at all without ``--verify-theorem``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from verify import pytest_plugin
from verify.claims.theorem import registry
from verify.run import runner

pytest_plugins = ["pytester"]

# pytester's in-process runs drop the modules each run imports; import the harness (and the
# C extensions below it, which load once per process) here, before any run
assert runner.plan and registry()

ROOT = Path(__file__).resolve().parents[2]

# A theorem outside the package: its verdict is the setting's seed, so every mapping shows.
FAKE = '''
from hypothesis import strategies as st

from verify.claims.theorem import Control, Theorem
from verify.claims.verdict import Outcome, Verdict
from verify.engine.setting import Setting

VERDICTS = {0: Verdict.PASS, 1: Verdict.FAIL, 2: Verdict.INCONCLUSIVE, 3: Verdict.VACUOUS}


def S(seed):
    return Setting(widths=(2, 1), seed=seed, steps=0, polish=False)


def check(s, ctx):
    if s.seed == 4:
        raise RuntimeError("harness bug")
    v = VERDICTS[s.seed]
    return Outcome(v, float(s.seed), 1.0, 1.0 - s.seed, f"fake {v} for seed {s.seed}")


THEOREM = Theorem(
    id="TFAKE", title="a fake theorem", source="tests", statement="", latex="",
    assumptions=(), strategy=lambda scale: st.just(S(0)), check=check,
    controls=lambda scale: (Control("gets it", "expects FAIL", Verdict.FAIL, S(1)),
                            Control("misses it", "expects PASS", Verdict.PASS, S(2))),
    pinned=lambda scale: (S(0), S(1), S(2), S(3), S(4)),
)
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # pytest-benchmark would warn in every inner run under xdist; it has no part here
    return pytester.runpytest("-p", "verify.pytest_plugin", "-p", "no:benchmark", *args)


def test_t1_quick_one_example_collects_and_passes(pytester: pytest.Pytester) -> None:
    res = _run(pytester, "--verify-theorem", "T1",
                             "--verify-scale", "quick", "--verify-examples", "1", "-v")
    res.assert_outcomes(passed=4)  # the pinned example and the three controls
    res.stdout.fnmatch_lines(["*collected 4 items*", "verify::T1::example[[]0-pinned[]] PASSED*",
                              "verify::T1::control[[]biases[]] PASSED*"])


def test_verdicts_map_to_pass_fail_skip_and_errors_stay_errors(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(fake_thm=FAKE)
    pytester.syspathinsert()
    res = _run(pytester, "--theorem-module", "fake_thm",
                             "--verify-theorem", "TFAKE", "--verify-examples", "5", "-rs")
    # PASS and the control that gets its verdict pass; FAIL, the control that misses and the
    # harness error fail; INCONCLUSIVE and VACUOUS skip with their reason
    res.assert_outcomes(passed=2, failed=3, skipped=2)
    res.stdout.fnmatch_lines([
        "*TFAKE a fake theorem*", "FAIL: fake FAIL for seed 1",
        "measured 1, bound 1, margin 0",
        "*RuntimeError: harness bug*",
        "*control 'misses it' (expects PASS) expected PASS, got INCONCLUSIVE*",
        "*SKIPPED*INCONCLUSIVE: fake INCONCLUSIVE for seed 2*",
        "*SKIPPED*VACUOUS: fake VACUOUS for seed 3*",
    ])


def test_entry_point_group_offers_theorems_of_other_packages(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(fake_thm=FAKE)
    pytester.syspathinsert()
    import importlib

    ep = SimpleNamespace(name="fake", value="fake_thm",
                         load=lambda: importlib.import_module("fake_thm"))
    monkeypatch.setattr(pytest_plugin, "entry_points",
                        lambda group: [ep] if group == pytest_plugin.GROUP else [])
    res = _run(pytester, "--verify-theorem", "tfake",
                             "--verify-examples", "5", "-k", "gets")
    res.assert_outcomes(passed=1, deselected=6)  # -k works on the items: 5 pinned, 2 controls


def test_unknown_theorem_is_a_usage_error(pytester: pytest.Pytester) -> None:
    res = _run(pytester, "--verify-theorem", "T99")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--verify-theorem='T99' is not allowed: one of T0, T1*"])
    assert "did you mean" not in res.stderr.str()
    res = _run(pytester, "--verify-theorem", "T33")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--verify-theorem='T33' is not allowed: one of T0*; did you "
                              "mean T3?*"])


def test_inert_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_mine():\n    assert True\n")
    res = _run(pytester)
    res.assert_outcomes(passed=1)
    assert "verify::" not in res.stdout.str()
    # loaded into every pytest run through the entry point: importing it is cheap
    code = ("import sys, verify.pytest_plugin; "
            "print(sorted(m for m in ('torch', 'hypothesis', 'verify.claims') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_registered_under_pytest11_with_its_module_name() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    # the name equals the module so that `-p verify.pytest_plugin` does not load it twice
    assert meta["pytest11"] == {"verify.pytest_plugin": "verify.pytest_plugin"}
