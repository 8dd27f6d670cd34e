"""Unit-level path: exact likelihoods per row agree with the cell-statistics model."""

import warnings

import numpy as np
import pymc as pm
import pytest
from scipy import stats

import bayesdecide as bd
from bayesdecide._compat import mcse_mean
from bayesdecide.errors import SpecError
from bayesdecide.model.fitting import fit
from bayesdecide.model.unit_level import build_unit_model, fit_unit_level


def _agreement(data, spec, outcome, factors, draws, chains, family=None):
    """Per cell: |difference of posterior means|, the allowed difference, the posterior sd.

    Allowed: Monte Carlo error (the standard error of the difference of the two means, times the
    normal quantile that bounds all cells at once with probability 0.99) plus 10% of the cell
    path's posterior sd.
    """
    sub_spec = bd.ExperimentSpec(
        treatment=spec.treatment, outcomes=spec.outcomes, groups=tuple(factors)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = bd.cell_stats(data, sub_spec, single_arm_cells="keep")
        table = bd.cell_effects(cells, adjust=False)
        kw = dict(draws=draws, tune=draws, chains=chains, seed=3)
        cell_fit = fit(table, outcomes=[outcome], progressbar=False, **kw)
        unit_tau, _ = fit_unit_level(data, sub_spec, outcome, family=family, **kw)
    a = cell_fit.tau.sel(outcome=outcome)
    b = unit_tau.sel(cell=a["cell"].values)
    diff = np.abs(a.mean(("chain", "draw")).values - b.mean(("chain", "draw")).values)
    mc = np.sqrt(mcse_mean(a) ** 2 + mcse_mean(b) ** 2)
    z = stats.norm.ppf(1 - 0.01 / (2 * diff.size))
    sd = a.std(("chain", "draw")).values
    return diff, z * mc + 0.1 * sd, sd


def test_unit_level_agrees_on_subset(retention):
    # SMB rows only (cells of tens to hundreds of units per arm), short chains
    data = retention.data[retention.data["segment"] == "SMB"].iloc[:6000]
    diff, tol, sd = _agreement(
        data, retention.spec, "gross_margin", ["region", "risk_band"], draws=300, chains=2
    )
    assert np.all(diff <= tol), (diff / sd).round(2)


def test_unit_model_families(retention):
    data = retention.data.iloc[:500]
    for outcome, family in [
        ("support_tickets", "negbinomial"),
        ("net_margin", "studentt"),
        ("support_tickets", "poisson"),
        ("annoyance", "bernoulli"),
    ]:
        model, cells = build_unit_model(data, retention.spec, outcome, family=family)
        assert "tau" in model.named_vars and len(cells) == model.dim_lengths["cell"].eval()
    with pytest.raises(SpecError, match="family"):
        build_unit_model(data, retention.spec, "renewed", family="gamma")


@pytest.mark.parametrize(
    ("outcome", "family", "inverse_link"),
    [
        ("renewed", "bernoulli", lambda v: 1 / (1 + np.exp(-v))),
        ("support_tickets", "poisson", np.exp),
        ("gross_margin", "normal", lambda v: v),
    ],
)
def test_link_scale_coefficient_converts_to_the_additive_effect(
    retention, outcome, family, inverse_link
):
    """tau = g^-1(a + b) - g^-1(a), draw by draw: the hierarchy's effect is the additive one."""
    model, _ = build_unit_model(retention.data.iloc[:2000], retention.spec, outcome, family=family)
    draws = pm.draw([model["a"], model["b"], model["tau"]], draws=50, random_seed=4)
    a, b, tau = (np.asarray(d) for d in draws)
    # draws whose treated mean left the support have no link-scale value (prior draws: the
    # factors of three levels have a wide normal prior, so many do)
    ok = np.isfinite(b)
    assert ok.sum() > 200
    np.testing.assert_allclose(
        inverse_link(a + b)[ok] - inverse_link(a)[ok], tau[ok], rtol=1e-6, atol=1e-9
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outcome", "family"),
    [("renewed", "bernoulli"), ("gross_margin", "normal"), ("support_tickets", "negbinomial")],
)
def test_unit_level_agrees_on_seed_data(retention, outcome, family):
    """All 27 cells of the seed data, exact likelihoods against the cell-statistics path."""
    diff, tol, sd = _agreement(
        retention.data,
        retention.spec,
        outcome,
        list(retention.spec.groups),
        draws=1000,
        chains=2,
        family=family,
    )
    assert np.all(diff <= tol), (outcome, (diff / sd).round(2))
