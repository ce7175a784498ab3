"""Command line: ``python -m verify {list,run,check,regress,report,audit}``.

Exit status: 0 when every theorem behaved as expected (claims hold where their assumptions
hold, controls get their expected verdicts), 1 when not, 2 for a usage error. A usage error
is one line naming the bad value and what is allowed, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from verify.errors import UsageError

if TYPE_CHECKING:
    from verify.run.records import CheckRecord

EXIT_OK, EXIT_NOT_AS_EXPECTED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (exit 2 via :class:`UsageError`)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError("arguments", None, message,
                         f"{message} (see `{self.prog} --help`)")


def _bad(name: str, text: str, allowed: str) -> argparse.ArgumentTypeError:
    # argparse prefixes "argument NAME: "; the rest names the value and what is allowed
    return argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")


def _positive_int(name: str) -> Any:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = 0
        if v < 1:
            raise _bad(name, text, "a positive integer")
        return v

    return conv


def _nonneg_int(name: str) -> Any:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = -1
        if v < 0:
            raise _bad(name, text, "an integer ≥ 0")
        return v

    return conv


def _float_in(name: str, lo: float, hi: float, lo_open: bool = False) -> Any:
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
        bracket = "(" if lo_open else "["
        if not ok:
            raise _bad(name, text, f"a finite number in {bracket}{lo:g}, {hi:g}]")
        return v

    return conv


def _ints(flag: str, text: str, example: str) -> tuple[int, ...]:
    """Comma-separated integers (empty items ignored); the caller checks their range."""
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise _bad(flag, text, f"comma-separated positive integers, e.g. {example}") from None


def _widths(text: str) -> tuple[int, ...]:
    ws = _ints("--widths", text, "8,16,16,3")
    if len(ws) < 2:
        raise _bad("--widths", text, "at least two widths d_0,d_1 (depth ≥ 1)")
    if not all(w >= 1 for w in ws):
        raise _bad("--widths", text, "every width a positive integer")
    return ws


def _channels(text: str) -> tuple[int, ...]:
    cs = _ints("--conv", text, "16,32")
    if not cs or not all(c >= 1 for c in cs):
        raise _bad("--conv", text, "one or more positive channel counts, e.g. 16,32")
    return cs


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
    from verify.claims.scales import SCALES
    from verify.engine.train import PRECISIONS
    from verify.nets.activations import ACTIVATIONS
    from verify.nets.data import KINDS, LOSSES

    p = _Parser(prog="python -m verify", description=(
        "Executable theorems on low-rank bias under weight decay: train networks to "
        "certified stationarity, measure, and report PASS / FAIL / INCONCLUSIVE / VACUOUS "
        "for each claim and its negative controls."),
        epilog="Exit status: 0 all theorems behaved as expected, 1 some did not, 2 usage "
               "error.")
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
    r.add_argument("--theorem", action="append", metavar="ID",
                   help="theorem id (repeatable; default: all), e.g. --theorem T2")
    r.add_argument("--scale", default="quick", choices=list(SCALES),
                   help="size of networks and number of examples (default: quick); large "
                        "adds width-4096 MLPs and a conv net on 32×32×3 images (TF32 first "
                        "phase on a GPU, float64 certificates; hours on a CPU for all "
                        "theorems)")
    r.add_argument("--seed", type=_nonneg_int("--seed"), default=0,
                   help="seed for drawing settings (default: 0)")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = cuda when present (default), else cpu")
    r.add_argument("--examples", type=_nonneg_int("--examples"), default=None,
                   help="settings per theorem, pinned paper settings included "
                        "(default: by scale: quick 6, standard 12, large 24)")
    r.add_argument("--tau", type=_float_in("--tau", 0.0, 1.0, lo_open=True), default=1e-6,
                   help="certificate level: max_k r_k ≤ τ counts as stationary (default 1e-6)")
    r.add_argument("--workers", type=_positive_int("--workers"),
                   default=min(2, os.cpu_count() or 1),
                   help="worker processes, one torch thread each (default: min(2, cores))")
    r.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the checks on a Dask distributed scheduler, e.g. "
                        "tcp://host:8786 (default: local worker processes)")
    r.add_argument("--out", type=Path, default=None,
                   help="output folder (default: reports/runs/<time>-<scale>-seed<seed>); "
                        "an interrupted run restarted on the same folder resumes")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an earlier, different run in --out (the same run resumes "
                        "without it)")
    c = sub.add_parser("check", help="check one theorem on one setting you specify",
                       description="Train one network you describe and check one theorem "
                                   "on it; prints the verdict with its evidence.")
    c.add_argument("theorem", metavar="ID", help="theorem id, e.g. T3")
    c.add_argument("--widths", type=_widths, required=True,
                   help="d_0,d_1,...,d_L, e.g. 8,16,16,3")
    c.add_argument("--activation", default="relu", choices=list(ACTIVATIONS))
    c.add_argument("--lam", type=_float_in("--lam", 0.0, 1e6), default=1e-2,
                   help="weight decay λ (= λ_eff in F = L̂ + (λ/2)Σ‖W‖²), ≥ 0")
    c.add_argument("--n", type=_positive_int("--n"), default=32, help="number of samples")
    c.add_argument("--data", default="clusters", choices=list(KINDS))
    c.add_argument("--loss", default="squared", choices=list(LOSSES))
    c.add_argument("--dim", type=_positive_int("--dim"), default=None,
                   help="subspace dimension (subspace data) or target rank (whitened data)")
    c.add_argument("--lr", type=_float_in("--lr", 0.0, 1e3, lo_open=True), default=0.05,
                   help="GD step size η > 0")
    c.add_argument("--steps", type=_nonneg_int("--steps"), default=300,
                   help="GD steps before polishing")
    c.add_argument("--seed", type=_nonneg_int("--seed"), default=0)
    c.add_argument("--conv", type=_channels, default=None, metavar="C1,C2,…",
                   help="a conv net instead of an MLP: 3×3 stride-2 conv layers with these "
                        "channels, then a dense head; needs --data images and --widths "
                        "3·S²,d_out (e.g. 3072,10 for 32×32×3 images) and a smooth activation")
    c.add_argument("--precision", default="float64", choices=list(PRECISIONS),
                   help="precision of the GD phase; polish and certificate are always float64 "
                        "(default: float64; tf32 = float32 on a CPU)")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = cuda when present (default), else cpu")
    c.add_argument("--tau", type=_float_in("--tau", 0.0, 1.0, lo_open=True), default=1e-6)
    c.add_argument("--json", action="store_true", help="print the outcome as JSON")
    g = sub.add_parser("regress", help="compare a run with a baseline; exit 1 on a theory "
                       "regression", description="Compare DIR/results.json with a baseline: a "
                       "claim that held and now fails, a control that no longer gets its "
                       "expected verdict, a verdict turned INCONCLUSIVE, or a measured value "
                       "moved beyond its stated tolerance exits 1 with a diff table (also "
                       "added to DIR's report).")
    g.add_argument("dir", type=Path, metavar="DIR", help="a finished run folder")
    g.add_argument("--baseline", type=Path, default=Path("reports/baseline/quick.json"),
                   help="baseline file (default: reports/baseline/quick.json)")
    g.add_argument("--accept", action="store_true",
                   help="write DIR's results as the new baseline instead of comparing")
    g.add_argument("--partial", action="store_true",
                   help="compare only the theorems DIR ran (for a fast subset check)")
    rep = sub.add_parser("report", help="re-render report.md and report.html from DIR/results"
                         ".json", description="Re-render the report of an earlier run.")
    rep.add_argument("dir", type=Path, metavar="DIR")
    rep.add_argument("--previous", type=Path, metavar="OLD_DIR", default=None,
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
              f"~{eta:.0f}s left",
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
    from verify.run import session

    req = session.Request(
        theorems=tuple(select(a.theorem)), scale=a.scale, seed=a.seed, examples=a.examples,
        tau=a.tau, device=default_device(a.device), workers=a.workers,
        scheduler=a.scheduler, out=a.out, overwrite=a.overwrite,
        command="python -m verify " + " ".join(sys.argv[1:]))
    done = session.run(req, Progress())
    md, html = report.render(done.results, done.out)
    for e in done.results.theorems:
        mark = "ok " if e.behaved else "NOT"
        print(f"{mark} {e.id} {e.verdict:<12} {e.summary}", file=sys.stderr)
    print(f"verify: report written to {html} and {md} ({done.seconds:.0f}s)", file=sys.stderr)
    if done.interrupted:
        return 130
    return EXIT_OK if done.ok else EXIT_NOT_AS_EXPECTED


def cmd_check(a: argparse.Namespace) -> int:
    from verify.claims.theorem import select
    from verify.engine.setting import Context, Setting, default_device
    from verify.run.executor import pin_threads

    thm = select([a.theorem])[0]
    s = Setting(widths=a.widths, activation=a.activation, lam=a.lam, n=a.n, data=a.data,
                loss=a.loss, dim=a.dim, lr=a.lr, steps=a.steps, seed=a.seed, conv=a.conv,
                precision=a.precision)
    s.dataset()  # validate data arguments before training
    device = default_device(a.device)
    pin_threads()
    out = thm.check(s, Context(tau=a.tau, device=device))
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
    return EXIT_NOT_AS_EXPECTED if str(out.verdict) == "FAIL" else EXIT_OK


def cmd_regress(a: argparse.Namespace) -> int:
    from verify import report
    from verify.run import regression
    from verify.run.results import load_results, write_results

    results = load_results(a.dir)
    snap = regression.snapshot(results)
    if a.accept:
        regression.write_baseline(a.baseline, snap)
        print(f"verify: baseline written to {a.baseline} ({len(snap['theorems'])} theorems)",
              file=sys.stderr)
        return EXIT_OK
    base = regression.load_baseline(a.baseline)
    rows = regression.compare(base, snap, partial=a.partial)
    results["regression"] = {"baseline": str(a.baseline), "diffs": rows}
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
    md, html = report.render(results, a.dir, previous, f"the run in {a.previous}")
    print(f"verify: report written to {html} and {md}", file=sys.stderr)
    return EXIT_OK if results.get("run", {}).get("ok") else EXIT_NOT_AS_EXPECTED


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
        a = parser.parse_args(argv)
        if a.command is None:
            parser.print_help()
            return EXIT_USAGE
        if a.command == "list":
            return cmd_list(a.markdown)
        if a.command == "run":
            return cmd_run(a)
        if a.command == "check":
            return cmd_check(a)
        if a.command == "regress":
            return cmd_regress(a)
        if a.command == "audit":
            return cmd_audit(a)
        return cmd_report(a)
    except UsageError as exc:
        print(f"verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into a pager or head that closed early
        sys.stderr.close()
        return EXIT_OK
