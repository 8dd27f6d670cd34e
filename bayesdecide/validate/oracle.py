"""Oracle pooling: what normal partial pooling does to a level when its prior is the truth's.

A calibration target stated per factor level at one fixed truth ("each level's 95% interval covers
in >= 90% of replicates; its mean bias within +/- 0.5 posterior sd") is a frequentist property of a
Bayesian estimator, and partial pooling gives it up by design for a level far from the others
whose data are weak. The oracle says how much, so that a miss of the fitted model can be told
apart from the price of pooling itself.

For the levels ``j`` of one factor in one replicate, with true effects ``theta_j``, unpooled
estimates ``y_j`` and their standard errors ``s_j`` (all in the outcome's unit per assigned unit),
the oracle is the normal-normal posterior whose prior has the true levels' own mean and spread::

    mu* = mean_j theta_j,   tau*^2 = var_j theta_j (ddof = 1),
    B_j = s_j^2 / (s_j^2 + tau*^2),
    oracle mean = (1 - B_j) y_j + B_j mu*,   oracle sd = s_j sqrt(1 - B_j).

No fitted model knows ``mu*`` and ``tau*``; the oracle is the best-informed member of the family
of exchangeable normal priors, not a bound on every estimator. Its bias at a fixed truth is
``E[oracle mean] - theta_j = -B_j (theta_j - mu*)``, that is ``-B_j d_j / (s_j sqrt(1 - B_j))``
oracle sds for a level ``d_j`` from the mean: a level two spreads out whose standard error equals
the spread (``B = 1/2``) is biased by 1.41 sd and its 95% interval covers 78% of the time
(:func:`expected_bias_and_coverage`). With ``ddof = 1`` the spread is the larger of the usual
two estimates, so the oracle shrinks less than the maximum-likelihood spread would.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


def oracle_posterior(
    truth: np.ndarray, estimate: np.ndarray, se: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Oracle posterior mean and sd of each level of one factor (outcome units).

    Parameters
    ----------
    truth, estimate, se:
        The levels' true effects, unpooled estimates and standard errors (one entry per level;
        NaN estimate or se where a level has no observed cell).

    Returns
    -------
    (mean, sd)
        NaN for levels without an estimate, and for every level when the factor has fewer than
        two levels, a non-finite truth or levels whose true effects are all equal (no spread to
        pool with).
    """
    truth = np.asarray(truth, dtype=float)
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    nan = np.full(truth.shape, np.nan)
    if truth.size < 2 or not np.all(np.isfinite(truth)) or np.ptp(truth) == 0:
        return nan, nan.copy()
    mu = truth.mean()
    tau2 = truth.var(ddof=1)
    with np.errstate(invalid="ignore"):
        s2 = se**2
        shrink = s2 / (s2 + tau2)
        mean = (1.0 - shrink) * estimate + shrink * mu
        sd = np.sqrt(s2 * (1.0 - shrink))
    missing = ~(np.isfinite(estimate) & np.isfinite(se) & (se > 0))
    mean[missing] = np.nan
    sd[missing] = np.nan
    return mean, sd


def expected_bias_and_coverage(
    deviation: float, se: float, spread: float, level: float = 0.95
) -> tuple[float, float]:
    """The oracle's bias in its own sds and its interval's coverage, at a fixed truth.

    ``deviation``: the level's true effect minus the levels' mean; ``se``: its unpooled standard
    error; ``spread``: the levels' true sd (``tau*``); ``level``: the central interval's
    probability. The unpooled estimate is taken as normal around the truth.
    """
    shrink = se**2 / (se**2 + spread**2)
    post_sd = se * np.sqrt(1.0 - shrink)
    bias = -shrink * deviation
    err_sd = (1.0 - shrink) * se  # sd of the oracle mean around its expectation
    half = norm.ppf(0.5 + level / 2.0) * post_sd
    coverage = norm.cdf((half - bias) / err_sd) - norm.cdf((-half - bias) / err_sd)
    return float(bias / post_sd), float(coverage)


__all__ = ["expected_bias_and_coverage", "oracle_posterior"]
