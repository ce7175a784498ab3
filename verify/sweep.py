"""The paper experiment of THEOREMS.md T5: average rank over layers after plain SGD, as
contours over (η, λ) at B = 8 and 16, (B, λ) at η fixed and (B, η) at λ fixed.

Galanti et al. (arXiv:2206.05794 v7) train ResNet-18 on CIFAR-10 and MLPs; here an MLP of
depth 3–5 on bundled digits data (no download), CE loss, no momentum, coupled decay. The
rank of a layer is rank_tol(W/‖W‖_F) with tol 1e-3; a point's value is its mean over layers.

Every finished grid point is appended to ``DIR/sweep.jsonl`` at once (flush + fsync), and a
rerun skips the points already there, so an interrupted sweep resumes where it stopped.
``DIR/sweep.md`` shows the contours (PNG files beside it) and the ranks at the grid corners.

    python -m verify.sweep --scale quick|standard|large --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.engine.setting import Context, Setting, trajectory
from verify.errors import NotJudgeable, OneLineParser, UsageError, require
from verify.measure import spectra
from verify.measure.fit import fit
from verify.measure.steady import Checkpoints
from verify.nets.network import weights

TOL = 1e-3


@dataclass(frozen=True)
class SweepScale:
    """The network and the grids of one sweep scale."""

    name: str
    widths: tuple[int, ...]
    n: int
    steps: int
    lrs: tuple[float, ...]
    lams: tuple[float, ...]
    batches: tuple[int, ...]
    lr_fixed: float
    lam_fixed: float


SWEEPS: dict[str, SweepScale] = {
    # rank_tol only drops once (1 − ηλ)^T ≪ tol, i.e. ηλT ≳ 7: the grids reach past it
    "quick": SweepScale("quick", (64, 32, 32, 10), 256, 800, (0.05, 0.1, 0.2),
                        (1e-3, 1e-2, 1e-1), (4, 16, 64), 0.2, 3e-2),
    "standard": SweepScale("standard", (64, 128, 128, 128, 10), 512, 2000,
                           (0.02, 0.05, 0.1, 0.2), (1e-3, 6e-3, 2e-2, 6e-2),
                           (4, 8, 16, 32), 0.1, 2e-2),
    "large": SweepScale("large", (64, 256, 256, 256, 256, 10), 1024, 5000,
                        (0.01, 0.02, 0.05, 0.1, 0.2), (1e-3, 3e-3, 6e-3, 2e-2, 6e-2),
                        (4, 8, 16, 32, 64), 0.1, 6e-3),
}


def grids(sc: SweepScale) -> list[dict[str, Any]]:
    """The four contour grids: name, axes (x field, y field) and the fixed values."""
    return [
        {"name": "eta-lambda-B8", "x": ("lr", sc.lrs), "y": ("lam", sc.lams),
         "fixed": {"batch": 8}},
        {"name": "eta-lambda-B16", "x": ("lr", sc.lrs), "y": ("lam", sc.lams),
         "fixed": {"batch": 16}},
        {"name": "B-lambda", "x": ("batch", sc.batches), "y": ("lam", sc.lams),
         "fixed": {"lr": sc.lr_fixed}},
        {"name": "B-eta", "x": ("batch", sc.batches), "y": ("lr", sc.lrs),
         "fixed": {"lam": sc.lam_fixed}},
    ]


def point_setting(sc: SweepScale, lr: float, lam: float, batch: int, seed: int = 0
                  ) -> Setting:
    return Setting(widths=sc.widths, activation="relu", lam=lam, n=sc.n, data="digits",
                   loss="ce", seed=seed, lr=lr, steps=sc.steps, batch=batch, polish=False)


def average_rank(s: Setting, ctx: Context) -> dict[str, Any]:
    """Train ``s`` by plain SGD; mean rank_tol over layers (None when it diverged or reached
    the wall-clock safety net, with the reason), with the run's steady state (did the ranks
    and F settle over the last fifth?) and its fit (training accuracy; at chance or
    collapsed), so an unsettled or collapsed point is seen for what it is."""
    t0 = time.perf_counter()
    obj = s.objective(ctx.device)
    ck = Checkpoints(obj, s.steps)
    try:
        res = trajectory(s, ctx, ck)
    except NotJudgeable as exc:
        return {"ranks": [], "average_rank": None, "finite": True, "reason": exc.reason,
                "seconds": time.perf_counter() - t0}
    W = weights(s.architecture(), res.params)
    ranks = [spectra.numerical_rank(w, TOL) for w in W] if res.finite else []
    return {"ranks": ranks, "average_rank": sum(ranks) / len(ranks) if ranks else None,
            "finite": res.finite, "seconds": time.perf_counter() - t0,
            "steady_state": ck.state().to_json(trace=False),
            "fit": fit(s.architecture(), res.params, obj.data).to_json()}


def _key(lr: float, lam: float, batch: int) -> str:
    return f"lr={lr:g},lam={lam:g},B={batch}"


def _valid_point(rec: Any) -> bool:
    """A point as :func:`run` writes it (so a file of the right syntax but another shape is
    refused instead of crashing the report)."""
    def num(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool)

    return (isinstance(rec, dict) and isinstance(rec.get("key"), str)
            and num(rec.get("lr")) and num(rec.get("lam"))
            and isinstance(rec.get("batch"), int) and not isinstance(rec.get("batch"), bool)
            and (rec.get("average_rank") is None or num(rec.get("average_rank")))
            and num(rec.get("seconds")) and isinstance(rec.get("ranks", []), list)
            and rec["key"] == _key(float(rec["lr"]), float(rec["lam"]), int(rec["batch"])))


def load(path: Path) -> dict[str, dict[str, Any]]:
    """Finished points by key. A torn last line (an interrupted write) is ignored and redone;
    any other line that is not a point as :func:`run` writes it is refused (UsageError
    naming the line): the file was damaged by something other than an interruption."""
    done: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("sweep file", str(path), f"a readable sweep.jsonl ({exc})") from None
    for i, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                continue
            rec = None
        if not _valid_point(rec):
            raise UsageError("sweep file", f"{path} line {i}", "JSON lines of grid points "
                             "written by `python -m verify.sweep` (use another --out, or "
                             "remove the file to start over)")
        done[rec["key"]] = rec
    return done


def _append(path: Path, rec: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(rec, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run(scale: str, out: Path, ctx: Context | None = None, log: Any = print
        ) -> dict[str, dict[str, Any]]:
    """Run (or resume) the sweep of ``scale`` into ``out``; returns every point by key."""
    require(scale in SWEEPS, "--scale", scale, f"one of {', '.join(SWEEPS)}")
    sc = SWEEPS[scale]
    ctx = ctx or Context(scale="quick", max_seconds=3600.0)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError("--out", str(out.parent), f"a writable folder ({exc.strerror})"
                         ) from None
    path = out / "sweep.jsonl"
    done = load(path)
    t0 = time.perf_counter()
    todo = []
    for g in grids(sc):
        (xf, xs), (yf, ys) = g["x"], g["y"]
        for y in ys:
            for x in xs:
                p = {"lr": sc.lr_fixed, "lam": sc.lam_fixed, "batch": 8, **g["fixed"],
                     xf: x, yf: y}
                todo.append((float(p["lr"]), float(p["lam"]), int(p["batch"])))
    for lr, lam, batch in dict.fromkeys(todo):
        key = _key(lr, lam, batch)
        if key in done:
            continue
        rec = {"key": key, "lr": lr, "lam": lam, "batch": batch,
               **average_rank(point_setting(sc, lr, lam, batch), ctx)}
        try:
            _append(path, rec)
        except OSError as exc:
            raise UsageError("--out", str(out), f"a writable folder with free space "
                             f"({exc.strerror}); the points so far are kept: run the same "
                             "command again to resume") from None
        done[key] = rec
        avg = rec["average_rank"]
        log(f"{key}: average rank {'—' if avg is None else f'{avg:.2f}'} "
            f"({rec['seconds']:.1f}s){' ' + rec['reason'] if rec.get('reason') else ''}")
    log(f"sweep {scale}: {len(done)} points, {time.perf_counter() - t0:.1f}s this run")
    return done


def plot_specs(scale: str, done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One contour spec (verify.report.PLOT_SPEC) per grid, from the finished points."""
    sc = SWEEPS[scale]
    specs = []
    for g in grids(sc):
        (xf, xs), (yf, ys) = g["x"], g["y"]
        z = []
        for y in ys:
            row = []
            for x in xs:
                p = {"lr": sc.lr_fixed, "lam": sc.lam_fixed, "batch": 8, **g["fixed"],
                     xf: x, yf: y}
                rec = done.get(_key(float(p["lr"]), float(p["lam"]), int(p["batch"])))
                v = None if rec is None else rec["average_rank"]
                row.append(v if v is not None and math.isfinite(v) else None)
            z.append(row)
        fixed = ", ".join(f"{k}={v:g}" for k, v in g["fixed"].items())
        specs.append({"kind": "contour", "title": f"Average rank over layers: {g['name']}",
                      "caption": f"rank_tol (tol {TOL:g}) of W/‖W‖_F averaged over layers after "
                                 f"{sc.steps} plain SGD steps, {fixed}, widths {sc.widths}",
                      "xlabel": xf, "ylabel": yf, "xscale": "log", "yscale": "log",
                      "x": list(map(float, xs)), "y": list(map(float, ys)), "z": z})
    return specs


