"""The README's "write your own theorem" example runs and gives the verdicts it promises."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_worked_example_runs_and_control_is_vacuous() -> None:
    blocks = _python_blocks()
    assert blocks, "README has no python example"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme_example"})
    lines = buf.getvalue().split()
    assert lines == ["PASS", "VACUOUS"], buf.getvalue()


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in README.read_text(encoding="utf-8"), ci


def test_hypothesis_database_is_the_project_folder() -> None:
    from hypothesis import settings

    db = settings().database
    assert db is not None and ".hypothesis-db" in str(getattr(db, "path", ""))
