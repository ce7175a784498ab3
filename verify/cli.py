"""Command line: ``python -m verify {list,run,check,regress,report,audit}``.

Exit status: 0 when every theorem behaved as expected (claims hold where their assumptions
hold, controls get their expected verdicts), 1 when not, 2 for a usage error. A usage error
is one line naming the bad value and what is allowed, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.cli_args import (
    MAX_EXAMPLES,
    _channels,
    _float_in,
    _nonneg_int,
    _Parser,
    _path,
    _positive_int,
    _theorem_id,
    _widths,
    join_negative_values,
    value_flags,
)
from verify.errors import UsageError
from verify.names import (
    ACTIVATIONS,
    DEVICES,
    KINDS,
    LOSSES,
    MAX_SEED,
    MAX_STEPS,
    PRECISIONS,
    SCALE_NAMES,
    SUPPORTED_LOSSES,
    max_workers,
)

if TYPE_CHECKING:
    from verify.run.records import CheckRecord

EXIT_OK, EXIT_NOT_AS_EXPECTED, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TEXT = ("Exit status: 0 all theorems behaved as expected, 1 some did not (a claim failed "
             "inside its assumptions or a control missed its expected verdict), 2 usage error "
             "(one line naming the value and what is allowed), 3 harness error (a check "
             "ended in ERROR: a bug, never a verdict about the theorem), 130 interrupted "
             "(Ctrl-C or SIGTERM; the same command resumes).")


def _cost_text(cert: dict[str, Any]) -> str:
    """The first phase's size, precision, time per step and peak memory, for big or
    low-precision networks (the large scale); empty otherwise."""
    cost = cert.get("cost") or {}
    if not cost or (cost.get("precision") == "float64" and cost.get("parameters", 0) < 1e5):
        return ""
    sps = cost.get("seconds_per_step")
    step = f"{1e3 * sps:.3g} ms/step" if isinstance(sps, float) and math.isfinite(sps) else ""
    return (f" [{cost.get('parameters', 0):,} params, {cost.get('precision')} on "
            f"{cost.get('device')}, {step}, peak {cost.get('peak_memory_bytes', 0) / 2**20:.0f}"
            f" MiB]")


def build_parser() -> argparse.ArgumentParser:
    """The parser; it imports nothing heavy (the allowed values come from
    :mod:`verify.names` and ``theorems.THEOREM_IDS``), so usage errors arrive at once."""
    p = _Parser(prog="python -m verify", description=(
        "Executable theorems on low-rank bias under weight decay: train networks to "
        "certified stationarity, measure, and report PASS / FAIL / INCONCLUSIVE / VACUOUS "
        "for each claim and its negative controls."),
        epilog=EXIT_TEXT)
    sub = p.add_subparsers(dest="command", metavar="{list,run,check,regress,report,audit}")
    lst = sub.add_parser("list", help="list the registered theorems and their controls")
    lst.add_argument("--markdown", action="store_true",
                     help="print every theorem's specification as Markdown (statement, "
                          "assumptions, executable form, provenance, tolerance derivation, "
                          "controls): the content of docs/theorems.md")
    r = sub.add_parser("run", help="verify theorems over Hypothesis-drawn settings and write "
                       "a report", description="Draw settings with Hypothesis (seeded), train "
                       "each network to certified stationarity, check every claim and negative "
                       "control, and write results.json, report.md and report.html to --out.")
    r.add_argument("--theorem", nargs="+", action="extend", type=_theorem_id("--theorem"),
                   metavar="ID", help="theorem ids (default: all), e.g. --theorem T2 T3 or "
                                      "--theorem T2 --theorem T3")
    r.add_argument("--scale", default="quick", choices=list(SCALE_NAMES),
                   help="size of networks and number of examples (default: quick); large "
                        "adds width-4096 MLPs and a conv net on 32×32×3 images (TF32 first "
                        "phase on a GPU, float64 certificates; hours on a CPU for all "
                        "theorems)")
    r.add_argument("--seed", type=_nonneg_int("--seed", MAX_SEED), default=0,
                   help=f"seed for drawing settings, 0 … {MAX_SEED} (default: 0)")
    r.add_argument("--device", default="auto", choices=list(DEVICES),
                   help="auto = cuda when present (default), else cpu")
    r.add_argument("--examples", type=_positive_int("--examples", MAX_EXAMPLES), default=None,
                   help=f"settings per theorem, 1 … {MAX_EXAMPLES}, pinned paper settings "
                        "included (default: by scale: quick 6, standard 12, large 24)")
    r.add_argument("--tau", type=_float_in("--tau", 0.0, 1.0, lo_open=True), default=1e-6,
                   help="certificate level: max_k r_k ≤ τ counts as stationary (default 1e-6)")
    r.add_argument("--workers", type=_positive_int("--workers", max_workers()),
                   default=min(2, max_workers()),
                   help=f"worker processes, one torch thread each, at most 4 per core (here "
                        f"{max_workers()}) and never more than there are checks (default: "
                        "min(2, that))")
    r.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the checks on a Dask distributed scheduler, e.g. "
                        "tcp://host:8786 (default: local worker processes)")
    r.add_argument("--json", action="store_true",
                   help="print the run's results.json to stdout when it ends")
    r.add_argument("--out", type=_path("--out"), default=None,
                   help="output folder (default: reports/runs/<time>-<scale>-seed<seed>); "
                        "an interrupted run restarted on the same folder resumes")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an earlier, different run in --out (the same run resumes "
                        "without it)")
    c = sub.add_parser("check", help="check one theorem on one setting you specify",
                       description="Train one network you describe and check one theorem "
                                   "on it; prints the verdict with its evidence.")
    c.add_argument("theorem", metavar="ID", type=_theorem_id("ID"), help="theorem id, e.g. T3")
    c.add_argument("--widths", type=_widths, required=True,
                   help="d_0,d_1,...,d_L, e.g. 8,16,16,3")
    c.add_argument("--activation", default="relu", choices=list(ACTIVATIONS))
    c.add_argument("--lam", type=_float_in("--lam", 0.0, 1e6), default=1e-2,
                   help="weight decay λ (= λ_eff in F = L̂ + (λ/2)Σ‖W‖²), ≥ 0")
    c.add_argument("--n", type=_positive_int("--n"), default=32,
                   help="number of samples (what fits in memory, see "
                        "verify.engine.setting.require_fits)")
    c.add_argument("--data", default="clusters", choices=list(KINDS))
    c.add_argument("--loss", default="squared", choices=list(LOSSES))
    c.add_argument("--dim", type=_positive_int("--dim"), default=None,
                   help="subspace dimension (subspace data) or target rank (whitened data)")
    c.add_argument("--lr", type=_float_in("--lr", 0.0, 1e3, lo_open=True), default=0.05,
                   help="GD step size η > 0")
    c.add_argument("--steps", type=_nonneg_int("--steps", MAX_STEPS), default=300,
                   help=f"GD steps before polishing, 0 … {MAX_STEPS}")
    c.add_argument("--seed", type=_nonneg_int("--seed", MAX_SEED), default=0)
    c.add_argument("--conv", type=_channels, default=None, metavar="C1,C2,…",
                   help="a conv net instead of an MLP: 3×3 stride-2 conv layers with these "
                        "channels, then a dense head; needs --data images and --widths "
                        "3·S²,d_out (e.g. 3072,10 for 32×32×3 images) and a smooth activation")
    c.add_argument("--precision", default="float64", choices=list(PRECISIONS),
                   help="precision of the GD phase; polish and certificate are always float64 "
                        "(default: float64; tf32 = float32 on a CPU)")
    c.add_argument("--device", default="auto", choices=list(DEVICES),
                   help="auto = cuda when present (default), else cpu")
    c.add_argument("--tau", type=_float_in("--tau", 0.0, 1.0, lo_open=True), default=1e-6)
    c.add_argument("--json", action="store_true", help="print the outcome as JSON")
    g = sub.add_parser("regress", help="compare a run with a baseline; exit 1 on a theory "
                       "regression", description="Compare DIR/results.json with a baseline: a "
                       "claim that held and now fails, a control that no longer gets its "
                       "expected verdict, a verdict turned INCONCLUSIVE, or a measured value "
                       "moved beyond its stated tolerance exits 1 with a diff table (also "
                       "added to DIR's report).")
    g.add_argument("dir", type=_path("DIR"), metavar="DIR", help="a finished run folder")
    g.add_argument("--baseline", type=_path("--baseline"),
                   default=Path("reports/baseline/quick.json"),
                   help="baseline file (default: reports/baseline/quick.json)")
    g.add_argument("--accept", action="store_true",
                   help="write DIR's results as the new baseline instead of comparing")
    g.add_argument("--partial", action="store_true",
                   help="compare only the theorems DIR ran (for a fast subset check)")
    rep = sub.add_parser("report", help="re-render report.md and report.html from DIR/results"
                         ".json", description="Re-render the report of an earlier run.")
    rep.add_argument("dir", type=_path("DIR"), metavar="DIR")
    rep.add_argument("--previous", type=_path("--previous"), metavar="OLD_DIR", default=None,
                     help="an earlier run folder: list the changes since it (when DIR has "
                          "no regression result from `verify regress`)")
    _audit_parser(sub, ACTIVATIONS, KINDS, LOSSES)
    return p


def _audit_parser(sub: Any, activations: tuple[str, ...], kinds: tuple[str, ...],
                  losses: tuple[str, ...]) -> None:
    au = sub.add_parser("audit", help="audit a trained model file: certificate, per-layer "
                        "table, the theorems that apply", description="Audit the weights in "
                        "FILE as they are (no retraining): the stationarity certificate of F = "
                        "L̂ + (λ/2)Σ‖W‖², one row per weight matrix, and the verdicts of the "
                        "theorems whose assumptions the model meets. Writes audit.md, "
                        "audit.html and audit.json to --out.")
    au.add_argument("file", type=Path, metavar="FILE",
                    help="a .safetensors file or a state_dict saved with torch.save(model."
                         "state_dict(), FILE) (read with torch.load(weights_only=True))")
    au.add_argument("--widths", type=_widths, required=True,
                    help="d_0,d_1,...,d_L of the MLP (biases: as in FILE), e.g. 64,32,10")
    au.add_argument("--activation", default="relu", choices=list(activations))
    au.add_argument("--conv", type=_channels, default=None, metavar="C1,C2,…",
                    help="a conv net: 3×3 stride-2 padding-1 conv layers with these channels, "
                         "then a dense head (--widths 3·S²,d_out)")
    au.add_argument("--data", default="digits", choices=list(kinds),
                    help="the harness data set the model is judged on (default: digits)")
    au.add_argument("--n", type=_positive_int("--n"), default=None,
                    help="samples (default: all of digits/diabetes, else 256)")
    au.add_argument("--seed", type=_nonneg_int("--seed"), default=0, help="data seed")
    au.add_argument("--lam", type=_float_in("--lam", 0.0, 1e6), required=True,
                    help="the weight decay λ it was trained with (λ_eff: torch's weight_decay)")
    au.add_argument("--loss", default="ce", choices=list(losses))
    au.add_argument("--reg-bias", action="store_true", help="biases are decayed too")
    au.add_argument("--tau", type=_float_in("--tau", 0.0, 1.0, lo_open=True), default=1e-6)
    au.add_argument("--polish", action="store_true",
                    help="then continue to a certified point and report how far it moved")
    au.add_argument("--max-seconds", type=_float_in("--max-seconds", 0.0, 1e6, lo_open=True),
                    default=120.0, help="time budget of --polish (default 120)")
    au.add_argument("--out", type=Path, default=None,
                    help="report folder (default: reports/audit/<FILE's name>)")


class Progress:
    """One line per finished check on stderr, with elapsed time and an estimate of the rest."""

    def __init__(self, stream: Any = None) -> None:
        self.t0 = time.perf_counter()
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, rec: CheckRecord, done: int, total: int) -> None:
        from verify.report.console import record_reason

        el = time.perf_counter() - self.t0
        eta = el / done * (total - done)
        what = f"control {rec.name!r}" if rec.name is not None else f"example {rec.index}"
        cert = dict(rec.certificate or {})
        r = cert.get("max_residual")
        rtxt = f" r={r:.1e}" if isinstance(r, float) and math.isfinite(r) else ""
        flag = ""
        if rec.expected is not None and not rec.as_expected:
            flag = f"  (expected {rec.expected})"
        print(f"[{done:>3}/{total}] {rec.theorem} {what:<28} {rec.verdict:<12}{rtxt}"
              f"  {rec.seconds:.1f}s{flag}{_cost_text(cert)}   elapsed {el:.0f}s, "
              f"~{eta:.0f}s left{record_reason(rec)}",
              file=self.stream, flush=True)


def cmd_list(markdown: bool = False) -> int:
    from verify.claims.scales import SCALES
    from verify.claims.theorem import registry

    if markdown:
        from verify.report.spec import specification_markdown

        sys.stdout.write(specification_markdown())
        return EXIT_OK

    for thm in registry().values():
        print(f"{thm.id}  {thm.title}\n    source: {thm.source}")
        for c in thm.controls(SCALES["quick"]):
            print(f"    control {c.name!r}: expect {c.expected} — {c.description}")
    return EXIT_OK


def cmd_run(a: argparse.Namespace) -> int:
    from verify import report
    from verify.claims.theorem import select
    from verify.engine.setting import default_device
    from verify.report.console import theorem_line
    from verify.run import session
    from verify.run.results import RESULTS_NAME

    req = session.Request(
        theorems=tuple(select(a.theorem)), scale=a.scale, seed=a.seed, examples=a.examples,
        tau=a.tau, device=default_device(a.device), workers=a.workers,
        scheduler=a.scheduler, out=a.out, overwrite=a.overwrite,
        command="python -m verify " + " ".join(sys.argv[1:]))
    done = session.run(req, Progress())
    md, html = report.render(done.results, done.out)
    for e in done.results.theorems:
        print(theorem_line(e), file=sys.stderr)
    if a.json and (done.out / RESULTS_NAME).is_file():  # results.json, exactly as written
        sys.stdout.write((done.out / RESULTS_NAME).read_text(encoding="utf-8"))
    print(f"verify: report written to {html} and {md} ({done.seconds:.0f}s)", file=sys.stderr)
    if done.interrupted:
        return EXIT_INTERRUPTED
    if done.errors:
        print(f"verify: {done.errors} check(s) ended in a harness error (verdict ERROR; "
              "details in the report)", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if done.ok else EXIT_NOT_AS_EXPECTED


def cmd_check(a: argparse.Namespace) -> int:
    import traceback

    from verify.claims.theorem import run_check, select
    from verify.claims.verdict import Outcome, Verdict
    from verify.engine.setting import Context, Setting, default_device, require_fits
    from verify.report.console import stage_lines
    from verify.run.executor import pin_threads

    thm = select([a.theorem])[0]
    _require_checkable(thm, a.widths, a.conv)
    s = Setting(widths=a.widths, activation=a.activation, lam=a.lam, n=a.n, data=a.data,
                loss=a.loss, dim=a.dim, lr=a.lr, steps=a.steps, seed=a.seed, conv=a.conv,
                precision=a.precision)
    device = default_device(a.device)
    require_fits([s], device, "--widths/--n", f"{','.join(map(str, a.widths))} with n={a.n}")
    s.dataset()  # validate data arguments before training
    pin_threads()
    print(f"verify: {thm.id}: training {','.join(map(str, a.widths))} {a.activation} on "
          f"{a.data} (n={a.n}) on {device} (first phase: {a.steps} steps; then polish, kink "
          "stage, certificate, claim) …", file=sys.stderr, flush=True)
    ctx = Context(tau=a.tau, device=device)
    t0 = time.perf_counter()
    try:
        out = run_check(thm.check, s, ctx)
    except UsageError:
        raise
    except Exception as exc:  # a harness error: its own verdict and exit status
        where = traceback.extract_tb(exc.__traceback__)[-1]
        out = Outcome(Verdict.ERROR, math.nan, math.nan, math.nan,
                      f"harness error: {type(exc).__name__}: {exc} (at {where.filename}:"
                      f"{where.lineno})", details={"traceback": traceback.format_exc()})
    for line in stage_lines([t.result for t in ctx.cache.values()], time.perf_counter() - t0):
        print(line, file=sys.stderr, flush=True)
    rec = out.to_json()
    rec["setting"] = s.to_json()
    if a.json:
        print(json.dumps(rec, default=str, indent=2))
    else:
        cert = rec["certificate"] or {}
        print(f"{thm.id} {out.verdict}: {out.reason}")
        print(f"  measured {out.measured:.4g}, bound {out.bound:.4g}, margin {out.margin:.4g}")
        if cert:
            print(f"  certificate: {cert['reason']}; max r_k = {cert['max_residual']:.3g} "
                  f"({cert['residual_kind']}, {cert['kinks']} kinks); λ_min(∇²F) = "
                  f"{cert['min_hessian_eig']} ({cert['hessian_method']})"
                  f"{_cost_text(cert)}")
            print(f"  established: {(cert.get('established') or {}).get('summary', '—')}")
    if out.verdict == Verdict.ERROR:
        return EXIT_ERROR
    return EXIT_NOT_AS_EXPECTED if out.verdict == Verdict.FAIL else EXIT_OK


def _require_loss_fits_data(kind: str, loss: str) -> None:
    """Refuse a loss the data kind cannot take (regression data with a classification loss)
    while parsing, before any heavy import; :func:`verify.nets.data.make_data` checks the
    same rule."""
    allowed = SUPPORTED_LOSSES.get(kind, LOSSES)
    if loss not in allowed:
        raise UsageError("--loss", loss, f"one of {', '.join(allowed)} for --data {kind}")


def _require_checkable(thm: Any, widths: tuple[int, ...], conv: tuple[int, ...] | None
                       ) -> None:
    """Refuse up front what ``check`` cannot do with ``thm``: a theorem about something other
    than one network (T8: task pairs), or a dense network shallower than every network the
    theorem's own examples and controls use (e.g. depth 1 where a claim compares layers)."""
    from verify.claims.scales import SCALES
    from verify.engine.setting import Setting
    from verify.run.runner import draw_settings

    quick = SCALES["quick"]
    own = [*thm.pinned(quick), *(c.setting for c in thm.controls(quick))]
    kinds = {type(x) for x in own}
    if Setting not in kinds:
        raise UsageError("ID", thm.id, "a theorem whose claim is about one network (its "
                         f"checks take {', '.join(sorted(k.__name__ for k in kinds))}: use "
                         f"`python -m verify run --theorem {thm.id}`)")
    if conv is not None:
        return
    dense = [x for x in (*own, *draw_settings(thm, quick, 10, 0))
             if isinstance(x, Setting) and x.conv is None]
    least = min(len(x.widths) - 1 for x in dense)
    if len(widths) - 1 < least:
        raise UsageError("--widths", ",".join(map(str, widths)), f"a network of depth ≥ "
                         f"{least} for {thm.id} (its claim is stated for such networks; "
                         f"this one has depth {len(widths) - 1})")


