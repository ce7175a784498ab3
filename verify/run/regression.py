"""Regression of theory: compare a run with a committed baseline.

A baseline (``reports/baseline/quick.json``) keeps, per theorem, its verdict and whether it
behaved, and per example and control — keyed by the check's stable id
(:mod:`verify.run.records`), never by its position — the verdict, the measured value, the
bound and the setting's hash. A later run regresses when

* a claim that held (example PASS or VACUOUS) now FAILs,
* a control that got its expected verdict no longer does,
* a verdict turned INCONCLUSIVE,
* a measured value moved beyond its stated tolerance, or
* an entry's setting changed (the baseline no longer describes the same check).

Measured values are compared for the entry and for every part of a combined claim (e.g.
each layer of T4(a)), so a broken measure shows even where another part decides the verdict.
Tolerance of a measured value (stated in the baseline file): 10 % of the larger of
|baseline value| and |bound|, and at least 1e-12 (values are relative errors or norms of
order one; below 1e-12 a change is float64 rounding). On one machine the harness is bitwise
reproducible, so anything that moves at all comes from a change; the 10 % absorbs BLAS and
platform differences of values far from their bounds while a value approaching its bound by
more than a tenth of it is flagged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from verify.engine.setting import setting_key_json
from verify.errors import UsageError
from verify.run.records import CheckRecord, Results
from verify.run.results import RESULTS_NAME, atomic_write_bytes

SCHEMA = 2  # 2: checks keyed by stable id
TOLERANCE_RULE = "|now − baseline| ≤ max(0.1·max(|baseline|, |bound|), 1e-12)"
FLOOR = 1e-12
HELD = ("PASS", "VACUOUS")


def _tolerance(measured: Any, bound: Any) -> float:
    scale = max(abs(measured) if isinstance(measured, (int, float)) else 0.0,
                abs(bound) if isinstance(bound, (int, float)) else 0.0)
    return max(0.1 * scale if math.isfinite(scale) else math.inf, FLOOR)


def _finite(x: Any) -> float | None:
    """A finite number, else None (how results.json stores a non-finite value)."""
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _entry(rec: CheckRecord, tau: float) -> dict[str, Any]:
    measured, bound = _finite(rec.measured), _finite(rec.bound)
    parts = rec.details.get("parts") or {}
    out = {"verdict": str(rec.verdict), "measured": measured, "bound": bound,
           "tolerance": _tolerance(measured, bound),
           "setting": setting_key_json(dict(rec.setting), tau),
           "parts": {name: {"measured": p.get("measured"),
                            "tolerance": _tolerance(p.get("measured"), p.get("bound"))}
                     for name, p in parts.items() if isinstance(p, dict)}}
    if rec.expected is not None:
        out["expected"] = str(rec.expected)
    return out


def snapshot(results: Results | dict[str, Any]) -> dict[str, Any]:
    """The baseline content of a run's results (typed, or JSON data checked on the way)."""
    if not isinstance(results, Results):
        results = Results.from_json(results, RESULTS_NAME)
    run, tau = results.run, results.run.tau
    return {"schema": SCHEMA, "tolerance_rule": TOLERANCE_RULE,
            "scale": run.scale, "seed": run.seed, "examples": run.examples, "tau": tau,
            "theorems": {t.id: {
                "verdict": str(t.verdict), "behaved": t.behaved,
                "examples": {e.id: _entry(e, tau) for e in t.examples},
                "controls": {c.id: _entry(c, tau) for c in t.controls},
            } for t in results.theorems}}


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("--baseline", str(path), "an existing baseline file (create one "
                         "with `python -m verify regress DIR --accept`)") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError("--baseline", str(path), "a JSON baseline written by `python -m "
                         "verify regress --accept` (this file is unreadable)") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError("baseline schema", got, f"{SCHEMA} (re-create the baseline with "
                         "--accept)")
    return data


def write_baseline(path: Path, snap: dict[str, Any]) -> None:
    text = json.dumps(snap, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def compare(base: dict[str, Any], now: dict[str, Any], partial: bool = False
            ) -> list[dict[str, str]]:
    """Rows of a diff table; empty when nothing regressed."""
    rows: list[dict[str, str]] = []

    def add(tid: str, entry: str, what: str, b: Any, n: Any, allowed: str = "") -> None:
        rows.append({"theorem": tid, "entry": entry, "what": what, "baseline": f"{b}",
                     "now": f"{n}", "allowed": allowed})

    for k in ("scale", "seed", "examples", "tau"):
        if base.get(k) != now.get(k):
            add("—", "run", f"{k} differs: not comparable", base.get(k), now.get(k))
    for tid, bt in base["theorems"].items():
        nt = now["theorems"].get(tid)
        if nt is None:
            if not partial:
                add(tid, "theorem", "not run", bt.get("verdict"), "—")
            continue
        if bt.get("behaved") and not nt.get("behaved"):
            add(tid, "theorem", "no longer behaves as expected", "behaved", "not behaved")
        for kind in ("examples", "controls"):
            for name, b in bt[kind].items():
                n = nt[kind].get(name)
                label = name  # the stable id: T3/ex/<setting key>, T3/control/<name>
                if n is None:
                    # an example's id names its setting: a changed setting shows as this
                    # row and a "new example" row
                    add(tid, label, "missing", b["verdict"], "—")
                    continue
                if n["setting"] != b["setting"]:
                    add(tid, label, "setting changed (re-accept the baseline)",
                        b["setting"], n["setting"])
                    continue
                bv, nv = b["verdict"], n["verdict"]
                if kind == "examples" and bv in HELD and nv == "FAIL":
                    add(tid, label, "claim held, now fails", bv, nv)
                elif (kind == "controls" and bv == b.get("expected")
                      and nv != n.get("expected")):
                    add(tid, label, "control no longer gets its expected verdict", bv, nv,
                        str(n.get("expected")))
                elif nv == "INCONCLUSIVE" and bv != "INCONCLUSIVE":
                    add(tid, label, "turned INCONCLUSIVE", bv, nv)
                bm, nm = _finite(b["measured"]), _finite(n["measured"])
                if bm is not None and (nm is None or abs(nm - bm) > b["tolerance"]):
                    add(tid, label, "measured value moved", f"{bm:.6g}",
                        "—" if nm is None else f"{nm:.6g}", f"±{b['tolerance']:.3g}")
                for part, bp in b.get("parts", {}).items():
                    np_ = n.get("parts", {}).get(part, {})
                    bpm, npm = _finite(bp.get("measured")), _finite(np_.get("measured"))
                    if bpm is not None and (npm is None or abs(npm - bpm) > bp["tolerance"]):
                        add(tid, f"{label} {part}", "measured value moved", f"{bpm:.6g}",
                            "—" if npm is None else f"{npm:.6g}", f"±{bp['tolerance']:.3g}")
        for kind in ("examples", "controls"):
            for name in sorted(nt[kind].keys() - bt[kind].keys()):
                add(tid, name, f"new {kind[:-1]}, not in the baseline", "—",
                    nt[kind][name]["verdict"])
    if not partial:
        for tid in sorted(now["theorems"].keys() - base["theorems"].keys()):
            add(tid, "theorem", "new theorem, not in the baseline", "—",
                now["theorems"][tid].get("verdict"))
    return rows


def table(rows: list[dict[str, str]]) -> str:
    """The diff as a Markdown table."""
    heads = ["theorem", "entry", "what", "baseline", "now", "allowed"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(r[h].replace("|", "\\\\|") for h in heads) + " |"
              for r in rows]
    return "\n".join(lines)
