"""The rollout companion of the retention simulator: the seed's outcome model, a launch mix, a
randomized holdout and a known transport factor."""

from __future__ import annotations

import numpy as np
import pytest

from bayesdecide import simulate_retention
from bayesdecide.errors import SpecError
from bayesdecide.simulate.rollout import retention_effects, simulate_retention_rollout

MIX = {"risk_band": {"Low risk": 0.3, "Medium risk": 0.5, "High risk": 0.2}}


@pytest.fixture(scope="module")
def rollout():
    return simulate_retention_rollout(0.7, 20_000, mix=MIX, seed=11)


def test_outcome_model_is_the_seeds_to_the_last_digit(retention):
    """With transport 1, the restated outcome model gives simulate_retention's true effects."""
    effects = retention_effects(retention.data, 1.0)
    assert list(effects.columns) == list(retention.truth.columns)
    np.testing.assert_array_equal(effects.to_numpy(), retention.truth.to_numpy())


def test_true_transport_is_the_factor_customer_by_customer(rollout):
    assert rollout.true_transport() == pytest.approx(0.7, abs=1e-12)
    assert rollout.true_transport(["renewed"]) == pytest.approx(0.7, abs=1e-12)
    ratio = rollout.truth["gross_margin"] / rollout.experiment_truth["gross_margin"]
    finite = np.isfinite(ratio) & (rollout.experiment_truth["gross_margin"].abs() > 1e-9)
    np.testing.assert_allclose(ratio[finite], 0.7, rtol=1e-9)
    # costs of the outreach itself do not fade
    np.testing.assert_array_equal(
        rollout.truth["contact_cost"], rollout.experiment_truth["contact_cost"]
    )


def test_mix_holdout_and_columns(rollout, retention):
    d = rollout.data
    assert list(d.columns) == list(retention.data.columns)
    assert d["customer_id"].is_unique and len(d) == 20_000
    np.testing.assert_allclose(rollout.mix("risk_band").to_numpy(), [0.2, 0.3, 0.5], atol=0.01)
    # the holdout is randomized at its designed share (binomial: 4 standard errors)
    share = 1 - d["treatment"].mean()
    assert abs(share - 0.10) < 4 * np.sqrt(0.1 * 0.9 / len(d))
    # segment and region keep the experiment's relative mix within risk bands (not raked)
    assert set(d["region"]) == {"Americas", "EMEA", "APAC"}


def test_treated_customers_renew_at_the_faded_rate(rollout):
    """Observed renewal lift (treated - holdout) estimates 0.7 x the experiment's lift."""
    d, truth = rollout.data, rollout.truth
    lift = d.loc[d.treatment == 1, "renewed"].mean() - d.loc[d.treatment == 0, "renewed"].mean()
    n1, n0 = (d.treatment == 1).sum(), (d.treatment == 0).sum()
    se = np.sqrt(0.25 / n1 + 0.25 / n0)
    assert abs(lift - truth["renewed"].mean()) < 4 * se
    assert truth["renewed"].mean() == pytest.approx(
        0.7 * rollout.experiment_truth["renewed"].mean()
    )


def test_a_targeted_launch_has_no_customer_outside_the_policy():
    r = simulate_retention_rollout(
        0.9, 2_000, mix={"risk_band": {"Low risk": 0.0, "Medium risk": 0.7, "High risk": 0.3}}
    )
    assert "Low risk" not in set(r.data["risk_band"])


def test_same_seed_same_data_other_seed_other_data():
    a = simulate_retention_rollout(0.8, 1_000, seed=3)
    b = simulate_retention_rollout(0.8, 1_000, seed=3)
    c = simulate_retention_rollout(0.8, 1_000, seed=4)
    assert a.data.equals(b.data) and not a.data.equals(c.data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transport": 1.2}, "transport=1.2"),
        ({"transport": 0.0}, "transport=0.0"),
        ({"holdout_share": 1.0}, "holdout_share"),
        ({"n": 10}, "at least 100"),
        ({"mix": {"risk_band": {"Low risk": 1.0}}}, "missing levels"),
        ({"mix": {"tier": {"a": 1.0}}}, "tier"),
        ({"mix": {"risk_band": {"Low risk": 0.5, "Medium risk": 0.2, "High risk": 0.2}}}, "sum"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(SpecError, match=match):
        simulate_retention_rollout(**{"transport": 0.7, "n": 1000, **kwargs})


def test_seed_process_is_unchanged_by_the_companion():
    """simulate_retention itself is untouched: the seed's data, draw for draw."""
    d = simulate_retention().data
    assert len(d) == 42_000 and d["treatment"].sum() == 21_025
