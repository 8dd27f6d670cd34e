"""The decision layer on real fits: the seed's conclusions, and policy values that recover the truth.

These sample real models (tens of seconds each), so they are marked slow and run in CI.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.decide import (
    Decision,
    DecisionSettings,
    Policy,
    Population,
    ValueModel,
    retention_settings,
)
from bayesdecide.model.fitting import fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retention_fit(retention):
    cells = bd.cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    return fit(cells, draws=500, tune=500, chains=4, seed=11, progressbar=False)


@pytest.fixture(scope="module")
def retention_decision(retention_fit):
    return Decision.from_fit(retention_fit, retention_settings())


def test_all_customer_effect_covers_the_truth(retention_fit, retention):
    net = retention_fit.tau.sel(outcome="net_margin")
    share = retention_fit.cell_share
    average = (net * share).sum("cell")
    lo, hi = np.quantile(average.values, [0.05, 0.95])
    truth = retention.true_average_effect()["net_margin"]  # 3.825 dollars per assigned customer
    assert lo < truth < hi
    # and it stays on the seed's OLS scale (2.525 +/- 1.256), not shrunk toward zero
    assert 1.0 < float(average.mean()) < 4.5


def test_seed_conclusions(retention_decision, retention_fit):
    table = retention_decision.policy_table()
    n, fixed = 120_000, 280_000
    # treat-all: near zero with wide uncertainty (seed: 24,894; 80% band about +-200k)
    treat_all = table.loc["treat_all"]
    assert abs(treat_all["expected_value"]) < 250_000
    assert treat_all["p90"] - treat_all["p10"] > 250_000
    assert 0.2 < treat_all["prob_positive"] < 0.8
    # low-risk band negative, medium and high positive
    net = retention_fit.tau.sel(outcome="net_margin")
    share = retention_fit.cell_share
    by_band = (net * share).groupby("risk_band").sum() / share.groupby("risk_band").sum()
    band_mean = by_band.mean(("chain", "draw"))
    assert float(band_mean.sel(risk_band="Low risk")) < 0
    assert float(band_mean.sel(risk_band="Medium risk")) > 0
    assert float(band_mean.sel(risk_band="High risk")) > 0
    # medium + high risk is the best of the seed's four policies (seed: 724,058)
    four = table.loc[["treat_none", "treat_all", "medium_high_risk", "high_risk_only"]]
    assert four["expected_value"].idxmax() == "medium_high_risk"
    assert 400_000 < table.loc["medium_high_risk", "expected_value"] < 1_000_000
    assert n > 0 and fixed > 0


def test_break_even_transport_multiplier_near_seed(retention_decision):
    draws = retention_decision.break_even("transport_multiplier", policy="treat_all")
    lo, median, hi = np.nanquantile(draws.values, [0.025, 0.5, 0.975])
    assert lo < 0.985 < hi  # the seed's break-even
    assert 0.85 < median < 1.15


def test_policy_values_recover_the_truth_on_markets():
    sim = bd.simulate_markets(n=300_000, seed=5)
    cells = bd.cell_stats(sim.data, sim.spec)
    result = fit(
        cells,
        outcomes=["net_value"],
        interactions=[("product", "region")],
        draws=400,
        tune=400,
        chains=2,
        seed=3,
        progressbar=False,
    )
    n_eligible = 1_000_000
    settings = DecisionSettings(
        value_model=ValueModel({"net_value": 1.0}),
        population=Population(n_eligible=n_eligible, fixed_cost=0.0),
        policies=(
            Policy("not_latam", rule={"region": {"not_in": ["LATAM"]}}),
            Policy("analytics_only", rule={"product": {"in": ["Analytics"]}}),
        ),
    )
    decision = Decision.from_fit(result, settings)
    values = decision.policy_values
    truth = sim.truth["net_value"]
    share = result.cell_share
    true_cell = xr.DataArray(
        [
            truth.loc[tuple(share.coords[f].values[i] for f in sim.spec.groups)]
            for i in range(share.sizes["cell"])
        ],
        dims="cell",
        coords={"cell": share.cell},
    )
    checked = 0
    for policy in ("treat_all", "not_latam", "analytics_only"):
        cells_treated = decision.policy_cells(policy)
        true_value = n_eligible * float((true_cell * share).sel(cell=cells_treated).sum())
        draws = values.sel(policy=policy).values.ravel()
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo < true_value < hi, (policy, lo, true_value, hi)
        checked += 1
    assert checked == 3
