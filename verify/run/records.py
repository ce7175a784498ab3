"""Typed records of what a run produces: one check, one theorem, the run, the whole results.

A :class:`CheckRecord` is one example or control of one theorem, as the runner writes it to
``records.jsonl`` and as ``results.json`` lists it; a :class:`TheoremSummary` is a
theorem's entry of ``results.json`` (its checks and verdict); :class:`RunInfo` says how the
run was made; :class:`Results` is the whole file. Each has ``to_json()`` and
``from_json()``; ``from_json`` checks the shape field by field and raises
:class:`~verify.errors.UsageError` naming the file and the field (run folders are untrusted
input), so the report, the regression check and a resumed run read only well-formed data.
The published JSON Schema of the file is ``results.schema.json`` beside this module.

Checks are named by **stable ids**, not by list positions: ``T3/ex/<setting key>`` for an
example (the key is :func:`verify.engine.setting.setting_key` of its setting and τ — for a
check of one :class:`~verify.engine.setting.Setting` also the name of its trained network
in the run's ``cache/``) and ``T3/control/<name>`` for a control; a repeat of an id within
a theorem gets ``~2``, ``~3``, … in plan order.
Non-finite numbers are NaN in memory and ``null`` in results.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from verify.claims.verdict import Verdict
from verify.errors import UsageError

SCHEMA = 2  # of results.json; 2: stable ids, theorem and kind in every check record


class CheckKind(StrEnum):
    EXAMPLE = "example"
    CONTROL = "control"


def example_id(theorem: str, key: str) -> str:
    """The stable id of an example: theorem, ``ex`` and its setting key."""
    return f"{theorem}/ex/{key}"


def control_id(theorem: str, name: str) -> str:
    """The stable id of a control: theorem, ``control`` and its name."""
    return f"{theorem}/control/{name}"


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` with repeats made unique by ``~2``, ``~3``, … (first occurrence unchanged)."""
    seen: set[str] = set()
    out = []
    for i in ids:
        j, n = i, 2
        while j in seen:
            j, n = f"{i}~{n}", n + 1
        seen.add(j)
        out.append(j)
    return out


# --------------------------------------------------------------------------------------------
# reading untrusted JSON with errors that name the file and the field


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING: Any = _Missing()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """Typed reads from one JSON object at ``where`` in ``source``; a wrong shape raises
    :class:`UsageError` ``<source> field <where>.<key>=<value> is not allowed: <expected>``."""

    def __init__(self, data: object, source: str, where: str = "") -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.wrong("", data, "a JSON object")
        self.data: dict[str, Any] = data  # type: ignore[assignment]

    def path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        if not key:
            return self.where or "(top level)"
        return f"{self.where}.{key}" if self.where else key

    def wrong(self, key: str | int, value: object, expected: str) -> None:
        name = f"{self.source} field {self.path(key)}"
        raise UsageError(name, value, expected,
                         f"{name}={_short(value)} is not allowed: {expected}")

    def get(self, key: str, optional: bool = False) -> Any:
        if key in self.data:
            return self.data[key]
        if not optional:
            self.wrong(key, MISSING, "a value (the field is required)")
        return MISSING

    def string(self, key: str) -> str:
        v = self.get(key)
        if not isinstance(v, str):
            self.wrong(key, v, "a string")
        return v

    def opt_string(self, key: str) -> str | None:
        v = self.get(key)
        if v is not None and not isinstance(v, str):
            self.wrong(key, v, "a string or null")
        return v

    def integer(self, key: str) -> int:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            self.wrong(key, v, "an integer")
        return v

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            self.wrong(key, v, "true or false")
        return v

    def number(self, key: str) -> float:
        """A number; ``null`` (how a non-finite value is stored) reads as NaN."""
        v = self.get(key)
        if v is None:
            return math.nan
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.wrong(key, v, "a number or null")
        return float(v)

    def obj(self, key: str) -> dict[str, Any]:
        v = self.get(key)
        if not isinstance(v, dict):
            self.wrong(key, v, "a JSON object")
        return v

    def opt_obj(self, key: str) -> dict[str, Any] | None:
        v = self.get(key)
        if v is not None and not isinstance(v, dict):
            self.wrong(key, v, "a JSON object or null")
        return v

    def array(self, key: str) -> list[Any]:
        v = self.get(key)
        if not isinstance(v, list):
            self.wrong(key, v, "a list")
        return v

    def strings(self, key: str) -> tuple[str, ...]:
        items = self.array(key)
        for i, s in enumerate(items):
            if not isinstance(s, str):
                Fields({}, self.source, self.path(key)).wrong(i, s, "a string")
        return tuple(items)

    def at(self, key: str) -> Fields:
        """The fields of the nested object ``key``."""
        return Fields(self.get(key), self.source, self.path(key))

    def items(self, key: str) -> list[Fields]:
        """The fields of each object of the list ``key``."""
        where = self.path(key)
        return [Fields(v, self.source, f"{where}[{i}]") for i, v in enumerate(self.array(key))]

    def verdict(self, key: str) -> Verdict:
        v = self.get(key)
        if not isinstance(v, str) or v not in set(Verdict):
            self.wrong(key, v, "one of " + ", ".join(Verdict))
        return Verdict(v)


