"""Model cards with several treatment arms: the three-arm card, the arm syntax and its errors."""

from __future__ import annotations

import copy
import tomllib
from types import SimpleNamespace

import pytest
import xarray as xr

from bayesdecide.card import CardError, card_from_dict, load_card

from ..fakes import OFFERS_CARD, RETENTION_CARD


@pytest.fixture(scope="module")
def raw() -> dict:
    return tomllib.loads(OFFERS_CARD.read_text())


def _err(raw: dict) -> str:
    with pytest.raises(CardError) as info:
        card_from_dict(raw, source="card.toml")
    return str(info.value)


def test_three_arm_card_builds_its_spec_and_policies():
    card = load_card(OFFERS_CARD)
    spec = card.spec
    assert card.multi_arm and spec.arms == ("control", "outreach", "email")
    assert spec.treatment_arms == ("outreach", "email")
    assert card.arm_shares == {"control": 0.25, "outreach": 0.5, "email": 0.25}
    assert ("treatment_arm", "risk_band") in card.hierarchy.interactions
    policies = {p.name: p for p in card.decision_policies()}
    assert set(policies) == {
        "treat_none",
        "treat_all_outreach",
        "treat_all_email",
        "outreach_to_medium_and_high_risk",
        "email_low_and_medium_risk_outreach_high_risk",
    }
    assert policies["treat_all_email"].arm == "email"
    assert policies["treat_all_email"].label == "Email to all"
    mixed = policies["email_low_and_medium_risk_outreach_high_risk"]
    assert set(mixed.arms) == {"email", "outreach"}
    assert card.data.args == {"seed": 808, "n": 42000, "second_offer": True}
    for col in spec.columns:
        assert col in card.features, col


def test_two_arm_card_is_unchanged():
    card = load_card(RETENTION_CARD)
    assert not card.multi_arm and card.arm_shares is None
    assert all(p.arm is None and p.arms is None for p in card.decision_policies())


def test_policy_without_an_arm(raw):
    bad = copy.deepcopy(raw)
    del bad["policies"][1]["arm"]
    msg = _err(bad)
    assert "'policies[1]' ('Outreach to all') treats customers but names no arm" in msg
    assert "['outreach', 'email']" in msg


def test_unknown_arm_is_suggested(raw):
    bad = copy.deepcopy(raw)
    bad["policies"][2]["arm"] = "emial"
    msg = _err(bad)
    assert "names arm 'emial', which is not a treatment arm. Did you mean 'email'?" in msg
    bad = copy.deepcopy(raw)
    bad["policies"][2]["arm"] = "control"
    assert "the control 'control' is the status quo: treat none" in _err(bad)


def test_treat_and_arms_are_exclusive(raw):
    bad = copy.deepcopy(raw)
    bad["policies"][4]["treat"] = {"all": True}
    assert "needs exactly one of 'treat' and 'arms'" in _err(bad)
    bad = copy.deepcopy(raw)
    bad["policies"][4]["arms"]["email"] = {"risk": ["Low risk"]}
    assert "'policies[4].arms.email.risk'" in _err(bad)


def test_arms_on_a_two_arm_card():
    raw = tomllib.loads(RETENTION_CARD.read_text())
    bad = copy.deepcopy(raw)
    bad["policies"][2]["arm"] = "treatment"
    assert "'policies[2].arm' is for multi-arm cards" in _err(bad)
    bad = copy.deepcopy(raw)
    bad["experiment"]["arm_shares"] = [0.5, 0.5]
    assert "'experiment.arm_shares' is for multi-arm cards" in _err(bad)
    bad = copy.deepcopy(raw)
    bad["hierarchy"]["interactions"] = [["treatment_arm", "risk_band"]]
    assert "'hierarchy.interactions[0]'" in _err(bad)


@pytest.mark.parametrize(
    ("shares", "match"),
    [([0.5, 0.5], "one positive share per arm"), ([0.2, 0.5, 0.2], "summing to 1")],
)
def test_arm_shares_are_checked(raw, shares, match):
    bad = copy.deepcopy(raw)
    bad["experiment"]["arm_shares"] = shares
    assert match in _err(bad)


def test_arms_must_be_distinct(raw):
    bad = copy.deepcopy(raw)
    bad["experiment"]["arms"] = ["control", "email", "email"]
    assert "give two or more distinct values, control first" in _err(bad)


def test_fit_without_the_cards_arms_is_refused():
    card = load_card(OFFERS_CARD)
    two_arm = xr.DataArray([[[[0.0]]]], dims=("chain", "draw", "cell", "outcome"))
    with pytest.raises(CardError, match="have no treatment_arm dim: fit the card.s multi-arm"):
        card.check_fit_arms(SimpleNamespace(tau=two_arm))
    wrong = xr.DataArray(
        [[[[[0.0], [0.0]]]]],
        dims=("chain", "draw", "cell", "treatment_arm", "outcome"),
        coords={"treatment_arm": ["email", "outreach"]},
    )
    with pytest.raises(CardError, match=r"treatment arms \['email', 'outreach'\]"):
        card.check_fit_arms(SimpleNamespace(tau=wrong))
    with pytest.raises(CardError, match="has two arms, but the fit"):
        load_card(RETENTION_CARD).check_fit_arms(SimpleNamespace(tau=wrong))


def test_pooled_card_with_several_arms_is_refused():
    from ..fakes import ROOT

    raw = tomllib.loads((ROOT / "models" / "retention_waves.toml").read_text())
    raw["experiment"]["arms"] = ["control", "outreach", "email"]
    assert "pooling experiments with several treatment arms is not supported" in _err(raw)
