"""Regression of theory: compare a run with a committed baseline, both ways.

A baseline (``reports/baseline/quick.json``) keeps, per theorem, its verdict and whether it
behaved, and per example and control the verdict (and a control's expected verdict), the
measured value, the bound, their tolerance and the setting's hash. The comparison is
symmetric: every difference between the two files is a row of the diff table —

* a theorem's verdict or ``behaved``, in either direction;
* an entry's verdict, in either direction (a claim that held and now fails, a verdict
  turned INCONCLUSIVE, PASS → VACUOUS: the claim no longer says anything, …);
* a control's expected verdict;
* a measured value or a bound that moved beyond its tolerance, or became (or stopped
  being) non-finite — for the entry and for every part of a combined claim (e.g. each layer
  of T4(a)), so a broken measure shows even where another part decides the verdict;
* a tolerance that is not the one the stated rule gives for its file's own values;
* an entry, part, control or theorem present in one file only; an entry's setting hash.

Tolerance (stated in the file, :data:`TOLERANCE_RULE`): 10 % of the larger of the values
and bounds compared, and at least :data:`FLOOR` = √u of float64 (u = 2⁻⁵³, ≈ 1.05e-8). The
floor is the resolution of a computed minimiser: within a relative distance δ of a
minimiser, F changes by O(δ²)·|F|, so floating point cannot tell points apart closer than
δ ≈ √u (Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1 on the accuracy of
computed minimisers); quantities that vanish in exact arithmetic at the minimiser (relative
errors, 1 − cos, residual-level distances) therefore land anywhere below √u depending on the
BLAS kernel and stopping point (measured across machines: 6.5e-11 vs 1.8e-15, 2.5e-16 vs
2.1e-12). Values are relative errors or norms of order one; below the floor a change is
rounding. On one machine the harness is bitwise reproducible, so anything that moves at all
comes from a change; the 10 % absorbs BLAS and platform differences of values far from
their bounds while a value approaching its bound by more than a tenth of it is flagged.

The baseline carries a digest (SHA-256 of its canonical JSON without the digest): a
hand-edited baseline is refused with a message; change it with ``regress --accept``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from verify.engine.setting import setting_key_json
from verify.errors import UsageError
from verify.run.records import Results
from verify.run.results import atomic_write_bytes
from verify.tolerances import unit_roundoff

SCHEMA = 2
FLOOR = math.sqrt(unit_roundoff(torch.float64))
TOLERANCE_RULE = "|now − baseline| ≤ max(0.1·max(|values|, |bounds|), √u = 1.05e-8)"
HELD = ("PASS", "VACUOUS")


def _finite(x: Any) -> float | None:
    return (float(x) if isinstance(x, int | float) and not isinstance(x, bool)
            and math.isfinite(x) else None)


def tolerance(*values: Any) -> float:
    """The stated rule for values (and bounds) that should agree: see module docstring."""
    scale = max([abs(v) for v in map(_finite, values) if v is not None] or [0.0])
    return max(0.1 * scale, FLOOR)


def _entry(rec: dict[str, Any], key_fn: Any) -> dict[str, Any]:
    measured, bound = rec.get("measured"), rec.get("bound")
    details = rec.get("details")
    parts = details.get("parts") if isinstance(details, dict) else None
    parts = parts if isinstance(parts, dict) else {}
    out = {"verdict": rec.get("verdict"), "measured": _finite(measured),
           "bound": _finite(bound), "tolerance": tolerance(measured, bound),
           "setting": key_fn(rec),
           "parts": {str(name): {"measured": _finite(p.get("measured")),
                                 "bound": _finite(p.get("bound")),
                                 "tolerance": tolerance(p.get("measured"), p.get("bound"))}
                     for name, p in parts.items() if isinstance(p, dict)}}
    if "expected" in rec:
        out["expected"] = rec["expected"]
    return out


def _records(t: dict[str, Any], kind: str, where: str) -> list[dict[str, Any]]:
    recs = t.get(kind, [])
    if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs):
        raise UsageError(where, f"theorem {t.get('id')!r} {kind}", "a list of records")
    field = "index" if kind == "examples" else "name"
    for r in recs:
        ok = (isinstance(r.get(field), int) and not isinstance(r.get(field), bool)
              if kind == "examples" else isinstance(r.get(field), str))
        if not ok or not isinstance(r.get("verdict"), str) or not isinstance(
                r.get("setting", {}), dict):
            raise UsageError(where, f"theorem {t.get('id')!r} {kind}", f"records with "
                             f"'{field}', 'verdict' and 'setting' (a record has "
                             f"{sorted(r)[:6]})")
    return recs


def _id(rec: dict[str, Any]) -> str:
    """The check's stable id (:mod:`verify.run.records`): entries are keyed by it, never by
    their position."""
    cid = rec.get("id")
    if not isinstance(cid, str):
        raise UsageError("results file", f"a record {sorted(rec)[:6]}", "records with an 'id'")
    return cid


def snapshot(results: Results | dict[str, Any], where: str = "results file"
             ) -> dict[str, Any]:
    """The baseline content of a run's results (UsageError naming ``where`` when the
    results do not have the shape a run writes)."""
    if not isinstance(results, Results):  # checked field by field, one line naming it
        results = Results.from_json(results, where)
    results = results.to_json()

    run = results.get("run", {})
    thms = results.get("theorems", [])
    if not isinstance(run, dict) or not isinstance(thms, list) or not all(
            isinstance(t, dict) and isinstance(t.get("id"), str) for t in thms):
        raise UsageError(where, "its 'run' or 'theorems'", "a 'run' object and a list of "
                         "theorems each with an 'id', as `python -m verify run` writes")
    tau = run.get("tau", 1e-6)

    def key(rec: dict[str, Any]) -> str:
        return setting_key_json(rec.get("setting", {}), tau)

    return {"schema": SCHEMA, "tolerance_rule": TOLERANCE_RULE,
            "scale": run.get("scale"), "seed": run.get("seed"),
            "examples": run.get("examples"), "tau": tau,
            "theorems": {t["id"]: {
                "verdict": t.get("verdict"), "behaved": t.get("behaved"),
                "examples": {_id(e): _entry(e, key) for e in _records(t, "examples", where)},
                "controls": {_id(c): _entry(c, key) for c in _records(t, "controls", where)},
            } for t in thms}}


def digest(snap: dict[str, Any]) -> str:
    """SHA-256 of a baseline's canonical JSON, without its own digest field."""
    body = {k: v for k, v in snap.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False,
                                     separators=(",", ":")).encode()).hexdigest()


