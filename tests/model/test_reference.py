"""The reference model (PyMC, every effect a random variable) has the hierarchy's distribution."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from bayesdecide.model.engine import MarginalModel
from bayesdecide.model.inputs import build_inputs
from bayesdecide.model.priors import Prior, resolve_priors
from bayesdecide.model.reference import add_hierarchy, reference_coords

N_DRAWS = 6_000  # a missing level mean (a third of a 3-level spread) is ~30 MC sds off


def _prior_covariance(m: MarginalModel, k: int) -> np.ndarray:
    """Prior covariance of ``theta[:, k]`` across cells (standardised units), by definition:
    ``var(mu)`` plus each term's spread variance where two cells share a level plus the cell
    deviation's variance on the diagonal. A free HalfNormal(s) spread contributes E[sigma^2] = s^2.
    """
    inp, kp = m.inputs, m.kp
    codes = inp.hierarchy.codes
    cov = np.zeros((len(inp.hierarchy.cells),) * 2)
    for t in range(len(inp.hierarchy.terms)):
        p = kp.pidx[t, k]
        var = kp.fixed_var[t, k] if p < 0 else kp.pa[p] ** 2
        cov += var * (codes[:, t][:, None] == codes[:, t][None, :])
    p = kp.pidx_cell[k]
    cov += np.eye(len(cov)) * (kp.fixed_var_cell[k] if p < 0 else kp.pa[p] ** 2)
    return cov


@pytest.mark.parametrize(
    "priors",
    [
        None,  # both factors have fewer than five levels: fixed spreads, not pooled
        {"sigma_fb": Prior("HalfNormal", sigma=0.8)},  # one pooled, one not
        {"sigma_fa": Prior("HalfNormal", sigma=0.6), "sigma_fb": Prior("HalfNormal", sigma=0.8)},
    ],
)
def test_prior_of_the_cell_effects_is_the_hierarchy(small_table, priors):
    """Forward draws of ``theta`` have the hierarchy's prior mean and covariance, whichever way
    the unpooled factors' levels are parameterised (level mean sampled with ``mu``)."""
    inp = build_inputs(small_table)
    m = MarginalModel(inp, resolve_priors(inp.hierarchy, inp.independent, inp.unit, priors))
    with pm.Model(coords=reference_coords(m)):
        theta = add_hierarchy(m)
    draws = pm.draw(theta, draws=N_DRAWS, random_seed=11)  # (draws, cells, K)
    for k in range(len(inp.independent)):
        x = draws[:, :, k]
        want = _prior_covariance(m, k)
        sd = np.sqrt(np.diag(want))
        np.testing.assert_allclose(
            x.mean(axis=0), m.kp.mu_shift[k], atol=5 * sd.max() / np.sqrt(N_DRAWS)
        )
        got = np.cov(x, rowvar=False)
        # Monte Carlo sd of a sample covariance: sqrt((C_ii C_jj + C_ij^2) / n)
        mc = np.sqrt((np.outer(sd**2, sd**2) + want**2) / N_DRAWS)
        assert np.all(np.abs(got - want) <= 4.5 * mc), np.abs(got - want).max() / mc.max()
