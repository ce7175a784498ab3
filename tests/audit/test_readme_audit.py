"""The README's "Audit your own model" example runs and says what the README says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_audit_example_runs_and_polish_certifies(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Audit your own model"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)  # the example writes its report under reports/audit/
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(block.group(1), "README.md", "exec"), {"__name__": "readme_audit"})
    lines = buf.getvalue().splitlines()
    assert lines[0] == "False"  # SGD stopped far from stationarity
    assert lines[-1].startswith("True (")  # polished to a certificate, with how far it moved
    assert (tmp_path / "reports" / "audit" / "digits-softplus" / "audit.html").exists()
