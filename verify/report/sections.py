"""The report's content: results.json turned into document blocks (:mod:`.document`).

One function per section — status (:mod:`.status`), contents, summary, changes since the
baseline or previous run, training cost, run, and per theorem its claim (the formula as
MathML and Unicode text, :mod:`.mathml`; a link to its specification in
``docs/theorems.md``), known results, examples (worst first), controls and figures. Both
views are rendered from the blocks built here, so a section says the same thing in Markdown
and in HTML. Rows, figures and theorem sections carry verdict tags for the HTML view's
filter. The data is read defensively (:mod:`.values`): a missing key or a ``null`` shows
as "—".
"""

from __future__ import annotations

from collections.abc import Sequence

from verify.report.document import (
    KNOWN,
    Block,
    Bullets,
    Cell,
    CellKind,
    Contents,
    Figure,
    Fold,
    Heading,
    Math,
    Paragraph,
    Section,
    Table,
)
from verify.report.mathml import UnsupportedLatex, to_mathml, to_unicode
from verify.report.status import changes_blocks, known_of, one_line, status_blocks
from verify.report.values import (
    VERDICTS,
    as_dict,
    check_mark,
    dicts,
    fmt,
    fmt_seconds,
    num,
    setting_text,
    slugs,
    strs,
    verdict_text,
    worst_first,
)
from verify.run.results import RESULTS_NAME

SPEC_DOC = "docs/theorems.md"  # the theorems' specifications (python -m verify list --markdown)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]],
          filters: Sequence[str] = ()) -> Table:
    return Table(tuple(headers), tuple(tuple(r) for r in rows), tuple(filters))


def _row_tags(entry: dict, known: dict[str, str]) -> str:
    v = entry.get("verdict")
    out = [v] if isinstance(v, str) and v else []
    if entry.get("id") in known and v == "FAIL":
        out.append(KNOWN)
    return " ".join(out)


def theorem_tags(theorem: dict) -> str:
    """What the verdict filter matches a theorem's section and summary row on: its verdict,
    its examples' verdicts, ``known``, and the verdicts of controls that missed their
    expected verdict (a control that FAILs as expected is no failure to look at)."""
    known = known_of(theorem)
    out = [theorem.get("verdict")]
    for e in dicts(theorem.get("examples")):
        out += _row_tags(e, known).split()
    for c in dicts(theorem.get("controls")):
        if c.get("as_expected") is False:
            out += _row_tags(c, known).split()
    return " ".join(dict.fromkeys(v for v in out if isinstance(v, str) and v))


def formula(latex: str) -> Math:
    """A displayed formula as MathML and Unicode text (the LaTeX source where it is
    outside the converter's subset)."""
    try:
        text = to_unicode(latex)
        return Math(latex, to_mathml(latex, text), text)
    except UnsupportedLatex:
        return Math(latex)


def num_cell(x: object) -> Cell:
    return Cell(fmt(x), "num")


def _counts(theorem: dict) -> dict[str, int]:
    raw = as_dict(theorem.get("counts"))
    if raw:
        return {v: int(raw[v]) if num(raw.get(v)) is not None else 0 for v in VERDICTS}
    out = dict.fromkeys(VERDICTS, 0)
    for ex in dicts(theorem.get("examples")):
        if ex.get("verdict") in out:
            out[ex["verdict"]] += 1
    return out


def _controls_ok(theorem: dict) -> str:
    controls = dicts(theorem.get("controls"))
    if not controls:
        return "—"
    return f"{sum(1 for c in controls if c.get('as_expected') is True)}/{len(controls)}"


def _certificate_text(cert: object) -> str:
    c = as_dict(cert)
    if not c:
        return "—"
    parts = [f"{fmt(c.get('max_residual'))} ({fmt(c.get('residual_kind'))})"]
    if c.get("kinks") is not None:
        parts.append(f"kinks {fmt(c.get('kinks'))}")
    parts.append(f"certified {check_mark(c.get('certified'))}")
    parts.append(fmt(as_dict(c.get("established")).get("summary", "established: not recorded")))
    return ", ".join(parts)


