"""A run's plan depends on its seed and the strategies only (README, "What a run does").

Hypothesis mixes the numeric literals of loaded local modules into its draws; the runner
switches that off while it plans, so editing the project's source does not move the drawn
settings, their ids or the regression baseline.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

from hypothesis import strategies as st

from verify.claims.scales import SCALES
from verify.run import runner

TOY = SimpleNamespace(strategy=lambda scale: st.integers(0, 10**6))
LITERALS = "\n".join(f"C{i} = {100_003 + 7919 * i}" for i in range(400))


def _import_local_module(tmp_path: Path) -> None:
    path = tmp_path / "plan_literals.py"
    path.write_text(LITERALS + "\n")
    spec = importlib.util.spec_from_file_location("plan_literals", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plan_literals"] = module
    spec.loader.exec_module(module)


def _unguarded(n: int, run_seed: int) -> list[int]:
    """The same draws without the runner's guard: the hazard the guard removes."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    out: list[int] = []

    @seed(run_seed)
    @settings(max_examples=max(4 * n, 10), database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(TOY.strategy(None))
    def collect(s: int) -> None:
        if len(out) < n and s not in out:
            out.append(s)

    collect()
    return out


def test_plan_ignores_literals_of_local_modules(tmp_path: Path) -> None:
    scale = SCALES["quick"]
    before = runner.draw_settings(TOY, scale, 300, 0)  # type: ignore[arg-type]
    raw_before = _unguarded(300, 0)
    _import_local_module(tmp_path)
    try:
        after = runner.draw_settings(TOY, scale, 300, 0)  # type: ignore[arg-type]
        raw_after = _unguarded(300, 0)
    finally:
        sys.modules.pop("plan_literals", None)
    assert after == before
    literals = {100_003 + 7919 * i for i in range(400)}
    # the mutant: without the guard, the new module's literals enter the draws
    assert raw_after != raw_before and literals & set(raw_after), (
        "Hypothesis no longer mixes local literals into draws: the guard in "
        "verify.run.runner may be obsolete (or it now needs another hook)")
