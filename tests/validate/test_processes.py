"""The validation processes: their truth is the expected effect, their layout is as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd
from bayesdecide.validate import PROCESSES, simulate_plan_tiers, simulate_regional_coupon
from bayesdecide.validate.processes import OUTLYING_REGION, SMALL_REGIONS


@pytest.mark.parametrize("simulate", [simulate_plan_tiers, simulate_regional_coupon])
def test_per_unit_truth_is_the_expected_effect(simulate):
    """A large replicate's difference in arm means estimates the mean per-unit truth."""
    sim = simulate(seed=5, n=400_000)
    d = sim.data
    treated = d[sim.spec.treatment] == 1
    for outcome in sim.spec.outcome_names:
        y = d[outcome].to_numpy(dtype=float)
        diff = y[treated].mean() - y[~treated].mean()
        se = np.sqrt(y[treated].var() / treated.sum() + y[~treated].var() / (~treated).sum())
        truth = sim.truth[outcome].mean()
        assert abs(diff - truth) < 4 * se, (outcome, diff, truth, se)


@pytest.mark.parametrize("simulate", [simulate_plan_tiers, simulate_regional_coupon])
def test_same_seed_same_replicate(simulate):
    a, b, c = simulate(seed=3, n=2_000), simulate(seed=3, n=2_000), simulate(seed=4, n=2_000)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.data.equals(c.data)


def test_plan_tiers_layout_and_multiplicative_truth():
    sim = simulate_plan_tiers(seed=2)
    cells = bd.cell_stats(sim.data, sim.spec)
    assert cells.ds.sizes["cell"] == 96 and cells.n_units == 150_000
    truth = sim.truth
    # gross-margin effect = lift x the account's own margin, exactly
    margin = sim.data["gross_margin"].where(sim.data["renewed"] == 1)
    ratio = (truth["gross_margin"] / truth["renewed"]).where(margin.notna())
    np.testing.assert_allclose(ratio.dropna(), margin.dropna())
    by_plan = truth.groupby(sim.data["plan"])["net_revenue"].mean()
    assert by_plan["Enterprise"] > 50 > 0 > by_plan["Starter"]


def test_regional_coupon_has_an_outlying_region_and_small_regions():
    sim = simulate_regional_coupon(seed=2)
    cells = bd.cell_stats(sim.data, sim.spec)
    assert cells.ds.sizes["cell"] == 80
    share = sim.data["region"].value_counts(normalize=True)
    assert all(0.008 < share[r] < 0.022 for r in SMALL_REGIONS)
    by_region = sim.truth.groupby(sim.data["region"])["contribution"].mean()
    others = by_region.drop(OUTLYING_REGION)
    assert by_region[OUTLYING_REGION] < -5 and (others > 0).all()


def test_process_settings_name_real_columns():
    for process in PROCESSES.values():
        sim = process.simulate(process.first_seed)
        groups = set(sim.spec.groups)
        assert set(process.factors) <= groups
        assert all(set(i) <= set(process.factors) for i in process.interactions)
        assert process.primary in sim.spec.outcome_names
        if process.holdout is not None:
            factor, level = process.holdout
            assert factor in process.factors and level in set(sim.data[factor].astype(str))
