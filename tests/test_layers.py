"""The house rules of README "Layout": imports flow one way and form no cycle.

Checked on the import graph that import-linter builds (grimp), which includes imports made
inside functions and under ``TYPE_CHECKING``; ``nox -s lint`` checks the layer contract of
``pyproject.toml`` with import-linter itself.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[1]


def _graph():
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph("verify", "theorems", cache_dir=None)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    g = _graph()
    edges = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert _cycles(edges) == [], "import cycles (imports inside functions included)"


def test_layers_contract_is_kept() -> None:
    """Every import goes from a higher layer of pyproject's contract to a lower one."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"][0]
    layer_of: dict[str, int] = {}
    for i, layer in enumerate(contract["layers"]):
        for name in layer.split("|"):
            layer_of[name.strip()] = i

    def layer(module: str) -> int | None:
        parts = module.split(".")
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in layer_of:
                return layer_of[".".join(parts[:k])]
        return None

    g = _graph()
    bad = [(a, b) for a in g.modules for b in g.find_modules_directly_imported_by(a)
           if layer(a) is not None and layer(b) is not None and layer(a) > layer(b)]
    assert bad == [], f"imports against the layers: {bad}"


MAX_LINES = 500  # README "Layout": a module a newcomer reads in one sitting
MAX_MODULES = 12  # per folder


def test_modules_and_folders_stay_small() -> None:
    big = {str(p.relative_to(ROOT)): n for p in (*ROOT.glob("verify/**/*.py"),
                                                 *ROOT.glob("theorems/*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"
    crowded = {}
    for folder in (ROOT / "verify", *(p for p in (ROOT / "verify").rglob("*") if p.is_dir()),
                   ROOT / "theorems"):
        mods = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(mods) > MAX_MODULES:
            crowded[str(folder.relative_to(ROOT))] = len(mods)
    assert crowded == {}, f"folders with more than {MAX_MODULES} modules: {crowded}"


TRAINING = {"verify.engine.train", "verify.engine.polish", "verify.engine.kinks",
            "verify.engine.sgd", "verify.engine.ensemble", "verify.engine.setting"}


def test_the_certificate_imports_nothing_from_training() -> None:
    """The certificate is a pure measurement (issue 13): nothing it imports, directly or
    through other modules, is a training module; the records it reads come from
    verify.engine.result. Checked to fail on the graph where certificate imports train."""
    g = _graph()
    reached = g.find_upstream_modules("verify.engine.certificate")
    assert "verify.engine.result" in reached
    assert not reached & TRAINING, sorted(reached & TRAINING)
    # the check can fail: the import the certificate had before the records moved out
    g.add_import(importer="verify.engine.certificate", imported="verify.engine.train")
    assert g.find_upstream_modules("verify.engine.certificate") & TRAINING
