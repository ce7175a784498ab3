"""verify.measure.grid: the studies of a trend claim — protocols, steady state and fit per
run, which runs a trend may use — against direct recomputation on tiny networks."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import spearmanr

from verify.engine.setting import Context, Setting
from verify.errors import UsageError
from verify.measure import grid
from verify.measure.fit import Fit
from verify.measure.steady import SteadyState, settle_steps

CTX = Context(tau=1e-6)
LINEAR = Setting(widths=(4, 5, 5, 2), activation="identity", lam=0.2, n=12, data="teacher",
                 loss="squared", seed=0, lr=0.1, steps=1, batch=4, polish=False)


def test_protocols_give_their_steps() -> None:
    s = replace(LINEAR, lr=0.2, lam=0.1, batch=3)
    assert grid.Protocol("settle").steps_for(s) == settle_steps(0.2, 0.1)
    assert grid.Protocol("fixed steps", steps=77).steps_for(s) == 77
    # the paper's B protocol: ⌈epochs·n/B⌉
    assert grid.Protocol("fixed epochs", epochs=2.5).steps_for(s) == math.ceil(2.5 * 12 / 3)
    assert grid.Protocol("fixed epochs", epochs=2.5).steps_for(replace(s, batch=None)) == 3
    for bad in ({"name": "epochs"}, {"name": "fixed steps"}, {"name": "fixed epochs"}):
        with pytest.raises(UsageError):
            grid.Protocol(**bad)  # type: ignore[arg-type]


def test_study_runs_points_outer_seeds_inner_and_records_each_run() -> None:
    seen: list[tuple[float, int, int]] = []

    def metric(s: Setting, params: object) -> dict[str, float]:
        seen.append((s.lam, s.seed, s.steps))
        return {"lam_again": s.lam}

    st_ = grid.run_study(LINEAR, CTX, "lam", [{"lam": 0.2}, {"lam": 0.4}], 2, metric,
                         grid.Protocol("settle"))
    T = {lam: settle_steps(0.1, lam) for lam in (0.2, 0.4)}
    assert seen == [(0.2, 0, T[0.2]), (0.2, 1, T[0.2]), (0.4, 0, T[0.4]), (0.4, 1, T[0.4])]
    for r in st_.runs:
        assert r.steady.steps == r.steps and r.fit.kind == "r2" and r.finite
        assert r.to_json()["steady_state"]["settled"] == r.steady.settled
    assert st_.details(("lam_again",))["networks"] == 4


RELU = Setting(widths=(5, 6, 6, 3), activation="relu", lam=0.05, n=12, data="clusters",
               loss="ce", seed=1, lr=0.2, steps=1, batch=4, polish=False)


def test_unsettled_diverged_and_control_runs() -> None:
    # measured: after 80 steps F still falls by 5.2% over the last fifth; lr = 1e9 diverges
    short = grid.run_study(RELU, CTX, "lr", [{"lr": 0.2}, {"lr": 1e9}], 1,
                           grid.hidden_ranks, grid.Protocol("fixed steps", steps=80))
    why = [r.exclusion for r in short.runs]
    assert why == ["not settled", "diverged"], [r.steady.reason for r in short.runs]
    assert short.excluded() == {"not settled": 1, "diverged": 1} and not short.usable()
    assert not short.runs[1].steady.settled and short.runs[1].metrics == {}
    # the same run as a reference at the same steps need not settle
    ctl = grid.run_study(RELU, CTX, "lr", [{"lr": 0.2}], 1, grid.hidden_ranks,
                         grid.Protocol("fixed steps", steps=80), controls=(0.2,))
    assert ctl.runs[0].control and ctl.runs[0].exclusion is None


def test_a_width_key_sets_every_hidden_width() -> None:
    st_ = grid.run_study(LINEAR, CTX, "lam", [{"lam": 0.2, "width": 3}], 1,
                         lambda s, p: {"w": float(s.widths[1] + s.widths[2])},
                         grid.Protocol("fixed steps", steps=2), stratum="width")
    assert st_.runs[0].metrics["w"] == 6 and st_.runs[0].point == {"lam": 0.2, "width": 3.0}
    assert grid.widths_with((4, 5, 5, 2), 9) == (4, 9, 9, 2)


def _run(x: float, y: float, settled: bool = True, fits: bool = True, width: float = 1.0,
         linear: bool = False, below: bool = False) -> grid.Run:
    st_ = SteadyState(10, (8, 10), {}, {}, 0.05, settled, "")
    fit = Fit("r2", 0.2 if below else 0.9, 0.0, not fits, False, linear=0.5)
    return grid.Run({"v": x, "width": width}, 0, 10, {"m": y}, st_, fit, True, linear=linear)


def test_trends_use_settled_runs_that_fit_and_cells_summarise_them() -> None:
    runs = [_run(1, 3.0), _run(1, 2.0), _run(2, 1.0), _run(2, 0.0), _run(3, -1.0),
            _run(3, 99.0, settled=False), _run(3, 99.0, fits=False),
            _run(3, 99.0, linear=True, below=True)]
    st_ = grid.Study("v", grid.Protocol("settle"), 2, tuple(runs))
    assert st_.excluded() == {"not settled": 1, "at chance": 1, "below linear fit": 1}
    t = st_.trend("m", seed=0)
    twin = spearmanr([1, 1, 2, 2, 3], [3.0, 2.0, 1.0, 0.0, -1.0]).statistic
    assert t.rho == pytest.approx(twin) and t.runs == 5 and st_.levels() == 3
    cell = next(c for c in st_.cells(("m",)) if c["v"] == 1)
    assert cell["m"] == {"mean": 2.5, "sd": pytest.approx(np.std([3, 2], ddof=1)), "min": 2.0,
                         "max": 3.0} and cell["used"] == 2
    assert st_.series(("m",))["x"] == [1.0, 1.0, 2.0, 2.0, 3.0]


def test_a_trend_within_strata_is_not_one_made_by_mixing_them() -> None:
    # inside each width the metric falls with v; across widths it rises
    runs = [_run(v, 10 * w - v, width=w) for w in (1.0, 2.0) for v in (1, 2, 3) for _ in "ab"]
    st_ = grid.Study("v", grid.Protocol("settle"), 2, tuple(runs), stratum="width")
    assert st_.trend("m", seed=0).rho == pytest.approx(-1.0, abs=0.2)
