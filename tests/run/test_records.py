"""Typed results and their published JSON Schema: a real run's results.json and records.jsonl
are valid under ``verify/run/results.schema.json`` and read back losslessly through the
typed records; a wrong shape is refused by the schema and by ``from_json`` alike, naming
the field."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from verify import cli
from verify.engine.setting import setting_key_json
from verify.errors import UsageError
from verify.run import rundir, trust
from verify.run.records import SCHEMA, CheckRecord, Results, unique_ids
from verify.run.results import json_schema, jsonable, load_results, read_results


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)  # the schema itself is well-formed
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("records") / "run"
    assert cli.main(["run", "--theorem", "T1", "--examples", "1", "--scale", "quick",
                     "--workers", "1", "--out", str(out)]) == 0
    return out


def test_schema_number_is_the_one_written() -> None:
    assert json_schema()["properties"]["schema"]["const"] == SCHEMA


def test_a_real_run_is_valid_under_the_schema(tiny_run: Path,
                                              validator: Draft202012Validator) -> None:
    data = json.loads((tiny_run / "results.json").read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []
    (t1,) = data["theorems"]
    tau = data["run"]["tau"]
    # stable ids: an example is named by its setting's key, a control by its name
    assert [e["id"] for e in t1["examples"]] == [
        f"T1/ex/{setting_key_json(e['setting'], tau)}" for e in t1["examples"]]
    assert {c["id"] for c in t1["controls"]} == {f"T1/control/{c['name']}"
                                                for c in t1["controls"]}
    # every line of records.jsonl is a check record of the same schema
    check = {"$ref": "#/$defs/check", "$defs": json_schema()["$defs"]}
    lines = (tiny_run / rundir.RECORDS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(t1["examples"]) + len(t1["controls"])
    for line in lines:
        assert list(Draft202012Validator(check).iter_errors(jsonable(json.loads(line)))) == []


def test_typed_round_trip_is_lossless(tiny_run: Path) -> None:
    data = load_results(tiny_run)
    typed = read_results(tiny_run)
    assert isinstance(typed, Results) and typed.theorems[0].examples[0].kind == "example"
    assert jsonable(typed.to_json()) == data
    assert Results.from_json(typed.to_json(), "memory") == typed
    # records.jsonl reads back as the same records the results list
    recs = {r["id"]: CheckRecord.from_json(trust.unseal(r), "records.jsonl")
            for r in rundir.read_records(tiny_run)}
    for r in typed.theorems[0].examples + typed.theorems[0].controls:
        # records.jsonl also names the cache entries a check used; results.json does not
        assert jsonable(replace(recs[r.id], cache_entries={}).to_json()) == jsonable(
            r.to_json())


# each mutation: (path into results.json, new value or DELETE); all must be refused
DELETE = object()
MUTATIONS: list[tuple[tuple[Any, ...], Any]] = [
    (("schema",), 1),
    (("run",), []),
    (("run", "seed"), "0"),
    (("run", "ok"), 1),
    (("run", "tau"), DELETE),
    (("theorems",), {}),
    (("theorems", 0, "verdict"), "MAYBE"),
    (("theorems", 0, "counts", "PASS"), 1.5),
    (("theorems", 0, "assumptions"), [1]),
    (("theorems", 0, "examples", 0, "measured"), "0.1"),
    (("theorems", 0, "examples", 0, "certificate"), [1, 2]),
    (("theorems", 0, "examples", 0, "id"), DELETE),
    (("theorems", 0, "examples", 0, "kind"), "control"),
    (("theorems", 0, "controls", 0, "as_expected"), "yes"),
    (("theorems", 0, "controls", 0, "expected"), DELETE),
    (("regression",), {"baseline": "b.json", "diffs": [{"theorem": "T1"}]}),
]


def _mutate(data: dict, path: tuple[Any, ...], value: Any) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@pytest.mark.parametrize(("path", "value"), MUTATIONS,
                         ids=[".".join(map(str, p)) for p, _ in MUTATIONS])
def test_a_wrong_shape_is_refused_by_schema_and_records(
        tiny_run: Path, validator: Draft202012Validator, path: tuple[Any, ...],
        value: Any) -> None:
    good = load_results(tiny_run)
    assert validator.is_valid(good)
    bad = _mutate(good, path, value)
    assert not validator.is_valid(bad)
    with pytest.raises(UsageError) as err:
        Results.from_json(bad, "some/results.json")
    msg = str(err.value)
    assert msg.startswith("some/results.json field ") and "\n" not in msg
    named = ".".join(str(p) for p in path if not isinstance(p, int))
    assert path[-1] == "schema" or named.split(".")[-1] in msg, msg


def test_load_names_the_file_and_field(tiny_run: Path, tmp_path: Path) -> None:
    data = _mutate(load_results(tiny_run), ("theorems", 0, "examples", 0, "verdict"), "MAYBE")
    (tmp_path / "results.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError, match=r"results\.json field theorems\[0\]\.examples\[0\]"
                                         r"\.verdict='MAYBE' is not allowed: one of PASS"):
        load_results(tmp_path)


def test_ids_are_made_unique_in_order() -> None:
    assert unique_ids(["a", "b", "a", "a"]) == ["a", "b", "a~2", "a~3"]


def test_a_control_record_needs_its_control_fields() -> None:
    rec = {"id": "T1/control/x", "theorem": "T1", "kind": "control", "index": 0,
           "pinned": False, "verdict": "FAIL", "measured": None, "bound": 1, "margin": None,
           "reason": "r", "certificate": None, "details": {}, "series": {}, "error": None,
           "setting": {}, "seconds": 0.5}
    with pytest.raises(UsageError, match="name"):
        CheckRecord.from_json(rec, "records.jsonl line 1")
    full = CheckRecord.from_json({**rec, "name": "x", "description": "d", "expected": "FAIL",
                                  "as_expected": True}, "records.jsonl line 1")
    assert full.as_expected is True and full.measured != full.measured  # null reads as NaN
