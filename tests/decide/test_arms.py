"""Several treatment arms on hand-built draws: policies that give one arm or none per cell, launch
values, rules (group rules included), the optimal arm per cell, P(best arm), value of information
and the Decision, with no sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesdecide.decide import (
    Decision,
    EffectBound,
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    ValuePositive,
    best_arm_cells,
    best_arm_levels,
    best_arm_overall,
    optimal_policy,
    retention_settings,
    treat_all,
    treat_none,
)
from bayesdecide.decide.checks import sample_ratio_mismatch_arms
from bayesdecide.decide.guardrails import group_rule_table, guardrail_probabilities
from bayesdecide.decide.information import targeting_evpi_cells
from bayesdecide.errors import SpecError

V = ValueModel({"v": 1.0})
POP = Population(n_eligible=100)


def _launch(tau, share, vm=V, pop=POP):
    return LaunchDraws(tau, share, vm, pop)


# ---- policies ------------------------------------------------------------------------------


def test_policy_gives_one_arm_per_cell(retention_arm_cells):
    tau, _ = retention_arm_cells
    high = tau["risk_band"].values == "High risk"
    p = Policy("email_high", rule={"risk_band": ["High risk"]}, arm="email")
    z = p.assignment(tau)
    assert (z[high] == 1).all() and (z[~high] == -1).all()
    mask = p.mask(tau).reshape(27, 2)
    assert (mask.sum(axis=1) <= 1).all() and mask[:, 1].sum() == high.sum()
    by_risk = Policy(
        "by_risk",
        arms={
            "email": {"risk_band": ["Low risk", "Medium risk"]},
            "outreach": {"risk_band": ["High risk"]},
        },
    )
    assert (by_risk.assignment(tau) == np.where(high, 0, 1)).all()
    again = Policy.from_dict(by_risk.to_dict())
    assert (again.assignment(tau) == by_risk.assignment(tau)).all()
    everyone = treat_all(arm="email")
    assert everyone.name == "treat_all_email" and everyone.label == "Treat all (email)"
    assert (everyone.assignment(tau) == 1).all()
    assert (treat_none().assignment(tau) == -1).all()


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        (Policy("p", rule={"risk_band": ["Low risk"]}), "names no arm; .*'outreach', 'email'"),
        (Policy("p", rule={}, arm="sms"), "names arm 'sms', which is not a treatment arm"),
        (
            Policy("p", arms={"email": {}, "outreach": {"risk_band": ["High risk"]}}),
            "gives cell .* both 'email' and 'outreach'",
        ),
    ],
)
def test_policy_arm_errors(retention_arm_cells, policy, match):
    with pytest.raises(SpecError, match=match):
        policy.assignment(retention_arm_cells[0])


def test_arm_policy_on_two_arm_draws_is_an_error(retention_cells):
    with pytest.raises(SpecError, match="no treatment_arm dim"):
        Policy("p", rule={}, arm="email").mask(retention_cells[0])
    with pytest.raises(SpecError, match="exactly one of"):
        Policy("p", rule={}, arms={"email": {}})


# ---- values, rules, P(best) by hand ----------------------------------------------------------


def test_policy_value_is_the_assigned_arms_value(tiny_arms):
    tau, share = tiny_arms
    launch = _launch(tau, share)
    p = Policy("mixed", arms={"y": {"region": ["North"]}, "x": {"region": ["South"]}})
    value = launch.evaluate(launch.masks([p])).value[:, 0]
    # 100 * (0.25 * y_a + 0.75 * x_b), draw by draw
    np.testing.assert_allclose(value, [-100.0, 0.0, 300.0, 175.0])
    vm = ValueModel({"v": 1.0})
    cell_value = vm.cell_value(tau)
    assert cell_value.dims == ("chain", "draw", "cell", "treatment_arm")
    bound = EffectBound("v", upper=1.0, min_prob=0.5)
    probs, _ = guardrail_probabilities([bound], launch.evaluate(launch.masks([p])))
    assert probs[0, 0] == pytest.approx(0.5)  # effect per eligible = value / 100 <= 1 in 2 of 4


def test_best_arm_per_cell_level_and_overall_by_hand(tiny_arms):
    tau, share = tiny_arms
    launch = _launch(tau, share)
    cells = best_arm_cells(launch).set_index(["cell", "choice"])
    # cell a: draws (none, x, y) = (0,1,2) (0,3,0) (0,-1,0) (0,5,1): y, x, none (tie), x
    assert cells.loc[("a", "none"), "prob_best"] == pytest.approx(0.25)
    assert cells.loc[("a", "x"), "prob_best"] == pytest.approx(0.5)
    assert cells.loc[("a", "y"), "prob_best"] == pytest.approx(0.25)
    assert cells.loc[("b", "none"), "prob_best"] == pytest.approx(0.25)
    assert cells.loc[("a", "x"), "mean"] == pytest.approx(2.0)
    assert cells.loc[("b", "y"), "mean"] == pytest.approx(-0.5)
    assert cells.loc[("a", "x"), "best"] and not cells.loc[("a", "y"), "best"]
    assert cells.groupby(level="cell")["prob_best"].sum().tolist() == pytest.approx([1.0, 1.0])
    levels = best_arm_levels(launch, "region").set_index(["level", "choice"])
    assert levels.loc[("South", "x"), "prob_best"] == pytest.approx(0.5)
    assert levels.loc[("North", "none"), "share"] == pytest.approx(0.25)
    overall = best_arm_overall(launch).set_index("choice")
    # all-x: -125, 75, 275, 275; all-y: -25, 75, 75, -200 (tie at 75 goes to x, listed first)
    assert overall.loc["x", "mean"] == pytest.approx(125.0)
    assert overall.loc["y", "mean"] == pytest.approx(-18.75)
    assert overall["prob_best"].tolist() == pytest.approx([0.25, 0.75, 0.0])


def test_targeting_evpi_with_arms_by_hand(tiny_arms):
    launch = _launch(*tiny_arms)
    # cell a: E[max(0,x,y)] = 2.5, best known 2 -> 0.5 x 100 x 0.25; cell b: 1.75 - 1 -> x 75
    np.testing.assert_allclose(targeting_evpi_cells(launch), [12.5, 56.25])


def test_optimal_closed_form_is_the_best_arm_per_cell(tiny_arms):
    launch = _launch(*tiny_arms)
    res = optimal_policy(launch)
    assert res.method == "closed_form"
    np.testing.assert_array_equal(launch.assignments(res.mask)[0], [0, 0])  # x, x
    assert res.expected_value == pytest.approx(100 * (0.25 * 2.0 + 0.75 * 1.0))


def test_group_rule_with_arms_by_hand(tiny_arms):
    launch = _launch(*tiny_arms)
    rule = EffectBound("v", lower=0.0, for_each="region", per="treated", min_prob=0.8)
    masks = launch.masks([treat_all(arm="x"), treat_all(arm="y")])
    table = group_rule_table([rule], launch.evaluate(masks, ["all_x", "all_y"]), 0.95)
    p = table.set_index(["policy", "level"])["probability"]
    # P(x_a >= 0) = 3/4, P(x_b >= 0) = 3/4; P(y_a >= 0) = 1, P(y_b >= 0) = 2/4
    assert p[("all_x", "North")] == pytest.approx(0.75)
    assert p[("all_y", "South")] == pytest.approx(0.5)
    res = optimal_policy(launch, [rule])
    # only y in North passes (x fails at 75%); nothing in South passes: a -> y, b -> none
    assert res.method == "exact"
    np.testing.assert_array_equal(launch.assignments(res.mask)[0], [1, -1])
    assert res.expected_value == pytest.approx(100 * 0.25 * 0.75)


# ---- the optimal search against brute force --------------------------------------------------


def _random_problem(seed: int, n_cells: int, n_draws: int = 300):
    rng = np.random.default_rng(seed)
    regions = [f"r{i % 3}" for i in range(n_cells)]
    mean = np.stack(
        [rng.normal(1.0, 3.0, (n_cells, 2)), rng.uniform(0.0, 0.1, (n_cells, 2))], axis=2
    )
    sd = np.stack([rng.uniform(1.0, 4.0, (n_cells, 2)), np.full((n_cells, 2), 0.03)], axis=2)
    z = rng.standard_normal((n_draws, n_cells, 2, 2))
    import xarray as xr

    tau = xr.DataArray(
        (mean + sd * z)[None],
        dims=("chain", "draw", "cell", "treatment_arm", "outcome"),
        coords={
            "cell": [f"c{i}" for i in range(n_cells)],
            "treatment_arm": ["a", "b"],
            "outcome": ["v", "cost"],
            "region": ("cell", regions),
        },
    )
    share = xr.DataArray(
        rng.dirichlet(np.full(n_cells, 3.0)), dims="cell", coords={"cell": tau["cell"].values}
    )
    pop = Population(n_eligible=1000, fixed_cost=300.0, fixed_cost_scaling="treated_share")
    rules = [
        ValuePositive(min_prob=0.8),
        EffectBound("cost", upper=0.035, min_prob=0.8),
        EffectBound("v", lower=-0.5, for_each="region", min_prob=0.7),
    ]
    return LaunchDraws(tau, share, ValueModel({"v": 1.0}), pop), rules


def _brute_force(launch, rules):
    from bayesdecide.decide.optimal import _all_assignments

    masks = _all_assignments(len(launch.cells), launch.n_arms)
    _, passes = guardrail_probabilities(rules, launch.evaluate(masks))
    ev = launch.expected_values(masks)
    ok = passes.all(axis=0) & (ev > 0)
    return max(0.0, float(ev[ok].max())) if ok.any() else 0.0


@pytest.mark.parametrize("seed", range(6))
def test_exact_search_with_arms_equals_brute_force(seed):
    launch, rules = _random_problem(seed, n_cells=5)
    res = optimal_policy(launch, rules)
    assert res.method == "exact" and res.n_candidates == 3**5
    assert res.expected_value == pytest.approx(_brute_force(launch, rules), abs=1e-9)


def test_heuristic_search_with_arms_is_feasible_and_near_the_optimum():
    """9 cells x 2 arms (3^9 = 19,683 assignments): the heuristic runs; every answer passes every
    rule, and it attains the brute-force optimum's expected value in most problems."""
    ratios = []
    for seed in range(8):
        launch, rules = _random_problem(100 + seed, n_cells=9)
        res = optimal_policy(launch, rules)
        assert res.method in ("heuristic", "level_exact")
        if res.mask.any():
            _, passes = guardrail_probabilities(rules, launch.evaluate(res.mask[None]))
            assert passes.all()
            assert (res.mask.reshape(9, 2).sum(axis=1) <= 1).all()
        best = _brute_force(launch, rules)
        ratios.append(1.0 if best <= 0 else res.expected_value / best)
    assert min(ratios) > 0.8 and np.median(ratios) > 0.99


