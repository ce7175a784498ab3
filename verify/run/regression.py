"""Regression of theory: compare a run with a committed baseline.

A baseline (``reports/baseline/quick.json``) keeps, per theorem, its verdict and whether it
behaved, and per example and control the verdict, the measured value, the bound and the
setting's hash. A later run regresses when

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
import os
from pathlib import Path
from typing import Any

from verify.errors import UsageError

SCHEMA = 1
TOLERANCE_RULE = "|now − baseline| ≤ max(0.1·max(|baseline|, |bound|), 1e-12)"
FLOOR = 1e-12
HELD = ("PASS", "VACUOUS")


def _tolerance(measured: Any, bound: Any) -> float:
    scale = max(abs(measured) if isinstance(measured, (int, float)) else 0.0,
                abs(bound) if isinstance(bound, (int, float)) else 0.0)
    return max(0.1 * scale if math.isfinite(scale) else math.inf, FLOOR)


def _entry(rec: dict[str, Any], key_fn: Any) -> dict[str, Any]:
    measured, bound = rec.get("measured"), rec.get("bound")
    parts = (rec.get("details") or {}).get("parts") or {}
    out = {"verdict": rec.get("verdict"), "measured": measured, "bound": bound,
           "tolerance": _tolerance(measured, bound), "setting": key_fn(rec),
           "parts": {name: {"measured": p.get("measured"),
                            "tolerance": _tolerance(p.get("measured"), p.get("bound"))}
                     for name, p in parts.items() if isinstance(p, dict)}}
    if "expected" in rec:
        out["expected"] = rec["expected"]
    return out


def snapshot(results: dict[str, Any]) -> dict[str, Any]:
    """The baseline content of a run's results."""
    from verify.engine.setting import setting_key_json

    run = results.get("run", {})
    tau = run.get("tau", 1e-6)

    def key(rec: dict[str, Any]) -> str:
        return setting_key_json(rec.get("setting", {}), tau)

    return {"schema": SCHEMA, "tolerance_rule": TOLERANCE_RULE,
            "scale": run.get("scale"), "seed": run.get("seed"),
            "examples": run.get("examples"), "tau": tau,
            "theorems": {t["id"]: {
                "verdict": t.get("verdict"), "behaved": t.get("behaved"),
                "examples": {str(e["index"]): _entry(e, key) for e in t.get("examples", [])},
                "controls": {c["name"]: _entry(c, key) for c in t.get("controls", [])},
            } for t in results.get("theorems", [])}}


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


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
                label = f"{kind[:-1]} {name}"
                if n is None:
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
                bm, nm = _num(b["measured"]), _num(n["measured"])
                if bm is not None and (nm is None or abs(nm - bm) > b["tolerance"]):
                    add(tid, label, "measured value moved", f"{bm:.6g}",
                        "—" if nm is None else f"{nm:.6g}", f"±{b['tolerance']:.3g}")
                for part, bp in b.get("parts", {}).items():
                    np_ = n.get("parts", {}).get(part, {})
                    bpm, npm = _num(bp.get("measured")), _num(np_.get("measured"))
                    if bpm is not None and (npm is None or abs(npm - bpm) > bp["tolerance"]):
                        add(tid, f"{label} {part}", "measured value moved", f"{bpm:.6g}",
                            "—" if npm is None else f"{npm:.6g}", f"±{bp['tolerance']:.3g}")
        for name in nt["controls"].keys() - bt["controls"].keys():
            add(tid, f"control {name}", "new control, not in the baseline", "—",
                nt["controls"][name]["verdict"])
    if not partial:
        for tid in now["theorems"].keys() - base["theorems"].keys():
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
