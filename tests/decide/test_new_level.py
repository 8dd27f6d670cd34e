"""Pricing a launch in a level with no data yet: ``Decision.for_new_level``.

Hand-built draws (no sampling) check the arithmetic, the restated policies, the mix and the
checks; one small real fit checks the contract with ``Fit.predict_new`` / ``predict_level``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.decide import (
    CheckThresholds,
    Decision,
    DecisionSettings,
    EffectBound,
    FairnessFloor,
    Policy,
    Population,
    ValueModel,
    policy_at_level,
    retention_settings,
)
from bayesdecide.decide.checks import evaluate_checks
from bayesdecide.decide.recommend import BLOCKED
from bayesdecide.errors import SpecError

# Fitted cells: region (North, South) x band (lo, hi); one outcome "v" (dollars per customer).
# Draws: 1 chain x 4 draws, by hand.
FITTED = np.array(
    [
        # North|lo North|hi South|lo South|hi
        [1.0, 4.0, 0.0, 2.0],
        [3.0, 2.0, -1.0, 6.0],
        [-1.0, 6.0, 1.0, 4.0],
        [5.0, 0.0, 2.0, 4.0],
    ]
)
# The new region "West": its two cells' draws, and the experiment's mix over band (60% lo).
WEST = np.array([[-2.0, 10.0], [0.0, 4.0], [-4.0, 8.0], [2.0, -2.0]])
WEST_SHARE = [0.6, 0.4]


def _tau(values: np.ndarray, regions: list[str], bands: list[str], **coords) -> xr.DataArray:
    cells = [f"{r} | {b}" for r, b in zip(regions, bands, strict=True)]
    return xr.DataArray(
        values[None, :, :, None],
        dims=("chain", "draw", "cell", "outcome"),
        coords={
            "cell": cells,
            "outcome": ["v"],
            "region": ("cell", regions),
            "band": ("cell", bands),
            **{k: ("cell", v) for k, v in coords.items()},
        },
        name="tau",
    )


class HandFit:
    """What ``for_new_level`` reads of a Fit: ``tau`` and ``predict_new``."""

    def __init__(self, fitted: np.ndarray = FITTED) -> None:
        self.tau = _tau(fitted, ["North", "North", "South", "South"], ["lo", "hi", "lo", "hi"])
        self.cell_share = xr.DataArray(
            [0.3, 0.2, 0.3, 0.2], dims="cell", coords={"cell": self.tau["cell"].values}
        )
        self.calls: list[tuple[dict, int | None]] = []

    def predict_new(self, level, *, seed=None):
        self.calls.append((dict(level), seed))
        assert level == {"region": "West"}
        return _tau(WEST, ["West", "West"], ["lo", "hi"], cell_share=WEST_SHARE)


def _settings(**changes) -> DecisionSettings:
    base = DecisionSettings(
        value_model=ValueModel({"v": 1.0}),
        population=Population(1000, fixed_cost=50.0),
        policies=(
            Policy("north", rule={"region": ["North"]}, label="North only"),
            Policy("not_north", rule={"region": {"not_in": ["North"]}}),
            Policy("hi_band", rule={"band": ["hi"]}, label="High band"),
            Policy("not_south_hi", rule={"region": {"not_in": ["South"]}, "band": ["hi"]}),
            Policy("pilot", cells=["North | hi"]),
        ),
        include_optimal=False,
    )
    return base.with_changes(**changes)


@pytest.fixture
def fitted():
    fit = HandFit()
    return fit, Decision(fit.tau, fit.cell_share, _settings())


def test_launch_value_in_a_new_level_is_the_hand_computed_sum(fitted):
    fit, decision = fitted
    new = decision.for_new_level({"region": "West"}, fit, n_eligible=200, fixed_cost=30.0)
    assert fit.calls == [({"region": "West"}, None)]
    values = new.policy_values.sel(policy=["treat_none", "treat_all", "hi_band"])
    mix = np.array(WEST_SHARE)
    all_by_hand = 200 * WEST @ mix - 30.0  # N x (mix-weighted value per customer) - fixed cost
    hi_by_hand = 200 * WEST[:, 1] * mix[1] - 30.0  # constant fixed cost: paid in full
    np.testing.assert_allclose(values.sel(policy="treat_all").values.ravel(), all_by_hand)
    np.testing.assert_allclose(values.sel(policy="hi_band").values.ravel(), hi_by_hand)
    assert (values.sel(policy="treat_none").values == 0).all()
    table = new.policy_table()
    assert table.loc["treat_all", "expected_value"] == pytest.approx(all_by_hand.mean())
    assert table.loc["treat_all", "prob_positive"] == pytest.approx((all_by_hand > 0).mean())
    # the level's effect per eligible customer: its cells weighted by the experiment's mix
    assert new.effects_table().loc["v", "mean"] == pytest.approx((WEST @ mix).mean())
    # the decision for the fitted levels is unchanged
    assert decision.launch.population.n_eligible == 1000


def test_policies_are_restated_for_the_level(fitted):
    fit, decision = fitted
    new = decision.for_new_level({"region": "West"}, fit, n_eligible=200, fixed_cost=30.0)
    shares = new.policy_table()["treated_share"]
    # a rule naming other regions treats nobody in West; "not North" treats all of it; a rule on
    # another factor still targets; a cell set of fitted cells names no West cell
    assert shares["north"] == 0 and shares["pilot"] == 0
    assert shares["not_north"] == pytest.approx(1.0)
    assert shares["hi_band"] == pytest.approx(0.4) and shares["not_south_hi"] == pytest.approx(0.4)
    assert new.labels["north"] == "North only" and new.labels["hi_band"] == "High band"
    assert new.policy_cells("hi_band") == ["West | hi"]
    assert new.policy_table().loc["north", "expected_value"] == 0.0


def test_mix_and_other_settings_are_restated(fitted):
    fit, decision = fitted
    new = decision.for_new_level(
        {"region": "West"},
        fit,
        n_eligible=100,
        fixed_cost=0.0,
        mix={"band": {"lo": 0.5, "hi": 0.5}},
        transport_multiplier=0.5,
    )
    np.testing.assert_allclose(new.launch.mix, [0.5, 0.5])
    by_hand = 100 * 0.5 * WEST @ [0.5, 0.5]  # "v" is a benefit: scaled by the multiplier
    values = new.policy_values.sel(policy="treat_all").values.ravel()
    np.testing.assert_allclose(values, by_hand)
    # the experiment's mix over band is still what the level's effects are averaged with
    assert new.effects_table().loc["v", "mean"] == pytest.approx((WEST @ WEST_SHARE).mean())


def test_group_rules_and_guardrails_are_held_in_the_new_level(fitted):
    fit, _ = fitted
    rules = (
        EffectBound("v", upper=100.0, min_prob=0.5, name="cap"),
        FairnessFloor("region", floor=0.0, min_prob=0.75, name="floor"),
    )
    decision = Decision(fit.tau, fit.cell_share, _settings(guardrails=rules))
    new = decision.for_new_level({"region": "West"}, fit, n_eligible=200, fixed_cost=30.0)
    rows = new.guardrail_table().set_index(["rule", "policy"])
    # West's treated effect per customer under treat_all: 2.8, 1.6, 0.8, 0.4 > 0 in every draw
    assert rows.loc[("floor", "treat_all"), "probability"] == pytest.approx(1.0)
    # high band alone: 10, 4, 8, -2 -> positive in 3 of 4 draws
    assert rows.loc[("floor", "hi_band"), "probability"] == pytest.approx(0.75)


def test_the_fits_checks_gate_the_new_level():
    fit = HandFit()
    bad = evaluate_checks(
        500.0,
        500.0,
        pd.DataFrame(columns=["mean_control", "mean_treatment", "smd"]),
        {"max_rhat": 1.2, "min_ess_bulk": 50.0, "divergences": 3},
        CheckThresholds(),
        assignment_share=0.5,
    )
    decision = Decision(fit.tau, fit.cell_share, _settings(), checks=bad)
    new = decision.for_new_level({"region": "West"}, fit, n_eligible=200, fixed_cost=30.0)
    assert new.checks is bad
    assert new.recommendation.decision == BLOCKED and new.recommended_policy is None


def test_another_fits_draws_are_refused(fitted):
    _, decision = fitted
    other = HandFit(fitted=FITTED + 1.0)
    with pytest.raises(SpecError, match="not this decision's draws"):
        decision.for_new_level({"region": "West"}, other, n_eligible=200, fixed_cost=30.0)
    with pytest.raises(SpecError, match="Fit this decision was built from"):
        decision.for_new_level({"region": "West"}, decision.tau, n_eligible=200, fixed_cost=30.0)
    with pytest.raises(SpecError, match="mapping"):
        decision.for_new_level("West", HandFit(), n_eligible=200, fixed_cost=30.0)


def test_policy_at_level_decides_conditions_on_the_level():
    known = {"region": ["North", "South"]}
    cells = ["West | lo", "West | hi"]
    level = {"region": "West"}
    both = Policy("both", rule={"region": {"not_in": ["South"]}, "band": ["hi"]})
    assert policy_at_level(both, level, cells, known).rule == {"band": {"in": ("hi",)}}
    none = policy_at_level(Policy("s", rule={"region": ["South"]}), level, cells, known)
    assert none.cells == () and none.rule is None
    with pytest.raises(SpecError, match="has no levels"):
        policy_at_level(Policy("typo", rule={"region": ["Nort"]}), level, cells, known)
    # a known level keeps the cells of a cell set that belong to it
    known_cells = ["North | lo", "North | hi"]
    pilot = Policy("pilot", cells=["North | hi", "South | hi"])
    kept = policy_at_level(pilot, {"region": "North"}, known_cells, known)
    assert kept.cells == ("North | hi",)


def test_new_level_decision_on_a_real_fit(retention):
    with pytest.warns(UserWarning, match="only one arm"):  # Enterprise | APAC | High risk
        cells = bd.cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    fit = bd.fit(
        cells,
        factors=["segment", "region", "risk_band"],
        draws=200,
        tune=200,
        chains=2,
        seed=3,
        progressbar=False,
    )
    decision = Decision.from_fit(fit, retention_settings())
    new = decision.for_new_level({"region": "LATAM"}, fit, n_eligible=50_000, fixed_cost=100_000)
    assert new.tau.sizes["cell"] == 9 and set(new.tau["region"].values) == {"LATAM"}
    # treat_all's value is N x the value of predict_level's mix-weighted effects - fixed cost
    level = fit.predict_level({"region": "LATAM"})
    weights = decision.settings.value_model.weights
    per_customer = sum(w * level.sel(outcome=o) for o, w in weights.items())
    by_hand = 50_000 * per_customer - 100_000 * 1.0  # treated share 1: the whole fixed cost
    values = new.policy_values.sel(policy="treat_all")
    np.testing.assert_allclose(values.values, by_hand.transpose(*values.dims).values, rtol=1e-10)
    # a region with no data is less certain than a fitted region priced the same way
    known = decision.for_new_level({"region": "EMEA"}, fit, n_eligible=50_000, fixed_cost=100_000)
    sd_new = float(new.policy_values.sel(policy="treat_all").std())
    sd_known = float(known.policy_values.sel(policy="treat_all").std())
    assert sd_new > sd_known
    assert {"medium_high_risk", "high_risk_only", "optimal"} <= set(new.policy_names)
