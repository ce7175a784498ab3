"""Typed errors for user mistakes.

A :class:`UsageError` names the bad value and what is allowed. The CLI prints its message on
one line and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A bad value supplied by the user (CLI flag, API argument, data)."""

    def __init__(self, name: str, value: object, allowed: str, message: str | None = None
                 ) -> None:
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(message or f"{name}={value!r} is not allowed: {allowed}")


def require(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise :class:`UsageError` unless ``ok``."""
    if not ok:
        raise UsageError(name, value, allowed)
