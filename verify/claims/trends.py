"""Figures of trend claims: mean of a metric over seeds against the grid variable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plot_spec(record: dict, metrics: Sequence[str], ylabel: str, theorem: str) -> dict | None:
    """A ``lines`` plot spec (verify.report.PLOT_SPEC): each metric's mean over seeds against
    the grid variable, from a finished trend record (series ``x`` and one list per metric)."""
    ser, det = record.get("series") or {}, record.get("details") or {}
    xs_all = ser.get("x") or []
    if not xs_all:
        return None
    xs = sorted(set(xs_all))
    lines = []
    for m in metrics:
        ys = ser.get(m) or []
        if len(ys) != len(xs_all):
            continue
        mean = [float(np.mean([y for x, y in zip(xs_all, ys, strict=True) if x == v]))
                for v in xs]
        lines.append({"label": f"{m} (mean over seeds)", "x": xs, "y": mean})
    return {"kind": "lines", "title": f"{theorem} {record.get('name')}",
            "caption": f"{record.get('description')} — {record.get('reason')}",
            "xlabel": str(det.get("field")), "ylabel": ylabel, "xscale": "log",
            "lines": lines}
