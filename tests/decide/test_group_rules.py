"""Group rules (held for every level of a factor): estimands by hand, levels x probabilities,
the optimal targeting under them, and a recommendation they flip (hand-built draws, no sampling)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

from bayesdecide.decide import (
    Decision,
    DecisionSettings,
    EffectBound,
    FairnessFloor,
    LaunchDraws,
    Policy,
    Population,
    ValueModel,
    ValuePositive,
    guardrail_from_dict,
    guardrail_table,
    optimal_policy,
    treat_all,
    treat_none,
)
from bayesdecide.decide.guardrails import group_rule_table
from bayesdecide.decide.policies import OPTIMAL, OPTIMAL_WITHOUT_GROUP_RULES
from bayesdecide.decide.recommend import LAUNCH_TARGETED, NO_LAUNCH
from bayesdecide.errors import SpecError

from .conftest import REGIONS, RISK_BANDS, SEGMENTS


@pytest.fixture
def four():
    """4 cells (regions N, N, S, S) x outcomes (v, r), 4 draws by hand; mix 0.1, 0.3, 0.2, 0.4."""
    v = np.array(
        [[1.0, -2.0, 4.0, 0.0], [3.0, 0.0, -2.0, 1.0], [-1.0, 4.0, 2.0, 2.0], [5.0, 2.0, 0.0, -1.0]]
    )
    r = np.array(
        [
            [0.1, -0.3, 0.0, 0.2],
            [0.0, -0.1, 0.1, 0.1],
            [0.2, -0.2, -0.1, 0.0],
            [0.1, 0.0, 0.3, -0.1],
        ]
    )
    draws = np.stack([v, r], axis=-1)[None]  # (chain, draw, cell, outcome)
    tau = xr.DataArray(
        draws,
        dims=("chain", "draw", "cell", "outcome"),
        coords={
            "cell": ["n1", "n2", "s1", "s2"],
            "outcome": ["v", "r"],
            "region": ("cell", ["N", "N", "S", "S"]),
        },
    )
    share = xr.DataArray([0.1, 0.3, 0.2, 0.4], dims="cell", coords={"cell": tau["cell"].values})
    launch = LaunchDraws(tau, share, ValueModel({"v": 1.0}), Population(100))
    return launch, v, r


def test_level_estimands_by_hand(four):
    launch, v, r = four
    masks = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    pd_ = launch.evaluate(masks, ["all", "n1_s2", "none"])
    eligible = pd_.level_draws("region", "r", per="eligible")
    assert eligible.levels == ["N", "S"]
    np.testing.assert_allclose(eligible.share, [0.4, 0.6])
    # treat n1 and s2: region N = 0.1 * r_n1 / 0.4 (n2 untreated counts 0); S = 0.4 * r_s2 / 0.6
    np.testing.assert_allclose(eligible.draws[:, 1, 0], 0.1 * r[:, 0] / 0.4)
    np.testing.assert_allclose(eligible.draws[:, 1, 1], 0.4 * r[:, 3] / 0.6)
    np.testing.assert_allclose(eligible.treated[1], [0.25, 2 / 3])
    np.testing.assert_allclose(eligible.draws[:, 2], 0.0)  # nobody treated: status quo
    treated = pd_.level_draws("region", "r", per="treated")
    np.testing.assert_allclose(treated.draws[:, 1, 0], r[:, 0])  # only n1 treated in N
    np.testing.assert_allclose(treated.draws[:, 0, 1], (0.2 * r[:, 2] + 0.4 * r[:, 3]) / 0.6)
    assert np.isnan(treated.draws[:, 2]).all()  # nobody treated: undefined
    # relative to the overall, per eligible: level effect minus the policy's population average
    gap = pd_.level_draws("region", None, per="eligible", relative_to="overall")
    overall = 0.1 * v[:, 0] + 0.4 * v[:, 3]
    np.testing.assert_allclose(gap.draws[:, 1, 0], 0.1 * v[:, 0] / 0.4 - overall)
    with pytest.raises(SpecError, match="relative_to"):
        pd_.level_draws("region", "r", relative_to="best")


def test_group_rule_levels_worst_and_table(four):
    launch, v, r = four
    masks = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    pd_ = launch.evaluate(masks, ["all", "n1_s2", "none"])
    rule = EffectBound("r", lower=-0.05, min_prob=0.75, for_each="region", name="r_by_region")
    lp = rule.level_probabilities(pd_)
    r_n = (0.1 * r[:, 0] + 0.3 * r[:, 1]) / 0.4  # treat all, region N per eligible
    r_s = (0.2 * r[:, 2] + 0.4 * r[:, 3]) / 0.6
    np.testing.assert_allclose(lp.probability[0], [np.mean(r_n >= -0.05), np.mean(r_s >= -0.05)])
    assert lp.worst() == ["N", "S", "N"]
    # the rule's probability is the worst level's: treat all fails in N (1 of 4 draws)
    probs = rule.probability(pd_)
    assert probs[0] == pytest.approx(np.mean(r_n >= -0.05)) == pytest.approx(0.25)
    t = guardrail_table([rule], pd_).set_index("policy")
    assert t.loc["all", "worst_level"] == "N" and not t.loc["all", "passes"]
    assert t.loc["all", "factor"] == "region"
    assert "for every region" in t.loc["all", "definition"]
    levels = group_rule_table([rule], pd_, ci_prob=0.5).set_index(["policy", "level"])
    assert levels.loc[("all", "N"), "worst"] and not levels.loc[("all", "S"), "worst"]
    assert levels.loc[("all", "N"), "mean"] == pytest.approx(r_n.mean())
    assert levels.loc[("all", "N"), "lower"] == pytest.approx(np.quantile(r_n, 0.25))
    assert levels.loc[("n1_s2", "S"), "treated_share"] == pytest.approx(2 / 3)
    # per treated: a level the policy does not treat is not held; a policy holding none passes
    per_treated = EffectBound("r", lower=0.0, min_prob=0.75, for_each="region", per="treated")
    lt = group_rule_table([per_treated], pd_, ci_prob=0.9).set_index(["policy", "level"])
    assert not lt.loc[("none", "N"), "held"] and lt.loc[("none", "N"), "passes"]
    assert np.isnan(lt.loc[("none", "N"), "probability"])
    assert per_treated.probability(pd_)[2] == 1.0
    # a gap rule: no region's net value per eligible customer more than 1 below the overall
    gap = EffectBound(None, lower=-1.0, min_prob=0.75, for_each="region", relative_to="overall")
    gap_draws = pd_.level_draws("region", None, relative_to="overall").draws
    expect = np.nanmin((gap_draws >= -1.0).mean(axis=0), axis=1)
    np.testing.assert_allclose(gap.probability(pd_), expect)
    assert not gap.levelwise and rule.levelwise


def test_group_rule_validation():
    with pytest.raises(SpecError, match="lower .* is above upper"):
        EffectBound("r", lower=0.1, upper=0.0, for_each="region")
    with pytest.raises(SpecError, match="relative_to needs for_each"):
        EffectBound("r", lower=0.0, relative_to="overall")
    with pytest.raises(SpecError, match="finite"):
        EffectBound("r", lower=float("nan"))
    rule = EffectBound(None, lower=-5.0, for_each="region", relative_to="overall", name="gap")
    assert guardrail_from_dict(rule.to_dict()) == rule
    assert rule.to_dict()["for_each"] == "region" and "outcome" not in rule.to_dict()


def _random_launch(seed: int, scaling: str) -> LaunchDraws:
    """12 cells in 2 regions x 6 cells; outcomes net (dollars) and r (a rate); 300 draws."""
    rng = np.random.default_rng(seed)
    n = 12
    mean = np.column_stack([rng.normal(2, 5, n), rng.normal(0.0, 0.03, n)])
    sd = np.column_stack([np.full(n, 2.0), np.full(n, 0.01)])
    z = rng.standard_normal((300, n, 2))
    tau = xr.DataArray(
        (mean + sd * z)[None],
        dims=("chain", "draw", "cell", "outcome"),
        coords={
            "cell": [f"c{i}" for i in range(n)],
            "outcome": ["net", "r"],
            "region": ("cell", ["A"] * 6 + ["B"] * 6),
        },
    )
    share = xr.DataArray(
        rng.dirichlet(np.ones(n)), dims="cell", coords={"cell": tau["cell"].values}
    )
    pop = Population(10_000, fixed_cost=5_000, fixed_cost_scaling=scaling)
    return LaunchDraws(tau, share, ValueModel({"net": 1.0}), pop)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_level_search_matches_exact_under_group_rules(seed):
    """Group rules alone: the level relaxation is solved exactly (sum of 2^6 subsets per region
    instead of 2^12) and certified; with a rule on totals too, the level-block search stays
    within 5% of the exact optimum, and every answer passes every rule."""
    for scaling in ("constant", "treated_share"):
        launch = _random_launch(seed, scaling)
        group = [EffectBound("r", lower=-0.01, min_prob=0.8, for_each="region", name="g")]
        exact = optimal_policy(launch, group, exact_max_cells=12)
        fast = optimal_policy(launch, group, exact_max_cells=0)
        assert fast.expected_value == pytest.approx(exact.expected_value, abs=1e-6)
        if fast.method == "level_exact":
            assert fast.upper_bound == pytest.approx(exact.expected_value, abs=1e-6)
        else:  # only when the share-scaled cost's floor binds
            assert scaling == "treated_share"
        both = [
            *group,
            EffectBound("r", lower=0.0, min_prob=0.7, name="total"),
            FairnessFloor("region", floor=0.0, min_prob=0.6, name="floor"),
        ]
        exact = optimal_policy(launch, both, exact_max_cells=12)
        fast = optimal_policy(launch, both, exact_max_cells=0)
        assert fast.expected_value <= exact.expected_value + 1e-6
        assert fast.expected_value >= 0.95 * exact.expected_value - 1e-6
        if fast.upper_bound is not None:
            assert fast.upper_bound >= exact.expected_value - 1e-6
        for res in (exact, fast):
            if res.mask.any():
                table = guardrail_table(both, launch.evaluate(res.mask[None]))
                assert table["passes"].all()


def test_group_rule_couples_the_cells_of_a_level(build_tau, share_da):
    """Per eligible customer, a harmful cell is treatable only together with a cell that offsets
    it in the same region: the optimum takes the pair, not the harmful cell alone."""
    # cells: region A: a_harm (value 10, r -0.03), a_help (value 1, r +0.02), a_bad (value -1, r
    # +0.03); region B: b (value 5, r 0)
    mean = np.array([[10.0, -0.03], [1.0, 0.02], [-1.0, 0.03], [5.0, 0.0]])
    sd = np.array([[0.5, 0.002], [0.5, 0.002], [0.5, 0.002], [0.5, 0.002]])
    tau = build_tau(
        mean, sd, ["net", "r"], {"region": ["A", "A", "A", "B"], "cell_id": ["h", "p", "x", "b"]}
    )
    share = share_da(tau, [0.2, 0.2, 0.2, 0.4])
    launch = LaunchDraws(tau, share, ValueModel({"net": 1.0}), Population(1000))
    rule = [EffectBound("r", lower=-0.005, min_prob=0.9, for_each="region")]
    # a_harm alone gives A -0.03 * 0.2 / 0.6 = -0.01 per eligible customer: fails; with a_help
    # (+0.02 * 0.2 / 0.6) the region is at -0.0033: passes; a_bad is not worth treating
    for exact_max_cells in (12, 0):
        res = optimal_policy(launch, rule, exact_max_cells=exact_max_cells)
        assert list(res.mask) == [1, 1, 0, 1], res
    assert optimal_policy(launch, rule, exact_max_cells=0).method == "level_exact"
    # per treated customer, the pair averages -0.5 pp (fails at 90%); adding a_bad (+3 pp, -1
    # dollar) lifts A's treated average to +0.67 pp: the best passing set is the triple
    per_treated = [EffectBound("r", lower=-0.005, min_prob=0.9, for_each="region", per="treated")]
    res = optimal_policy(launch, per_treated, exact_max_cells=0)
    exact = optimal_policy(launch, per_treated, exact_max_cells=12)
    assert list(res.mask) == list(exact.mask) == [1, 1, 1, 1]


# ---- item 4: a group rule flips the recommendation ----------------------------------------------


def _harmed_region_draws(build_tau, share_da, harmed: str = "EMEA"):
    """27 cells (segment x region x risk band), outcomes net (dollars) and renewed (rate).

    Medium and high risk cells gain $6-9 net and +2 pp renewal; low risk cells lose $2 net. In
    ``harmed`` every cell loses 3 pp renewal (its net value stays positive in medium and high
    risk: the loss is not priced in the value model), so the value-maximising policy, treating
    medium and high risk everywhere, harms that region.
    """
    cells = list(itertools.product(SEGMENTS, REGIONS, RISK_BANDS))
    net = {"Low risk": -2.0, "Medium risk": 6.0, "High risk": 9.0}
    mean = np.array([[net[c[2]], -0.03 if c[1] == harmed else 0.02] for c in cells])
    sd = np.column_stack([np.full(len(cells), 1.0), np.full(len(cells), 0.004)])
    factors = {
        "segment": [c[0] for c in cells],
        "region": [c[1] for c in cells],
        "risk_band": [c[2] for c in cells],
    }
    tau = build_tau(mean, sd, ["net", "renewed"], factors, n_draws=500, seed=3)
    share = share_da(tau, np.random.default_rng(4).dirichlet(np.full(len(cells), 20.0)))
    return tau, share


RENEWAL_BY_REGION = EffectBound(
    "renewed",
    lower=-0.01,
    min_prob=0.9,
    per="treated",
    for_each="region",
    name="Renewal by region",
)


def _settings(**changes) -> DecisionSettings:
    base = DecisionSettings(
        value_model=ValueModel({"net": 1.0}),
        population=Population(100_000, fixed_cost=50_000),
        policies=(
            Policy(
                "treat_medium_high",
                rule={"risk_band": ["Medium risk", "High risk"]},
                label="Treat medium and high risk",
            ),
        ),
        guardrails=(ValuePositive(min_prob=0.8, name="Primary value"),),
    )
    return base.with_changes(**changes)


def test_group_rule_flips_the_recommendation(build_tau, share_da):
    tau, share = _harmed_region_draws(build_tau, share_da)
    without = Decision(tau, share, _settings(), sample_dims=("chain", "draw"))
    rec = without.recommendation
    assert rec.decision == LAUNCH_TARGETED and rec.policy == "treat_medium_high"
    emea = tau["region"].values == "EMEA"
    assert without.masks[without.policy_names.index("treat_medium_high")][emea].any()

    guards = (*_settings().guardrails, RENEWAL_BY_REGION)
    with_rule = without.with_settings(guardrails=guards)
    rec = with_rule.recommendation
    # the recommendation moves to the constrained optimum, which treats nobody in EMEA
    assert rec.decision == LAUNCH_TARGETED and rec.policy == OPTIMAL
    optimal = with_rule.masks[with_rule.policy_names.index(OPTIMAL)]
    assert not optimal[emea].any() and optimal[~emea].any()
    # ... and says which region and probability caused it
    t = with_rule.guardrail_table().set_index(["rule", "policy"])
    row = t.loc[("Renewal by region", "treat_medium_high")]
    assert row["worst_level"] == "EMEA" and row["probability"] < 0.9 and not row["passes"]
    expected = (
        f"'Treat medium and high risk' has a higher expected value"
        f" (${with_rule.policy_table().loc['treat_medium_high', 'expected_value']:,.0f}) but fails "
        f"Renewal by region (region EMEA: P = {row['probability']:.0%}, needs ≥ 90%)."
    )
    assert expected in rec.reasons
    # the group rule binds: the optimum without it is reported beside the optimum with it
    assert with_rule.group_rules_bind
    assert OPTIMAL_WITHOUT_GROUP_RULES in with_rule.policy_names
    left = with_rule.left_out("region").set_index(["policy", "level"])
    assert left.loc[(OPTIMAL, "EMEA"), "cause"] == "rule"
    assert left.loc[(OPTIMAL, "EMEA"), "rules"] == ["Renewal by region"]
    assert "region EMEA: P = 0%" in left.loc[(OPTIMAL, "EMEA"), "reason"]
    # the other regions are not held back: their renewal effect per treated customer is +2 pp
    levels = with_rule.group_rule_table().set_index(["policy", "level"])
    assert levels.loc[(OPTIMAL, "Americas"), "mean"] == pytest.approx(0.02, abs=1e-3)
    assert not levels.loc[(OPTIMAL, "EMEA"), "held"]


def test_group_rule_leaves_no_policy_to_launch(build_tau, share_da):
    """Without the optimal targeting, every named policy harms EMEA: do not launch, and say why."""
    tau, share = _harmed_region_draws(build_tau, share_da)
    settings = _settings(include_optimal=False)
    assert Decision(tau, share, settings).recommendation.policy == "treat_medium_high"
    guards = (*settings.guardrails, RENEWAL_BY_REGION)
    rec = Decision(tau, share, settings.with_changes(guardrails=guards)).recommendation
    assert rec.decision == NO_LAUNCH and rec.policy is None
    assert any(
        r.startswith("'Treat medium and high risk' fails Renewal by region (region EMEA: P = 0%")
        for r in rec.reasons
    )


def test_group_rule_that_does_not_bind_changes_nothing(build_tau, share_da):
    tau, share = _harmed_region_draws(build_tau, share_da, harmed="nowhere")
    base = Decision(tau, share, _settings())
    audited = base.with_settings(guardrails=(*_settings().guardrails, RENEWAL_BY_REGION))
    assert audited.recommendation.policy == base.recommendation.policy
    assert not audited.group_rules_bind
    assert audited.policy_names == base.policy_names
    np.testing.assert_array_equal(audited.masks, base.masks)


def test_left_out_reasons(build_tau, share_da):
    """A named policy's rule, the value, and a rule each explain a group left out."""
    tau, share = _harmed_region_draws(build_tau, share_da)
    settings = _settings(
        policies=(Policy("not_apac", rule={"region": {"not_in": ["APAC"]}}),),
        guardrails=(ValuePositive(min_prob=0.8), RENEWAL_BY_REGION),
    )
    d = Decision(tau, share, settings)
    regions = d.left_out("region").set_index(["policy", "level"])
    assert regions.loc[("not_apac", "APAC"), "cause"] == "policy"
    assert "its rule (region not in [APAC])" in regions.loc[("not_apac", "APAC"), "reason"]
    bands = d.left_out("risk_band").set_index(["policy", "level"])
    assert bands.loc[(OPTIMAL, "Low risk"), "cause"] == "value"
    assert (
        "none of its cells has a positive expected net value"
        in (bands.loc[(OPTIMAL, "Low risk"), "reason"])
    )
    assert (treat_none().name, "Low risk") not in bands.index
    assert treat_all().name not in set(bands.index.get_level_values(0))
