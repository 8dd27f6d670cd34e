"""The retention simulator reproduces the seed notebook to the printed digits."""

from __future__ import annotations

import numpy as np
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
