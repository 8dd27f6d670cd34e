"""Break-even draws and thresholds, sensitivity grids."""

from __future__ import annotations

import numpy as np
import pytest

from bayesdecide.decide import (
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    break_even_table,
    linear_coefficients,
    parse_assumption,
    policy_values,
    retention_value_model,
    sensitivity,
    sensitivity_draws,
    threshold_crossing,
    treat_all,
)
from bayesdecide.errors import SpecError


def _launch(tau, share, **pop):
    return LaunchDraws(tau, share, retention_value_model(), Population(**pop))


@pytest.mark.parametrize(
    "assumption",
    [
        "transport_multiplier",
        "fixed_cost",
        "n_eligible",
        "penalty:annoyance",
        "weight:gross_margin",
    ],
)
@pytest.mark.parametrize("scaling", ["constant", "treated_share"])
def test_value_is_zero_at_break_even(retention_cells, assumption, scaling):
    tau, share = retention_cells
    pol = Policy("mh", rule={"risk_band": ["Medium risk", "High risk"]})
    launch = _launch(tau, share, n_eligible=50_000, fixed_cost=400_000, fixed_cost_scaling=scaling)
    mask = launch.masks([pol])
    a, b, current, asm = linear_coefficients(launch, mask, assumption)
    # V(current) reproduces the policy's value draws
    v = launch.evaluate(mask).value
    np.testing.assert_allclose(a + b * current, v, rtol=1e-9, atol=1e-6)
    # plugging one draw's break-even back into the settings gives value 0 for that draw
    theta = float((-a / b)[7, 0])
    pop = launch.population
    vm = launch.value_model
    if asm.kind == "penalty":
        vm = vm.with_penalty(asm.outcome, theta)
    elif asm.kind == "weight":
        vm = vm.with_weights(**{asm.outcome: theta})
    else:
        pop = Population(**{**pop.to_dict(), asm.kind: theta})
    v_be = policy_values(tau, share, [pol], vm, pop).values.reshape(-1)
    assert v_be[7] == pytest.approx(0.0, abs=1e-5 * max(1.0, abs(v).max()))


def test_threshold_crossing_quantile():
    rng = np.random.default_rng(0)
    a = rng.normal(-10, 3, 1000)
    b = np.full(1000, 10.0)  # roots = -a/10 ~ N(1, 0.3); value rises with theta
    roots = np.sort(-a / b)
    th = threshold_crossing(a, b, 0.8)
    assert (a + b * th > 0).mean() < 0.8 <= (a + b * (th + 1e-9) > 0).mean()
    assert th == pytest.approx(roots[799])
    # falling with theta: the largest value with P >= q
    th2 = threshold_crossing(a, -b, 0.8)
    assert (a - b * (th2 - 1e-9) > 0).mean() >= 0.8
    assert (a - b * (th2 + 1e-9) > 0).mean() < 0.8
    assert th2 == pytest.approx(np.sort(-roots)[200])
    assert np.isnan(threshold_crossing(np.full(5, -1.0), np.zeros(5), 0.5))
    assert threshold_crossing(np.full(5, 1.0), np.zeros(5), 0.5) == -np.inf


def test_break_even_table(retention_cells):
    tau, share = retention_cells
    launch = _launch(tau, share, n_eligible=120_000, fixed_cost=280_000)
    pols = [treat_all()]
    t = break_even_table(
        launch,
        launch.masks(pols),
        ["treat_all"],
        ["transport_multiplier", "annoyance_penalty"],
        0.5,
        0.95,
    )
    assert list(t["assumption"]) == ["transport_multiplier", "annoyance_penalty"]
    row = t.iloc[0]
    assert row["direction"] == "above" and row["current"] == 1.0
    assert row["lower"] <= row["median"] <= row["upper"]
    # at P = 0.5 the threshold is the median of the break-even draws (same-sign slopes)
    assert row["threshold"] == pytest.approx(row["median"], rel=0.01)
    assert t.iloc[1]["direction"] == "below"


def test_parse_assumption():
    outs = ["annoyance", "gross_margin"]
    vm = ValueModel(
        {"gross_margin": 1.0, "annoyance": -35.0}, assumptions={"annoyance_penalty": "annoyance"}
    )
    named = parse_assumption("annoyance_penalty", vm, outs)
    assert (named.kind, named.outcome, named.label) == ("penalty", "annoyance", "annoyance_penalty")
    assert parse_assumption("weight:gross_margin", vm, outs).kind == "weight"
    with pytest.raises(SpecError, match="unknown assumption 'penalty:tickets'"):
        parse_assumption("penalty:tickets", vm, outs)
    # a name is resolved through the value model, never by parsing its suffix
    with pytest.raises(SpecError, match="unknown assumption 'gross_margin_penalty'"):
        parse_assumption("gross_margin_penalty", vm, outs)
    with pytest.raises(SpecError, match="unknown assumption"):
        parse_assumption("discount_rate", vm, outs)


def test_sensitivity_grid_matches_direct(retention_cells):
    tau, share = retention_cells
    vm = retention_value_model()
    pop = Population(120_000, fixed_cost=280_000, fixed_cost_scaling="treated_share")
    pols = [treat_all(), Policy("hr", rule={"risk_band": ["High risk"]})]
    grid = [0.5, 0.8, 1.0]
    tab = sensitivity(tau, share, "transport_multiplier", grid, vm, pop, pols)
    assert list(tab.columns) == [
        "assumption",
        "value",
        "policy",
        "expected_value",
        "prob_positive",
        "prob_large_loss",
        "p10",
        "p90",
    ]
    for g in grid:
        direct = policy_values(
            tau, share, pols, vm, Population(**{**pop.to_dict(), "transport_multiplier": g})
        )
        for p in ("treat_all", "hr"):
            row = tab[(tab["value"] == g) & (tab["policy"] == p)].iloc[0]
            d = direct.sel(policy=p)
            assert row["expected_value"] == pytest.approx(float(d.mean()), rel=1e-9)
            assert row["prob_positive"] == pytest.approx(float((d > 0).mean()))
    da = sensitivity_draws(tau, share, "fixed_cost", [0, 1e5, 1e6], vm, pop, pols)
    assert da.dims == ("chain", "draw", "policy", "fixed_cost")
    with pytest.raises(SpecError, match="negative"):
        sensitivity(tau, share, "n_eligible", [-1, 2], vm, pop)


def test_sensitivity_value_weight(tiny):
    tau, share = tiny
    vm = ValueModel({"v": 1.0})
    tab = sensitivity(tau, share, "weight:v", [0.0, 2.0], vm, Population(100, fixed_cost=10))
    eff = 0.25 * np.array([1, 3, -1, 5]) + 0.75 * np.array([-2, 0, 4, 2])
    np.testing.assert_allclose(
        tab["expected_value"], [-10.0, 100 * 2 * eff.mean() - 10], rtol=1e-12
    )