# ---- a Decision with arms --------------------------------------------------------------------


@pytest.fixture
def arm_decision(retention_arm_cells):
    tau, share = retention_arm_cells
    settings = retention_settings().with_policies(
        Policy(
            "by_risk",
            arms={
                "email": {"risk_band": ["Low risk", "Medium risk"]},
                "outreach": {"risk_band": ["High risk"]},
            },
        )
    )
    settings = settings.with_changes(policies=[p for p in settings.policies if p.name == "by_risk"])
    return Decision(tau, share, settings)


def test_decision_with_arms_tables(arm_decision):
    d = arm_decision
    assert d.arms == ["outreach", "email"]
    names = d.policy_names
    assert names[:3] == ["treat_none", "treat_all_outreach", "treat_all_email"]
    assert "by_risk" in names and "optimal" in names
    assert d.all_policies == {"outreach": "treat_all_outreach", "email": "treat_all_email"}
    table = d.policy_table()
    everyone = table.loc[["treat_all_outreach", "treat_all_email"], "expected_value"]
    assert d.lead_arm == everyone.idxmax().removeprefix("treat_all_")
    effects = d.effects_table()
    assert effects.index.names == ["treatment_arm", "outcome"]
    assert effects.loc[("email", "contact_cost"), "mean"] == pytest.approx(0.5, abs=0.01)
    # the optimum gives email to low and medium risk and outreach to high risk
    assignment = d.policy_assignment("optimal")
    risk = dict(zip(d.tau["cell"].values, d.tau["risk_band"].values, strict=True))
    for cell, arm in assignment.items():
        assert arm == ("outreach" if risk[cell] == "High risk" else "email"), cell
    assert d.arm_shares("by_risk")["email"] == pytest.approx(
        float(d.launch.cell_mix[d.tau["risk_band"].values != "High risk"].sum())
    )
    assert table.loc["optimal", "expected_value"] >= table["expected_value"].max() - 1e-6
    # the optimum is the by-risk policy (listed first, so the rule recommends it)
    assert d.policy_assignment("by_risk") == assignment
    assert d.recommendation.policy == "by_risk"
    levels = d.best_arm_levels("risk_band")
    best = levels[levels["best"]].set_index("level")["choice"]
    assert best.to_dict() == {"Low risk": "email", "Medium risk": "email", "High risk": "outreach"}
    cells = d.best_arm_cells()
    assert cells.groupby("cell")["optimal"].sum().eq(1).all()
    overall = d.best_arm_overall().set_index("choice")
    assert overall.loc["email", "policy"] == "treat_all_email"
    assert overall.loc["email", "mean"] == pytest.approx(
        table.loc["treat_all_email", "expected_value"]
    )
    comparison = d.compare("region")
    assert list(comparison.summary["level"]) == ["Americas", "EMEA", "APAC"]
    assert not d.left_out("region").empty or d.left_out("region").empty  # runs with arms
    voi = d.value_of_information(["risk_band"])
    assert voi.loc[voi["factor"] == "risk_band", "share"].sum() == pytest.approx(1.0)
    assert "2 arms" in repr(d)