# --------------------------------------------------------------------------------------------
# the records


@dataclass(frozen=True)
class CheckRecord:
    """One example or control of one theorem, checked (see module doc for ``id``).

    ``setting``, ``certificate``, ``details`` and ``series`` are JSON data (the runner
    normalises them when it builds the record, so a record read back from ``records.jsonl``
    equals the one written). ``error`` is set when the check raised (a harness error,
    verdict ERROR). The control fields (``name`` … ``as_expected``) are ``None`` for
    examples.
    """

    id: str
    theorem: str
    kind: CheckKind
    index: int  # position in the theorem's examples or controls, for display and order
    pinned: bool
    setting: Mapping[str, Any]
    verdict: Verdict
    measured: float
    bound: float
    margin: float
    reason: str
    certificate: Mapping[str, Any] | None
    details: Mapping[str, Any]
    series: Mapping[str, Any]
    error: str | None
    seconds: float
    name: str | None = None
    description: str | None = None
    expected: Verdict | None = None
    as_expected: bool | None = None
    # the cache entries the check read or wrote, key → digest (records.jsonl only: a resumed
    # run keeps exactly the entries some record vouches for, see verify.run.trust)
    cache_entries: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "theorem": self.theorem, "kind": str(self.kind),
            "index": self.index, "pinned": self.pinned, "verdict": str(self.verdict),
            "measured": self.measured, "bound": self.bound, "margin": self.margin,
            "reason": self.reason,
            "certificate": None if self.certificate is None else dict(self.certificate),
            "details": dict(self.details), "series": dict(self.series), "error": self.error,
            "setting": dict(self.setting), "seconds": self.seconds}
        if self.kind is CheckKind.CONTROL:
            out.update({"name": self.name, "description": self.description,
                        "expected": str(self.expected), "as_expected": self.as_expected})
        if self.cache_entries:
            out["cache_entries"] = dict(self.cache_entries)
        return out

    @classmethod
    def from_json(cls, data: object, source: str, where: str = "") -> CheckRecord:
        f = Fields(data, source, where)
        kind = f.string("kind")
        if kind not in set(CheckKind):
            f.wrong("kind", kind, "one of " + ", ".join(CheckKind))
        control = kind == CheckKind.CONTROL
        return cls(
            id=f.string("id"), theorem=f.string("theorem"), kind=CheckKind(kind),
            index=f.integer("index"), pinned=f.boolean("pinned"),
            setting=f.obj("setting"), verdict=f.verdict("verdict"),
            measured=f.number("measured"), bound=f.number("bound"), margin=f.number("margin"),
            reason=f.string("reason"), certificate=f.opt_obj("certificate"),
            details=f.obj("details"), series=f.obj("series"),
            error=f.opt_string("error"), seconds=f.number("seconds"),
            name=f.string("name") if control else None,
            description=f.string("description") if control else None,
            expected=f.verdict("expected") if control else None,
            as_expected=f.boolean("as_expected") if control else None,
            cache_entries=_digests(f.get("cache_entries", optional=True), f))


def _digests(v: object, f: Fields) -> dict[str, str]:
    if v is MISSING:
        return {}
    if not (isinstance(v, dict) and all(isinstance(k, str) and isinstance(d, str)
                                         for k, d in v.items())):
        f.wrong("cache_entries", v, "an object of cache key → digest strings")
    assert isinstance(v, dict)  # refused just above otherwise
    return {str(k): str(d) for k, d in v.items()}


@dataclass(frozen=True)
class TheoremSummary:
    """A theorem's entry of results.json: what it claims, its checks and its verdict.

    ``behaved``: no example FAILed except the known results, no harness error, every
    control got its expected verdict. ``plots``: the theorem's own figure specs
    (:data:`verify.report.PLOT_SPEC`). ``known``: the FAILs the theorem explains
    (:class:`verify.claims.theorem.Known`), check id → ``"name: explanation"``.
    """

    id: str
    title: str
    source: str
    statement: str
    statement_latex: str
    assumptions: tuple[str, ...]
    notes: tuple[str, ...]
    verdict: Verdict
    behaved: bool
    summary: str
    counts: Mapping[str, int]
    seconds: float
    examples: tuple[CheckRecord, ...]
    controls: tuple[CheckRecord, ...]
    plots: tuple[Mapping[str, Any], ...] = ()
    known: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "source": self.source,
            "statement": self.statement, "statement_latex": self.statement_latex,
            "assumptions": list(self.assumptions), "notes": list(self.notes),
            "verdict": str(self.verdict), "behaved": self.behaved, "summary": self.summary,
            "counts": dict(self.counts), "seconds": self.seconds,
            "examples": [r.to_json() for r in self.examples],
            "controls": [r.to_json() for r in self.controls],
            "plots": [dict(p) for p in self.plots], "known": dict(self.known)}

    @classmethod
    def from_json(cls, data: object, source: str, where: str = "") -> TheoremSummary:
        f = Fields(data, source, where)
        counts = f.at("counts")
        # optional: results written before known results existed have none
        known = (Fields({}, source, where) if f.get("known", optional=True) is MISSING
                 else f.at("known"))
        # ERROR is optional: results written before the ERROR verdict existed have none
        count = {str(v): (0 if v is Verdict.ERROR and counts.get(v, optional=True) is MISSING
                          else counts.integer(v)) for v in Verdict}
        plots = f.items("plots")
        for p in plots:
            p.string("kind")
        return cls(
            id=f.string("id"), title=f.string("title"), source=f.string("source"),
            statement=f.string("statement"), statement_latex=f.string("statement_latex"),
            assumptions=f.strings("assumptions"), notes=f.strings("notes"),
            verdict=f.verdict("verdict"), behaved=f.boolean("behaved"),
            summary=f.string("summary"), counts=count,
            seconds=f.number("seconds"),
            examples=_checks(f, "examples", CheckKind.EXAMPLE),
            controls=_checks(f, "controls", CheckKind.CONTROL), plots=tuple(p.data for p in plots),
            known={k: known.string(k) for k in known.data})


