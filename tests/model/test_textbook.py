"""Eight schools (Rubin 1981; Gelman et al., BDA3 ch. 5): the textbook model in one documented call,
against a hand-written PyMC model, and the defaults' answer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd

SCHOOLS = pd.DataFrame(
    {
        "school": list("ABCDEFGH"),
        "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
        "sigma": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
    }
)
TEXTBOOK = {"mu": bd.Prior("Normal", mu=0, sigma=5), "sigma_school": bd.Prior("HalfCauchy", beta=5)}


def _fit(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit_summary(
            SCHOOLS, estimate="y", std_error="sigma", groups=["school"], progressbar=False, **kw
        )


def test_textbook_priors_give_the_textbook_answer():
    """mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_j ~ N(mu, tau): school A's posterior mean is
    about 6.2 (Stan's eight-schools case study), mu about 4.4, tau about 3.6."""
    f = _fit(prior_scale="fixed", priors=TEXTBOOK, draws=2000, seed=1)
    assert not f.inputs.hierarchy.cell_deviation  # one school per cell: no second spread
    a = float(f.tau.sel(cell="A", outcome="y").mean())
    mu = float(f.idata.posterior["mu"].mean())
    tau = float(f.idata.posterior["sigma_school"].mean())
    assert 5.6 < a < 6.8, a
    assert 3.9 < mu < 4.9, mu
    assert 3.0 < tau < 4.2, tau
    assert f.priors.loc[("sigma_school", "y"), "parameters"] == "beta=5"


def test_default_priors_put_school_a_between_5_and_11():
    f = _fit(seed=2)
    a = float(f.tau.sel(cell="A", outcome="y").mean())
    assert 5.0 < a < 11.0, a
    assert f.diagnostics_ok


@pytest.mark.slow
def test_agrees_with_a_hand_written_pymc_model():
    """The same model written by hand in PyMC (non-centred), sampled with PyMC's NUTS: posterior
    means of mu, tau and every school within Monte Carlo error."""
    import pymc as pm

    y, sigma = SCHOOLS["y"].to_numpy(), SCHOOLS["sigma"].to_numpy()
    with pm.Model():
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        z = pm.Normal("z", 0, 1, shape=8)
        theta = pm.Deterministic("theta", mu + tau * z)
        pm.Normal("obs", theta, sigma, observed=y)
        ref = pm.sample(
            4000, tune=2000, chains=4, target_accept=0.95, random_seed=3, progressbar=False
        )
    f = _fit(prior_scale="fixed", priors=TEXTBOOK, draws=2000, seed=3)
    post = f.idata.posterior
    pairs = [
        (post["mu"].values.ravel(), ref.posterior["mu"].values.ravel()),
        (post["sigma_school"].values.ravel(), ref.posterior["tau"].values.ravel()),
    ]
    for j, school in enumerate(SCHOOLS["school"]):
        pairs.append(
            (
                f.tau.sel(cell=school, outcome="y").values.ravel(),
                ref.posterior["theta"].values[..., j].ravel(),
            )
        )
    for ours, theirs in pairs:
        # standard error of the difference of two means, each from >= ~1,000 effective draws
        se = np.sqrt(ours.var() / 1000 + theirs.var() / 1000)
        assert abs(ours.mean() - theirs.mean()) < 4 * se, (ours.mean(), theirs.mean(), se)