def test_compare_needs_an_arm(arm_decision):
    from bayesdecide.decide.compare import compare_levels

    with pytest.raises(SpecError, match="one treatment arm at a time"):
        compare_levels(arm_decision.launch, "region")
    assert arm_decision.compare("region", arm="outreach").quantity == "net_value"


def test_left_out_reason_names_the_best_arm(retention_arm_cells):
    tau, share = retention_arm_cells
    # make every arm lose money in high risk: the optimum leaves it out for value
    tau = tau.copy()
    high = tau["risk_band"].values == "High risk"
    tau.loc[{"cell": tau["cell"].values[high], "outcome": "gross_margin"}] = -50.0
    d = Decision(tau, share, retention_settings(policies=()))
    left = d.left_out("risk_band")
    row = left[(left["policy"] == "optimal") & (left["level"] == "High risk")]
    assert len(row) == 1 and row["cause"].iloc[0] == "value"


def test_one_good_arm_reduces_to_the_two_arm_decision(retention_cells):
    """Arm 'good' has the two-arm draws, arm 'bad' loses $1,000 per customer: the multi-arm
    optimum, values and rules equal the two-arm decision's (the search never picks 'bad')."""
    import xarray as xr

    tau2, share = retention_cells
    bad = tau2.copy()
    bad.loc[{"outcome": "gross_margin"}] = -1000.0
    tau = xr.concat([tau2, bad], dim=pd.Index(["good", "bad"], name="treatment_arm"))
    tau = tau.transpose("chain", "draw", "cell", "treatment_arm", "outcome")
    settings = retention_settings()
    multi = retention_settings(
        policies=[Policy(p.name, rule=p.rule, arm="good", label=p.label) for p in settings.policies]
    )
    d2, dk = Decision(tau2, share, settings), Decision(tau, share, multi)
    np.testing.assert_array_equal(dk.optimal.mask.reshape(27, 2)[:, 0], d2.optimal.mask)
    assert dk.optimal.mask.reshape(27, 2)[:, 1].sum() == 0
    assert dk.optimal.expected_value == pytest.approx(d2.optimal.expected_value)
    t2, tk = d2.policy_table(), dk.policy_table()
    for p in ["medium_high_risk", "high_risk_only", "optimal"]:
        assert tk.loc[p, "expected_value"] == pytest.approx(t2.loc[p, "expected_value"])
    assert tk.loc["treat_all_good", "expected_value"] == pytest.approx(
        t2.loc["treat_all", "expected_value"]
    )
    g2 = d2.guardrail_table().set_index(["rule", "policy"])["probability"]
    gk = dk.guardrail_table().set_index(["rule", "policy"])["probability"]
    for (rule, p), value in g2.items():
        q = "treat_all_good" if p == "treat_all" else p
        assert gk[(rule, q)] == pytest.approx(value), (rule, p)


