"""Figures of trend claims: mean of a metric over seeds, with its spread, against the grid
variable (labelled with its symbol: λ, η, B, not the setting's field name)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# a setting field → the symbol the theorems write for it (THEOREMS.md, "Notation")
SYMBOLS = {"lam": "λ", "lr": "η", "batch": "B", "mu": "μ", "beta": "β", "tau": "τ",
           "eps": "ε", "angle": "angle (°)", "n": "n", "seed": "seed"}


def symbol(field: object) -> str:
    """The axis label of a setting field: its symbol where the theorems name one."""
    return SYMBOLS.get(str(field), str(field))


def mean_and_spread(xs: Sequence[float], ys: Sequence[float]
                    ) -> tuple[list[float], list[float], list[float]]:
    """Per distinct x (ascending): the mean of the ys at x and their sample standard
    deviation over seeds (ddof = 1; 0 where x has a single point)."""
    grid = sorted(set(xs))
    means, spreads = [], []
    for v in grid:
        at = [float(y) for x, y in zip(xs, ys, strict=True) if x == v]
        means.append(float(np.mean(at)))
        spreads.append(float(np.std(at, ddof=1)) if len(at) > 1 else 0.0)
    return grid, means, spreads


def plot_spec(record: dict, metrics: Sequence[str], ylabel: str, theorem: str,
              xlabel: str | None = None) -> dict | None:
    """A ``lines`` plot spec (verify.report.PLOT_SPEC) of a finished trend record (series
    ``x`` and one list per metric): each metric's mean over seeds against the grid variable,
    with the standard deviation over seeds as error bars (``yerr``). ``record`` names the
    record the figure shows; ``xlabel`` overrides the grid variable's symbol (a theorem
    that writes μ for the decay λ)."""
    ser, det = record.get("series") or {}, record.get("details") or {}
    xs_all = ser.get("x") or []
    if not xs_all:
        return None
    lines = []
    for m in metrics:
        ys = ser.get(m) or []
        if len(ys) != len(xs_all):
            continue
        xs, mean, spread = mean_and_spread(xs_all, ys)
        line = {"label": f"{m} (mean ± sd over seeds)", "x": xs, "y": mean}
        if any(s > 0 for s in spread):
            line["yerr"] = spread
        lines.append(line)
    return {"kind": "lines", "record": record.get("id"),
            "title": f"{theorem} {record.get('name')}",
            "caption": f"{record.get('description')} — {record.get('reason')}",
            "xlabel": xlabel or symbol(det.get("field")), "ylabel": ylabel, "xscale": "log",
            "lines": lines}
