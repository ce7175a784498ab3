"""The README's "write your own theorem" example runs and gives the verdicts it promises."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _run_example(name: str) -> tuple[str, dict[str, object]]:
    """Execute the README's example as a module named ``name``: (its stdout, its globals)."""
    blocks = _python_blocks()
    assert blocks, "README has no python example"
    buf, scope = io.StringIO(), {"__name__": name}
    with contextlib.redirect_stdout(buf):
        exec(compile(blocks[0], "README.md", "exec"), scope)
    return buf.getvalue(), scope


def test_worked_example_runs_and_control_is_vacuous() -> None:
    out, _ = _run_example("__main__")  # as `python theorems/tx_stable_rank.py`
    assert out.split() == ["PASS", "VACUOUS"], out


def test_worked_example_runs_nothing_when_imported() -> None:
    out, scope = _run_example("theorems.tx_stable_rank")  # as the registry imports it
    assert out == ""
    assert scope["THEOREM"].id == "TX"  # type: ignore[attr-defined]


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in README.read_text(encoding="utf-8"), ci


def test_hypothesis_database_is_the_project_folder() -> None:
    from hypothesis import settings

    db = settings().database
    assert db is not None and ".hypothesis-db" in str(getattr(db, "path", ""))
