"""Model cards: both shipped cards validate; bad cards get errors naming the key and the fix."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from bayesdecide.card import (
    CardError,
    apply_overrides,
    card_from_dict,
    load_card,
    parse_assignments,
)

ROOT = Path(__file__).resolve().parents[2]
RETENTION = ROOT / "models" / "retention_outreach.toml"
MARKETS = ROOT / "models" / "multi_market.toml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return tomllib.loads(RETENTION.read_text())


def test_retention_card_builds_the_seed_spec():
    card = load_card(RETENTION)
    spec = card.spec
    assert spec.treatment == "treatment" and spec.arms == (0, 1)
    assert spec.groups == ("segment", "region", "risk_band")
    assert card.primary_outcome == "net_margin"
    assert set(card.guardrail_outcomes) == {"support_tickets", "annoyance"}
    assert card.launch.eligible == 120_000 and card.launch.fixed_cost == 280_000
    assert card.value_model().assumption_values() == {
        "support_tickets_penalty": 18.0,
        "annoyance_penalty": 35.0,
    }
    assert card.data.simulator == "retention" and card.data.single_arm_cells == "keep"
    assert [r.name for r in card.rules] == [
        "Primary value",
        "Large downside risk",
        "Support load",
        "Annoyance",
        "Renewal by region",
    ]
    assert len(card.risks) == 5 and card.monitoring.cadence == "weekly"
    for col in spec.columns:
        assert col in card.features, col
    assert len(card.sha256) == 64


def test_markets_card_validates():
    card = load_card(MARKETS)
    assert card.spec.groups == ("product", "region", "segment", "risk_band")
    assert card.hierarchy.interactions == (("product", "region"),)
    assert card.primary_outcome == "net_value"


def _err(raw: dict) -> str:
    with pytest.raises(CardError) as info:
        card_from_dict(raw, source="card.toml")
    return str(info.value)


def test_unknown_key_lists_valid_keys_and_suggests(raw):
    bad = copy.deepcopy(raw)
    bad["launch"]["eligble"] = 5
    msg = _err(bad)
    assert "'launch.eligble'" in msg and "Did you mean 'eligible'" in msg
    assert "Valid keys:" in msg and "fixed_cost (required)" in msg


def test_unknown_top_level_key(raw):
    bad = copy.deepcopy(raw)
    bad["lanch"] = {}
    msg = _err(bad)
    assert "'lanch'" in msg and "launch" in msg


def test_missing_required_key(raw):
    bad = copy.deepcopy(raw)
    del bad["launch"]["fixed_cost"]
    msg = _err(bad)
    assert "missing required key 'launch.fixed_cost'" in msg and "add fixed_cost" in msg


def test_missing_required_table(raw):
    bad = copy.deepcopy(raw)
    del bad["rules"]
    assert "missing required key 'rules'" in _err(bad)


def test_wrong_type(raw):
    bad = copy.deepcopy(raw)
    bad["launch"]["eligible"] = "many"
    msg = _err(bad)
    assert "'launch.eligible' must be an integer" in msg and "'many'" in msg


def test_bad_choice(raw):
    bad = copy.deepcopy(raw)
    bad["outcomes"][0]["kind"] = "money"
    msg = _err(bad)
    assert "outcomes[0].kind" in msg and "continuous" in msg


def test_data_needs_exactly_one_source(raw):
    bad = copy.deepcopy(raw)
    bad["data"]["path"] = "x.parquet"
    assert "exactly one of 'data.simulator'" in _err(bad)


def test_weight_on_unknown_outcome(raw):
    bad = copy.deepcopy(raw)
    bad["value"]["weights"]["gross_margn"] = 1.0
    msg = _err(bad)
    assert "value.weights.gross_margn" in msg and "Did you mean 'gross_margin'" in msg


def test_feature_dictionary_must_cover_columns(raw):
    bad = copy.deepcopy(raw)
    del bad["features"]["seats"]
    msg = _err(bad)
    assert "['seats']" in msg and "[features.seats]" in msg


def test_policy_on_unknown_factor(raw):
    bad = copy.deepcopy(raw)
    bad["policies"][2]["treat"] = {"risk": ["High risk"]}
    assert "policies[2].treat.risk" in _err(bad)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(CardError, match="does not exist"):
        load_card(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[card\nname = 1")
    with pytest.raises(CardError, match="not valid TOML"):
        load_card(p)


def test_relative_data_path_resolves_against_card(tmp_path, raw):
    bad = copy.deepcopy(raw)
    del bad["data"]["simulator"], bad["data"]["args"]
    bad["data"]["path"] = "data/x.parquet"
    card = card_from_dict(bad, path=tmp_path / "card.toml")
    assert card.data.path == str(tmp_path / "data" / "x.parquet")


def test_overrides_shortcuts_and_paths(raw):
    sets = parse_assignments(
        ["annoyance_penalty=50", "fixed_cost=350000", "rules.Primary value.min_prob=0.9"]
    )
    new = apply_overrides(raw, sets)
    card = card_from_dict(new)
    assert card.value.weights["annoyance"] == -50.0
    assert card.launch.fixed_cost == 350_000
    assert card.rules[0].min_prob == 0.9
    assert raw["launch"]["fixed_cost"] == 280000.0  # original untouched


def test_override_errors(raw):
    with pytest.raises(CardError, match="key=value"):
        parse_assignments(["fixed_cost"])
    with pytest.raises(CardError, match="unknown setting"):
        apply_overrides(raw, {"nonsense": 1})
    with pytest.raises(CardError, match="no entry named"):
        apply_overrides(raw, {"rules.Nope.threshold": 1})
    card = load_card(RETENTION)
    with pytest.raises(CardError, match="launch.eligible"):
        card.with_overrides({"launch.eligible": "lots"})


def test_rule_keys_depend_on_type(raw):
    bad = copy.deepcopy(raw)
    bad["rules"][0]["loss"] = 1.0  # a loss_limit key on a value_positive rule
    msg = _err(bad)
    assert "rules[0].loss" in msg and "value_positive" in msg
    bad = copy.deepcopy(raw)
    del bad["rules"][1]["loss"]
    assert "missing required key 'rules[1].loss'" in _err(bad)
    bad = copy.deepcopy(raw)
    bad["rules"][2]["outcome"] = "tickets"
    assert "rules[2].outcome" in _err(bad)


REGION_RULE = {
    "name": "Renewal by segment",
    "type": "effect_bound",
    "outcome": "renewed",
    "for_each": "segment",
    "lower": -0.01,
    "min_prob": 0.9,
}


def _with_rule(raw: dict, **changes) -> dict:
    out = copy.deepcopy(raw)
    rule = {**REGION_RULE, **changes}
    out["rules"] = [*out["rules"], {k: v for k, v in rule.items() if v is not None}]
    return out


def test_group_rules_load_and_are_checked(raw):
    card = card_from_dict(_with_rule(raw, per="treated"))
    g = card.guardrails()[-1]
    assert (g.for_each, g.outcome, g.lower, g.upper, g.per) == (
        "segment",
        "renewed",
        -0.01,
        None,
        "treated",
    )
    assert "for every segment" in g.describe()
    assert "per treated customer of the segment" in g.describe()
    # an unknown factor: did you mean, and the valid factors
    msg = _err(_with_rule(raw, for_each="segmnet"))
    assert "'rules[5].for_each' is 'segmnet'" in msg and "Did you mean 'segment'?" in msg
    assert "['segment', 'region', 'risk_band']" in msg
    # bounds the wrong way round
    msg = _err(_with_rule(raw, lower=0.02, upper=0.01))
    assert "'rules[5].lower' (0.02) is above 'rules[5].upper' (0.01)" in msg and "Swap" in msg
    # a gap to the overall needs the levels it compares
    msg = _err(_with_rule(raw, for_each=None, relative_to="overall"))
    assert "'rules[5].relative_to' needs 'rules[5].for_each'" in msg
    msg = _err(_with_rule(raw, relative_to="best"))
    assert "rules[5].relative_to" in msg and "overall" in msg
    # for_each is a key of effect_bound only
    bad = copy.deepcopy(raw)
    bad["rules"][0]["for_each"] = "segment"
    msg = _err(bad)
    assert "'rules[0].for_each' does not apply to type = 'value_positive'" in msg
    # an effect_bound without an outcome bounds net value per customer (dollars)
    gap = card_from_dict(_with_rule(raw, outcome=None, lower=-5.0, relative_to="overall"))
    g = gap.guardrails()[-1]
    assert g.outcome is None and g.relative_to == "overall"
    assert (
        "net value (dollars)" in g.describe()
        and "minus that per eligible customer overall" in g.describe()
    )


def test_fairness_factors(raw):
    assert load_card(RETENTION).fairness_factors == ("region", "segment")
    bare = copy.deepcopy(raw)
    bare["decision"].pop("fairness_factors", None)
    assert card_from_dict(bare).fairness_factors == ("segment", "region", "risk_band")
    bad = copy.deepcopy(raw)
    bad["decision"]["fairness_factors"] = ["region", "segmnet"]
    msg = _err(bad)
    assert "'decision.fairness_factors[1]' is 'segmnet'" in msg and "Did you mean 'segment'?" in msg
    bad["decision"]["fairness_factors"] = ["region", "region"]
    assert "lists ['region'] twice" in _err(bad)


def test_priors_and_decision_tables(raw):
    bad = copy.deepcopy(raw)
    bad["priors"] = {"sigma_region": 0.5}
    assert "[priors.sigma_region]" in _err(bad)
    bad = copy.deepcopy(raw)
    bad["decision"]["compare_factor"] = "country"
    assert "decision.compare_factor" in _err(bad)


def test_rules_become_guardrails():
    for path in (RETENTION, MARKETS):
        card = load_card(path)
        for rule, g in zip(card.rules, card.guardrails(), strict=True):
            assert g.name == rule.name and g.type == rule.type
            assert g.text() == rule.description


def test_card_owns_its_fit_settings(raw):
    from bayesdecide.model.defaults import FIT_DEFAULTS

    card = load_card(RETENTION)
    s = card.fit_settings()
    assert s["draws"] == 2000 and s["seed"] == 20260309  # the card's [fit] over the defaults
    assert card.fit_settings(quick=True, seed=7) == {
        **s,
        "draws": 300,
        "tune": 300,
        "chains": 2,
        "seed": 7,
    }
    bare = copy.deepcopy(raw)
    del bare["fit"]
    # no tuning length given: left to the fit, which runs the warm-up of the sampler that
    # samples (nutpie on the marginal posterior: 300; PyMC's NUTS on the full model, a fallback
    # included: 1000; tests/model/test_fit_fast.py)
    assert card_from_dict(bare).fit_settings() == {**FIT_DEFAULTS, "tune": None}
    bare["fit"] = {"sampler": "pymc"}
    assert card_from_dict(bare).fit_settings()["tune"] is None
    assert card_from_dict(bare).fit_settings(tune=50)["tune"] == 50


def test_card_decision_settings_and_policy_ids():
    card = load_card(RETENTION)
    s = card.decision_settings()
    assert [p.name for p in s.policies] == [
        "treat_none",
        "treat_all",
        "treat_medium_and_high_risk",
        "treat_high_risk_only",
        "treat_enterprise",
    ]
    assert s.policies[2].label == "Treat medium and high risk"
    assert s.loss_threshold == 500_000 and s.ci_prob == 0.95
    assert s.value_model.assumptions == {
        "support_tickets_penalty": "support_tickets",
        "annoyance_penalty": "annoyance",
    }
    assert s.population.fixed_cost_scaling == "treated_share"


def test_card_decide_from_a_fit(fake_fit, retention_cells):
    card = load_card(RETENTION)
    d = card.decide(fake_fit, cells=retention_cells)
    assert [c.name for c in d.checks.results] == [
        "Sample ratio mismatch",
        "Covariate balance",
        "R-hat",
        "Effective sample size",
        "Divergences",
    ]
    assert d.labels["treat_enterprise"] == "Treat Enterprise"
    assert d.recommendation.decision.startswith("Launch")
    # without the cells: covariate balance is reported as not checked
    d2 = card.decide(fake_fit, annoyance_penalty=80)
    assert d2.checks.results[1].detail.startswith("not checked: covariate balance needs")
    assert d2.settings.value_model.weights["annoyance"] == -80