def cmd_regress(a: argparse.Namespace) -> int:
    from verify import report
    from verify.run import regression
    from verify.run.results import load_results, write_results

    results = load_results(a.dir)
    snap = regression.snapshot(results, f"results file {a.dir}")
    if a.accept:
        with _writing("--baseline", a.baseline):
            regression.write_baseline(a.baseline, snap)
        print(f"verify: baseline written to {a.baseline} ({len(snap['theorems'])} theorems)",
              file=sys.stderr)
        return EXIT_OK
    base = regression.load_baseline(a.baseline)
    rows = regression.compare(base, snap, partial=a.partial)
    results["regression"] = {"baseline": str(a.baseline), "diffs": rows}
    with _writing("DIR", a.dir):
        write_results(results, a.dir)
        report.render(results, a.dir)
    if rows:
        print(f"verify: theory regression against {a.baseline}: {len(rows)} change(s)\n")
        print(regression.table(rows))
        return EXIT_NOT_AS_EXPECTED
    print(f"verify: no regression against {a.baseline}", file=sys.stderr)
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    from verify import report
    from verify.run.results import load_results

    results = load_results(a.dir)
    previous = load_results(a.previous) if a.previous is not None else None
    with _writing("DIR", a.dir):
        md, html = report.render(results, a.dir, previous, f"the run in {a.previous}")
    print(f"verify: report written to {html} and {md}", file=sys.stderr)
    run = results.get("run")
    return EXIT_OK if isinstance(run, dict) and run.get("ok") is True else EXIT_NOT_AS_EXPECTED


