"""Test configuration: one torch thread per process, headless matplotlib, explicit
Hypothesis profiles.

Profiles: ``fast`` (default test run) and ``thorough`` (nightly: ``nox -s nightly``), both
registered with ``parent=`` the profile Hypothesis would otherwise use — its built-in "ci"
profile loads itself when CI=true — so CI keeps its derandomised, database-free behaviour.
Choose with VERIFY_HYPOTHESIS_PROFILE. Failing examples are stored in ``.hypothesis-db/``
(VERIFY_HYPOTHESIS_DB overrides), which CI should cache.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from verify.run.executor import pin_threads

pin_threads(1)

_parent = settings.get_profile("ci") if os.environ.get("CI") else settings.get_profile("default")
# The example database lives in the project (git-ignored, cached by CI between runs): a
# counterexample found once is replayed first on every later run, also under CI=true where
# the "ci" parent profile would otherwise switch the database off.
DATABASE = DirectoryBasedExampleDatabase(
    os.environ.get("VERIFY_HYPOTHESIS_DB", str(Path(__file__).resolve().parent.parent
                                               / ".hypothesis-db")))
settings.register_profile("fast", parent=_parent, max_examples=20, deadline=None,
                          database=DATABASE, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", parent=_parent, max_examples=200, deadline=None,
                          database=DATABASE, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("VERIFY_HYPOTHESIS_PROFILE", "fast"))
