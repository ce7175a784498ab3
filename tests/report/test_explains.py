"""The report explains (issue 15, item 5): reasons on the banner, known results, figures
that name their checks, zero margins drawn, formulas as MathML/Unicode text, the changes
since a baseline or previous run, a script-free filter by verdict, and docs/theorems.md
generated from the theorem modules.

No training: the synthetic run of ``test_report`` and hand-made records.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mplconfig-"))

import matplotlib.pyplot as plt  # after MPLCONFIGDIR is set
import pytest

from tests.helpers import check_record
from tests.report.test_report import make_results
from verify import cli
from verify.claims.theorem import Known, registry
from verify.claims.trends import plot_spec, symbol
from verify.report import render
from verify.report.document import Figure, Math, Section, Table, texts
from verify.report.figures import draw_margins, theorem_figures
from verify.report.html import FILTERS, to_html
from verify.report.mathml import UnsupportedLatex, to_mathml, to_unicode
from verify.report.plots import ZERO_MARKER, draw_spec
from verify.report.sections import SPEC_DOC, document, formula
from verify.report.spec import specification_markdown
from verify.report.status import status_blocks
from verify.run import runner
from verify.run.regression import snapshot
from verify.run.results import jsonable

ROOT = Path(__file__).resolve().parents[2]


def _known_results() -> dict:
    """The synthetic run, with T2's failing example #2 explained as a known result."""
    data = jsonable(make_results())
    t2 = data["theorems"][0]
    t2["known"] = {"T2/ex/setting2": "narrow net: the claim is for wide networks"}
    return data