@contextlib.contextmanager
def _writing(name: str, path: Path) -> Iterator[None]:
    """A file that cannot be written (read-only folder, full disk) is a usage error naming
    it; a file written atomically is never left half-written."""
    try:
        yield
    except OSError as exc:
        raise UsageError(name, str(path), f"a writable location ({exc.strerror or exc})"
                         ) from None


def cmd_audit(a: argparse.Namespace) -> int:
    from verify.audit import Architecture, ConvNet, audit, load_weights
    from verify.audit.data import harness_dataset
    from verify.nets.data import image_side
    from verify.run.executor import pin_threads

    state = load_weights(a.file)
    if a.conv is not None:
        side = image_side(a.widths[0])
        if len(a.widths) != 2 or side is None:
            raise UsageError("--widths", ",".join(map(str, a.widths)),
                             "3·S²,d_out for a conv net on S×S RGB images (e.g. 192,10)")
        arch: Architecture | ConvNet = ConvNet((3, side, side), a.conv, a.widths[-1],
                                               a.activation)
    else:
        arch = Architecture(a.widths, a.activation, bias=any(k.endswith("bias") for k in state))
    data = harness_dataset(a.data, a.widths, a.loss, a.n, a.seed)
    pin_threads()
    out = audit(state, data.X, data.Y, lam=a.lam, loss=a.loss, arch=arch, tau=a.tau,
                reg_bias=a.reg_bias, name=str(a.file), data_name=data.name)
    if a.polish:
        out = out.polish(a.max_seconds)
    md, html = out.report(a.out or Path("reports/audit") / a.file.stem)
    print(out.summary())
    print(f"verify: audit written to {html} and {md}", file=sys.stderr)
    failed = [c.theorem for c in out.checks if c.verdict == "FAIL"]
    return EXIT_NOT_AS_EXPECTED if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        a = parser.parse_args(join_negative_values(argv, value_flags(parser)))
        if a.command is None:
            parser.print_help()
            return EXIT_USAGE
        if a.command == "list":
            return cmd_list(a.markdown)
        if a.command == "run":
            return cmd_run(a)
        if a.command == "check":
            _require_loss_fits_data(a.data, a.loss)
            return cmd_check(a)
        if a.command == "regress":
            return cmd_regress(a)
        if a.command == "audit":
            return cmd_audit(a)
        return cmd_report(a)
    except UsageError as exc:
        print(f"verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handling: one line, no traceback
        print("verify: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a pager or head that closed early
        sys.stderr.close()
        return EXIT_OK
