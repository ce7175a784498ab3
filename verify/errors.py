"""Typed errors for user mistakes.

A :class:`UsageError` names the bad value and what is allowed. The CLI prints its message on
one line and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


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


class DataUnavailable(UsageError):
    """A data set whose optional extra is not installed. Asked for by name on the command
    line it is a usage error (exit 2); inside a run the check it belongs to is INCONCLUSIVE
    with this reason — a setting never changes with the installed extras."""


class NotJudgeable(Exception):
    """A trained network no claim may be judged on: it diverged (non-finite weights or
    loss), or training ran past its wall-clock safety limit. The check that asked for it is
    INCONCLUSIVE with this reason; no measure ever runs on such weights."""

    def __init__(self, reason: str, certificate: object | None = None) -> None:
        self.reason, self.certificate = reason, certificate
        super().__init__(reason)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`UsageError` (one line, exit 2 in the apps) instead
    of a usage block and ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError("arguments", None, message, f"{message} (see `{self.prog} --help`)")
