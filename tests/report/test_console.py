"""Console lines: every non-PASS line carries its reason; a theorem VACUOUS on every example
is printed VACUOUS with the reason, never ``ok``."""

from __future__ import annotations

from tests.helpers import check_record
from verify.claims.verdict import Verdict
from verify.report.console import record_reason, theorem_line
from verify.run.records import CheckRecord, TheoremSummary


def _summary(verdict: str, behaved: bool, examples: list[CheckRecord],
             controls: list[CheckRecord]) -> TheoremSummary:
    return TheoremSummary(
        id="T1", title="t", source="s", statement="st", statement_latex="", assumptions=(),
        notes=(), verdict=Verdict(verdict), behaved=behaved, summary="counts", counts={},
        seconds=1.0, examples=tuple(examples), controls=tuple(controls))


def test_record_reason_only_beside_non_pass() -> None:
    assert record_reason(check_record(verdict="PASS")) == ""
    assert record_reason(check_record(verdict="VACUOUS", reason="premise unmet: rank 3")
                         ) == "  — premise unmet: rank 3"
    assert "no certificate" in record_reason(
        check_record(verdict="INCONCLUSIVE", reason="no certificate"))
    # a control that got its expected FAIL is as expected, but not a PASS: its reason shows
    assert "why" in record_reason(check_record(kind="control", verdict="FAIL", reason="why"))
    # a control that missed its expected verdict shows the reason too, even on PASS
    missed = check_record(kind="control", verdict="PASS", reason="held anyway")
    assert "held anyway" in record_reason(missed)
    long = record_reason(check_record(verdict="FAIL", reason="x " * 500))
    assert long.endswith("…") and len(long) < 260


def test_vacuous_everywhere_is_not_ok() -> None:
    ex = [check_record(index=i, verdict="VACUOUS", reason="premise unmet: full rank")
          for i in range(3)]
    line = theorem_line(_summary("VACUOUS", True, ex, []))
    assert not line.startswith("ok")
    assert line.startswith("VAC T1 VACUOUS") and "premise unmet: full rank" in line


def test_pass_is_ok_without_reason_and_failures_say_why() -> None:
    ok = theorem_line(_summary("PASS", True, [check_record()], []))
    assert ok.startswith("ok  T1 PASS") and "why" not in ok
    fail = [check_record(verdict="FAIL", reason="ratio 3.1 above bound 2")]
    line = theorem_line(_summary("FAIL", False, fail, []))
    assert line.startswith("NOT") and "ratio 3.1 above bound 2" in line
    c = check_record(kind="control", verdict="PASS", reason="held")
    line = theorem_line(_summary("PASS", False, [check_record()], [c]))
    assert line.startswith("NOT") and "got PASS, expected FAIL: held" in line
    err = check_record(verdict="ERROR", error="ZeroDivisionError")
    assert "harness error: ZeroDivisionError" in theorem_line(_summary("ERROR", False, [err], []))


def test_stage_lines_name_each_stage_with_its_time() -> None:
    from types import SimpleNamespace

    from verify.report.console import stage_lines

    r = SimpleNamespace(gd_steps=200, lbfgs_iters=7, continuation_iters=3, seconds=3.0,
                        stages={"gd": 1.0, "lbfgs+newton": 1.5, "continuation": 0.5})
    lines = stage_lines([r], 3.25)  # type: ignore[list-item]
    assert [ln.split()[0] for ln in lines] == ["first", "polish", "kink", "certificate"]
    assert "1.00s" in lines[0] and "(200 steps)" in lines[0]
    assert "0.25s" in lines[3]
    assert "no network trained" in stage_lines([], 0.5)[-1]