def _entry_detail_line(label: str, entry: dict) -> str | None:
    """Everything about one example/control not already in its table row, on one line."""
    bits = []
    cert = as_dict(entry.get("certificate"))
    if cert:
        bits.append("certificate: " + ", ".join(f"{k}={fmt(v)}" for k, v in cert.items()))
    details = as_dict(entry.get("details"))
    if details:
        bits.append("details: " + ", ".join(f"{k}={fmt(v)}" for k, v in details.items()))
    if not bits:
        return None
    head = f"{label} ({verdict_text(entry.get('verdict'))}, {fmt_seconds(entry.get('seconds'))})"
    return f"{head}: " + "; ".join(bits)


def _run_blocks(results: dict) -> list[Block]:
    run = as_dict(results.get("run"))
    rows: list[list[Cell]] = []

    def add(name: str, value: object, kind: CellKind = "text") -> None:
        rows.append([Cell(name), Cell(fmt(value), kind)])

    order = ("started", "finished")
    for key in order:
        add(key, run.get(key))
    rows.append([Cell("wall time"), Cell(fmt_seconds(run.get("wall_seconds")))])
    for key in ("seed", "scale", "device", "dtype", "threads", "examples"):
        add(key, run.get(key))
    requested = run.get("theorems_requested")
    add("theorems requested", ", ".join(strs(requested)) if requested is not None else None)
    add("git commit", run.get("git_commit"), "code")
    add("platform", run.get("platform"))
    for name, version in as_dict(run.get("versions")).items():
        add(f"version: {name}", version)
    add("command", run.get("command"), "code")
    add("ok", run.get("ok"))
    add("interrupted", run.get("interrupted"))
    shown = {*order, "wall_seconds", "seed", "scale", "device", "dtype", "threads", "examples",
             "theorems_requested", "git_commit", "platform", "versions", "command", "ok",
             "interrupted"}
    for key, value in run.items():
        if key not in shown:
            add(key, value)
    return [Heading(2, "Run", "run"), table(["field", "value"], rows)]


def _summary_blocks(theorems: list[dict], stems: list[str]) -> list[Block]:
    rows = []
    for th, slug in zip(theorems, stems, strict=True):
        counts = _counts(th)
        rows.append([
            Cell(fmt(th.get("id")), "link", f"theorem-{slug}"),
            Cell(fmt(th.get("title"))),
            Cell(verdict_text(th.get("verdict")), "verdict"),
            Cell(check_mark(th.get("behaved")), "check"),
            *(Cell(str(counts[v]), "num") for v in VERDICTS),
            Cell(str(len(known_of(th))), "num"),
            Cell(_controls_ok(th), "num"),
            Cell(fmt_seconds(th.get("seconds")), "num"),
        ])
    headers = ["id", "title", "verdict", "behaved", *VERDICTS, "known results",
               "controls as expected", "seconds"]
    if not rows:
        return [Heading(2, "Summary", "summary"), Paragraph("No theorems were reported.")]
    return [Heading(2, "Summary", "summary"),
            table(headers, rows, [theorem_tags(t) for t in theorems])]


def _examples_blocks(examples: list[dict], known: dict[str, str]) -> list[Block]:
    blocks: list[Block] = [Heading(3, f"Examples ({len(examples)})")]
    if not examples:
        return [*blocks, Paragraph("No examples were run.", style="muted")]
    rows = []
    order = worst_first(examples)
    for i, ex in order:
        explained = known.get(str(ex.get("id"))) if ex.get("verdict") == "FAIL" else None
        rows.append([
            Cell(f"#{i}", "num"),
            Cell(fmt(ex.get("id")), "id"),
            Cell(verdict_text(ex.get("verdict")), "verdict"),
            *([Cell(explained.split(":", 1)[0] if explained else "—")] if known else []),
            num_cell(ex.get("measured")),
            num_cell(ex.get("bound")),
            num_cell(ex.get("margin")),
            Cell(setting_text(ex.get("setting")) or "—", "code"),
            Cell(_certificate_text(ex.get("certificate"))),
            Cell(fmt(ex.get("reason"))),
        ])
    headers = ["#", "id", "verdict", *(["known result"] if known else []), "measured", "bound",
               "margin", "setting", "certificate: max residual (kind)", "reason"]
    blocks += [Paragraph("Sorted worst first (FAIL, then ascending margin).", style="muted"),
               table(headers, rows, [_row_tags(ex, known) for _, ex in order])]
    found = [_entry_detail_line(f"#{i} {fmt(ex.get('id'))}", ex)
             for i, ex in worst_first(examples)]
    lines = tuple(x for x in found if x)
    if lines:
        blocks.append(Fold(f"Certificates and details of the examples ({len(lines)})",
                           (Bullets(lines),)))
    return blocks


