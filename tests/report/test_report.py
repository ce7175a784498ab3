"""Tests of results.json I/O and of the Markdown/HTML reports (verify.report).

The fixture is a small synthetic run: two theorems (one with rich series, one with none), a
control, ``None`` values and a non-finite float, so the renderer's tolerance of missing data is
exercised without training anything.
"""

from __future__ import annotations

import copy
import html
import json
import math
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mplconfig-"))

import pytest  # after MPLCONFIGDIR is set, before matplotlib loads
from jsonschema import Draft202012Validator

from verify.errors import UsageError
from verify.report import render
from verify.report.document import Block, Figure, texts
from verify.report.figures import theorem_figures
from verify.report.html import to_html
from verify.report.markdown import to_markdown
from verify.report.sections import document
from verify.report.values import slugs
from verify.run.results import (
    SCHEMA,
    json_schema,
    jsonable,
    load_results,
    read_results,
    write_results,
)


def _example(seed: int, margin: float | None, verdict: str, series: bool) -> dict:
    """Example number ``seed`` of T2 (its index in the list is its seed)."""
    ex = {
        "id": f"T2/ex/setting{seed}", "theorem": "T2", "kind": "example", "index": seed,
        "error": None, "series": {},
        "setting": {"widths": [4, 8, 8, 1], "activation": "relu", "lam": 0.01, "n": 16,
                    "seed": seed, "loss": "squared"},
        "verdict": verdict,
        "measured": 1.2e-12 * (seed + 1),
        "bound": 3.4e-10,
        "margin": margin,
        "reason": f"residual within tolerance (seed {seed})",
        "pinned": False,
        "seconds": 0.5 + seed,
        "certificate": {
            "certified": True, "tau": 1e-6, "max_residual": 3e-9, "residual_kind": "gradient",
            "residuals": [1e-9, 2e-9, 3e-9], "clarke_residuals": None, "kinks": 0,
            "grad_norm": 1e-9, "loss_initial": 0.5, "loss_final": 0.1, "loss_decreased": True,
            "min_hessian_eig": None, "hessian_method": "skipped", "collapsed": False,
            "optimizer_steps": 1234, "stop_reason": "gradient below tau", "train_seconds": 0.4,
            "reason": "ok",
            "cost": {"precision": "tf32", "device": "cpu", "steps": 300,
                     "seconds_per_step": 0.0125 * (seed + 1), "parameters": 1000 * (seed + 1),
                     "peak_memory_bytes": 3 * 2**20, "memory": "process peak RSS",
                     "residual_float64": 0.5},
        },
        "details": {"effective_rank": 2.0, "note": "synthetic", "ranks": [2, 2, 1]},
    }
    if series:
        ex["series"] = {
            "singular_values": [[3.0, 1.0, 1e-3, 0.0], [2.0, 0.5, 1e-6], [1.5]],
            "layer_norms": [3.2, 2.1, 1.5],
            "residuals": [1e-3, 1e-2, 0.2],
            "cosines": [1.0 - 4e-7, 1.0 - 4e-5, 0.985],
            "trajectory": [1.0, 0.1, 1e-3, 1e-6, 0.0],
        }
    return ex