@pytest.fixture(scope="module")
def t2_figures() -> list[Figure]:
    """T2's figures of the synthetic run, drawn once (drawing is the slow part)."""
    return theorem_figures(jsonable(make_results())["theorems"][0])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One render of the synthetic run with a known result, T7 stating T5's formula (shown
    as raw LaTeX before): the folder, report.md and report.html."""
    data = _known_results()
    data["theorems"][1]["statement_latex"] = registry()["T5"].latex
    out = tmp_path_factory.mktemp("explains") / "run"
    md, page = render(data, out)
    return out, md.read_text(encoding="utf-8"), page.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# the banner


def test_banner_names_failing_parts_with_reasons() -> None:
    data = jsonable(make_results())
    ctl = data["theorems"][0]["controls"][0]
    ctl.update(verdict="PASS", as_expected=False, reason="aligned after all")
    lines = list(texts(status_blocks(data, data["theorems"])))
    head = next(t for t in lines if t.startswith("did not behave"))
    assert "T2" in head and "2 failing part(s)" in head and "T7" not in head
    assert ("T2 example #2 (T2/ex/setting2): FAIL — measured exceeds bound <tag> & more"
            in lines)
    assert ("T2 control tanh_control (T2/control/tanh_control): expected FAIL, got PASS — "
            "aligned after all") in lines


def test_banner_reasons_are_one_line_and_short() -> None:
    data = jsonable(make_results())
    data["theorems"][0]["examples"][2]["reason"] = "first line\nsecond " + "x" * 500
    lines = [t for t in texts(status_blocks(data, data["theorems"])) if "example #2" in t]
    assert len(lines) == 1 and "\n" not in lines[0] and len(lines[0]) < 260
    assert lines[0].endswith("…")


def test_harness_error_is_named_on_the_banner() -> None:
    data = jsonable(make_results())
    data["theorems"][0]["examples"][1]["error"] = "RuntimeError: boom"
    lines = list(texts(status_blocks(data, data["theorems"])))
    assert "T2 example #1 (T2/ex/setting1): harness error — RuntimeError: boom" in lines


def test_known_result_is_marked_known_not_broken() -> None:
    data = _known_results()
    data["theorems"][0]["behaved"] = True  # what the runner records when all FAILs are known
    data["run"]["ok"] = True
    blocks = status_blocks(data, data["theorems"])
    lines = list(texts(blocks))
    assert not any(t.startswith("did not behave") for t in lines)
    assert any("all theorems behaved as expected (1 known result" in t for t in lines)
    known = [t for t in lines if "known result," in t]
    assert known == ["T2 example #2 (T2/ex/setting2): FAIL — known result, narrow net: the "
                     "claim is for wide networks"]
    styles = {b.style for b in blocks if getattr(b, "style", None)}
    assert "known" in styles and "bad" not in styles
    # in the theorem's section: a known-results list, a column, the row tagged for the filter
    doc = document(data, {})
    section = next(b for b in doc if isinstance(b, Section) and "T2" in next(texts([b])))
    assert "known" in section.filters.split()
    examples = next(b for b in section.blocks if isinstance(b, Table) and "known result"
                    in b.headers)
    assert "FAIL known" in examples.filters
    assert any("T2/ex/setting2: narrow net" in t for t in texts([section]))


def test_unexplained_fail_stays_on_the_banner_beside_a_known_one() -> None:
    data = _known_results()
    data["theorems"][0]["examples"][0].update(verdict="FAIL", reason="really broken")
    lines = list(texts(status_blocks(data, data["theorems"])))
    assert "T2 example #0 (T2/ex/setting0): FAIL — really broken" in lines
    assert any("known result, narrow net" in t for t in lines)


def test_runner_records_known_results_and_behaved() -> None:
    thm = replace(registry()["T1"], known=(
        Known("narrow", "explained", lambda r: (r.get("setting") or {}).get("h") == 16),))
    fail16 = check_record(index=0, verdict="FAIL", setting={"h": 16})
    entry = runner.summarise(thm, [fail16, check_record(index=1)])
    assert entry.known == {"T1/ex/s0": "narrow: explained"}
    assert entry.behaved is True and str(entry.verdict) == "FAIL"  # the verdict stays FAIL
    assert "1 of the fails known results" in entry.summary
    fail64 = check_record(index=0, verdict="FAIL", setting={"h": 64})
    entry = runner.summarise(thm, [fail64])
    assert entry.known == {} and entry.behaved is False
    errored = check_record(index=0, verdict="FAIL", setting={"h": 16}, error="boom")
    assert runner.summarise(thm, [errored]).known == {}  # a harness error is never explained
    assert "known" in entry.to_json()


def _t8_record(widths: list[int], failed: tuple[str, ...], activation: str = "relu",
               angle: float = 0.0) -> dict:
    parts = {name: {"verdict": "FAIL" if name in failed else "PASS"}
             for name in ("leakage B→A", "leakage A→B", "claim on A", "claim on B")}
    return {"verdict": "FAIL", "details": {"parts": parts},
            "setting": {"widths": widths, "activation": activation, "angle": angle}}


def test_t8_known_result_is_narrow() -> None:
    """T8 explains the width qualifier of its claim (shallow ReLU, ε = 0, hidden width below
    64, only the claim failing) and nothing else: a failing exact leakage bound, a wide net,
    a deep net or a turned task stays unexplained."""
    known = registry()["T8"].known

    def explains(rec: dict) -> list[str]:
        return [k.name for k in known if k.applies(rec)]

    assert explains(_t8_record([64, 16, 4], ("claim on B",))) == ["width qualifier"]
    assert explains(_t8_record([64, 16, 16, 4], ("claim on A", "claim on B"))) == []
    assert explains(_t8_record([64, 16, 4], ("claim on B", "leakage B→A"))) == []
    assert explains(_t8_record([64, 128, 4], ("claim on B",))) == []
    assert explains(_t8_record([64, 16, 16, 4], ("claim on A",), "identity")) == []
    assert explains(_t8_record([64, 16, 4], ("claim on B",), angle=30.0)) == []
    assert explains({"verdict": "FAIL"}) == []


# --------------------------------------------------------------------------------------------
# figures


def test_every_figure_names_its_checks_by_id_and_verdict(t2_figures: list[Figure]) -> None:
    figs = t2_figures
    assert {f.kind for f in figs} >= {"spectra", "norms", "alignment", "margins", "trajectory"}
    for fig in figs:
        assert fig.subjects, fig.kind
        for s in fig.subjects:
            assert re.fullmatch(r"(#\d|control \w+) T2/(ex|control)/\w+ (PASS|FAIL|"
                                r"INCONCLUSIVE|VACUOUS)", s), s
        assert fig.shows.startswith("Shows: ") and fig.filters
    margins = next(f for f in figs if f.kind == "margins")
    assert margins.subjects == ("#2 T2/ex/setting2 FAIL", "#0 T2/ex/setting0 PASS")


def test_plot_spec_figure_names_its_record() -> None:
    th = jsonable(make_results())["theorems"][0]
    for entry in th["examples"] + th["controls"]:
        entry["series"] = {}  # only the margins and the specs to draw
    th["plots"] = [
        {"kind": "bars", "record": "T2/ex/setting0", "title": "merge", "categories": ["a"],
         "groups": [{"label": "A", "values": [0.5]}]},
        {"kind": "lines", "title": "whole", "lines": [{"label": "l", "x": [1, 2], "y": [1, 2]}]}]
    figs = {f.title: f for f in theorem_figures(th)}
    assert figs["merge"].subjects == ("#0 T2/ex/setting0 PASS",)
    assert figs["merge"].filters == "PASS"
    assert figs["whole"].subjects == ("all checks of T2 (theorem verdict FAIL)",)
    records = {"T2/ex/setting0": ("#0", th["examples"][0])}
    drawn = draw_spec(th["plots"][0], 0, records)
    assert drawn is not None
    try:  # in the picture too: the axes title carries id and verdict
        assert drawn.fig.axes[0].get_title() == "T2/ex/setting0 · PASS"
    finally:
        plt.close(drawn.fig)


def _zero_markers(fig: Any) -> int:
    """How many points are drawn with the zero marker at x = 0 (artists, not pixels)."""
    return sum(len(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()
               if line.get_marker() == ZERO_MARKER and all(x == 0 for x in line.get_xdata()))


def test_zero_margins_are_drawn_as_markers() -> None:
    """T5's case: every margin exactly 0 — bars of no length, so each gets a marker."""
    examples = [{"id": f"T5/ex/{i}", "verdict": "PASS", "margin": 0.0} for i in range(4)]
    drawn = draw_margins(examples)
    assert drawn is not None
    try:
        assert _zero_markers(drawn.fig) == 4
        assert drawn.fig.axes[0].get_xlim() == (-1.0, 1.0)
        assert "4 margin(s) exactly 0" in drawn.caption
    finally:
        plt.close(drawn.fig)
    examples[1]["margin"] = 0.5  # T8's case: zero margins among others
    drawn = draw_margins(examples)
    assert drawn is not None
    try:
        assert _zero_markers(drawn.fig) == 3
    finally:
        plt.close(drawn.fig)


