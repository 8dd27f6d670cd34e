"""The validation processes: their truth is the expected effect, their layout is as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd
from bayesdecide.simulate.retention import BASE_MARGIN_LOG
from bayesdecide.validate import PROCESSES, simulate_plan_tiers, simulate_regional_coupon
from bayesdecide.validate.processes import OUTLYING_REGION, SMALL_REGIONS, retention_population


def _sample_means_z(sim):
    """Per cell and outcome: the mean of the cell's units' truths, and its distance from the
    stated population effect in standard errors (NaN where the truth is constant in the cell)."""
    groups = list(sim.spec.groups)
    frame = sim.truth.assign(**{g: sim.data[g].to_numpy() for g in groups})
    grouped = frame.groupby(groups, observed=True, sort=True)
    mean, sd, n = grouped.mean(), grouped.std(), grouped.size()
    population = sim.population.loc[mean.index]
    z = (mean - population) / sd.where(sd > 1e-9).div(np.sqrt(n), axis=0)
    return mean, population, z


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
def test_population_cell_effects_are_the_expected_effect(simulate):
    """The stated population cell effect (exact formulas) is the mean over many units drawn into
    the cell: a large replicate's per-cell means of the units' truths scatter around it as their
    standard errors say (96 and 80 cells)."""
    sim = simulate(seed=6, n=400_000)
    mean, population, z = _sample_means_z(sim)
    for outcome in sim.spec.outcome_names:
        zk = z[outcome]
        if zk.isna().all():  # constant within every cell: equal, not scattered
            np.testing.assert_allclose(mean[outcome], population[outcome], rtol=1e-12)
            continue
        assert zk.abs().max() < 4.5, (outcome, zk.abs().idxmax(), zk.abs().max())
        assert 0.6 < (zk**2).mean() < 1.5, (outcome, (zk**2).mean())


def test_retention_population_prices_the_segment_mean_margin():
    """The seed process's population effects: the margin enters as its lognormal mean per segment,
    and a replicate's per-cell sample means scatter around them (the 23 of 27 cells with at least
    30 customers; a handful of customers does not estimate the standard error)."""
    population = retention_population()
    segment = population.index.get_level_values("segment")
    mean_margin = np.array([np.exp(m + s**2 / 2) for m, s in map(BASE_MARGIN_LOG.get, segment)])
    np.testing.assert_allclose(population["gross_margin"], population["renewed"] * mean_margin)
    sim = PROCESSES["retention"].simulate(808)
    assert sim.population is population  # computed once per process
    _, _, z = _sample_means_z(sim)
    size = sim.data.groupby(list(sim.spec.groups)).size().loc[z.index]
    zk = z["net_margin"][size >= 30]
    assert len(zk) >= 20
    assert zk.abs().max() < 4.0 and 0.3 < (zk**2).mean() < 2.0, zk.round(2).to_dict()


def test_true_cell_effects_prefer_the_population():
    sim = simulate_plan_tiers(seed=3, n=5_000)
    assert sim.true_cell_effects() is sim.population
    sample = sim.sample_cell_effects()
    by_hand = sim.truth.groupby([sim.data[g] for g in sim.spec.groups]).mean()
    pd.testing.assert_frame_equal(sample, by_hand)
    without = bd.Simulation(data=sim.data, truth=sim.truth, spec=sim.spec)
    pd.testing.assert_frame_equal(without.true_cell_effects(), sample)


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