def make_results() -> dict:
    """A synthetic run with the awkward cases the renderer must survive."""
    bad = _example(2, -0.5, "FAIL", series=True)
    bad["reason"] = "measured exceeds bound <tag> & more"
    bad["measured"] = float("nan")  # non-finite: stored as null
    bad["certificate"] = None
    no_series = _example(1, None, "INCONCLUSIVE", series=False)
    no_series["bound"] = None
    return {
        "schema": SCHEMA,
        "run": {
            "started": "2026-11-22T07:00:00+00:00", "finished": "2026-11-22T07:02:03+00:00",
            "wall_seconds": 123.4, "seed": 0, "scale": "quick", "device": "cpu",
            "dtype": "float64", "examples": 3, "theorems_requested": ["T2", "T9", "T7"],
            "command": "python -m verify run --scale quick", "git_commit": None,
            "versions": {"python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"},
            "platform": "Linux-test", "threads": 1, "ok": False, "interrupted": True,
            "tau": 1e-6, "workers": 2, "scheduler": None, "resumed_records": 0,
        },
        "theorems": [
            {
                "id": "T2", "title": "Alignment of weights and gradients",
                "source": "Kuzborskij & Abbasi Yadkori, arXiv:2502.17340 v2",
                "statement": "At an approximately stationary point each layer is aligned.",
                "statement_latex": r"\cos(W_k, -g_k) \geq \sqrt{1 - r_k^2}",
                "assumptions": ["homogeneous activation", "weight decay lam > 0"],
                "verdict": "FAIL", "behaved": False, "summary": "1 of 3 examples failed",
                "counts": {"PASS": 1, "FAIL": 1, "INCONCLUSIVE": 1, "VACUOUS": 0},
                "seconds": float("inf"),
                "notes": ["constants are not encoded"],
                "examples": [_example(0, 0.99, "PASS", series=True), no_series, bad],
                "plots": [],
                "controls": [{
                    "id": "T2/control/tanh_control", "theorem": "T2", "kind": "control",
                    "index": 0, "pinned": False, "error": None,
                    "name": "tanh_control", "description": "tanh activation (not homogeneous)",
                    "expected": "FAIL", "verdict": "FAIL", "as_expected": True,
                    "setting": {"widths": [4, 8, 1], "activation": "tanh"},
                    "measured": 0.3, "bound": 0.1, "margin": -2.0, "reason": "misaligned",
                    "certificate": None, "details": {}, "seconds": 0.2,
                    "series": {"residuals": [0.05, 0.3], "cosines": [0.7, 0.2],
                               "trajectory": [1.0, 0.5, 0.4]},
                }],
            },
            {
                "id": "T7", "title": "Empty theorem", "source": "", "statement": "",
                "statement_latex": r"\notacommand{x}", "verdict": "VACUOUS", "behaved": True,
                "summary": "", "counts": {"PASS": 0, "FAIL": 0, "INCONCLUSIVE": 0, "VACUOUS": 0},
                "seconds": None, "notes": [], "assumptions": [], "examples": [], "controls": [],
                "plots": [],
            },
        ],
    }