def test_zero_bars_of_a_plot_spec_are_drawn_as_markers() -> None:
    spec = {"kind": "bars", "title": "loss", "categories": ["sum", "mean", "ensemble"],
            "groups": [{"label": "A", "values": [0.0, 0.2, 0.0]},
                       {"label": "B", "values": [0.1, 0.0, None]}]}
    drawn = draw_spec(spec, 0)
    assert drawn is not None
    try:
        markers = [line for line in drawn.fig.axes[0].get_lines()
                   if line.get_marker() == ZERO_MARKER]
        assert sum(len(line.get_ydata()) for line in markers) == 3
        assert "(3)" in drawn.caption
    finally:
        plt.close(drawn.fig)


def test_axes_carry_symbols_and_trends_error_bars() -> None:
    record = {"id": "T5/control/λ trend", "name": "λ trend", "description": "d", "reason": "r",
              "details": {"field": "lam"},
              "series": {"x": [0.01, 0.01, 0.1, 0.1], "rank_tol": [4.0, 6.0, 2.0, 2.0]}}
    spec = plot_spec(record, ("rank_tol",), "rank", "T5")
    assert spec is not None and spec["xlabel"] == "λ" and spec["record"] == record["id"]
    line = spec["lines"][0]
    assert line["y"] == [5.0, 2.0] and line["yerr"] == pytest.approx([2 ** 0.5, 0.0])
    assert symbol("lr") == "η"
    t7 = plot_spec(record, ("rank_tol",), "r", "T7", xlabel="μ")
    assert t7 is not None and t7["xlabel"] == "μ"
    old = dict(spec, xlabel="lr")  # a spec written before the symbols: still Greek
    drawn = draw_spec(old, 0)
    assert drawn is not None
    try:
        ax = drawn.fig.axes[0]
        assert ax.get_xlabel() == "η"
        assert ax.containers, "error bars drawn"
    finally:
        plt.close(drawn.fig)


