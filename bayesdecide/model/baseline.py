"""Control-arm baselines per cell: an exact Gaussian posterior, drawn independently.

On each modelled outcome's standardised control scale (:mod:`bayesdecide.model.inputs`)::

    a[k]         ~ Normal(0, 2)               pooled mean of the cells' baselines
    alpha[c, k]  ~ Normal(a[k], 2)            the cell's control-arm mean
    m[c, k]      ~ Normal(alpha[c, k], se[c, k])   observed control mean and its standard error

Every term is Gaussian with known variances and no parameter is shared with the effect model, so
the joint posterior is Gaussian in closed form: ``a | m`` has precision ``1/4 + sum_c 1/(4 + se^2)``
and mean ``sum_c m / (4 + se^2)`` over that precision, and ``alpha[c] | a, m`` has precision
``1/4 + 1/se^2`` (cells without a control mean: ``Normal(a, 2)``). Drawing ``a`` and then ``alpha``
gives exact, independent posterior draws; there is nothing for MCMC to add.
"""

from __future__ import annotations

import numpy as np

from bayesdecide.model.inputs import ModelInputs, assemble_outcomes

PRIOR_SD = 2.0  # of the pooled mean and of a cell's deviation from it, standardised units


def baseline_draws(inputs: ModelInputs, chains: int, draws: int, seed: int) -> np.ndarray:
    """Posterior draws of the control-arm means (chain, draw, cell, outcome), original units.

    Derived outcomes are the same linear combination of the modelled ones as their effects.
    """
    rng = np.random.default_rng([seed, 0xBA5E])
    prior_var = PRIOR_SD**2
    obs = inputs.ctrl_obs  # (C, K)
    se2 = np.where(obs, inputs.ctrl_se_std**2, np.inf)
    y = np.where(obs, inputs.ctrl_std, 0.0)
    marginal_prec = np.where(obs, 1.0 / (prior_var + se2), 0.0)
    a_prec = 1.0 / prior_var + marginal_prec.sum(axis=0)  # (K,)
    a_mean = (marginal_prec * y).sum(axis=0) / a_prec
    shape = (chains, draws)
    a = a_mean + rng.standard_normal((*shape, len(a_mean))) / np.sqrt(a_prec)
    c_prec = 1.0 / prior_var + np.where(obs, 1.0 / se2, 0.0)  # (C, K)
    # in place, two (chain, draw, C, K) arrays at a time (a GB each at thousands of cells);
    # the same operations in the same order as c_mean + noise / sqrt(c_prec), then scaled
    alpha = a[..., None, :] / prior_var + np.where(obs, y / se2, 0.0)
    alpha /= c_prec
    noise = rng.standard_normal((*shape, *obs.shape))
    noise /= np.sqrt(c_prec)
    alpha += noise
    del noise
    alpha *= inputs.ctrl_scale
    alpha += inputs.ctrl_center
    return assemble_outcomes(alpha, inputs)


__all__ = ["PRIOR_SD", "baseline_draws"]
