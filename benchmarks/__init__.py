"""Benchmarks (pytest-benchmark): ``nox -s bench``; see README "Benchmarks"."""