# --------------------------------------------------------------------------------------------
# formulas


@pytest.mark.parametrize("tid", list(registry()))
def test_every_theorem_formula_is_text(tid: str) -> None:
    latex = registry()[tid].latex
    text, mathml = to_unicode(latex), to_mathml(latex)
    assert "\\" not in text and "{" not in text.replace("_{", "").replace("^{", "")
    assert mathml.startswith("<math ") and mathml.endswith("</math>")
    assert "<mfrac>" in mathml or "\\frac" not in latex
    assert "<msqrt>" in mathml or "\\sqrt" not in latex


def test_formula_conversion() -> None:
    assert to_unicode(r"\cos(W_k, -g_k) \geq \sqrt{1 - r_k^2}") == "cos(Wₖ, −gₖ) ≥ √(1 − rₖ²)"
    assert to_unicode(r"\frac{1}{\lambda n}\sum_i x_i") == "1/(λn) ∑ᵢ xᵢ"
    t5 = to_mathml(r"\operatorname{rank} G_t \le \min(d_{out}, d_{in}, Bm)")
    assert "<mi>rank</mi>" in t5 and "<mo>≤</mo>" in t5 and "\\" not in t5
    with pytest.raises(UnsupportedLatex):
        to_unicode(r"\notacommand{x}")
    assert formula(r"\notacommand{x}") == Math(r"\notacommand{x}")


def test_html_formulas_are_mathml_not_images(rendered: tuple[Path, str, str],
                                             t2_figures: list[Figure]) -> None:
    _, md, page = rendered
    assert page.count("<math ") == 2 and "<mi>rank</mi>" in page
    assert page.count("<img ") == sum(1 for f in t2_figures if f.png)  # figures, no formula
    assert "rank Gₜ ≤ min(dₒᵤₜ, dᵢₙ, Bm)" in md and "$$" not in md


# --------------------------------------------------------------------------------------------
# changes since the baseline / previous run


def _changes(blocks: list) -> list[str]:
    every = list(texts(blocks))
    start = every.index("Changes since the baseline / previous run")
    return every[start + 1: start + 40]


def test_changes_say_none_without_baseline_or_previous() -> None:
    lines = _changes(document(jsonable(make_results()), {}))
    assert lines[0].startswith("None: this run has no baseline or previous run")


def test_changes_show_the_regression_table() -> None:
    data = jsonable(make_results())
    data["regression"] = {"baseline": "reports/baseline/quick.json", "diffs": [
        {"theorem": "T2", "entry": "T2/ex/setting0", "what": "claim held, now fails",
         "baseline": "PASS", "now": "FAIL", "allowed": ""}]}
    lines = _changes(document(data, {}))
    assert lines[0] == "1 change(s) against the baseline reports/baseline/quick.json " \
                       "(python -m verify regress):"
    assert "claim held, now fails" in lines


def test_changes_against_a_previous_run() -> None:
    now = jsonable(make_results())
    before = copy.deepcopy(now)
    before["theorems"][0]["examples"][2]["verdict"] = "PASS"
    before["theorems"][0]["examples"][0]["measured"] = 1.0
    assert snapshot(before)  # a valid results file
    lines = _changes(document(now, {}, previous=before, previous_name="the run in old/"))
    assert lines[0] == "2 change(s) against the run in old/:"
    assert "claim held, now fails" in lines and "measured value moved" in lines
    same = _changes(document(now, {}, previous=copy.deepcopy(now)))
    assert same[0] == "No change beyond the stated tolerances against the previous run."
    broken = _changes(document(now, {}, previous={"schema": 2}))
    assert broken[0].startswith("cannot compare with the previous run:")


# --------------------------------------------------------------------------------------------
# the filter by verdict