def _controls_blocks(controls: list[dict]) -> list[Block]:
    blocks: list[Block] = [Heading(3, f"Controls ({len(controls)})")]
    if not controls:
        return [*blocks, Paragraph("No controls were run.", style="muted")]
    rows = []
    for c in controls:
        rows.append([
            Cell(fmt(c.get("name")), "code"),
            Cell(fmt(c.get("id")), "id"),
            Cell(fmt(c.get("description"))),
            Cell(verdict_text(c.get("expected")), "verdict"),
            Cell(verdict_text(c.get("verdict")), "verdict"),
            Cell(check_mark(c.get("as_expected")), "check"),
            num_cell(c.get("measured")),
            num_cell(c.get("bound")),
            num_cell(c.get("margin")),
            Cell(fmt(c.get("reason"))),
        ])
    headers = ["name", "id", "description", "expected", "verdict", "as expected", "measured",
               "bound", "margin", "reason"]
    blocks.append(table(headers, rows, [_row_tags(c, {}) for c in controls]))
    lines: list[str] = []
    for c in controls:
        setting = setting_text(c.get("setting"))
        line = _entry_detail_line(f"control {fmt(c.get('name'))}", c)
        if setting:
            line = (line or f"control {fmt(c.get('name'))}") + f"; setting: {setting}"
        if line:
            lines.append(line)
    if lines:
        blocks.append(Fold(f"Settings, certificates and details of the controls ({len(lines)})",
                           (Bullets(tuple(lines)),)))
    return blocks


def _theorem_blocks(theorem: dict, slug: str, figures: list[Figure], spec: str | None
                    ) -> list[Block]:
    tid, title = fmt(theorem.get("id")), fmt(theorem.get("title"))
    verdict = verdict_text(theorem.get("verdict"))
    known = known_of(theorem)
    blocks: list[Block] = [Heading(2, f"{tid} — {title}", f"theorem-{slug}", verdict)]
    blocks.append(Paragraph(fmt(theorem.get("source")), "Source"))
    blocks.append(Paragraph(
        f"{SPEC_DOC}#{tid} (statement, assumptions, executable form, provenance, tolerance "
        "derivation, controls)", "Specification", link=f"{spec}#{tid}" if spec else None))
    summary = theorem.get("summary")
    blocks.append(Paragraph(fmt(summary) if summary else "", "Verdict", verdict=verdict))
    counts = _counts(theorem)
    blocks.append(Paragraph(
        " · ".join(f"{v} {counts[v]}" for v in VERDICTS)
        + (f"; known results {len(known)}" if known else "")
        + f"; controls as expected {_controls_ok(theorem)}"
        + f"; behaved {check_mark(theorem.get('behaved'))}"
        + f"; time {fmt_seconds(theorem.get('seconds'))}",
        "Counts",
    ))
    lead = [f for f in figures if f.kind.startswith("lead")]  # a plot spec's "lead": true
    figures = [f for f in figures if not f.kind.startswith("lead")]
    blocks += lead
    blocks.append(Paragraph(fmt(theorem.get("statement")), "Statement"))
    latex = theorem.get("statement_latex")
    if isinstance(latex, str) and latex.strip():
        blocks.append(formula(latex))
    assumptions = strs(theorem.get("assumptions"))
    if assumptions:
        blocks += [Heading(3, "Assumptions"), Bullets(tuple(assumptions))]
    notes = strs(theorem.get("notes"))
    if notes:
        blocks += [Heading(3, "Notes"), Bullets(tuple(notes))]
    if known:
        index = {str(e.get("id")): i for i, e in enumerate(dicts(theorem.get("examples")))}
        blocks += [Heading(3, f"Known results ({len(known)})"),
                   Paragraph("FAILs this theorem explains: expected, not a broken theorem.",
                             style="known"),
                   Bullets(tuple(f"#{index.get(k, '?')} {k}: {one_line(v, 10**4)}"
                                 for k, v in known.items()), "known")]
    blocks += _examples_blocks(dicts(theorem.get("examples")), known)
    blocks += _controls_blocks(dicts(theorem.get("controls")))
    blocks.append(Heading(3, "Figures"))
    if not figures:
        blocks.append(Paragraph("No recorded series to plot.", style="muted"))
    blocks += figures
    return [Section(theorem_tags(theorem), tuple(blocks))]


