"""Value of information and comparison across factor levels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayesdecide.decide import (
    LaunchDraws,
    Population,
    ValueModel,
    compare_levels,
    evpi,
    evpi_values,
    retention_value_model,
    targeting_evpi_cells,
    treat_all,
    treat_none,
    value_of_information,
)
from bayesdecide.errors import SpecError


def test_evpi_by_hand():
    v = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert evpi_values(v) == pytest.approx(0.5)  # E[max] 0.5 - max E 0
    da = xr.DataArray(v, dims=("sample", "policy"))
    assert evpi(da, "sample") == pytest.approx(0.5)
    assert evpi_values(np.array([[1.0, 0.0], [2.0, 0.0]])) == 0.0  # dominance: no value


def test_targeting_evpi_by_hand(tiny):
    tau, share = tiny  # a: 1, 3, -1, 5 (mean 2); b: -2, 0, 4, 2 (mean 1)
    launch = LaunchDraws(tau, share, ValueModel({"v": 1.0}), Population(100))
    cells = targeting_evpi_cells(launch)
    # a: E[max(a,0)] = 9/4, max(E a, 0) = 2 -> 0.25; b: E[max(b,0)] = 6/4, 1 -> 0.5
    np.testing.assert_allclose(cells, [100 * 0.25 * 0.25, 100 * 0.75 * 0.5])
    t = value_of_information(
        launch, launch.masks([treat_none(), treat_all()]), ["n", "a"], ["region"]
    )
    assert t.iloc[0]["evpi_targeting"] == pytest.approx(cells.sum())
    assert t.set_index("level").loc["South", "evpi_targeting"] == pytest.approx(cells[1])
    # policy set {none, all}: all = 25 a + 75 b per draw: -125, 75, 275, 275 -> E[max] 156.25
    assert t.iloc[0]["evpi_policies"] == pytest.approx(156.25 - 125.0)
    # learning only North (a): b at its mean 1 -> 25 a + 75: 100, 150, 50, 200 -> all positive
    assert t.set_index("level").loc["North", "evpi_policies"] == pytest.approx(0.0)


def test_compare_levels(retention_cells):
    tau, share = retention_cells
    launch = LaunchDraws(
        tau, share, retention_value_model(), Population(120_000, fixed_cost=280_000)
    )
    c = compare_levels(launch, "risk_band")
    assert list(c.summary["level"]) == ["Low risk", "Medium risk", "High risk"]
    assert c.effects.dims == ("chain", "draw", "risk_band")
    # population-weighted by hand
    v = retention_value_model().cell_value(tau)
    sel = tau["risk_band"].values == "High risk"
    w = share.values[sel] / share.values[sel].sum()
    hand = (v.values.reshape(-1, 27)[:, sel] @ w).mean()
    assert c.summary.set_index("level").loc["High risk", "mean"] == pytest.approx(hand)
    pw = c.pairwise.to_numpy()
    assert np.isnan(np.diag(pw)).all()  # a level is not compared with itself
    np.testing.assert_allclose((pw + pw.T)[~np.eye(3, dtype=bool)], 1.0)
    np.testing.assert_allclose(c.ranks.sum(axis=1), 1.0)
    np.testing.assert_allclose(c.ranks.sum(axis=0), 1.0)
    assert c.ranks.loc["Low risk", 3] == pytest.approx(1.0)
    best = c.best_policy.set_index("level")
    assert best.loc["Low risk", "best_policy"] == "treat_none"
    assert best.loc["High risk", "best_policy"] in ("treat_all", "optimal")
    assert c.shrinkage is None
    tickets = compare_levels(launch, "region", outcome="support_tickets")
    assert tickets.quantity == "support_tickets"
    with pytest.raises(SpecError, match="unknown factor"):
        compare_levels(launch, "country")


def test_shrinkage_table(retention_cells):
    tau, share = retention_cells
    launch = LaunchDraws(tau, share, retention_value_model(), Population(1))
    outcomes = list(tau["outcome"].values)
    raw = tau.mean(("chain", "draw")) + 1.0  # raw estimates off by 1 in every outcome
    cov = np.zeros((27, 7, 7))
    cov[:, np.arange(7), np.arange(7)] = 0.04
    effects = xr.Dataset(
        {
            "effect": raw.drop_vars([c for c in raw.coords if c not in ("cell", "outcome")]),
            "effect_cov": (("cell", "outcome", "outcome_b"), cov),
        },
        coords={"outcome_b": outcomes},
    )
    c = compare_levels(launch, "region", outcome="annoyance", effects=effects)
    s = c.shrinkage.set_index("level")
    for region in ("Americas", "EMEA", "APAC"):
        assert s.loc[region, "raw_estimate"] == pytest.approx(s.loc[region, "pooled_mean"] + 1.0)
        sel = tau["region"].values == region
        w = share.values[sel] / share.values[sel].sum()
        assert s.loc[region, "raw_se"] == pytest.approx(np.sqrt(np.sum(w**2 * 0.04)))
    # net value: weights 1, -1, -1, -18, -35 on the +1 shifts
    cv = compare_levels(launch, "region", effects=effects).shrinkage
    np.testing.assert_allclose(cv["raw_estimate"] - cv["pooled_mean"], 1 - 1 - 1 - 18 - 35)