def test_filter_by_verdict_is_css_only(rendered: tuple[Path, str, str]) -> None:
    page = rendered[2]
    low = page.lower()
    assert "<script" not in low and not re.search(r"\son[a-z]+\s*=", low)
    assert "javascript:" not in low
    for f in ("all", *FILTERS):
        assert re.search(rf'<input type="radio" class="vf" name="verdict-filter" '
                         rf'id="vf-{f}"', page)
        assert f'<label for="vf-{f}"' in page
    for f in FILTERS:
        assert f'#vf-{f}:checked~.doc [data-v]:not([data-v~="{f}"]){{display:none}}' in page
    # the inputs precede the document they filter (the ~ combinator needs it)
    assert page.index('id="vf-FAIL"') < page.index('<div class="doc">')
    assert '<section data-v="FAIL PASS INCONCLUSIVE known">' in page
    assert '<tr data-v="FAIL known">' in page and '<tr data-v="PASS">' in page
    assert re.search(r'<figure data-v="[^"]*FAIL', page)


def test_filter_tags_a_theorem_by_examples_and_misbehaving_controls() -> None:
    from verify.report.sections import theorem_tags

    th = jsonable(make_results())["theorems"][0]
    th["verdict"] = "PASS"
    th["examples"] = th["examples"][:1]  # one PASS; the control FAILs as expected
    assert theorem_tags(th) == "PASS"
    th["controls"][0].update(verdict="PASS", as_expected=False)
    assert theorem_tags(th) == "PASS"
    th["controls"][0].update(verdict="VACUOUS")
    assert theorem_tags(th) == "PASS VACUOUS"


def test_markdown_and_html_still_say_the_same_thing(t2_figures: list[Figure]) -> None:
    """The new blocks (banner lists, known results, formulas, changes, sections, figure
    subjects) are in both views."""
    from tests.report.test_report import _missing

    data = _known_results()
    data["regression"] = {"baseline": "b.json", "diffs": [
        {"theorem": "T2", "entry": "e", "what": "w", "baseline": "1", "now": "2",
         "allowed": "±0.1"}]}
    figures = {"T2": [replace(f, path=f"figures/T2_{f.kind}.png") for f in t2_figures]}
    blocks = document(data, figures, spec="../docs/theorems.md")
    every = list(texts(blocks))
    assert "cos(Wₖ, −gₖ) ≥ √(1 − rₖ²)" in every
    assert any(t.startswith("Shows: #2 T2/ex/setting2 FAIL") for t in every)
    from verify.report.markdown import to_markdown

    md, page = to_markdown(blocks), to_html(blocks)
    assert _missing(blocks, md, page) == []
    assert '<a href="../docs/theorems.md#T2">' in page
    assert "(../docs/theorems.md#T2)" in md


# --------------------------------------------------------------------------------------------
# docs/theorems.md


def test_docs_theorems_md_is_up_to_date() -> None:
    """docs/theorems.md is what `python -m verify list --markdown` prints (regenerate it
    with that command after changing a theorem module)."""
    committed = (ROOT / SPEC_DOC).read_text(encoding="utf-8")
    assert specification_markdown() == committed


def test_list_markdown_prints_the_specification(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == specification_markdown()
    for tid, thm in registry().items():
        section = out[out.index(f'<a id="{tid}"></a>'):]
        for part in ("**Statement.**", "**Formula.**", "**Provenance.**", "**Assumptions.**",
                     "**Executable form and tolerance derivation**", "**Negative controls**"):
            assert part in section, (tid, part)
        assert thm.source in section
    assert "width qualifier" in out  # T8's known result is part of its specification


def test_report_links_each_theorem_to_its_specification(rendered: tuple[Path, str, str]
                                                         ) -> None:
    out, md, page = rendered
    hrefs = re.findall(r'href="([^"#]*theorems\.md)#(\w+)"', page)
    assert [tid for _, tid in hrefs] == ["T2", "T7"]
    for href, _ in hrefs:
        assert (out / href).resolve() == (ROOT / SPEC_DOC).resolve()
    assert f"{SPEC_DOC}#T2" in md


def test_figure_document_fields_render_in_both_views() -> None:
    fig = Figure("margins", "Margins", "caption", b"\x89PNG", path="figures/x.png",
                 subjects=("#0 T9/ex/a PASS",), filters="PASS")
    from verify.report.markdown import to_markdown

    assert "Shows: #0 T9/ex/a PASS" in to_markdown([fig])
    assert '<figure data-v="PASS">' in to_html([fig]) and "Shows: #0 T9/ex/a PASS" in to_html(
        [fig])
