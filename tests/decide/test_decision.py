"""The Decision object: tables, recommendation, summary.json, re-rendering without refitting."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from bayesdecide.decide import (
    Decision,
    DecisionSettings,
    EffectBound,
    Policy,
    Population,
    ValueModel,
    ValuePositive,
    retention_settings,
)
from bayesdecide.errors import SpecError


def test_decision_tables_and_summary(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    assert d.policy_names == [
        "treat_none",
        "treat_all",
        "medium_high_risk",
        "high_risk_only",
        "optimal",
    ]
    pt = d.policy_table()
    assert pt["expected_value"]["optimal"] >= pt["expected_value"].drop("optimal").max() - 1e-6
    assert pt.loc["treat_none", "expected_value"] == 0.0
    assert (pt["expected_loss"] >= -1e-9).all()
    gt = d.guardrail_table()
    assert len(gt) == 5 * len(d.policy_names)
    passing = pt.index[pt["passes_guardrails"]]
    rec = d.recommended_policy
    assert rec == pt.loc[passing, "expected_value"].idxmax()
    s = d.to_dict()
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    assert set(s) >= {"effects", "policies", "recommended_policy", "guardrails", "break_even"}
    assert set(s["effects"]) == set(tau["outcome"].values)
    assert set(s["effects"]["net_margin"]) == {"mean", "sd", "ci_lower", "ci_upper"}
    assert set(s["policies"]["optimal"]) >= {
        "expected_value",
        "prob_positive",
        "prob_large_loss",
        "p10",
        "p50",
        "p90",
        "prob_best",
        "treated_share",
        "expected_loss",
    }
    assert {"transport_multiplier", "annoyance_penalty"} <= set(s["break_even"])
    assert set(s["guardrails"][0]) >= {"rule", "policy", "probability", "passes"}
    # the all-customer effect is the experiment-mix average of the cells
    hand = (tau.sel(outcome="renewed") * share).sum("cell").mean()
    assert s["effects"]["renewed"]["mean"] == pytest.approx(float(hand))
    assert "recommended" in repr(d)


def test_recommendation_logic(tiny):
    tau, share = tiny  # all: mean 125 per 100 customers; a_only: 50
    base = DecisionSettings(
        value_model=ValueModel({"v": 1.0}),
        population=Population(100),
        policies=(Policy("a_only", cells=["a"]),),
        include_optimal=False,
    )
    d = Decision(tau, share, base)
    assert d.recommended_policy == "treat_all"  # no guardrails: highest expected value
    # treat_all fails an effect bound that a_only passes
    d2 = d.with_settings(guardrails=[EffectBound("v", upper=1.0, min_prob=0.6)])
    assert d2.guardrail_table().set_index("policy").loc["treat_all", "passes"] == np.False_
    assert d2.recommended_policy == "a_only"
    # nothing passes -> treat_none (hold)
    d3 = d.with_settings(guardrails=[ValuePositive(min_prob=0.99)])
    assert not d3.policy_table()["passes_guardrails"].any()
    assert d3.recommended_policy == "treat_none"
    assert d3.break_even_policy == "treat_all"


def test_with_settings_rerenders(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    ev = d.policy_table()["expected_value"]
    d2 = d.with_settings(fixed_cost=0.0, n_eligible=240_000)
    ev2 = d2.policy_table()["expected_value"]
    # doubling N with no fixed cost doubles the (cost-free) value
    no_cost = d.with_settings(fixed_cost=0.0).policy_table()["expected_value"]
    np.testing.assert_allclose(ev2["treat_all"], 2 * no_cost["treat_all"])
    assert ev2["treat_all"] > ev["treat_all"]
    d3 = d.with_settings(weights={"annoyance": -200.0})
    assert d3.settings.value_model.weights["annoyance"] == -200.0
    assert d3.policy_table()["expected_value"]["treat_all"] < ev["treat_all"]
    d4 = d.with_settings(mix={"risk_band": {"Low risk": 0.0, "Medium risk": 0.5, "High risk": 0.5}})
    assert d4.policy_table()["expected_value"]["treat_all"] > ev["treat_all"]
    assert d.settings.population.fixed_cost == 280_000  # original untouched
    with pytest.raises(SpecError, match="unknown settings"):
        d.with_settings(fixed_costs=1)


def test_from_fit_duck_typed(retention_cells):
    tau, share = retention_cells
    fit = SimpleNamespace(
        idata=SimpleNamespace(posterior=xr.Dataset({"tau": tau})), cell_share=share
    )
    d = Decision.from_fit(fit, transport_multiplier=0.9)
    assert d.settings.population.transport_multiplier == 0.9
    assert d.effects is None
    with pytest.raises(SpecError, match="fit.idata"):
        Decision.from_fit(SimpleNamespace())


def test_methods(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    be = d.break_even("transport_multiplier")
    assert be.dims == ("chain", "draw")
    sens = d.sensitivity("penalty:annoyance", [0, 35, 100], policies=["treat_all"])
    assert len(sens) == 3
    voi = d.value_of_information(["region"])
    assert list(voi["factor"]) == ["all", "region", "region", "region"]
    assert (voi["evpi_targeting"] >= 0).all()
    comp = d.compare("region")
    assert len(comp.summary) == 3
    assert set(d.policy_cells("medium_high_risk")) == {
        c
        for c, b in zip(tau["cell"].values, tau["risk_band"].values, strict=True)
        if b != "Low risk"
    }
    with pytest.raises(SpecError, match="unknown policy"):
        d.policy_cells("moonshot")


def test_settings_validation_and_dicts(retention_cells):
    tau, share = retention_cells
    s = retention_settings()
    s2 = DecisionSettings.from_dict(s.to_dict())
    assert s2 == s
    with pytest.raises(SpecError, match="reserved"):
        DecisionSettings(ValueModel({"v": 1}), Population(1), policies=[Policy("optimal", rule={})])
    with pytest.raises(SpecError, match="unknown decision settings"):
        DecisionSettings.from_dict({**s.to_dict(), "colour": "red"})
    bad = retention_settings(guardrails=[EffectBound("complaints", upper=1.0)])
    with pytest.raises(SpecError, match="unknown outcome 'complaints'"):
        Decision(tau, share, bad)
    with pytest.raises(SpecError, match="unknown factor 'country'"):
        Decision(tau, share, retention_settings(policies=[Policy("x", rule={"country": ["US"]})]))
    with pytest.raises(SpecError, match="unique"):
        Decision(
            tau,
            share,
            retention_settings(policies=[Policy("x", rule={}), Policy("x", cells=[])]),
        )
