"""The copyable CI workflow runs the nox session that exists, caches the Hypothesis database
the tests use, uploads the folder that session writes and summarises its diff."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "theory-regression.yml"


def _nox_sessions() -> dict[str, ast.FunctionDef]:
    """The functions of noxfile.py decorated with @nox.session."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)
            and any(ast.unparse(d).startswith("nox.session") for d in f.decorator_list)}


def _regress_out_dir() -> str:
    """The folder the regress session writes its run to (``out = "..."`` in it)."""
    fn = _nox_sessions()["regress"]
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "out":
            return ast.literal_eval(node.value)
    raise AssertionError("noxfile's regress session names no out folder")


def _steps() -> list[dict[str, Any]] | None:
    try:
        import yaml
    except ImportError:
        return None
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert doc.get("on", doc.get(True)) is not None  # YAML 1.1 reads the key `on` as True
    (job,) = doc["jobs"].values()
    return job["steps"]


def test_workflow_calls_the_regress_session_of_the_noxfile() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    sessions = set(_nox_sessions())
    out = _regress_out_dir()
    steps = _steps()
    if steps is None:  # no PyYAML: the same facts from the text
        called = re.findall(r"run:\s*nox -s (\w+)", text)
        assert called == ["regress"] and "regress" in sessions
        assert re.search(r"path:\s*\.hypothesis-db", text)
        assert re.search(rf"path:\s*{re.escape(out)}\s", text)
        assert "$GITHUB_STEP_SUMMARY" in text and f"verify regress {out}" in text
        return
    runs = [s["run"] for s in steps if "run" in s]
    called = [m for r in runs for m in re.findall(r"^\s*nox -s (\w+)", r, re.M)]
    assert called == ["regress"] and set(called) <= sessions
    assert any("-c constraints.txt" in r for r in runs)
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert ".hypothesis-db" in uses["actions/cache"]["with"]["path"]
    upload = uses["actions/upload-artifact"]
    assert upload["with"]["path"] == out and upload["if"] == "always()"
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and f"-m verify regress {out}" in summary["run"]
    # the summary uses the interpreter of the session it follows
    assert ".nox/regress/bin/python" in summary["run"]


def test_cached_database_is_the_one_the_tests_use() -> None:
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert '".hypothesis-db"' in conftest
    assert ".hypothesis-db" in (ROOT / ".gitignore").read_text(encoding="utf-8")
