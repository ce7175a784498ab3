"""The report's lead: the status banner with its reasons, and the changes since the
baseline or the previous run.

The banner names every part that did not behave — a FAILed example, a control that missed
its expected verdict, a harness error — each on one line with its reason, and lists apart
the FAILs the theorem itself explains (known results, :class:`verify.claims.theorem.Known`,
recorded by the runner in ``theorem["known"]``), so a reader sees at once what is broken
and what is expected.
"""

from __future__ import annotations

from verify.errors import UsageError
from verify.report.document import Block, Bullets, Cell, Heading, Paragraph, Table
from verify.report.values import as_dict, dicts, fmt, strs, verdict_text
from verify.run.records import DIFF_COLUMNS

MAX_REASON = 200  # characters of a reason on the banner (the full text is in its section)
MAX_LINES = 12  # banner lines per list; the rest are counted


def one_line(text: object, limit: int = MAX_REASON) -> str:
    """``text`` flattened to one line and shortened to ``limit`` characters."""
    t = " ".join(str(text if text is not None else "—").split())
    return t if len(t) <= limit else t[: limit - 1].rstrip() + "…"


def known_of(theorem: dict) -> dict[str, str]:
    """The theorem's known results, check id → explanation (from results.json)."""
    return {str(k): str(v) for k, v in as_dict(theorem.get("known")).items()}


def _entry(theorem: dict, kind: str, i: int, e: dict) -> str:
    tid = fmt(theorem.get("id"))
    what = f"example #{i}" if kind == "example" else f"control {fmt(e.get('name'))}"
    ident = e.get("id")
    return f"{tid} {what}" + (f" ({ident})" if isinstance(ident, str) and ident else "")


def problems(theorem: dict) -> tuple[list[str], list[str]]:
    """One line per part of ``theorem`` that did not behave, and one per known result."""
    known = known_of(theorem)
    bad: list[str] = []
    explained: list[str] = []
    for i, e in enumerate(dicts(theorem.get("examples"))):
        head = _entry(theorem, "example", i, e)
        if e.get("error"):
            bad.append(f"{head}: harness error — {one_line(e.get('error'))}")
        elif e.get("verdict") == "FAIL" and e.get("id") in known:
            explained.append(f"{head}: FAIL — known result, {one_line(known[e['id']])}")
        elif e.get("verdict") == "FAIL":
            bad.append(f"{head}: FAIL — {one_line(e.get('reason'))}")
    for i, c in enumerate(dicts(theorem.get("controls"))):
        head = _entry(theorem, "control", i, c)
        if c.get("error"):
            bad.append(f"{head}: harness error — {one_line(c.get('error'))}")
        elif c.get("as_expected") is False:
            bad.append(f"{head}: expected {verdict_text(c.get('expected'))}, got "
                       f"{verdict_text(c.get('verdict'))} — {one_line(c.get('reason'))}")
    if theorem.get("behaved") is False and not bad:
        bad.append(f"{fmt(theorem.get('id'))}: did not behave as expected — "
                   f"{one_line(theorem.get('summary'))}")
    return bad, explained


def _capped(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_LINES:
        return tuple(lines)
    return (*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more (see the sections)")


def status_blocks(results: dict, theorems: list[dict]) -> list[Block]:
    """The banner: overall status, then the failing parts with their reasons, then the
    known results; an interrupted or partial run and a regression are flagged here too."""
    run = as_dict(results.get("run"))
    bad_ids = [str(t.get("id", "?")) for t in theorems if t.get("behaved") is False]
    bad: list[str] = []
    explained: list[str] = []
    for t in theorems:
        b, k = problems(t)
        bad += b if t.get("behaved") is not True else []
        explained += k
    blocks: list[Block] = []
    if bad_ids:
        blocks.append(Paragraph(f"did not behave as expected: {', '.join(bad_ids)} — "
                                f"{len(bad)} failing part(s):", "Status", "bad"))
        blocks.append(Bullets(_capped(bad), "bad"))
    elif run.get("ok") is True:
        extra = f" ({len(explained)} known result(s), listed below)" if explained else ""
        blocks.append(Paragraph(f"all theorems behaved as expected{extra}", "Status", "ok"))
    elif run.get("ok") is False:
        blocks.append(Paragraph("the run reported a failure (ok = false)", "Status", "bad"))
    else:
        blocks.append(Paragraph("unknown (the run did not record ok)", "Status", "warn"))
    if explained:
        blocks.append(Paragraph(f"{len(explained)} FAIL(s) the theorems explain — expected, "
                                "not a broken theorem:", "Known results", "known"))
        blocks.append(Bullets(_capped(explained), "known"))
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
        label = f"Regression against {fmt(reg.get('baseline'))}"
        if rows:
            blocks.append(Paragraph(f"{len(rows)} change(s): see Changes below", label, "bad"))
        else:
            blocks.append(Paragraph("no change beyond the stated tolerances", label, "ok"))
    return blocks


def _diff_table(rows: list[dict]) -> Table:
    return Table(DIFF_COLUMNS, tuple(tuple(Cell(str(r.get(h, "—"))) for h in DIFF_COLUMNS)
                                     for r in rows))


def previous_diff(results: dict, previous: dict) -> list[dict[str, str]]:
    """The rows of ``verify regress`` between a previous run's results and this one's (the
    previous run taken as the baseline; measured values within the baseline's stated
    tolerance, :mod:`verify.run.regression`)."""
    from verify.run import regression

    return regression.compare(regression.snapshot(previous), regression.snapshot(results))


def changes_blocks(results: dict, previous: dict | None = None,
                   previous_name: str = "the previous run") -> list[Block]:
    """"Changes since the baseline / previous run": the regression table ``verify regress``
    recorded in the results, else the comparison with ``previous``, else a line saying
    there is nothing to compare with."""
    blocks: list[Block] = [Heading(2, "Changes since the baseline / previous run", "changes")]
    reg = as_dict(results.get("regression"))
    if reg:
        rows = dicts(reg.get("diffs"))
        where = f"baseline {fmt(reg.get('baseline'))} (python -m verify regress)"
        if rows:
            return [*blocks, Paragraph(f"{len(rows)} change(s) against the {where}:",
                                       style="bad"), _diff_table(rows)]
        return [*blocks, Paragraph(f"No change beyond the stated tolerances against the "
                                   f"{where}.", style="ok")]
    if previous is not None:
        try:
            rows = previous_diff(results, previous)
        except UsageError as exc:
            return [*blocks, Paragraph(f"cannot compare with {previous_name}: {exc}",
                                       style="warn")]
        if rows:
            return [*blocks, Paragraph(f"{len(rows)} change(s) against {previous_name}:",
                                       style="bad"), _diff_table(rows)]
        return [*blocks, Paragraph(f"No change beyond the stated tolerances against "
                                   f"{previous_name}.", style="ok")]
    return [*blocks, Paragraph(
        "None: this run has no baseline or previous run to compare with. \"python -m verify "
        "regress DIR\" compares it with the committed baseline; \"python -m verify report DIR "
        "--previous OLD_DIR\" with an earlier run.", style="muted")]
