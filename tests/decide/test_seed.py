"""The seed notebook's numbers, from normal-approximation draws of its OLS effect table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayesdecide.decide import (
    Decision,
    DecisionSettings,
    EffectBound,
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    break_even,
    optimal_policy,
    policy_values,
    retention_value_model,
    sensitivity,
    treat_all,
    treat_none,
)

N, FIXED = 120_000, 280_000.0
# risk band subgroup OLS effects on net margin (estimate, se) and experiment counts
RISK = {
    "Low risk": (-8.911, 1.874, 21_762),
    "Medium risk": (14.188, 1.713, 18_941),
    "High risk": (24.598, 4.633, 1_297),
}
# all-customer OLS effects (estimate, se)
ALL = {
    "net_margin": (2.525, 1.256),
    "gross_margin": (13.117, 1.259),
    "contact_cost": (8.091, 0.040),
    "discount_cost": (1.356, 0.013),
    "support_tickets": (0.034, 0.004),
    "annoyance": (0.015, 0.001),
}


@pytest.fixture
def risk_band_draws(build_tau, share_da):
    bands = list(RISK)
    mean = np.array([[RISK[b][0]] for b in bands])
    sd = np.array([[RISK[b][1]] for b in bands])
    tau = build_tau(mean, sd, ["net_margin"], {"risk_band": bands}, n_draws=5000)
    share = share_da(tau, [RISK[b][2] for b in bands])
    return tau, share


@pytest.fixture
def all_customer_draws(build_tau, share_da):
    outcomes = list(ALL)
    mean = np.array([[ALL[k][0] for k in outcomes]])
    sd = np.array([[ALL[k][1] for k in outcomes]])
    tau = build_tau(mean, sd, outcomes, {"segment": ["all"]}, n_draws=10_000, seed=404)
    return tau, share_da(tau, [1.0])


def test_policy_values_match_seed(risk_band_draws):
    tau, share = risk_band_draws
    vm = ValueModel({"net_margin": 1.0})
    pop = Population(N, fixed_cost=FIXED, fixed_cost_scaling="treated_share")
    pols = [
        treat_none(),
        treat_all(),
        Policy("medium_high", rule={"risk_band": {"in": ["Medium risk", "High risk"]}}),
        Policy("high_only", rule={"risk_band": ["High risk"]}),
    ]
    ev = policy_values(tau, share, pols, vm, pop).mean(("chain", "draw"))
    # seed: 0, 24,894.267, 724,057.510, 77,154.215 (effects rounded to 3 decimals -> +-60)
    assert float(ev.sel(policy="treat_none")) == 0.0
    assert float(ev.sel(policy="treat_all")) == pytest.approx(24_894.267, abs=100)
    assert float(ev.sel(policy="medium_high")) == pytest.approx(724_057.510, abs=100)
    assert float(ev.sel(policy="high_only")) == pytest.approx(77_154.215, abs=100)


def test_optimal_targets_medium_and_high(risk_band_draws):
    tau, share = risk_band_draws
    vm = ValueModel({"net_margin": 1.0})
    pop = Population(N, fixed_cost=FIXED, fixed_cost_scaling="treated_share")
    launch = LaunchDraws(tau, share, vm, pop)
    res = optimal_policy(launch)
    assert list(res.mask) == [0.0, 1.0, 1.0]
    assert res.expected_value == pytest.approx(724_057.510, abs=100)


def test_launch_value_and_probability(all_customer_draws):
    tau, share = all_customer_draws
    vm = ValueModel({"net_margin": 1.0})
    pop = Population(N, fixed_cost=FIXED)
    v = policy_values(tau, share, [treat_all()], vm, pop).isel(policy=0)
    # seed: 22,945 expected, P(value > 0) = 0.559 (its own 50,000 draws)
    assert float(v.mean()) == pytest.approx(N * 2.525 - FIXED, abs=1e-6)
    p = float((v > 0).mean())
    assert p == pytest.approx(stats.norm.sf((FIXED / N - 2.525) / 1.256), abs=0.015)
    assert p == pytest.approx(0.559, abs=0.02)


def test_break_even_transport_and_annoyance(all_customer_draws):
    tau, share = all_customer_draws
    g, c, d, t, a = (ALL[k][0] for k in list(ALL)[1:])
    pop = Population(N, fixed_cost=FIXED)
    vm = retention_value_model()
    hand_transport = (FIXED / N + c + d + 18 * t + 35 * a) / g
    hand_annoyance = (g - c - d - 18 * t - FIXED / N) / a
    be_t = break_even(tau, share, "transport_multiplier", vm, pop)
    be_a = break_even(tau, share, "penalty:annoyance", vm, pop)
    assert hand_transport == pytest.approx(0.985, abs=0.001)  # the seed's 0.985
    assert float(be_t.median()) == pytest.approx(hand_transport, abs=0.005)
    assert float(be_a.median()) == pytest.approx(hand_annoyance, rel=0.03)
    assert float(be_a.median()) == pytest.approx(47.7, abs=2.0)  # seed 47.724 (unrounded inputs)


def test_break_even_exact_on_point_mass(build_tau, share_da):
    outcomes = list(ALL)[1:]
    mean = np.array([[ALL[k][0] for k in outcomes]])
    tau = build_tau(mean, 0.0, outcomes, {"segment": ["all"]}, n_draws=3, exact_mean=False)
    share = share_da(tau, [1.0])
    g, c, d, t, a = mean[0]
    pop = Population(N, fixed_cost=FIXED)
    vm = retention_value_model()
    be_t = break_even(tau, share, "transport_multiplier", vm, pop)
    be_a = break_even(tau, share, "annoyance_penalty", vm, pop)
    np.testing.assert_allclose(be_t, (FIXED / N + c + d + 18 * t + 35 * a) / g)
    np.testing.assert_allclose(be_a, (g - c - d - 18 * t - FIXED / N) / a)


def test_annoyance_and_transport_sensitivity_match_hand(all_customer_draws):
    tau, share = all_customer_draws
    g, c, d, t, a = (ALL[k][0] for k in list(ALL)[1:])
    pop = Population(N, fixed_cost=FIXED)
    vm = retention_value_model()
    penalties = [0, 25, 35, 50, 80, 120]
    tab = sensitivity(tau, share, "penalty:annoyance", penalties, vm, pop)
    hand = [N * (g - c - d - 18 * t - p * a) - FIXED for p in penalties]
    np.testing.assert_allclose(tab["expected_value"], hand, rtol=1e-9, atol=1e-6)
    # the seed's table (unrounded inputs): 86,062 at 0 and -130,338 at 120
    assert tab["expected_value"].iloc[0] == pytest.approx(86_062, abs=1_500)
    assert tab["expected_value"].iloc[-1] == pytest.approx(-130_338, abs=1_500)
    grid = np.linspace(0.45, 1.10, 14)
    tt = sensitivity(tau, share, "transport_multiplier", grid, vm, pop)
    hand_t = N * (grid * g - c - d - 18 * t - 35 * a) - FIXED
    np.testing.assert_allclose(tt["expected_value"], hand_t, rtol=1e-9, atol=1e-6)
    assert tt["expected_value"].iloc[0] == pytest.approx(-842_765, abs=2_000)  # seed row 0


def test_seed_guardrails(all_customer_draws):
    tau, share = all_customer_draws
    settings = DecisionSettings(
        value_model=retention_value_model(),
        population=Population(N, fixed_cost=FIXED),
        guardrails=(
            EffectBound("support_tickets", upper=0.04, min_prob=0.8),
            EffectBound("annoyance", upper=0.015, min_prob=0.8),
        ),
        include_optimal=False,
    )
    g = Decision(tau, share, settings).guardrail_table().set_index(["rule", "policy"])
    p_tickets = g.loc[
        ("P(effect on support_tickets per eligible customer <= 0.04) >= 80%", "treat_all")
    ]
    assert p_tickets["probability"] == pytest.approx(stats.norm.cdf(1.5), abs=0.01)
    assert p_tickets["passes"]
    p_annoy = g.loc[("P(effect on annoyance per eligible customer <= 0.015) >= 80%", "treat_all")]
    assert p_annoy["probability"] == pytest.approx(0.5, abs=0.02)
    assert not p_annoy["passes"]
