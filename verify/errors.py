"""Typed errors for user mistakes.

A :class:`UsageError` names the bad value and what is allowed. The CLI prints its message on
one line and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable
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


def did_you_mean(value: object, allowed: Iterable[object]) -> str:
    """``"; did you mean relu?"`` for the allowed value closest to ``value`` (difflib's ratio
    ≥ 0.6, case ignored), or ``""`` when none is close."""
    names = {str(a).lower(): str(a) for a in allowed}
    near = difflib.get_close_matches(str(value).lower(), list(names), n=1, cutoff=0.6)
    return f"; did you mean {names[near[0]]}?" if near else ""


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


_ARGPARSE = (  # argparse's own messages, reworded to name the value and what is allowed
    (re.compile(r"argument (?P<arg>\S+): invalid choice: (?P<val>'.*?') \(choose from "
                r"(?P<ok>.*)\)"), "argument {arg}: {val} is not allowed: one of {ok}"),
    (re.compile(r"unrecognized arguments: (?P<val>.*)"),
     "{val!r} is not allowed: not an option or argument of this command"),
    (re.compile(r"the following arguments are required: (?P<arg>.*)"),
     "{arg} missing: leaving it out is not allowed, it is required"),
    (re.compile(r"argument (?P<arg>\S+): expected one argument"),
     "argument {arg}: a flag without its value is not allowed (give {arg} VALUE)"),
    (re.compile(r"argument (?P<arg>\S+): ignored explicit argument (?P<val>.*)"),
     "argument {arg}: a value ({val}) is not allowed for this flag"),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`UsageError` (one line naming the value and what is
    allowed, exit 2 in the apps) instead of a usage block and ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        for pattern, text in _ARGPARSE:
            m = pattern.fullmatch(message)
            if m:
                message = text.format(**m.groupdict())
                if "ok" in m.groupdict():  # an invalid choice: suggest the closest one
                    val = re.sub(r"^'(.*)'$", r"\1", m["val"])
                    message += did_you_mean(val, re.findall(r"'((?:[^'\\]|\\.)*)'", m["ok"]))
                break
        raise UsageError("arguments", None, message, f"{message} (see `{self.prog} --help`)")
