"""Simulation-based calibration (Talts et al. 2018) of the fixed-prior mode.

Parameters are drawn from the prior, data from the model given them, and the model is fitted with
the same priors (``prior_scale="fixed"``: nothing is scaled to the simulated data). If the
posterior is computed correctly, the rank of the true value among the posterior draws is uniform.
Checked for the hypermean ``mu`` and one cell's effect: chi-square test of the ranks in 10 bins.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import bayesdecide as bd

pytestmark = pytest.mark.slow

N_SIMS = 200
THIN = 20  # 4 chains x 250 draws -> 50 thinned draws (near-independent) per simulation
PRIORS = {
    "mu": bd.Prior("Normal", mu=0.0, sigma=1.0),
    "sigma_fa": bd.Prior("HalfNormal", sigma=1.0),
    "sigma_fb": bd.Prior("HalfNormal", sigma=0.5),
    "sigma_cell": bd.Prior("HalfNormal", sigma=0.3),
}


def _design() -> tuple[list[str], list[str], list[str], np.ndarray, np.ndarray]:
    fa, fb = [f"a{i}" for i in range(4)], [f"b{j}" for j in range(3)]
    cells, la, lb = [], [], []
    for i, a in enumerate(fa):
        for j, b in enumerate(fb):
            cells.append(f"{a} | {b}")
            la.append(i)
            lb.append(j)
    se = np.linspace(0.3, 0.8, len(cells))
    return cells, fa, fb, np.array([la, lb]).T, se


def _simulate(rng: np.random.Generator):
    cells, fa, fb, codes, se = _design()
    mu = rng.normal(0.0, 1.0)
    u_a = abs(rng.normal(0.0, 1.0)) * rng.standard_normal(len(fa))
    u_b = abs(rng.normal(0.0, 0.5)) * rng.standard_normal(len(fb))
    e = abs(rng.normal(0.0, 0.3)) * rng.standard_normal(len(cells))
    theta = mu + u_a[codes[:, 0]] + u_b[codes[:, 1]] + e
    y = theta + se * rng.standard_normal(len(cells))
    table = xr.Dataset(
        {
            "effect": (("cell", "outcome"), y[:, None]),
            "effect_cov": (("cell", "outcome", "outcome_b"), (se**2)[:, None, None]),
        },
        coords={
            "cell": cells,
            "outcome": ["y"],
            "outcome_b": ["y"],
            "fa": ("cell", [fa[i] for i in codes[:, 0]]),
            "fb": ("cell", [fb[j] for j in codes[:, 1]]),
        },
        attrs={"factors": ["fa", "fb"]},
    )
    return table, mu, theta[0]


def test_ranks_are_uniform_in_fixed_prior_mode():
    rng = np.random.default_rng(20260309)
    ranks = {"mu": [], "cell": []}
    for sim in range(N_SIMS):
        table, mu, theta0 = _simulate(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bd.fit(
                table, priors=PRIORS, prior_scale="fixed", draws=250, tune=300, chains=4,
                seed=sim, progressbar=False,
            )  # fmt: skip
        draws_mu = f.idata.posterior["mu"].values[:, ::THIN, 0].ravel()
        draws_cell = f.tau.values[:, ::THIN, 0, 0].ravel()
        ranks["mu"].append(int(np.sum(draws_mu < mu)))
        ranks["cell"].append(int(np.sum(draws_cell < theta0)))
    n_draws = 4 * len(range(0, 250, THIN))
    for name, r in ranks.items():
        counts, _ = np.histogram(r, bins=10, range=(0, n_draws + 1))
        p = stats.chisquare(counts).pvalue
        assert p > 0.01, (name, counts, p)