def corners(spec: dict[str, Any]) -> dict[str, Any]:
    """The values at the four corners of a contour grid."""
    x, y, z = spec["x"], spec["y"], spec["z"]
    return {f"{spec['xlabel']}={x[i]:g},{spec['ylabel']}={y[j]:g}": z[j][i]
            for j in (0, len(y) - 1) for i in (0, len(x) - 1)}


def write_report(scale: str, out: Path, done: dict[str, dict[str, Any]]) -> Path:
    """sweep.md with the contour figures (PNG beside it) and the corner ranks."""
    from verify.report import render_plot

    lines = [f"# T5 paper experiment: rank contours ({scale})", "",
             f"{len(done)} grid points; total training time "
             f"{sum(r['seconds'] for r in done.values()):.1f}s (sum over points).", ""]
    for i, spec in enumerate(plot_specs(scale, done)):
        png = render_plot(spec)
        lines += [f"## {spec['title']}", "", spec["caption"], ""]
        if png is not None:
            (out / f"sweep{i}.png").write_bytes(png)
            lines += [f"![{spec['title']}](sweep{i}.png)", ""]
        lines += ["Corners: " + ", ".join(f"{k}: {v if v is None else round(v, 2)}"
                                          for k, v in corners(spec).items()), ""]
    unsettled = [k for k, r in done.items()
                 if not (r.get("steady_state") or {}).get("settled", True)]
    chance = [k for k, r in done.items() if not (r.get("fit") or {}).get("fits", True)]
    lines += ["## Steady state and fit", "",
              f"{len(unsettled)} of {len(done)} points had not settled (relative change of "
              "rank, stable rank or F over the last fifth above the limit): "
              + (", ".join(sorted(unsettled)) or "none") + ".", "",
              f"{len(chance)} points are at chance or collapsed (no evidence of low-rank bias): "
              + (", ".join(sorted(chance)) or "none") + ".", ""]
    path = out / "sweep.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 2 usage error (one line naming the value and what is allowed),
    130 interrupted (the points finished so far are kept; the same command resumes)."""
    ap = OneLineParser(prog="python -m verify.sweep", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="quick", help=f"one of {', '.join(SWEEPS)}")
    ap.add_argument("--out", default="reports/sweep", help="output folder (default "
                    "reports/sweep); the sweep goes to OUT/SCALE and resumes there")
    try:
        a = ap.parse_args(argv)
        require(a.scale in SWEEPS, "--scale", a.scale, f"one of {', '.join(SWEEPS)}")
        require(bool(a.out.strip()) and "\x00" not in a.out, "--out", a.out,
                "a file system path (not empty, no NUL character)")
        from verify.run.executor import pin_threads

        pin_threads(1)
        t0 = time.perf_counter()
        out = Path(a.out) / a.scale
        done = run(a.scale, out)
        try:
            path = write_report(a.scale, out, done)
        except OSError as exc:
            raise UsageError("--out", str(out), f"a writable folder ({exc.strerror})"
                             ) from None
        print(f"report: {path} (wall {time.perf_counter() - t0:.1f}s)")
    except UsageError as e:
        print(f"verify.sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("verify.sweep: interrupted; the points finished so far are kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