@pytest.fixture
def results() -> dict:
    return make_results()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One render shared by the read-only tests below (rendering is the slow part)."""
    return render(make_results(), tmp_path_factory.mktemp("report"))


def test_round_trip_replaces_non_finite_with_null(results: dict, tmp_path: Path) -> None:
    original = copy.deepcopy(results)
    path = write_results(results, tmp_path)
    assert path == tmp_path / "results.json"
    assert results["theorems"][0]["seconds"] == math.inf, "input must not be mutated"
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    loaded = load_results(tmp_path)
    assert loaded["theorems"][0]["seconds"] is None
    assert loaded["theorems"][0]["examples"][2]["measured"] is None
    original["theorems"][0]["seconds"] = None
    original["theorems"][0]["examples"][2]["measured"] = None
    assert loaded == original
    assert not [p for p in tmp_path.iterdir() if p.name != "results.json"], "temp file left"


def test_fixture_is_a_valid_results_file(results: dict, tmp_path: Path) -> None:
    """The synthetic run is what a real run writes: valid under the published schema and
    readable as typed records."""
    errors = [e.message for e in Draft202012Validator(json_schema()).iter_errors(
        jsonable(results))]
    assert errors == []
    write_results(results, tmp_path)
    typed = read_results(tmp_path)
    assert [t.id for t in typed.theorems] == ["T2", "T7"]
    assert typed.theorems[0].controls[0].as_expected is True


def test_write_results_refuses_other_schema(results: dict, tmp_path: Path) -> None:
    results["schema"] = 99
    with pytest.raises(UsageError):
        write_results(results, tmp_path)


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_results(tmp_path)
    assert str(tmp_path / "results.json") in str(err.value)
    assert "does not exist" in str(err.value)


def test_load_truncated_json_names_it(results: dict, tmp_path: Path) -> None:
    path = write_results(results, tmp_path)
    path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value) and "not valid JSON" in str(err.value)


def test_load_wrong_schema_names_it(results: dict, tmp_path: Path) -> None:
    path = write_results(results, tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["schema"] = 99
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value) and "99" in str(err.value)
    assert f"schema {SCHEMA}" in str(err.value)


def test_render_writes_both_files(rendered: tuple[Path, Path]) -> None:
    md, html_path = rendered
    assert md.name == "report.md" and html_path.name == "report.html"
    assert md.parent == html_path.parent
    assert md.stat().st_size > 0 and html_path.stat().st_size > 0


def test_html_is_self_contained(rendered: tuple[Path, Path]) -> None:
    page = rendered[1].read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    assert page.count("data:image/png;base64,") >= 5  # figures


def test_html_contains_ids_controls_and_escapes_text(rendered: tuple[Path, Path]) -> None:
    page = rendered[1].read_text(encoding="utf-8")
    for needle in ("T2", "T7", "tanh_control", "Alignment of weights and gradients"):
        assert needle in page
    assert "&lt;tag&gt; &amp; more" in page and "<tag>" not in page
    assert 'href="#theorem-T2"' in page and 'id="theorem-T2"' in page  # table of contents
    assert r"\notacommand{x}" in page  # LaTeX outside the subset falls back to its source
    assert "interrupted" in page and "T9" in page  # partial run, requested but missing


def test_md_has_summary_rows_and_existing_figures(rendered: tuple[Path, Path]) -> None:
    md = rendered[0].read_text(encoding="utf-8")
    out_dir = rendered[0].parent
    assert re.search(r"^\| \[T2\]\(#theorem-T2\) \| Alignment of weights and gradients \| "
                     r"\*\*FAIL\*\* \|", md, re.M)
    assert re.search(r"^\| \[T7\]\(#theorem-T7\) \| Empty theorem \| \*\*VACUOUS\*\* \|", md, re.M)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    kinds = {Path(link).stem.split("_", 1)[1] for link in links}
    assert kinds == {"spectra", "norms", "alignment", "margins", "trajectory"}
    for link in links:
        assert link.startswith("figures/T2_") and (out_dir / link).is_file()
    assert "cos(Wₖ, −gₖ) ≥ √(1 − rₖ²)" in md and r"\sqrt{1 - r_k^2}" in md  # text, source
    assert r"\<tag>" in md and "No examples were run." in md


def test_examples_sorted_worst_first(rendered: tuple[Path, Path]) -> None:
    md = rendered[0].read_text(encoding="utf-8")
    rows = re.findall(r"^\| (#\d) \| `[^`]*` \| \*\*(\w+)\*\*", md, re.M)
    assert rows[:3] == [("#2", "FAIL"), ("#0", "PASS"), ("#1", "INCONCLUSIVE")]


def test_render_tolerates_sparse_results(tmp_path: Path) -> None:
    sparse = {"schema": SCHEMA, "theorems": [
        {"id": "T0", "examples": [{}], "controls": [{}]},
        {"id": "T1", "source": None, "statement": None, "summary": None, "counts": None,
         "seconds": None, "examples": None, "controls": "?", "plots": [{"kind": 3}, 7]}]}
    md, html_path = render(sparse, tmp_path)
    assert "T0" in md.read_text(encoding="utf-8")
    assert "Status" in html_path.read_text(encoding="utf-8")
    render({"schema": SCHEMA}, tmp_path / "empty")


def test_rerender_removes_stale_figures(tmp_path: Path) -> None:
    example = {"verdict": "PASS", "series": {"trajectory": [1.0, 0.5]}}
    results = {"schema": SCHEMA, "theorems": [{"id": "T3", "examples": [example]}]}
    render(results, tmp_path)
    figure = tmp_path / "figures" / "T3_trajectory.png"
    assert figure.is_file()
    del example["series"]
    md, _ = render(results, tmp_path)
    assert not figure.exists() and "figures/" not in md.read_text(encoding="utf-8")


def test_plot_specs_render(tmp_path: Path) -> None:
    results = {"schema": 1, "run": {"ok": True}, "theorems": [{
        "id": "T9", "title": "plots", "verdict": "PASS", "examples": [], "controls": [],
        "plots": [
            {"kind": "lines", "title": "rank vs λ", "xscale": "log",
             "lines": [{"label": "layer 1", "x": [1e-3, 1e-2, 1e-1], "y": [5, 3, 1]}]},
            {"kind": "bars", "title": "merge", "categories": ["A", "B"],
             "groups": [{"label": "sum", "values": [0.9, None]}]},
            {"kind": "contour", "title": "rank over (η, λ)", "x": [1, 2, 3], "y": [1, 2],
             "z": [[1, 2, 3], [2, 3, 4]]},
            {"kind": "unknown"}]}]}
    _md, html_path = render(results, tmp_path)
    page = html_path.read_text()
    for title in ("rank vs λ", "merge", "rank over (η, λ)"):
        assert title in page
    assert page.count("data:image/png;base64,") >= 3


def test_training_cost_table_lists_networks_largest_first(rendered: tuple[Path, Path]
                                                          ) -> None:
    md = rendered[1].read_text() if rendered[1].suffix == ".md" else rendered[0].read_text()
    assert "Training cost" in md
    table = md[md.index("Training cost"):]
    assert "tf32 on cpu" in table and "3 MiB (process peak RSS)" in table
    # seed 1 (2000 parameters, 0.025 s/step) before seed 0 (1000, 0.0125)
    assert table.index("| 2000 |") < table.index("| 1000 |")
    assert table.index("0.025") < table.index("0.0125")


def _plain(text: str) -> str:
    return " ".join(text.split())


def _missing(blocks: list[Block], md: str, page: str) -> list[str]:
    """Texts of the document absent from the Markdown or the HTML (as a reader sees them:
    Markdown escapes removed; HTML tags removed, image alt texts kept, entities decoded)."""
    md_text = _plain(re.sub(r"\\([\\`*|<])", r"\1", md))
    page = re.sub(r'<img alt="([^"]*)"[^>]*>', r" \1 ", page)
    # a formula reads as its alternative text (the Unicode line)
    page = re.sub(r'<math [^>]*alttext="([^"]*)"[^>]*>.*?</math>', r" \1 ", page, flags=re.S)
    html_text = _plain(html.unescape(re.sub(r"<[^>]+>", " ", page)))
    return [t for t in texts(blocks)
            if _plain(t) not in md_text or _plain(t) not in html_text]


def test_markdown_and_html_say_the_same_thing() -> None:
    """One document model, two renderers: every text and number of the document appears in
    both views (including a figure that failed and a formula mathtext cannot typeset)."""
    data = jsonable(make_results())
    theorems = data["theorems"]
    figures = {slug: [replace(f, path=f"figures/{slug}_{f.kind}.png") if f.png else f
                      for f in theorem_figures(th)]
               for th, slug in zip(theorems, slugs(theorems), strict=True)}
    figures["T7"] = [Figure("spectra", "Singular value spectra", "", error="ValueError: x<0")]
    blocks = document(data, figures)
    every = list(texts(blocks))
    assert len(every) > 200 and "1.2e-12" in every and "tanh_control" in every
    assert "figure spectra could not be drawn: ValueError: x<0" in every
    md, page = to_markdown(blocks), to_html(blocks)
    assert _missing(blocks, md, page) == []
    # the comparison sees a renderer that drops a block
    assert _missing(blocks, md, to_html(blocks[:-1])) == list(texts(blocks[-1:]))


def test_table_specs_render_and_lead_figures_open_the_section(tmp_path: Path) -> None:
    results = {"schema": 1, "run": {"ok": True}, "theorems": [{
        "id": "T8", "title": "merging", "verdict": "FAIL", "statement": "STATEMENT",
        "examples": [], "controls": [],
        "plots": [
            {"kind": "lines", "title": "later figure",
             "lines": [{"label": "a", "x": [1, 2], "y": [1, 2]}]},
            {"kind": "lines", "title": "width curve", "lead": True,
             "lines": [{"label": "gap", "x": [16, 32], "y": [0.3, 0.1]}]},
            {"kind": "table", "title": "deviations", "columns": ["family", "balance"],
             "rows": [["biases", "0.1"], ["tanh", "0.04"]]},
            {"kind": "table", "title": "ragged", "columns": ["a", "b"], "rows": [["1"]]}]}]}
    md, _ = render(results, tmp_path)
    text = md.read_text(encoding="utf-8")
    assert "deviations" in text and "ragged" not in text  # a malformed table is left out
    assert text.index("width curve") < text.index("STATEMENT") < text.index("later figure")
