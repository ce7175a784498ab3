"""The single-model report of an audit: ``audit.md``, ``audit.html`` (self-contained, nothing
fetched at view time) and ``audit.json``, all from one document (:func:`document`).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify.audit.convert import describe, parameter_count

# an audit record (verify.audit.core.Audit, which imports this module: annotated loosely so
# that the import graph keeps no cycle, TYPE_CHECKING imports included)
Audit = Any

# the layer columns the Markdown/HTML table shows (audit.json and Audit.layers have all)
SHOWN = ("layer_id", "name", "layer_type", "shape", "fro_norm", "spec_norm", "stable_rank",
         "num_rank", "matrix_rank", "r_k", "cos", "D_1", "D_2", "D_4", "D_8")


def _clean(x: Any) -> Any:
    """JSON-safe: non-finite floats as strings ("inf", "nan"), numpy scalars as Python."""
    if hasattr(x, "item") and not isinstance(x, (list, dict, str)):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def established(a: Audit) -> str:
    """What the certificate established, in one sentence (THEOREMS.md, "What every check
    must satisfy": residual level, second-order test on which subspace, local not global)."""
    c = a.certificate
    kinks = f", {c.kinks} kinks" if c.kinks else ""
    rel = "≤" if c.max_residual <= c.tau else ">"
    eig = ("not computed" if c.min_hessian_eig is None
           else f"λ_min(∇²F) = {c.min_hessian_eig:.3g}")
    return (f"max_k r_k = {c.max_residual:.2e} ({c.residual_kind}{kinks}) {rel} τ = {c.tau:.0e}; "
            f"second order: {eig} ({c.hessian_method}); F(θ) = {c.loss_final:.6g} vs "
            f"F(0) = {c.loss_initial:.6g}; a local statement, not a global one.")


def document(a: Audit) -> dict[str, Any]:
    """Everything the report shows, JSON-safe."""
    obj = a.objective
    return _clean({
        "audit": {"source": a.source, "model": describe(obj.arch),
                  "dtype": a.model.dtype, "parameters": parameter_count(a.model),
                  "data": obj.data.name, "n": obj.data.n, "loss": obj.data.loss,
                  "lam": obj.lam, "reg_bias": obj.reg_bias, "seconds": a.seconds},
        "certificate": a.certificate.to_json(), "established": established(a),
        "layers": a.layers.to_dict(orient="records"),
        "checks": [c.to_json() for c in a.checks],
        "moved": None if a.moved is None else a.moved.to_json(),
    })


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _headline(a: Audit) -> str:
    obj = a.objective
    return (f"{describe(obj.arch)}, {parameter_count(a.model):,} parameters (given as "
            f"{a.model.dtype}, audited in float64); data {obj.data.name}, n = {obj.data.n}, "
            f"{obj.data.loss} loss, λ = {obj.lam:g}"
            f"{' (biases decayed too)' if obj.reg_bias and obj.arch.bias else ''}; "
            f"audited in {a.seconds:.1f} s")


def _cert_rows(a: Audit) -> list[tuple[str, str]]:
    c = a.certificate
    r = ", ".join(f"{v:.2e}" for v in c.residuals)
    rows = [("certified", f"{'yes' if c.certified else 'no'}: {c.reason}"),
            ("max r_k (best selection)", f"{c.max_residual:.3e} ({c.residual_kind})"),
            ("r_k, plain gradient", r)]
    if c.clarke_residuals is not None:
        rows.append(("r_k, Clarke at kinks", ", ".join(f"{v:.2e}" for v in c.clarke_residuals)
                     + f" ({c.kinks} kinks)"))
    rows += [("‖∇F‖", f"{c.grad_norm:.3e}"),
             ("λ_min(∇²F)", f"{_fmt(c.min_hessian_eig)} ({c.hessian_method})"),
             ("F(θ) vs F(0)", f"{c.loss_final:.6g} vs {c.loss_initial:.6g}"),
             ("a layer collapsed", "yes" if c.collapsed else "no"),
             ("what was established", established(a))]
    return rows


def _check_rows(a: Audit) -> list[tuple[str, str, str]]:
    judged = [(c.theorem, c.verdict or "", c.reason) for c in a.checks if c.applies]
    other = [(c.theorem, c.status, c.reason) for c in a.checks if not c.applies]
    return judged + other


def _moved_rows(a: Audit) -> list[tuple[str, str]]:
    m = a.moved
    if m is None:
        return []
    rows = [(f"W_{k + 1} ({name})", f"{v:.3e}") for k, (name, v) in
            enumerate(zip(a.model.names, m.relative_change, strict=True))]
    return [*rows, ("θ as a whole", f"{m.total:.3e}"),
            ("F before → after", f"{m.F_before:.8g} → {m.F_after:.8g}"),
            ("polish", f"{m.iterations} iterations, {m.seconds:.1f} s: {m.stop_reason}")]


def _md_table(heads: list[str], rows: Sequence[tuple[str, ...]]) -> list[str]:
    def cell(v: str) -> str:
        return v.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads),
            *["| " + " | ".join(cell(v) for v in r) + " |" for r in rows], ""]


