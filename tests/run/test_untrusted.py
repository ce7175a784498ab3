"""A run folder is untrusted input: no code runs from it, records outside the plan or edited
are refused, cache entries nobody vouches for are removed and retrained; a stale lock is
taken over; a full disk is one line and the run resumes once there is room."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from verify import cli
from verify.engine import cache
from verify.engine.setting import CACHE_SUFFIX, Context, Setting, realise, setting_key
from verify.run import rundir, trust

ARGS = ["run", "--theorem", "T0", "--examples", "2", "--workers", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("untrusted") / "run"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    return out


def _lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / rundir.RECORDS).read_text().splitlines()]


def _write(out: Path, recs: list[dict]) -> None:
    (out / rundir.RECORDS).write_text("".join(json.dumps(r) + "\n" for r in recs))


class Boom:
    """Unpickling this would create a marker file: proof that code ran."""

    marker = ""

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def test_no_code_runs_from_a_crafted_cache_file(finished: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = _copy(finished, tmp_path)
    recs = _lines(out)
    pending = recs.pop()  # its check is redone on resume: its network is looked up
    _write(out, recs)
    key = next(iter(pending["cache_entries"]))
    marker = tmp_path / "pwned"
    Boom.marker = str(marker)
    payload = pickle.dumps(Boom())
    (out / rundir.CACHE / f"{key}{CACHE_SUFFIX}").unlink()
    (out / rundir.CACHE / f"{key}.pt").write_bytes(payload)  # the old torch.load format
    np.savez(out / rundir.CACHE / f"{key}{CACHE_SUFFIX}",
             __meta__=np.array([Boom()], dtype=object))  # an object array: a pickle inside
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "no record vouches for" in err and "removed" in err
    assert len(_lines(out)) == len(recs) + 1
    # and the loader itself refuses a pickle, bare or inside an npz, when asked directly
    with pytest.raises(cache.CacheError):
        cache.decode(payload)
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array([Boom()], dtype=object))
    with pytest.raises(cache.CacheError):
        cache.decode(buf.getvalue())
    assert not marker.exists()


def test_an_edited_cache_entry_is_retrained(tmp_path: Path) -> None:
    s = Setting(widths=(3, 4, 2), activation="tanh", n=8, steps=20, data="teacher")
    ctx = Context(cache_dir=str(tmp_path))
    first = realise(s, ctx)
    path = tmp_path / f"{setting_key(s, ctx.tau)}{CACHE_SUFFIX}"
    data = path.read_bytes()
    v = cache.decode(data)
    assert v["setting"] == json.loads(json.dumps(s.to_json()))
    # a digest that does not match is refused; so is an entry of another setting
    with pytest.raises(cache.CacheError, match="digest"):
        cache.decode(data, expect="0" * 64)
    other = Setting(widths=(3, 4, 2), activation="tanh", n=8, steps=20, data="teacher", seed=1)
    shutil.copy(path, tmp_path / f"{setting_key(other, ctx.tau)}{CACHE_SUFFIX}")
    again = realise(other, Context(cache_dir=str(tmp_path)))  # a miss: trained anew
    assert again.setting == other and not all(
        bool((a == b).all()) for a, b in zip(again.result.params, first.result.params,
                                             strict=True))


def test_an_edited_or_foreign_record_is_refused(finished: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    manifest = rundir.read_manifest(finished)
    assert manifest is not None
    plan = trust.plan_digest(manifest)
    cases = {
        "edited": lambda r: {**r, "verdict": "FAIL"},
        "outside the plan": lambda r: trust.seal({**r, "id": r["id"] + "-17"}, plan),
        "another plan": lambda r: trust.seal(r, "0" * 64),
        "another setting": lambda r: trust.seal({**r, "setting": {**r["setting"],
                                                                  "seed": 99}}, plan),
        "not sealed": lambda r: {k: v for k, v in r.items() if k != "digest"},
    }
    for name, edit in cases.items():
        out = tmp_path / name
        shutil.copytree(finished, out)
        recs = _lines(out)
        if name == "outside the plan":
            recs.append(edit(recs[0]))  # "18 of 17 checks done"
        else:
            recs[0] = edit(recs[0])
        _write(out, recs)
        before = (out / rundir.RECORDS).read_bytes()
        assert cli.main([*ARGS, "--out", str(out)]) == 2, name
        err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
        assert len(err) == 1 and "record" in err[0] and "allowed" in err[0], (name, err)
        assert (out / rundir.RECORDS).read_bytes() == before  # nothing clobbered


def test_a_stale_lock_is_taken_over(finished: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = _copy(finished, tmp_path)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (out / rundir.LOCK).write_text(f"{dead} {socket.gethostname()}\n")
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    assert f"left by process {dead}" in capsys.readouterr().err
    assert (out / rundir.LOCK).read_text() == ""  # released on exit


def test_a_full_disk_is_one_line_and_the_run_resumes(tmp_path: Path, monkeypatch:
                                                     pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    out = tmp_path / "full"
    real = rundir.append_record
    written: list[int] = []

    def full(fh, rec):  # type: ignore[no-untyped-def]
        if len(written) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(1)
        real(fh, rec)

    monkeypatch.setattr("verify.run.runner.append_record", full)
    assert cli.main([*ARGS, "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "No space left on device" in err[0] and "resumes" in err[0]
    monkeypatch.setattr("verify.run.runner.append_record", real)
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    assert "resuming" in capsys.readouterr().err
    assert len(_lines(out)) == len({r["id"] for r in _lines(out)}) == 4