# ---- checks with arms ------------------------------------------------------------------------


def test_sample_ratio_over_arms():
    counts = {"control": 10_366.0, "outreach": 21_025.0, "email": 10_609.0}
    shares = {"control": 0.25, "outreach": 0.5, "email": 0.25}
    res = sample_ratio_mismatch_arms(counts, shares, alpha=0.001)
    want = stats.chisquare(list(counts.values()), [42_000 * s for s in shares.values()])
    assert res.observed == pytest.approx(want.pvalue) and res.passes
    assert "(2 df)" in res.detail and "10,366 control" in res.detail
    skewed = sample_ratio_mismatch_arms({**counts, "email": 9_000.0}, shares, alpha=0.001)
    assert not skewed.passes


def test_covariate_balance_per_arm():
    import warnings

    from bayesdecide import cell_stats, simulate_retention
    from bayesdecide.decide.checks import balance_check, covariate_balance

    sim = simulate_retention(n=3000, second_offer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = cell_stats(sim.data, sim.spec, single_arm_cells="keep")
    balance = covariate_balance(cells)
    assert list(balance.columns) == ["arm", "mean_control", "mean_treatment", "smd"]
    assert sorted(set(balance["arm"])) == ["email", "outreach"] and len(balance) == 12
    df = sim.data
    email, control = df[df.treatment == "email"], df[df.treatment == "control"]
    smd = (email["seats"].mean() - control["seats"].mean()) / np.sqrt(
        (email["seats"].var() + control["seats"].var()) / 2
    )
    row = balance[(balance["arm"] == "email")].loc["seats"]
    assert row["smd"] == pytest.approx(smd, rel=1e-9)
    check = balance_check(balance, 0.0001)
    assert not check.passes and ", email" in check.detail or ", outreach" in check.detail


def test_all_assignments_enumerates_every_choice():
    from bayesdecide.decide.optimal import _all_assignments

    masks = _all_assignments(3, 2)
    assert masks.shape == (27, 6)
    blocks = masks.reshape(27, 3, 2)
    assert (blocks.sum(axis=2) <= 1).all()
    assert len({tuple(m) for m in masks}) == 27
    np.testing.assert_array_equal(
        _all_assignments(4, 1), [[(c >> i) & 1 for i in range(4)] for c in range(16)]
    )
    assert list(itertools.islice(map(tuple, masks), 3)) == [
        (0,) * 6,
        (1, 0, 0, 0, 0, 0),
        (0, 1, 0, 0, 0, 0),
    ]
