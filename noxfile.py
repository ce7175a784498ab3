"""nox sessions. Every session installs with ``-c constraints.txt`` (torch pinned to 2.13.0:
the CPU wheel on CPU machines, the CUDA build on GPU machines).

    nox              # = nox -s tests
    nox -s tests     # the default test run (fast Hypothesis profile, 2 worker processes)
    nox -s verify    # quick verification of all theorems; writes reports/runs/quick/
    nox -s regress   # quick verification vs the committed baseline (theory regression)
    nox -s lint      # ruff, the layer contract (import-linter) and mypy
    nox -s large     # the large scale (width 4096, conv net on 32×32×3; GPU when present)
    nox -s nightly   # thorough Hypothesis profile and a standard-scale verification
    nox -s sweep     # T5's paper experiment: rank contours (resumable); -- --scale large
    nox -s bench     # benchmarks (pytest-benchmark), table in benchmarks/results.md
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")
ENV = {"MPLCONFIGDIR": os.path.join(os.getcwd(), ".nox", "mplconfig"),
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _install(session: nox.Session, extra: str = "test") -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extra}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run: unit, property and control tests, CLI and report."""
    _install(session)
    session.run("pytest", "-n", "2", *session.posargs, env=ENV)


@nox.session
def verify(session: nox.Session) -> None:
    """Quick verification of every theorem; report under reports/runs/quick/."""
    _install(session)
    # exit 1 means "a theorem did not behave as expected" — a result the report explains,
    # not a broken session; usage errors (exit 2) and crashes still fail it
    session.run("python", "-m", "verify", "run", "--scale", "quick", "--out",
                "reports/runs/quick", "--overwrite", *session.posargs, env=ENV,
                success_codes=[0, 1])


@nox.session
def regress(session: nox.Session) -> None:
    """Quick verification compared with reports/baseline/quick.json; exit 1 on a theory
    regression, with a diff table. ``nox -s regress -- --accept`` accepts a new baseline."""
    _install(session)
    out = "reports/runs/regress"
    session.run("python", "-m", "verify", "run", "--scale", "quick", "--out", out,
                "--overwrite", env=ENV, success_codes=[0, 1])
    accept = ["--accept"] if "--accept" in session.posargs else []
    session.run("python", "-m", "verify", "regress", out, *accept, env=ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole project, the layer contract of pyproject.toml (import-linter) and
    mypy over verify/ and theorems/ (``[tool.mypy]`` in pyproject.toml)."""
    session.install(*CONSTRAINTS, "-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("lint-imports")
    session.run("mypy")


@nox.session
def large(session: nox.Session) -> None:
    """The large scale: wider drawn networks, a width-4096 MLP and a conv net on 32×32×3
    images (TF32 first phase on a GPU, float32 on a CPU; float64 certificates). Hours on a
    2-core CPU for all theorems: pass e.g. ``-- --theorem T3 --examples 4``."""
    _install(session)
    session.run("python", "-m", "verify", "run", "--scale", "large", "--out",
                "reports/runs/large", *session.posargs, env=ENV, success_codes=[0, 1])


@nox.session
def nightly(session: nox.Session) -> None:
    """Thorough Hypothesis profile and a standard-scale verification (long)."""
    _install(session)
    session.run("pytest", "-n", "2", *session.posargs,
                env={**ENV, "VERIFY_HYPOTHESIS_PROFILE": "thorough"})
    session.run("python", "-m", "verify", "run", "--scale", "standard", "--out",
                "reports/runs/standard", "--overwrite", env=ENV)


@nox.session
def sweep(session: nox.Session) -> None:
    """T5's paper experiment: average rank contours over (η, λ), (B, λ), (B, η); resumes an
    interrupted sweep; report under reports/sweep/<scale>/sweep.md. Not run by default."""
    _install(session)
    session.run("python", "-m", "verify.sweep", "--out", "reports/sweep",
                *(session.posargs or ["--scale", "standard"]), env=ENV)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks in benchmarks/ (not collected by the default test run): throughput vs the
    measured matmul peak, ensemble vs loop, time to a certificate, spectra. Each run is saved
    under .benchmarks/ (git-ignored) and compared with the previous save — when there is
    none, the comparison is left out instead of failing. Writes benchmarks/results.md.
    About 5–10 minutes on a 2-core CPU. Installs WeightWatcher (the spectra comparison)."""
    _install(session, "test,weightwatcher")
    saved = sorted(Path(".benchmarks").glob("*/*.json"))
    compare = ["--benchmark-compare"] if saved else []
    if not saved:
        session.log("no earlier benchmark save in .benchmarks/: nothing to compare with yet")
    session.run("pytest", "benchmarks", "--benchmark-enable", "--benchmark-autosave",
                *compare, *session.posargs, env=ENV)
