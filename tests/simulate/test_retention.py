"""The retention simulator reproduces the seed notebook to the printed digits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

SEED_COVARIATES = "base_margin + churn_risk + prior_usage + support_history + tenure_months + seats"


def test_first_rows_match_seed(retention):
    head = retention.data.head()
    assert list(head["segment"]) == ["SMB", "SMB", "Mid-market", "SMB", "SMB"]
    assert list(head["region"]) == ["EMEA", "EMEA", "EMEA", "EMEA", "Americas"]
    np.testing.assert_allclose(
        head["tenure_months"], [46.345, 13.248, 9.683, 28.001, 20.237], atol=5e-4
    )
    np.testing.assert_allclose(
        head["base_margin"], [113.461, 138.863, 202.123, 107.754, 74.306], atol=5e-4
    )
    np.testing.assert_allclose(
        head["net_margin"], [113.461, 133.525, 0.0, 107.754, 56.306], atol=5e-4
    )
    assert list(head["risk_band"]) == [
        "Medium risk",
        "Medium risk",
        "Medium risk",
        "Low risk",
        "Low risk",
    ]


def test_balance_table_matches_seed(retention):
    df = retention.data
    counts = df.groupby("treatment").size()
    assert counts.to_dict() == {0: 20_975, 1: 21_025}
    means = df.groupby("treatment")[["base_margin", "churn_risk", "tenure_months"]].mean()
    np.testing.assert_allclose(means["base_margin"], [226.813, 224.193], atol=5e-4)
    np.testing.assert_allclose(means["tenure_months"], [28.096, 27.908], atol=5e-4)


def test_seed_ols_effects(retention):
    df = retention.data
    model = smf.ols(
        f"net_margin ~ treatment + {SEED_COVARIATES} + C(segment) + C(region)", data=df
    ).fit(cov_type="HC1")
    assert model.params["treatment"] == pytest.approx(2.525, abs=5e-4)
    assert model.bse["treatment"] == pytest.approx(1.256, abs=5e-4)
    expected = {"Low risk": -8.911, "Medium risk": 14.188, "High risk": 24.598}
    for band, value in expected.items():
        sub = df[df["risk_band"] == band]
        fit = smf.ols(f"net_margin ~ treatment + {SEED_COVARIATES} + C(region)", data=sub).fit(
            cov_type="HC1"
        )
        assert fit.params["treatment"] == pytest.approx(value, abs=5e-4)


def test_true_effects(retention):
    truth = retention.truth
    assert len(truth) == len(retention.data)
    assert truth["net_margin"].mean() == pytest.approx(3.825, abs=5e-4)
    by_band = truth["net_margin"].groupby(retention.data["risk_band"]).mean()
    assert by_band["Low risk"] == pytest.approx(-7.535, abs=5e-4)
    assert by_band["Medium risk"] == pytest.approx(15.167, abs=5e-4)
    assert by_band["High risk"] == pytest.approx(28.791, abs=5e-4)
    # the components add up to the net-margin effect
    net = (
        truth["gross_margin"]
        - truth["contact_cost"]
        - truth["discount_cost"]
        - 18 * truth["support_tickets"]
        - 35 * truth["annoyance"]
    )
    np.testing.assert_allclose(net, truth["net_margin"])
    assert retention.true_average_effect()["net_margin"] == pytest.approx(3.8252, abs=1e-4)


def test_true_effects_match_a_large_simulation():
    """The noise-free truth equals what a huge sample estimates (the DGP's expectations are right)."""
    from bayesdecide import simulate_retention

    big = simulate_retention(seed=1, n=600_000)
    df, truth = big.data, big.truth
    t = df["treatment"] == 1
    for outcome in ("renewed", "support_tickets", "annoyance", "gross_margin"):
        diff = df.loc[t, outcome].mean() - df.loc[~t, outcome].mean()
        se = np.sqrt(df.loc[t, outcome].var() / t.sum() + df.loc[~t, outcome].var() / (~t).sum())
        assert abs(diff - truth[outcome].mean()) < 4 * se, outcome


def test_same_seed_same_data():
    from bayesdecide import simulate_retention

    a = simulate_retention(seed=3, n=500)
    b = simulate_retention(seed=3, n=500)
    assert a.data.equals(b.data)
    assert not a.data.equals(simulate_retention(seed=4, n=500).data)


# ---- the second offer: a discount-only email as a third arm --------------------------------


@pytest.fixture(scope="module")
def offers():
    from bayesdecide import simulate_retention

    return simulate_retention(second_offer=True)


def test_second_offer_keeps_every_seed_row_but_the_emailed(retention, offers):
    seed, data = retention.data, offers.data
    email = data["treatment"] == "email"
    assert set(data["treatment"]) == {"control", "outreach", "email"}
    # the email customers are a random part of the seed's controls
    assert (seed.loc[email, "treatment"] == 0).all()
    assert ((seed["treatment"] == 1) == (data["treatment"] == "outreach")).all()
    assert 0.45 < email.sum() / (seed["treatment"] == 0).sum() < 0.55
    others = [c for c in seed.columns if c != "treatment"]
    pd.testing.assert_frame_equal(seed.loc[~email, others], data.loc[~email, others])
    # covariates of the emailed customers are the seed's too (only outcomes are redrawn)
    covs = ["segment", "region", "risk_band", "base_margin", "churn_risk", "tenure_months"]
    pd.testing.assert_frame_equal(seed.loc[email, covs], data.loc[email, covs])
    assert offers.spec.arms == ("control", "outreach", "email")


def test_second_offer_outcomes_add_up(offers):
    d = offers.data
    net = (
        d["gross_margin"]
        - d["contact_cost"]
        - d["discount_cost"]
        - 18 * d["support_tickets"]
        - 35 * d["annoyance"]
    )
    np.testing.assert_allclose(net, d["net_margin"], atol=1e-9)
    np.testing.assert_allclose(d["gross_margin"], d["renewed"] * d["base_margin"])
    email = d[d["treatment"] == "email"]
    np.testing.assert_allclose(email["discount_cost"], 0.02 * email["gross_margin"])


def test_second_offer_truth_per_arm(offers, retention):
    truth = offers.truth
    assert list(truth.columns.get_level_values(0).unique()) == ["outreach", "email"]
    pd.testing.assert_frame_equal(truth["outreach"], retention.truth)
    for arm in ("outreach", "email"):
        t = truth[arm]
        net = (
            t["gross_margin"]
            - t["contact_cost"]
            - t["discount_cost"]
            - 18 * t["support_tickets"]
            - 35 * t["annoyance"]
        )
        np.testing.assert_allclose(net, t["net_margin"])
    # the best arm differs by risk band: email in low and medium risk, outreach in high risk
    by_band = pd.DataFrame(
        {
            a: truth[a]["net_margin"].groupby(offers.data["risk_band"]).mean()
            for a in truth.columns.levels[0]
        }
    )
    assert by_band.loc["Low risk", "email"] > 0 > by_band.loc["Low risk", "outreach"]
    assert by_band.loc["Medium risk", "email"] > by_band.loc["Medium risk", "outreach"] + 5
    assert by_band.loc["High risk", "outreach"] > by_band.loc["High risk", "email"] + 15
    cells = offers.true_cell_effects()
    assert cells.shape == (27, 14) and ("email", "net_margin") in cells.columns


def test_second_offer_truth_matches_a_large_simulation():
    from bayesdecide import simulate_retention

    big = simulate_retention(seed=2, n=400_000, second_offer=True)
    df, truth = big.data, big.truth
    control = df["treatment"] == "control"
    for arm in ("email", "outreach"):
        a = df["treatment"] == arm
        for outcome in ("renewed", "support_tickets", "annoyance", "discount_cost", "net_margin"):
            diff = df.loc[a, outcome].mean() - df.loc[control, outcome].mean()
            se = np.sqrt(
                df.loc[a, outcome].var() / a.sum() + df.loc[control, outcome].var() / control.sum()
            )
            assert abs(diff - truth[arm][outcome].mean()) < 4 * se, (arm, outcome)


def test_second_offer_is_seeded_and_checked():
    from bayesdecide import simulate_retention

    a = simulate_retention(seed=5, n=800, second_offer=True)
    assert a.data.equals(simulate_retention(seed=5, n=800, second_offer=True).data)
    assert not a.data.equals(simulate_retention(seed=6, n=800, second_offer=True).data)
    with pytest.raises(ValueError, match="email_share is 1"):
        simulate_retention(second_offer=True, email_share=1)