def _checks(f: Fields, key: str, kind: CheckKind) -> tuple[CheckRecord, ...]:
    out = []
    for e in f.items(key):
        if e.get("kind") != kind:
            e.wrong("kind", e.get("kind"), f"{kind} (this is the list of {key})")
        out.append(CheckRecord.from_json(e.data, f.source, e.where))
    return tuple(out)


@dataclass(frozen=True)
class RunInfo:
    """How the run was made: when, where, with what, and whether everything behaved."""

    started: str
    finished: str
    wall_seconds: float
    seed: int
    scale: str
    device: str
    dtype: str
    examples: int
    tau: float
    theorems_requested: tuple[str, ...]
    command: str
    versions: Mapping[str, str]
    git_commit: str | None
    platform: str
    threads: int
    workers: int
    scheduler: str | None
    resumed_records: int
    ok: bool
    interrupted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started, "finished": self.finished,
            "wall_seconds": self.wall_seconds, "seed": self.seed, "scale": self.scale,
            "device": self.device, "dtype": self.dtype, "examples": self.examples,
            "tau": self.tau, "theorems_requested": list(self.theorems_requested),
            "command": self.command, "versions": dict(self.versions),
            "git_commit": self.git_commit, "platform": self.platform,
            "threads": self.threads, "workers": self.workers, "scheduler": self.scheduler,
            "resumed_records": self.resumed_records, "ok": self.ok,
            "interrupted": self.interrupted}

    @classmethod
    def from_json(cls, data: object, source: str, where: str = "run") -> RunInfo:
        f = Fields(data, source, where)
        versions = f.at("versions")
        return cls(
            started=f.string("started"), finished=f.string("finished"),
            wall_seconds=f.number("wall_seconds"), seed=f.integer("seed"), scale=f.string("scale"),
            device=f.string("device"), dtype=f.string("dtype"), examples=f.integer("examples"),
            tau=f.number("tau"), theorems_requested=f.strings("theorems_requested"),
            command=f.string("command"),
            versions={k: versions.string(k) for k in versions.data},
            git_commit=f.opt_string("git_commit"), platform=f.string("platform"),
            threads=f.integer("threads"), workers=f.integer("workers"),
            scheduler=f.opt_string("scheduler"), resumed_records=f.integer("resumed_records"),
            ok=f.boolean("ok"), interrupted=f.boolean("interrupted"))


DIFF_COLUMNS = ("theorem", "entry", "what", "baseline", "now", "allowed")


@dataclass(frozen=True)
class RegressionInfo:
    """The comparison with a baseline (``verify regress``): one row per change."""

    baseline: str
    diffs: tuple[Mapping[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "diffs": [dict(d) for d in self.diffs]}

    @classmethod
    def from_json(cls, data: object, source: str, where: str = "regression"
                  ) -> RegressionInfo:
        f = Fields(data, source, where)
        rows = f.items("diffs")
        return cls(baseline=f.string("baseline"),
                   diffs=tuple({c: r.string(c) for c in DIFF_COLUMNS} for r in rows))


@dataclass(frozen=True)
class Results:
    """Everything a run measured: the content of ``results.json``."""

    run: RunInfo
    theorems: tuple[TheoremSummary, ...]
    regression: RegressionInfo | None = None
    schema: int = field(default=SCHEMA)

    def to_json(self) -> dict[str, Any]:
        out = {"schema": self.schema, "run": self.run.to_json(),
               "theorems": [t.to_json() for t in self.theorems]}
        if self.regression is not None:
            out["regression"] = self.regression.to_json()
        return out

    @classmethod
    def from_json(cls, data: object, source: str) -> Results:
        f = Fields(data, source)
        if f.get("schema") != SCHEMA:
            f.wrong("schema", f.get("schema"), f"{SCHEMA} (the schema this version reads)")
        reg = f.get("regression", optional=True)
        return cls(
            run=RunInfo.from_json(f.get("run"), source),
            theorems=tuple(TheoremSummary.from_json(t.data, source, t.where)
                           for t in f.items("theorems")),
            regression=None if reg is MISSING else RegressionInfo.from_json(reg, source))
