"""The Decision object: tables, the recommendation rule (checks included), labels, adding
policies, re-rendering without refitting."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesdecide.decide import (
    CheckThresholds,
    Decision,
    DecisionSettings,
    EffectBound,
    Policy,
    Population,
    ValueModel,
    ValuePositive,
    retention_settings,
    retention_value_model,
)
from bayesdecide.decide.checks import evaluate_checks
from bayesdecide.decide.recommend import BLOCKED, LAUNCH_ALL, NO_LAUNCH
from bayesdecide.errors import SpecError


def test_decision_tables(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    assert d.policy_names == [
        "treat_none",
        "treat_all",
        "medium_high_risk",
        "high_risk_only",
        "optimal",
    ]
    assert d.labels["treat_all"] == "Treat all" and d.labels["optimal"] == "Optimal targeting"
    pt = d.policy_table()
    assert pt["expected_value"]["optimal"] >= pt["expected_value"].drop("optimal").max() - 1e-6
    assert pt.loc["treat_none", "expected_value"] == 0.0
    assert (pt["expected_loss"] >= -1e-9).all()
    gt = d.guardrail_table()
    assert len(gt) == 5 * len(d.policy_names)
    passing = pt.index[pt["passes_guardrails"] & (pt["treated_share"] > 0)]
    assert d.recommended_policy == pt.loc[passing, "expected_value"].idxmax()
    eff = d.effects_table()
    assert list(eff.columns) == ["mean", "sd", "lower", "upper", "prob_positive"]
    # the all-customer effect is the experiment-mix average of the cells
    hand = (tau.sel(outcome="renewed") * share).sum("cell")
    assert eff.loc["renewed", "mean"] == pytest.approx(float(hand.mean()))
    lo, hi = np.quantile(hand.values.ravel(), [0.025, 0.975])  # equal-tailed 95%
    assert eff.loc["renewed", "lower"] == pytest.approx(lo) and eff.loc["renewed", "upper"] == (
        pytest.approx(hi)
    )
    be = d.break_even_table()
    assert {"lower", "upper"} <= set(be.columns) and "ci_lower" not in be.columns
    assert {"transport_multiplier", "annoyance_penalty"} <= set(be["assumption"])
    assert "Decision(" in repr(d) and "Launch" in repr(d)
    html = d._repr_html_()
    assert "<table" in html and "Optimal targeting" in html


def test_recommendation_logic(tiny):
    tau, share = tiny  # all: mean 125 per 100 customers; a_only: 50
    base = DecisionSettings(
        value_model=ValueModel({"v": 1.0}),
        population=Population(100),
        policies=(Policy("a_only", cells=["a"], label="A only"),),
        include_optimal=False,
    )
    d = Decision(tau, share, base)
    assert d.recommended_policy == "treat_all"  # no guardrails: highest expected value
    assert d.recommendation.decision == LAUNCH_ALL
    # treat_all fails an effect bound that a_only passes
    d2 = d.with_settings(guardrails=[EffectBound("v", upper=1.0, min_prob=0.6)])
    assert d2.guardrail_table().set_index("policy").loc["treat_all", "passes"] == np.False_
    assert d2.recommended_policy == "a_only"
    assert any("'Treat all' has a higher expected value" in r for r in d2.recommendation.reasons)
    # nothing passes -> do not launch
    d3 = d.with_settings(guardrails=[ValuePositive(min_prob=0.99)])
    assert not d3.policy_table()["passes_guardrails"].any()
    assert d3.recommended_policy is None and d3.recommendation.decision == NO_LAUNCH
    assert d3.break_even_policy == "treat_all"
    assert any("'A only' fails" in r for r in d3.recommendation.reasons)


def test_failed_checks_block_the_recommendation(tiny):
    """The Python recommendation follows the memo's rule: failed diagnostics block it."""
    tau, share = tiny
    settings = DecisionSettings(ValueModel({"v": 1.0}), Population(100), include_optimal=False)
    bad = evaluate_checks(
        50,
        50,
        pd.DataFrame(columns=["mean_control", "mean_treatment", "smd"]),
        {"max_rhat": 3.65, "min_ess_bulk": 5.0, "divergences": 0},
        CheckThresholds(),
        assignment_share=0.5,
    )
    d = Decision(tau, share, settings, checks=bad)
    rec = d.recommendation
    assert rec.blocked and rec.decision == BLOCKED and d.recommended_policy is None
    assert rec.rule_policy == "treat_all" and d.break_even_policy == "treat_all"
    assert any("R-hat" in r for r in rec.reasons)


def test_from_fit_needs_settings_and_gates_on_diagnostics(retention_cells):
    tau, share = retention_cells
    effects = xr.Dataset(
        {"n_control": ("cell", np.full(27, 100)), "n_treatment": ("cell", np.full(27, 100))},
        coords={"cell": tau["cell"].values},
    )
    fit = SimpleNamespace(
        tau=tau, cell_share=share, effects=effects, diagnostics={"max_rhat": 1.5, "divergences": 0}
    )
    with pytest.raises(SpecError, match=r"need \['value_model', 'population'\]"):
        Decision.from_fit(fit)
    d = Decision.from_fit(fit, retention_settings(), transport_multiplier=0.9)
    assert d.settings.population.transport_multiplier == 0.9
    assert d.recommendation.blocked and d.recommended_policy is None
    ok = {**fit.__dict__, "diagnostics": {"max_rhat": 1.0, "min_ess_bulk": 1e4, "divergences": 0}}
    d2 = Decision.from_fit(
        SimpleNamespace(**ok), value_model=retention_value_model(), population=Population(1000)
    )
    assert not d2.recommendation.blocked
    with pytest.raises(SpecError, match="fit.tau"):
        Decision.from_fit(SimpleNamespace(), retention_settings())


def test_with_policies_adds_without_restating(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    d2 = d.with_policies(Policy("emea", rule={"region": ["EMEA"]}, label="EMEA only"))
    assert d2.policy_names == [*d.policy_names[:-1], "emea", "optimal"]
    assert d2.labels["emea"] == "EMEA only"
    # the same name replaces the policy
    d3 = d2.with_policies(Policy("emea", rule={"region": ["APAC"]}))
    assert d3.policy_cells("emea") != d2.policy_cells("emea")
    assert len(d3.policy_names) == len(d2.policy_names)


def test_plot_methods_return_axes(retention_cells):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    for ax in (
        d.plot_policy_values(),
        d.plot_value_posterior(),
        d.plot_guardrails(),
        d.plot_comparison("region"),
    ):
        assert isinstance(ax, Axes)
    plt.close("all")


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
    # a named cost assumption of the value model, in dollars per unit
    assert d.with_settings(annoyance_penalty=80).settings.value_model.weights["annoyance"] == -80


def test_methods(retention_cells):
    tau, share = retention_cells
    d = Decision(tau, share, retention_settings())
    be = d.break_even("transport_multiplier")
    assert be.dims == ("chain", "draw")
    sens = d.sensitivity("annoyance_penalty", [0, 35, 100], policies=["treat_all"])
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
