"""Mechanics of the calibration harness: coverage arithmetic, replicates, failures, hold-outs.

No sampling: posteriors are hand-made draws whose intervals are known exactly, and the fits are
cheap stand-ins built from the raw cell estimates.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

import bayesdecide as bd
from bayesdecide.data.spec import ExperimentSpec, Outcome
from bayesdecide.simulate.simulation import Simulation
from bayesdecide.validate import (
    SEED_ATTR,
    Process,
    add_checks,
    leave_level_out,
    replicate_records,
    run_calibration,
)

# A grid of draws, evenly spaced on [-1, 1]: its equal-tailed 90% interval is [-0.9, 0.9] and its
# 95% interval [-0.95, 0.95] exactly (linear interpolation between grid points).
GRID = np.linspace(-1.0, 1.0, 2001)


def _hand_table() -> xr.Dataset:
    """Four cells a x b; units 10, 30, 20, 20; the last cell has one arm only (NaN estimate)."""
    n = np.array([10.0, 30.0, 20.0, 20.0])
    effect = np.array([1.0, 2.84, 3.0, np.nan])
    var = np.array([0.04, 0.01, 0.25, np.nan])
    return xr.Dataset(
        {
            "effect": (("cell", "outcome"), effect[:, None]),
            "effect_cov": (("cell", "outcome", "outcome_b"), var[:, None, None]),
            "n_control": (("cell",), np.array([5.0, 15.0, 10.0, 20.0])),
            "n_treatment": (("cell",), n - np.array([5.0, 15.0, 10.0, 20.0])),
            "observed": (("cell",), np.array([True, True, True, False])),
        },
        coords={
            "cell": ["a1 | b1", "a1 | b2", "a2 | b1", "a2 | b2"],
            "outcome": ["y"],
            "outcome_b": ["y"],
            "a": ("cell", ["a1", "a1", "a2", "a2"]),
            "b": ("cell", ["b1", "b2", "b1", "b2"]),
        },
    )


def _grid_tau(centres: np.ndarray, cells: list[str], scale: float = 1.0) -> xr.DataArray:
    draws = centres[None, :] + scale * GRID[:, None]  # (draw, cell)
    return xr.DataArray(
        draws[None, :, :, None],
        dims=("chain", "draw", "cell", "outcome"),
        coords={"cell": cells, "outcome": ["y"]},
    )


def test_coverage_arithmetic_on_hand_made_draws():
    table = _hand_table()
    centres = np.array([1.0, 2.0, 3.0, 4.0])
    offsets = np.array([0.5, 0.92, -0.97, 0.0])  # truth - posterior centre
    truth = pd.DataFrame(
        {"y": centres + offsets},
        index=pd.MultiIndex.from_arrays(
            [["a1", "a1", "a2", "a2"], ["b1", "b2", "b1", "b2"]], names=["a", "b"]
        ),
    )
    # the posterior's cells in another order: the harness aligns them by label
    order = [2, 0, 3, 1]
    cells = [str(c) for c in table["cell"].values]
    tau = _grid_tau(centres[order], [cells[i] for i in order])
    rec = add_checks(replicate_records(tau, table, truth, ["y"], ["a", "b"]))
    rec = rec.set_index(["factor", "level"])

    cell = rec.loc["cell"].loc[cells]
    np.testing.assert_array_equal(cell["cover90"], [1, 0, 0, 1])  # 0.92 and -0.97 outside 0.9
    np.testing.assert_array_equal(cell["cover95"], [1, 1, 0, 1])  # -0.97 outside 0.95
    np.testing.assert_allclose(cell["lo90"], centres - 0.9)
    np.testing.assert_allclose(cell["hi95"], centres + 0.95)
    sd = GRID.std(ddof=1)
    np.testing.assert_allclose(cell["z"], -offsets / sd, atol=1e-12)
    np.testing.assert_allclose(cell["width90"], 1.8)

    # level a1: weights 10/40, 30/40; the draws move together, so the interval is centre +/- 0.9
    a1 = rec.loc[("a", "a1")]
    assert a1["units"] == 40
    assert a1["truth"] == pytest.approx(0.25 * 1.5 + 0.75 * 2.92)
    assert a1["post_mean"] == pytest.approx(0.25 * 1.0 + 0.75 * 2.0)
    assert a1["cover90"] == 1  # truth - centre = 0.25 * 0.5 + 0.75 * 0.92 = 0.815 < 0.9
    # level b1: weights 10/30, 20/30; truth - centre = (0.5 - 2 * 0.97) / 3 = -0.48
    b1 = rec.loc[("b", "b1")]
    assert b1["truth"] - b1["post_mean"] == pytest.approx((0.5 - 2 * 0.97) / 3)
    # a single-arm cell counts in the pooled level, not in the unpooled one
    a2 = rec.loc[("a", "a2")]
    assert (a2["n_cells"], a2["n_observed"]) == (2, 1)
    assert a2["truth"] == pytest.approx(0.5 * (3.0 - 0.97) + 0.5 * 4.0)
    assert a2["raw_truth"] == pytest.approx(3.0 - 0.97)
    assert a2["raw_estimate"] == 3.0 and a2["raw_se"] == pytest.approx(0.5)
    assert np.isnan(rec.loc[("cell", "a2 | b2"), "raw_estimate"])
    assert np.isnan(rec.loc[("cell", "a2 | b2"), "raw_cover90"])
    # all units: pooled over 80 units, unpooled over the 60 units of observed cells
    overall = rec.loc[("all", "all units")]
    assert overall["post_mean"] == pytest.approx((10 * 1 + 30 * 2 + 20 * 3 + 20 * 4) / 80)
    w = np.array([10, 30, 20]) / 60
    assert overall["raw_estimate"] == pytest.approx(w @ [1.0, 2.84, 3.0])
    assert overall["raw_se"] == pytest.approx(np.sqrt(w**2 @ [0.04, 0.01, 0.25]))
    assert overall["raw_truth"] == pytest.approx(w @ (centres[:3] + offsets[:3]))
    # unpooled normal intervals: cell a1 | b2 (2.84 against 2.92, se 0.1, z = -0.8): covered
    assert rec.loc[("cell", "a1 | b2"), "raw_cover90"] == 1
    # cell a2 | b1 (3 against 2.03, se 0.5, z = 1.94): outside 1.645 se, inside 1.96 se
    assert rec.loc[("cell", "a2 | b1"), "raw_z"] == pytest.approx(1.94)
    # cell a1 | b1 (1 against 1.5, se 0.2, z = -2.5): outside both
    assert rec.loc[("cell", "a1 | b1"), ["raw_cover90", "raw_cover95"]].tolist() == [0, 0]
    assert rec.loc[("cell", "a2 | b1"), "raw_cover90"] == 0
    assert rec.loc[("cell", "a2 | b1"), "raw_cover95"] == 1
    assert rec.loc[("cell", "a2 | b1"), "raw_width90"] == pytest.approx(2 * norm.ppf(0.95) * 0.5)


def test_a_posterior_missing_a_cell_or_a_truth_is_an_error():
    table = _hand_table()
    cells = [str(c) for c in table["cell"].values]
    truth = pd.DataFrame(
        {"y": [1.0, 2.0, 3.0]},
        index=pd.MultiIndex.from_arrays([["a1", "a1", "a2"], ["b1", "b2", "b1"]], names=["a", "b"]),
    )
    with pytest.raises(KeyError, match="a2"):
        replicate_records(_grid_tau(np.zeros(4), cells), table, truth, ["y"], ["a", "b"])
    with pytest.raises(KeyError, match="no draws"):
        replicate_records(_grid_tau(np.zeros(3), cells[:3]), table, truth, ["y"], ["a", "b"])


# ---------------------------------------------------------------- a tiny process, stand-in fits
def _tiny_simulate(seed: int) -> Simulation:
    """2 x 3 cells, 3,000 units; unit truth = cell effect + 0.5 x; cell (a2, b3) control only."""
    rng = np.random.default_rng(seed)
    n = 3000
    a = rng.choice(["a1", "a2"], size=n)
    b = rng.choice(["b1", "b2", "b3"], size=n)
    x = rng.standard_normal(n)
    treat = (rng.random(n) < 0.5) & ~((a == "a2") & (b == "b3"))
    effect = np.where(a == "a1", 1.0, -1.0) + np.select([b == "b2", b == "b3"], [0.5, 2.0], 0.0)
    unit_truth = effect + 0.5 * x
    y = 2.0 + x + treat * unit_truth + rng.standard_normal(n)
    data = pd.DataFrame({"a": a, "b": b, "x": x, "treatment": treat.astype(int), "y": y})
    spec = ExperimentSpec(treatment="treatment", outcomes=(Outcome("y"),), groups=("a", "b"))
    return Simulation(data=data, truth=pd.DataFrame({"y": unit_truth}), spec=spec)


TINY = Process(
    name="tiny",
    simulate=_tiny_simulate,
    factors=("a", "b"),
    primary="y",
    description="2 x 3 cells with one control-only cell (test double)",
    units="units of y per unit",
    first_seed=11,
)


def _unpooled_fit(table: xr.Dataset, process: Process) -> SimpleNamespace:
    """Posterior = normal(raw estimate, se) on a symmetric quantile grid (mean exactly the
    estimate); a single-arm cell gets the mean of the others with sd 5."""
    z = norm.ppf((np.arange(1000) + 0.5) / 1000)
    est = table["effect"].sel(outcome="y").values
    se = np.sqrt(table["effect_cov"].sel(outcome="y", outcome_b="y").values)
    obs = table["observed"].values
    est = np.where(obs, est, np.nanmean(est))
    se = np.where(obs, se, 5.0)
    draws = est[None, :] + se[None, :] * z[:, None]
    tau = xr.DataArray(
        draws.reshape(2, 500, -1)[..., None],
        dims=("chain", "draw", "cell", "outcome"),
        coords={"cell": table["cell"].values, "outcome": ["y"]},
    )
    return SimpleNamespace(tau=tau, diagnostics={"max_rhat": 1.0, "divergences": 0})


def test_run_calibration_records_every_estimand_of_every_replicate():
    run = run_calibration(TINY, 3, fit_fn=_unpooled_fit)
    assert list(run.replicates["seed"]) == [11, 12, 13]
    assert (run.replicates["status"] == "ok").all()
    assert (run.replicates["single_arm_cells"] == 1).all()
    assert (run.replicates["cells"] == 6).all()
    assert (run.replicates["relative"] == "").all()  # a stand-in fit without model inputs
    # per replicate: 6 cells + 2 levels of a + 3 of b + all units
    assert len(run.records) == 3 * 12
    assert set(run.records["kind"]) == {"cell", "level", "overall"}
    summary = run.summary().iloc[0]
    assert summary["replications"] == 3 and summary["failed"] == 0
    assert summary["cells"] == 6
    # the posterior mean is the raw estimate, so pooled and unpooled RMSE agree exactly
    assert summary["rmse"] == pytest.approx(summary["raw_rmse"], rel=1e-12)
    assert not summary["pass_rmse"]  # "below" is strict
    # coverage: the per-replicate share of the 6 cells, the single-arm cell included
    checked = run.checked()
    cells = checked[checked["kind"] == "cell"]
    per_rep = cells.groupby("replicate")["cover90"].mean()
    assert summary["cell_cov90"] == pytest.approx(per_rep.mean())
    assert summary["cell_cov90_min"] == per_rep.min()
    assert set(np.round(per_rep * 6, 9)) <= set(range(7))
    levels = run.levels()
    assert set(levels.index.get_level_values("factor")) == {"a", "b", "all"}
    assert (levels["replicates"] == 3).all()
    a2 = checked[(checked["factor"] == "a") & (checked["level"] == "a2")]
    assert (a2["n_cells"] == 3).all() and (a2["n_observed"] == 2).all()
    # Monte Carlo error: the standard error of the mean z, and the binomial chance of coverage
    # this low if the interval covered exactly 95%
    row = levels.loc[("y", "a", "a2")]
    assert row["bias_sd_se"] == pytest.approx(a2["z"].std(ddof=1) / np.sqrt(3))
    covered = int(round(row["cover95"] * 3))
    expected = sum(math.comb(3, j) * 0.95**j * 0.05 ** (3 - j) for j in range(covered + 1))
    assert row["cover95_p"] == pytest.approx(expected)


def test_the_replicate_log_names_the_outcomes_pooled_as_relative_lifts():
    fitted = []

    def fit(table, process):
        fitted.append(
            bd.fit(table, factors=["a", "b"], draws=100, tune=100, chains=2, progressbar=False)
        )
        return fitted[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_calibration(TINY, 1, fit_fn=fit)
    assert run.replicates["relative"].iloc[0] == ", ".join(fitted[0].inputs.relative)


def test_replicates_are_reproducible_and_seeded():
    seen = []

    def fit(table, process):
        seen.append(table.attrs[SEED_ATTR])
        return _unpooled_fit(table, process)

    first = run_calibration(TINY, 2, fit_fn=fit)
    again = run_calibration(TINY, 2, fit_fn=fit)
    other = run_calibration(TINY, seeds=[12, 40], fit_fn=fit)
    assert seen == [11, 12, 11, 12, 12, 40]
    pd.testing.assert_frame_equal(first.records, again.records)
    same = other.records[other.records["seed"] == 12].drop(columns="replicate")
    pd.testing.assert_frame_equal(
        same.reset_index(drop=True),
        first.records[first.records["seed"] == 12].drop(columns="replicate").reset_index(drop=True),
    )


def test_a_failing_replicate_is_reported_not_swallowed():
    def flaky(table, process):
        if table.attrs[SEED_ATTR] == 12:
            raise FloatingPointError("sampler blew up")
        return _unpooled_fit(table, process)

    with pytest.warns(UserWarning, match=r"replicate 1 \(seed 12\) failed"):
        run = run_calibration(TINY, 3, fit_fn=flaky)
    failures = run.failures
    assert list(failures["seed"]) == [12]
    assert failures["error"].iloc[0] == "FloatingPointError: sampler blew up"
    assert "sampler blew up" in failures["traceback"].iloc[0]
    assert sorted(run.records["seed"].unique()) == [11, 13]
    summary = run.summary().iloc[0]
    assert (summary["replications"], summary["failed"]) == (2, 1)
    assert not summary["pass_all"]
    with pytest.raises(FloatingPointError):
        run_calibration(TINY, 3, fit_fn=flaky, raise_errors=True)


def test_a_posterior_with_nan_draws_fails_its_replicate():
    def broken(table, process):
        fit = _unpooled_fit(table, process)
        fit.tau[0, 0, 0, 0] = np.nan
        return fit

    with pytest.warns(UserWarning, match="NaN"):
        run = run_calibration(TINY, 1, fit_fn=broken)
    assert run.n_ok == 0 and run.records.empty
    summary = run.summary().iloc[0]
    assert summary["replications"] == 0 and not summary["pass_all"]


def test_leave_level_out_weights_the_predicted_cells_by_the_held_out_units():
    offsets = {"b1": 0.0, "b2": 10.0, "b3": 20.0}
    width = 100.0
    fitted_on = {}

    class StandIn:
        def __init__(self, table):
            fitted_on["levels"] = sorted(set(table["a"].values.astype(str)))

        def predict_new(self, level, seed=None):
            assert level == {"a": "a2"}
            cells = list(offsets)
            draws = np.array([offsets[c] for c in cells])[None, :] + width * GRID[:, None]
            return xr.DataArray(
                draws[None, :, :, None],
                dims=("chain", "draw", "cell", "outcome"),
                coords={
                    "cell": [f"a2 | {c}" for c in cells],
                    "outcome": ["y"],
                    "a": ("cell", ["a2"] * 3),
                    "b": ("cell", cells),
                },
            )

    result = leave_level_out(TINY, "a", "a2", fit_fn=lambda table, process: StandIn(table))
    assert fitted_on["levels"] == ["a1"]
    sim = TINY.simulate(TINY.first_seed)
    held = sim.data["a"] == "a2"
    units = sim.data.loc[held, "b"].value_counts()
    expected_mean = sum(units[b] * offsets[b] for b in offsets) / units.sum()
    assert result.units == held.sum() and result.cells == 3
    assert result.mean == pytest.approx(expected_mean)
    assert result.truth == pytest.approx(sim.truth.loc[held, "y"].mean())
    assert (result.lower, result.upper) == pytest.approx(
        (expected_mean - 0.9 * width, expected_mean + 0.9 * width)
    )
    assert result.covered
    # the draws are uniform on mean +/- width, so the PIT is linear in the truth
    assert result.pit == pytest.approx(0.5 + (result.truth - expected_mean) / (2 * width), abs=1e-3)
    with pytest.raises(ValueError, match="not a factor"):
        leave_level_out(TINY, "x", "a2", fit_fn=lambda table, process: StandIn(table))
