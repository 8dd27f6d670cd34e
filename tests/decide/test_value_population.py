"""Value model, launch population and launch values on hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesdecide.decide import (
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    policy_table,
    policy_values,
    retention_value_model,
    treat_all,
    treat_none,
)
from bayesdecide.errors import SpecError


def test_cell_value_weights_and_transport():
    tau = xr.DataArray(
        np.array([[[[10.0, 2.0, 0.1], [20.0, 4.0, 0.0]]]]),
        dims=("chain", "draw", "cell", "outcome"),
        coords={"cell": ["a", "b"], "outcome": ["gross", "cost", "annoy"]},
    )
    vm = ValueModel({"gross": 1.0, "cost": -1.0, "annoy": -30.0})
    assert vm.benefit_outcomes == ("gross",)
    v = vm.cell_value(tau)
    np.testing.assert_allclose(v.values.ravel(), [10 - 2 - 3, 20 - 4])
    v_half = vm.cell_value(tau, transport_multiplier=0.5)
    np.testing.assert_allclose(v_half.values.ravel(), [5 - 2 - 3, 10 - 4])
    assert v.dims == ("chain", "draw", "cell")
    # weights change without refitting
    np.testing.assert_allclose(
        vm.with_penalty("annoy", 0).cell_value(tau).values.ravel(), [8.0, 16.0]
    )
    assert vm.penalty("annoy") == 30.0
    # explicit benefits
    vm2 = ValueModel({"gross": 1.0, "cost": -1.0}, benefits=("gross", "cost"))
    np.testing.assert_allclose(vm2.cell_value(tau, 2.0).values.ravel(), [16.0, 32.0])


def test_unknown_outcome_names_it_and_lists_valid(tiny):
    tau, _ = tiny
    vm = ValueModel({"v": 1.0, "gross_margn": 1.0})
    with pytest.raises(SpecError, match=r"gross_margn.*valid outcomes are \['v'\]"):
        vm.cell_value(tau)
    with pytest.raises(SpecError, match="benefits"):
        ValueModel({"v": 1.0}, benefits=("w",))
    with pytest.raises(SpecError, match="number"):
        ValueModel({"v": "lots"})


def test_value_model_round_trip():
    vm = retention_value_model(annoyance_penalty=50)
    assert ValueModel.from_dict(vm.to_dict()) == vm
    assert vm.weights["annoyance"] == -50.0
    with pytest.raises(SpecError, match="unknown value model keys"):
        ValueModel.from_dict({"weights": {"a": 1}, "wieghts": 2})


def test_launch_value_by_hand(tiny):
    tau, share = tiny  # draws (a, b): (1,-2), (3,0), (-1,4), (5,2); mix 0.25/0.75
    vm = ValueModel({"v": 1.0})
    pop = Population(100, fixed_cost=10)
    pols = [treat_none(), treat_all(), Policy("a_only", cells=["a"])]
    v = policy_values(tau, share, pols, vm, pop).isel(chain=0)
    all_hand = 100 * (0.25 * np.array([1, 3, -1, 5]) + 0.75 * np.array([-2, 0, 4, 2])) - 10
    a_hand = 100 * 0.25 * np.array([1, 3, -1, 5]) - 10
    np.testing.assert_allclose(v.sel(policy="treat_none"), 0.0)
    np.testing.assert_allclose(v.sel(policy="treat_all"), all_hand)
    np.testing.assert_allclose(v.sel(policy="a_only"), a_hand)
    # share-scaled cost: 10 * max(0.25, 0.05) for a_only, 10 for treat all
    pop_s = Population(100, fixed_cost=10, fixed_cost_scaling="treated_share")
    v_s = policy_values(tau, share, pols, vm, pop_s).isel(chain=0)
    np.testing.assert_allclose(v_s.sel(policy="a_only"), a_hand + 10 - 2.5)
    np.testing.assert_allclose(v_s.sel(policy="treat_all"), all_hand)


def test_share_scaled_cost_floor():
    pop = Population(1, fixed_cost=100, fixed_cost_scaling="treated_share")
    masks = np.array([[0, 0], [1, 0], [1, 1]], dtype=float)
    np.testing.assert_allclose(pop.cost_scale(masks, np.array([0.01, 0.99])), [0, 0.05, 1.0])
    np.testing.assert_allclose(pop.share_scale([0.02, 0.5]), [0.05, 0.5])
    np.testing.assert_allclose(Population(1).share_scale([0.02, 0.5]), [1.0, 1.0])
    with pytest.raises(SpecError, match="transport_multiplier is -3"):
        Population(1, transport_multiplier=-3)


def test_policy_table_by_hand(tiny):
    tau, share = tiny
    launch = LaunchDraws(tau, share, ValueModel({"v": 1.0}), Population(100, fixed_cost=10))
    pols = [treat_none(), treat_all(), Policy("a_only", cells=["a"])]
    pd_ = launch.evaluate(launch.masks(pols), [p.name for p in pols])
    t = policy_table(pd_.value, pd_.names, pd_.treated_share, loss_threshold=50)
    v = pd_.value  # columns none, all, a
    assert t.loc["treat_all", "expected_value"] == pytest.approx(v[:, 1].mean())
    assert t.loc["treat_all", "prob_positive"] == pytest.approx(np.mean(v[:, 1] > 0))
    assert t.loc["a_only", "prob_large_loss"] == pytest.approx(np.mean(v[:, 2] < -50))
    best = v.max(axis=1)
    assert t.loc["a_only", "expected_loss"] == pytest.approx((best - v[:, 2]).mean())
    assert t.loc["treat_none", "prob_best"] == pytest.approx(np.mean(v[:, 0] >= best))
    assert t.loc["treat_all", "p50"] == pytest.approx(np.percentile(v[:, 1], 50))
    assert t.loc["a_only", "p10"] == pytest.approx(np.percentile(v[:, 2], 10))
    np.testing.assert_allclose(t["treated_share"], [0.0, 1.0, 0.25])


def test_sample_dims_single(tiny):
    tau, share = tiny
    stacked = tau.isel(chain=0, drop=True).rename(draw="sample")
    v = policy_values(
        stacked, share, [treat_all()], ValueModel({"v": 1}), Population(100), "sample"
    )
    assert v.dims == ("sample", "policy")
    np.testing.assert_allclose(
        v.values[:, 0], 100 * (0.25 * np.array([1, 3, -1, 5]) + 0.75 * np.array([-2, 0, 4, 2]))
    )


def test_population_validation(tiny):
    tau, share = tiny
    with pytest.raises(SpecError, match="n_eligible"):
        Population(-5)
    with pytest.raises(SpecError, match="fixed_cost"):
        Population(10, fixed_cost=-1)
    with pytest.raises(SpecError, match="fixed_cost_scaling"):
        Population(10, fixed_cost_scaling="per_customer")
    with pytest.raises(SpecError, match="sums to"):
        Population(10, mix={"a": 0.5, "b": 0.6}).launch_mix(tau, share)
    with pytest.raises(SpecError, match="missing cells"):
        Population(10, mix={"a": 1.0}).launch_mix(tau, share)
    with pytest.raises(SpecError, match="unknown factors"):
        Population(10, mix={"country": {"x": 1.0}}).launch_mix(tau, share)
    with pytest.raises(SpecError, match="unknown levels"):
        Population(10, mix={"region": {"North": 0.5, "West": 0.5}}).launch_mix(tau, share)
    with pytest.raises(SpecError, match="missing levels"):
        Population(10, mix={"region": {"North": 1.0}}).launch_mix(tau, share)
    bad_share = xr.DataArray([0.5, 0.6], dims="cell", coords={"cell": ["a", "b"]})
    with pytest.raises(SpecError, match="cell_share sums to"):
        LaunchDraws(tau, bad_share, ValueModel({"v": 1}), Population(1))


def test_post_stratified_mix(retention_cells):
    tau, share = retention_cells
    target = {"Low risk": 0.2, "Medium risk": 0.5, "High risk": 0.3}
    mix = Population(1, mix={"risk_band": target}).launch_mix(tau, share)
    bands = tau["risk_band"].values
    s = pd.Series(mix).groupby(bands).sum()
    for band, want in target.items():
        assert s[band] == pytest.approx(want)
        # within a level, the experiment's relative cell shares are kept
        sel = bands == band
        np.testing.assert_allclose(
            mix[sel] / mix[sel].sum(), share.values[sel] / share.values[sel].sum()
        )
    # two factors: raked to both margins
    target_r = {"Americas": 0.6, "EMEA": 0.3, "APAC": 0.1}
    mix2 = Population(1, mix={"risk_band": target, "region": target_r}).launch_mix(tau, share)
    regions = tau["region"].values
    assert pd.Series(mix2).groupby(regions).sum()["APAC"] == pytest.approx(0.1, abs=1e-8)
    assert pd.Series(mix2).groupby(bands).sum()["High risk"] == pytest.approx(0.3, abs=1e-8)
    # a cell mix given directly
    direct = xr.DataArray(np.full(27, 1 / 27), dims="cell", coords={"cell": tau["cell"].values})
    np.testing.assert_allclose(Population(1, mix=direct).launch_mix(tau, share), 1 / 27)