def _cost_blocks(theorems: list[dict]) -> list[Block]:
    """Time per step and peak memory of every trained network's first phase (largest first),
    and where it left the residual: the large scale's question (float32/TF32, then float64)."""
    rows: list[tuple[float, list[Cell]]] = []
    for th in theorems:
        for kind, entries in (("example", th.get("examples")), ("control", th.get("controls"))):
            for i, e in enumerate(dicts(entries)):
                cert = as_dict(e.get("certificate"))
                cost = as_dict(cert.get("cost"))
                if not cost:
                    continue
                peak = num(cost.get("peak_memory_bytes"))
                rows.append((num(cost.get("parameters")) or 0.0, [
                    Cell(f"{fmt(th.get('id'))} {kind} #{i}"),
                    Cell(setting_text(e.get("setting"), key_only=True) or "—", "code"),
                    num_cell(cost.get("parameters")),
                    Cell(f"{fmt(cost.get('precision'))} on {fmt(cost.get('device'))}"),
                    num_cell(cost.get("steps")),
                    num_cell(cost.get("seconds_per_step")),
                    Cell(f"{peak / 2**20:.0f} MiB ({fmt(cost.get('memory'))})"
                         if peak is not None else "—"),
                    num_cell(cost.get("residual_float64")),
                    num_cell(cert.get("max_residual")),
                    Cell(fmt_seconds(cert.get("train_seconds")), "num"),
                ]))
    if not rows:
        return []
    rows.sort(key=lambda r: -r[0])
    heads = ["entry", "setting", "parameters", "first phase", "steps", "s/step", "peak memory",
             "r after first phase (float64)", "r certified (float64)", "train time"]
    return [Fold(f"Training cost ({len(rows)} networks, largest first)", (
        Paragraph("First phase = the GD/SGD steps at the setting's precision; polishing and "
                  "the certificate are float64. Peak memory on a CPU is the worker process's "
                  "peak RSS so far (an upper bound); on a GPU, the CUDA allocator's peak "
                  "during the phase.", style="muted"),
        table(heads, [r for _, r in rows])))]


def document(results: dict, figures: dict[str, list[Figure]], *, previous: dict | None = None,
             previous_name: str = "the previous run", spec: str | None = None
             ) -> list[Block]:
    """The whole report of ``results`` (JSON data); ``figures`` by theorem stem
    (:func:`verify.report.values.slugs`); ``previous``: an earlier run's results to list the
    changes against (when the results carry no regression); ``spec``: the URL of
    ``docs/theorems.md`` relative to the report, when the report can link to it."""
    theorems = dicts(results.get("theorems"))
    stems = slugs(theorems)
    blocks: list[Block] = [Heading(1, "Verification report")]
    blocks += status_blocks(results, theorems)
    if theorems:
        blocks.append(Contents(tuple(
            (f"theorem-{s}", f"{fmt(t.get('id'))} — {fmt(t.get('title'))}",
             verdict_text(t.get("verdict")))
            for t, s in zip(theorems, stems, strict=True)),
            tuple(theorem_tags(t) for t in theorems)))
    blocks += _summary_blocks(theorems, stems)
    blocks += changes_blocks(results, previous, previous_name)
    blocks += _cost_blocks(theorems)
    blocks += _run_blocks(results)
    for th, slug in zip(theorems, stems, strict=True):
        blocks += _theorem_blocks(th, slug, figures.get(slug, []), spec)
    blocks.append(Paragraph(
        f"Rendered by verify.report from {RESULTS_NAME} (schema {fmt(results.get('schema'))}). "
        "Numbers are shown to 3 significant digits; — means missing or not finite.",
        style="footer",
    ))
    return blocks