def _layer_rows(a: Audit) -> list[tuple[str, ...]]:
    return [tuple(_fmt(rec[c]) for c in SHOWN) for rec in a.layers.to_dict(orient="records")]


def markdown(a: Audit) -> str:
    out = [f"# Audit: {a.source}", "", _headline(a) + ".", "", "## Certificate", "",
           *_md_table(["quantity", "value"], _cert_rows(a)), "## Layers", "",
           "One row per weight matrix (a conv kernel as c_out × c_in·9). r_k and cos(W_k, −g_k)"
           " for the certificate's gradient selection; D_k = distance to rank k; "
           "`audit.json` has every column (WeightWatcher-style norm, spectral_norm, … too).",
           "", *_md_table(list(SHOWN), _layer_rows(a)), "## Theorems", "",
           *_md_table(["theorem", "verdict", "reason"], _check_rows(a))]
    if a.moved is not None:
        out += ["## Polish: how far the weights moved", "",
                *_md_table(["weights", "‖Δ‖/‖·‖ or value"], _moved_rows(a))]
    return "\n".join(out)


CSS = ("body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
       "padding:.25em .5em;text-align:left}th{background:#f3f3f3}.PASS{color:#11772d}"
       ".FAIL{color:#b00020;font-weight:bold}.INCONCLUSIVE{color:#9a6700}"
       ".VACUOUS{color:#555}.yes{color:#11772d}.no{color:#b00020}")


def _html_table(heads: list[str], rows: Sequence[tuple[str, ...]], cls_col: int | None = None
                ) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in heads)
    body = []
    for r in rows:
        cells = "".join(
            f"<td class=\"{e(v.split()[0] if v else '')}\">{e(v)}</td>" if i == cls_col
            else f"<td>{e(v)}</td>" for i, v in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_page(a: Audit) -> str:
    e = html.escape
    cert = a.certificate
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Audit: {e(a.source)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Audit: {e(a.source)}</h1><p>{e(_headline(a))}.</p>",
             f"<h2>Certificate: <span class=\"{'yes' if cert.certified else 'no'}\">"
             f"{'certified' if cert.certified else 'not certified'}</span></h2>",
             _html_table(["quantity", "value"], _cert_rows(a)), "<h2>Layers</h2>",
             _html_table(list(SHOWN), _layer_rows(a)), "<h2>Theorems</h2>",
             _html_table(["theorem", "verdict", "reason"], _check_rows(a), cls_col=1)]
    if a.moved is not None:
        parts += ["<h2>Polish: how far the weights moved</h2>",
                  _html_table(["weights", "‖Δ‖/‖·‖ or value"], _moved_rows(a))]
    return "".join(parts) + "</body></html>\n"


def write(a: Audit, out: Path) -> tuple[Path, Path]:
    """audit.md, audit.html and audit.json in ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "audit.md", out / "audit.html"
    md.write_text(markdown(a), encoding="utf-8")
    page.write_text(html_page(a), encoding="utf-8")
    (out / "audit.json").write_text(json.dumps(document(a), indent=1, allow_nan=False,
                                               default=str), encoding="utf-8")
    return md, page


def console(a: Audit) -> str:
    """The certificate, the layer table and the theorems, for a terminal."""
    c = a.certificate
    lines = [f"audit of {a.source}: {_headline(a)}",
             f"certificate: {'CERTIFIED' if c.certified else 'not certified'} — {c.reason}",
             f"  {established(a)}", "",
             a.layers[list(SHOWN[1:])].to_string(index=False, float_format=lambda v: f"{v:.3g}"),
             ""]
    lines += [f"{t:<4} {v:<16} {why}" for t, v, why in _check_rows(a)]
    if a.moved is not None:
        lines += ["", "polish moved the weights (‖Δ‖/‖·‖): "
                  + ", ".join(f"{k}: {v}" for k, v in _moved_rows(a))]
    return "\n".join(lines)
