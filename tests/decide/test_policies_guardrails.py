"""Policies as data, guardrails as posterior probabilities, the optimal targeting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesdecide.decide import (
    EffectBound,
    FairnessFloor,
    LaunchDraws,
    LossLimit,
    Policy,
    Population,
    ValueModel,
    ValuePositive,
    guardrail_from_dict,
    guardrail_table,
    optimal_policy,
    retention_guardrails,
    retention_value_model,
    treat_all,
    treat_none,
)
from bayesdecide.errors import SpecError


def test_rule_masks(retention_cells):
    tau, _ = retention_cells
    p = Policy("mh", rule={"risk_band": {"in": ["Medium risk", "High risk"]}})
    m = p.mask(tau)
    assert m.sum() == 18
    assert set(tau["risk_band"].values[m > 0]) == {"Medium risk", "High risk"}
    q = Policy(
        "mh_not_apac",
        rule={"risk_band": ["Medium risk", "High risk"], "region": {"not_in": ["APAC"]}},
    )
    mq = q.mask(tau)
    assert mq.sum() == 12
    assert "APAC" not in set(tau["region"].values[mq > 0])
    assert treat_none().mask(tau).sum() == 0
    assert treat_all().mask(tau).sum() == 27
    cells = list(tau["cell"].values[:2])
    assert list(Policy("two", cells=cells).mask(tau)[:3]) == [1, 1, 0]


def test_policy_dict_round_trip():
    p = Policy("x", rule={"region": {"not_in": ["APAC"]}, "segment": "SMB"})
    assert p.rule == {"region": {"not_in": ("APAC",)}, "segment": {"in": ("SMB",)}}
    assert Policy.from_dict(p.to_dict()) == p
    assert Policy.from_dict({"name": "treat_none"}) == treat_none()
    c = Policy("c", cells=["a", "b"])
    assert Policy.from_dict(c.to_dict()) == c


def test_policy_errors(retention_cells):
    tau, _ = retention_cells
    with pytest.raises(SpecError, match="unknown factor 'country'"):
        Policy("x", rule={"country": ["US"]}).mask(tau)
    with pytest.raises(SpecError, match=r"no levels \['Mars'\]"):
        Policy("x", rule={"region": {"in": ["Mars"]}}).mask(tau)
    with pytest.raises(SpecError, match="'in' and/or 'not_in'"):
        Policy("x", rule={"region": {"equals": ["EMEA"]}})
    with pytest.raises(SpecError, match="exactly one"):
        Policy("x")
    with pytest.raises(SpecError, match="unknown cells"):
        Policy("x", cells=["nowhere"]).mask(tau)


def test_guardrail_probabilities_by_hand(tiny):
    tau, share = tiny  # draws (a, b): (1,-2), (3,0), (-1,4), (5,2); mix 0.25/0.75
    launch = LaunchDraws(tau, share, ValueModel({"v": 1.0}), Population(100, fixed_cost=10))
    pols = [treat_none(), treat_all(), Policy("a_only", cells=["a"])]
    pd_ = launch.evaluate(launch.masks(pols), [p.name for p in pols])
    eff_all = 0.25 * np.array([1, 3, -1, 5]) + 0.75 * np.array([-2, 0, 4, 2])  # -1.25,.75,2.75,2.75
    rules = [
        EffectBound("v", upper=1.0, min_prob=0.5, name="v_le_1"),
        EffectBound("v", lower=0.0, upper=1.0, min_prob=0.5, per="treated", name="v_treated"),
        ValuePositive(min_prob=0.75, name="pos"),
        LossLimit(loss=100, max_prob=0.2, name="loss"),
        FairnessFloor("region", floor=0.0, min_prob=0.5, name="fair"),
    ]
    t = guardrail_table(rules, pd_).set_index(["rule", "policy"])
    assert t.loc[("v_le_1", "treat_all"), "probability"] == pytest.approx(np.mean(eff_all <= 1))
    assert t.loc[("v_le_1", "treat_none"), "probability"] == 1.0
    # per treated customer, a_only: effect = a draws (1, 3, -1, 5): within [0, 1] once
    assert t.loc[("v_treated", "a_only"), "probability"] == pytest.approx(0.25)
    assert t.loc[("v_treated", "treat_none"), "probability"] == 1.0
    v_all = 100 * eff_all - 10
    assert t.loc[("pos", "treat_all"), "probability"] == pytest.approx(np.mean(v_all > 0))
    assert t.loc[("pos", "treat_none"), "probability"] == 0.0
    assert not t.loc[("pos", "treat_none"), "passes"]
    assert t.loc[("loss", "treat_all"), "probability"] == pytest.approx(np.mean(v_all < -100))
    assert t.loc[("loss", "treat_all"), "comparison"] == "<="
    # fairness: treat all needs a >= 0 and b >= 0 jointly: draws 2 and 4 -> 0.5
    assert t.loc[("fair", "treat_all"), "probability"] == pytest.approx(0.5)
    # a_only only treats North: a >= 0 in 3 of 4 draws
    assert t.loc[("fair", "a_only"), "probability"] == pytest.approx(0.75)
    assert list(t.columns) == [
        "description",
        "probability",
        "threshold",
        "comparison",
        "passes",
        "definition",
        "factor",
        "worst_level",
    ]
    # the fairness floor is a group rule: a_only's worst (only) treated region is North
    assert t.loc[("fair", "a_only"), "worst_level"] == "North"
    assert t.loc[("fair", "treat_all"), "factor"] == "region"
    assert pd.isna(t.loc[("pos", "treat_all"), "worst_level"])


def test_guardrail_dicts():
    for g in retention_guardrails():
        assert guardrail_from_dict(g.to_dict()) == g
    with pytest.raises(SpecError, match="type"):
        guardrail_from_dict({"type": "vibes"})
    with pytest.raises(SpecError, match="unknown keys"):
        guardrail_from_dict({"type": "effect_bound", "outcome": "x", "upper": 1, "maxx": 2})
    with pytest.raises(SpecError, match="upper and/or lower"):
        EffectBound("x")
    with pytest.raises(SpecError, match="probability"):
        ValuePositive(min_prob=80)


def test_optimal_respects_constraints(build_tau, share_da):
    # cell "big" has the most value but a ticket effect that breaks the guardrail
    mean = np.array([[30.0, 0.20], [10.0, 0.01], [5.0, 0.0], [-3.0, 0.0]])
    sd = np.array([[2.0, 0.01], [1.0, 0.005], [1.0, 0.001], [1.0, 0.001]])
    tau = build_tau(mean, sd, ["net", "tickets"], {"segment": ["big", "mid", "small", "bad"]})
    share = share_da(tau, [0.25, 0.25, 0.25, 0.25])
    launch = LaunchDraws(tau, share, ValueModel({"net": 1.0}), Population(1000))
    free = optimal_policy(launch)
    assert list(free.mask) == [1, 1, 1, 0]
    g = [EffectBound("tickets", upper=0.04, min_prob=0.9)]
    res = optimal_policy(launch, g)
    assert list(res.mask) == [0, 1, 1, 0]
    assert res.method == "exact"
    heur = optimal_policy(launch, g, exact_max_cells=0)
    assert list(heur.mask) == [0, 1, 1, 0]
    # nothing feasible -> treat none
    impossible = [EffectBound("tickets", upper=-1.0, min_prob=0.9)]
    assert optimal_policy(launch, impossible).mask.sum() == 0


def test_heuristic_matches_exact(build_tau, share_da):
    rng = np.random.default_rng(5)
    n = 12
    mean = np.column_stack([rng.normal(1, 5, n), rng.uniform(0, 0.08, n)])
    sd = np.column_stack([np.full(n, 2.0), np.full(n, 0.01)])
    tau = build_tau(mean, sd, ["net", "tickets"], {"segment": [f"s{i}" for i in range(n)]}, 300)
    share = share_da(tau, rng.dirichlet(np.ones(n)))
    for scaling in ("constant", "treated_share"):
        pop = Population(10_000, fixed_cost=5_000, fixed_cost_scaling=scaling)
        launch = LaunchDraws(tau, share, ValueModel({"net": 1.0}), pop)
        g = [EffectBound("tickets", upper=0.03, min_prob=0.8)]
        exact = optimal_policy(launch, g, exact_max_cells=n)
        heur = optimal_policy(launch, g, exact_max_cells=0)
        assert heur.expected_value <= exact.expected_value + 1e-6
        assert heur.expected_value >= 0.95 * exact.expected_value
        exact_free = optimal_policy(launch, (), exact_max_cells=n)
        heur_free = optimal_policy(launch, (), exact_max_cells=0)
        if scaling == "constant":
            assert heur_free.method == "closed_form"
        assert heur_free.expected_value == pytest.approx(exact_free.expected_value)


def test_retention_guardrails_on_cells(retention_cells):
    tau, share = retention_cells
    launch = LaunchDraws(
        tau, share, retention_value_model(), Population(120_000, fixed_cost=280_000)
    )
    pols = [treat_all(), Policy("mh", rule={"risk_band": ["Medium risk", "High risk"]})]
    t = guardrail_table(retention_guardrails(), launch.evaluate(launch.masks(pols), ["all", "mh"]))
    assert len(t) == 10
    assert set(t["rule"]) == {
        "support_load",
        "annoyance",
        "primary_value",
        "large_downside",
        "region_fairness",
    }
    assert t["probability"].between(0, 1).all()
