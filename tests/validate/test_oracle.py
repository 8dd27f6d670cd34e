"""Oracle pooling (bayesdecide.validate.oracle): its closed form, its Monte Carlo behaviour and its
place in the calibration records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from bayesdecide.validate import add_checks, replicate_records
from bayesdecide.validate.oracle import expected_bias_and_coverage, oracle_posterior

from .test_harness import _grid_tau, _hand_table


def test_the_posterior_is_the_normal_normal_one_with_the_truths_mean_and_spread():
    truth = np.array([1.0, 2.0, 6.0])
    estimate = np.array([0.5, 2.5, 4.0])
    se = np.array([1.0, 2.0, 0.5])
    mean, sd = oracle_posterior(truth, estimate, se)
    mu, tau2 = 3.0, 7.0  # mean and variance (ddof=1) of the truths
    precision = 1 / se**2 + 1 / tau2
    np.testing.assert_allclose(sd, precision**-0.5)
    np.testing.assert_allclose(mean, (estimate / se**2 + mu / tau2) / precision)


def test_levels_without_an_estimate_or_without_a_spread_have_no_oracle():
    mean, sd = oracle_posterior(np.array([1.0, 3.0]), np.array([np.nan, 2.0]), np.array([1, 1]))
    assert np.isnan(mean[0]) and np.isnan(sd[0]) and np.isfinite(mean[1])
    for truth in (np.array([2.0]), np.array([2.0, 2.0]), np.array([1.0, np.nan])):
        mean, sd = oracle_posterior(truth, np.ones(truth.size), np.ones(truth.size))
        assert np.isnan(mean).all() and np.isnan(sd).all()


@pytest.mark.parametrize(
    "deviation, se, spread", [(-2.0, 1.0, 1.0), (-7.96, 5.07, 4.0), (0.0, 1.0, 2.0), (3.0, 0.5, 1)]
)
def test_the_closed_form_bias_and_coverage_agree_with_simulation(deviation, se, spread):
    rng = np.random.default_rng(7)
    n = 200_000
    bias_sd, coverage = expected_bias_and_coverage(deviation, se, spread)
    shrink = se**2 / (se**2 + spread**2)
    post_sd = se * np.sqrt(1 - shrink)
    estimate = deviation + se * rng.standard_normal(n)  # truths' mean 0, spread fixed
    mean = (1 - shrink) * estimate
    z = (mean - deviation) / post_sd
    assert abs(z.mean() - bias_sd) < 5 * z.std() / np.sqrt(n)
    covered = np.abs(z) <= norm.ppf(0.975)
    assert abs(covered.mean() - coverage) < 5 * np.sqrt(coverage * (1 - coverage) / n)


def test_the_price_of_pooling_a_far_weakly_measured_level():
    """Two spreads out with a standard error equal to the spread: 1.41 sd, covering 78%; at the
    levels' mean the same pooling over-covers (its error's sd is sqrt(1 - B) of its posterior sd)."""
    bias_sd, coverage = expected_bias_and_coverage(-2.0, 1.0, 1.0)
    assert bias_sd == pytest.approx(np.sqrt(2))
    assert coverage == pytest.approx(0.780, abs=0.001)
    at_mean = 2 * norm.cdf(norm.ppf(0.975) * np.sqrt(2)) - 1
    assert expected_bias_and_coverage(0.0, 1.0, 1.0) == pytest.approx((0.0, at_mean))


def test_the_records_carry_the_oracle_for_factor_levels_only():
    table = _hand_table()
    cells = [str(c) for c in table["cell"].values]
    tau = _grid_tau(np.array([1.0, 2.8, 3.1, 2.0]), cells)

    truth = pd.DataFrame(
        {"y": [1.1, 2.9, 3.2, 2.5]},
        index=pd.MultiIndex.from_arrays(
            [["a1", "a1", "a2", "a2"], ["b1", "b2", "b1", "b2"]], names=["a", "b"]
        ),
    )
    rec = add_checks(replicate_records(tau, table, truth, ["y"], ["a", "b"]))
    levels = rec[rec["kind"] == "level"]
    others = rec[rec["kind"] != "level"]
    assert others[["oracle_mean", "oracle_sd", "oracle_z", "oracle_cover95"]].isna().all().all()
    for _, rows in levels.groupby("factor"):
        mean, sd = oracle_posterior(
            rows["truth"].to_numpy(), rows["raw_estimate"].to_numpy(), rows["raw_se"].to_numpy()
        )
        np.testing.assert_allclose(rows["oracle_mean"], mean)
        np.testing.assert_allclose(rows["oracle_sd"], sd)
        z = (mean - rows["truth"].to_numpy()) / sd
        np.testing.assert_allclose(rows["oracle_z"], z)
        np.testing.assert_array_equal(rows["oracle_cover95"], np.abs(z) <= norm.ppf(0.975))