_ALLOWED = "a baseline written by `python -m verify regress DIR --accept`"


def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline at ``path``; UsageError when missing, unreadable, of another schema,
    of the wrong shape, or edited by hand (its digest does not match)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("--baseline", str(path), "an existing baseline file (create one "
                         "with `python -m verify regress DIR --accept`)") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError("--baseline", str(path), f"{_ALLOWED} (this file is unreadable)"
                         ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError("baseline schema", got, f"{SCHEMA} (re-create the baseline with "
                         "--accept)")
    if data.get("digest") != digest(data):
        raise UsageError("--baseline", str(path), f"{_ALLOWED}, unchanged since (its digest "
                         "does not match its content: edited by hand? Accept a new baseline "
                         "with --accept instead)")
    thms = data.get("theorems")
    if not isinstance(thms, dict) or not all(
            isinstance(t, dict) and all(isinstance(t.get(k), dict) and all(
                isinstance(e, dict) for e in t[k].values()) for k in ("examples", "controls"))
            for t in thms.values()):
        raise UsageError("--baseline", str(path), f"{_ALLOWED} (its theorems have the wrong "
                         "shape)")
    return data


def write_baseline(path: Path, snap: dict[str, Any]) -> None:
    """Write ``snap`` with its digest, atomically."""
    data = {**snap, "digest": digest(snap)}
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def _dicts(x: Any) -> dict[str, dict[str, Any]]:
    """The parts of an entry, anything malformed read as empty (so it shows as a diff)."""
    if not isinstance(x, dict):
        return {}
    return {str(k): v if isinstance(v, dict) else {} for k, v in x.items()}


def _verdict_change(kind: str, b: Any, n: Any, expected: Any) -> str:
    if kind == "examples" and b in HELD and n == "FAIL":
        return "claim held, now fails"
    if kind == "controls" and b == expected and n != expected:
        return "control no longer gets its expected verdict"
    if n == "INCONCLUSIVE":
        return "turned INCONCLUSIVE"
    if b == "PASS" and n == "VACUOUS":
        return "PASS → VACUOUS: the claim no longer says anything"
    if n == "ERROR":
        return "harness error"
    return "verdict changed"


def compare(base: dict[str, Any], now: dict[str, Any], partial: bool = False
            ) -> list[dict[str, str]]:
    """Rows of a diff table (module docstring); empty when the files agree."""
    rows: list[dict[str, str]] = []

    def add(tid: str, entry: str, what: str, b: Any, n: Any, allowed: str = "") -> None:
        rows.append({"theorem": tid, "entry": entry, "what": what, "baseline": f"{b}",
                     "now": f"{n}", "allowed": allowed})

    def values(tid: str, label: str, b: dict[str, Any], n: dict[str, Any]) -> None:
        for side, e in (("baseline", b), ("now", n)):
            rule, stated = tolerance(e.get("measured"), e.get("bound")), _finite(
                e.get("tolerance"))
            if stated is None or not math.isclose(stated, rule, rel_tol=1e-9):
                add(tid, label, f"tolerance is not the stated rule's ({side})",
                    b.get("tolerance"), n.get("tolerance"), f"{rule:.3g}")
        for field in ("measured", "bound"):
            bv, nv = _finite(b.get(field)), _finite(n.get(field))
            tol = tolerance(bv, nv, b.get("bound"), n.get("bound"))
            if (bv is None) != (nv is None) or (
                    bv is not None and nv is not None and abs(nv - bv) > tol):
                add(tid, label, f"{'measured value' if field == 'measured' else field} moved",
                    "—" if bv is None else f"{bv:.6g}", "—" if nv is None else f"{nv:.6g}",
                    f"±{tol:.3g}")

    for k in ("scale", "seed", "examples", "tau", "tolerance_rule"):
        if base.get(k) != now.get(k):
            add("—", "run", f"{k} differs: not comparable", base.get(k), now.get(k))
    bts, nts = base["theorems"], now["theorems"]
    for tid in sorted(bts.keys() | nts.keys()):
        bt, nt = bts.get(tid), nts.get(tid)
        if nt is None:
            if not partial:
                add(tid, "theorem", "not run", bt.get("verdict"), "—")
            continue
        if bt is None:
            if not partial:
                add(tid, "theorem", "new theorem, not in the baseline", "—", nt.get("verdict"))
            continue
        if bt.get("behaved") != nt.get("behaved"):
            add(tid, "theorem", "behaved as expected: changed", bt.get("behaved"),
                nt.get("behaved"))
        if bt.get("verdict") != nt.get("verdict"):
            add(tid, "theorem", "verdict changed", bt.get("verdict"), nt.get("verdict"))
        for kind in ("examples", "controls"):
            bk, nk = bt.get(kind, {}), nt.get(kind, {})
            for name in sorted(bk.keys() | nk.keys()):
                b, n = bk.get(name), nk.get(name)
                label = name  # the stable id names the kind: T3/ex/…, T3/control/…
                if n is None or b is None:
                    add(tid, label, "missing now" if n is None else "not in the baseline",
                        "—" if b is None else b.get("verdict"),
                        "—" if n is None else n.get("verdict"))
                    continue
                if n.get("setting") != b.get("setting"):
                    add(tid, label, "setting changed (re-accept the baseline)",
                        b.get("setting"), n.get("setting"))
                    continue
                if b.get("verdict") != n.get("verdict"):
                    add(tid, label, _verdict_change(kind, b.get("verdict"), n.get("verdict"),
                                                    n.get("expected")),
                        b.get("verdict"), n.get("verdict"), str(n.get("expected", "")))
                if b.get("expected") != n.get("expected"):
                    add(tid, label, "expected verdict changed", b.get("expected"),
                        n.get("expected"))
                values(tid, label, b, n)
                bp, npart = (_dicts(b.get("parts")), _dicts(n.get("parts")))
                for part in sorted(bp.keys() | npart.keys()):
                    if part not in bp or part not in npart:
                        add(tid, f"{label} {part}", "part in one file only",
                            "present" if part in bp else "—",
                            "present" if part in npart else "—")
                        continue
                    values(tid, f"{label} {part}", bp[part], npart[part])
    return rows


def table(rows: list[dict[str, str]]) -> str:
    """The diff as a Markdown table."""
    heads = ["theorem", "entry", "what", "baseline", "now", "allowed"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(r[h].replace("|", "\\\\|") for h in heads) + " |"
              for r in rows]
    return "\n".join(lines)
