"""Verification scales: how large the drawn settings are and how many are drawn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Size limits of one verification scale."""

    name: str
    max_width: int
    max_n: int
    examples: int
    max_seconds: float  # wall-clock safety net per network (results depend on it only when hit)


# Training stops on iteration counts, so results are reproducible; the wall-clock budget is
# a safety net set far above the measured cost (quick nets take ≤ ~40 s on a loaded 2-core
# box), and a net that hits it says so in its certificate.
SCALES: dict[str, Scale] = {
    "quick": Scale("quick", 12, 24, 6, 300.0),
    "standard": Scale("standard", 32, 64, 12, 900.0),
    "large": Scale("large", 128, 256, 24, 3600.0),
}
