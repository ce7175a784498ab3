"""The report's content: results.json turned into document blocks (:mod:`.document`).

One function per section — status, contents, summary, training cost, run, and per theorem
its claim, examples (worst first), controls and figures. Both views are rendered from the
blocks built here, so a section says the same thing in Markdown and in HTML. The data is
read defensively (:mod:`.values`): a missing key or a ``null`` shows as "—".
"""

from __future__ import annotations

from collections.abc import Sequence

from verify.report.document import (
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
    Table,
)
from verify.report.figures import latex_png
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
from verify.run.records import DIFF_COLUMNS
from verify.run.results import RESULTS_NAME


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Table:
    return Table(tuple(headers), tuple(tuple(r) for r in rows))


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


def _status_blocks(results: dict, theorems: list[dict]) -> list[Block]:
    run = as_dict(results.get("run"))
    bad = [str(t.get("id", "?")) for t in theorems if t.get("behaved") is False]
    blocks: list[Block] = []
    if run.get("ok") is True and not bad:
        blocks.append(Paragraph("all theorems behaved as expected", "Status", "ok"))
    elif bad:
        blocks.append(Paragraph("did not behave as expected: " + ", ".join(bad), "Status",
                                "bad"))
    elif run.get("ok") is False:
        blocks.append(Paragraph("the run reported a failure (ok = false)", "Status", "bad"))
    else:
        blocks.append(Paragraph("unknown (the run did not record ok)", "Status", "warn"))
    if run.get("interrupted") is True:
        blocks.append(Paragraph("the run was interrupted; the results below are partial.",
                                "Interrupted", "warn"))
    reported = {str(t.get("id")) for t in theorems}
    missing = [t for t in strs(run.get("theorems_requested")) if t not in reported]
    if missing:
        blocks.append(Paragraph(", ".join(missing), "Requested but not reported", "warn"))
    reg = as_dict(results.get("regression"))
    if reg:
        rows = dicts(reg.get("diffs"))
        label = f"Regression against {reg.get('baseline', '?')}"
        if not rows:
            blocks.append(Paragraph("no change beyond the stated tolerances", label, "ok"))
        else:
            blocks.append(Paragraph(f"{len(rows)} change(s): see the table", label, "bad"))
            blocks.append(table(DIFF_COLUMNS, [[Cell(str(r.get(h, "—"))) for h in DIFF_COLUMNS]
                                               for r in rows]))
    return blocks


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
            Cell(_controls_ok(th), "num"),
            Cell(fmt_seconds(th.get("seconds")), "num"),
        ])
    headers = ["id", "title", "verdict", "behaved", *VERDICTS, "controls as expected", "seconds"]
    if not rows:
        return [Heading(2, "Summary", "summary"), Paragraph("No theorems were reported.")]
    return [Heading(2, "Summary", "summary"), table(headers, rows)]


def _examples_blocks(examples: list[dict]) -> list[Block]:
    blocks: list[Block] = [Heading(3, f"Examples ({len(examples)})")]
    if not examples:
        return [*blocks, Paragraph("No examples were run.", style="muted")]
    rows = []
    for i, ex in worst_first(examples):
        rows.append([
            Cell(f"#{i}", "num"),
            Cell(verdict_text(ex.get("verdict")), "verdict"),
            num_cell(ex.get("measured")),
            num_cell(ex.get("bound")),
            num_cell(ex.get("margin")),
            Cell(setting_text(ex.get("setting")) or "—", "code"),
            Cell(_certificate_text(ex.get("certificate"))),
            Cell(fmt(ex.get("reason"))),
        ])
    headers = ["#", "verdict", "measured", "bound", "margin", "setting",
               "certificate: max residual (kind)", "reason"]
    blocks += [Paragraph("Sorted worst first (FAIL, then ascending margin).", style="muted"),
               table(headers, rows)]
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
            Cell(fmt(c.get("description"))),
            Cell(verdict_text(c.get("expected")), "verdict"),
            Cell(verdict_text(c.get("verdict")), "verdict"),
            Cell(check_mark(c.get("as_expected")), "check"),
            num_cell(c.get("measured")),
            num_cell(c.get("bound")),
            num_cell(c.get("margin")),
            Cell(fmt(c.get("reason"))),
        ])
    headers = ["name", "description", "expected", "verdict", "as expected", "measured", "bound",
               "margin", "reason"]
    blocks.append(table(headers, rows))
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


def _theorem_blocks(theorem: dict, slug: str, figures: list[Figure]) -> list[Block]:
    tid, title = fmt(theorem.get("id")), fmt(theorem.get("title"))
    verdict = verdict_text(theorem.get("verdict"))
    blocks: list[Block] = [Heading(2, f"{tid} — {title}", f"theorem-{slug}", verdict)]
    blocks.append(Paragraph(fmt(theorem.get("source")), "Source"))
    summary = theorem.get("summary")
    blocks.append(Paragraph(fmt(summary) if summary else "", "Verdict", verdict=verdict))
    counts = _counts(theorem)
    blocks.append(Paragraph(
        " · ".join(f"{v} {counts[v]}" for v in VERDICTS)
        + f"; controls as expected {_controls_ok(theorem)}"
        + f"; behaved {check_mark(theorem.get('behaved'))}"
        + f"; time {fmt_seconds(theorem.get('seconds'))}",
        "Counts",
    ))
    blocks.append(Paragraph(fmt(theorem.get("statement")), "Statement"))
    latex = theorem.get("statement_latex")
    if isinstance(latex, str) and latex.strip():
        blocks.append(Math(latex, latex_png(latex)))
    assumptions = strs(theorem.get("assumptions"))
    if assumptions:
        blocks += [Heading(3, "Assumptions"), Bullets(tuple(assumptions))]
    notes = strs(theorem.get("notes"))
    if notes:
        blocks += [Heading(3, "Notes"), Bullets(tuple(notes))]
    blocks += _examples_blocks(dicts(theorem.get("examples")))
    blocks += _controls_blocks(dicts(theorem.get("controls")))
    blocks.append(Heading(3, "Figures"))
    if not figures:
        blocks.append(Paragraph("No recorded series to plot.", style="muted"))
    blocks += figures
    return blocks


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


def document(results: dict, figures: dict[str, list[Figure]]) -> list[Block]:
    """The whole report of ``results`` (JSON data); ``figures`` by theorem stem
    (:func:`verify.report.values.slugs`)."""
    theorems = dicts(results.get("theorems"))
    stems = slugs(theorems)
    blocks: list[Block] = [Heading(1, "Verification report")]
    blocks += _status_blocks(results, theorems)
    if theorems:
        blocks.append(Contents(tuple(
            (f"theorem-{s}", f"{fmt(t.get('id'))} — {fmt(t.get('title'))}",
             verdict_text(t.get("verdict")))
            for t, s in zip(theorems, stems, strict=True))))
    blocks += _summary_blocks(theorems, stems)
    blocks += _cost_blocks(theorems)
    blocks += _run_blocks(results)
    for th, slug in zip(theorems, stems, strict=True):
        blocks += _theorem_blocks(th, slug, figures.get(slug, []))
    blocks.append(Paragraph(
        f"Rendered by verify.report from {RESULTS_NAME} (schema {fmt(results.get('schema'))}). "
        "Numbers are shown to 3 significant digits; — means missing or not finite.",
        style="footer",
    ))
    return blocks
