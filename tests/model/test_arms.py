"""Multi-arm EffectTables in the model (bayesdecide.model.arms): every (arm, outcome) pair is a
modelled outcome with its own hierarchy, the cells' joint covariance over pairs couples them, and
the Fit shows (treatment_arm, outcome) dims."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.data.effects import arm_effects
from bayesdecide.model.arms import arm_interactions, flatten_arms, join_arms, pair, split_arms
from bayesdecide.model.fitting import inputs_from_options, model_of
from bayesdecide.model.priors import Prior

from ..fakes import OFFERS_CARD

OUTCOMES = ("renewed", "gross_margin")


@pytest.fixture(scope="module")
def offers_table():
    """The three-arm retention experiment (control, outreach, email): 27 cells."""
    card = bd.load_card(OFFERS_CARD)
    sim = bd.simulate_retention(**card.data.args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.cell_effects(card.cells(sim.data))


@pytest.fixture(scope="module")
def offers_fit(offers_table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit(
            offers_table,
            factors=["segment", "risk_band"],
            outcomes=list(OUTCOMES),
            priors={
                "sigma_segment": {"renewed": Prior("HalfNormal", sigma=0.05)},
                "sigma_risk_band": {"email:gross_margin": Prior("HalfNormal", sigma=7.0)},
            },
            draws=200,
            tune=200,
            chains=2,
            seed=3,
            progressbar=False,
        )


def test_flatten_then_split_gives_the_table_back(offers_table):
    flat = flatten_arms(offers_table)
    arms = [str(a) for a in offers_table["treatment_arm"].values]
    outcomes = [str(o) for o in offers_table["outcome"].values]
    assert list(flat["outcome"].values) == [pair(a, o) for a in arms for o in outcomes]
    back = split_arms(flat[["effect", "effect_cov"]], arms, outcomes)
    for name in ("effect", "effect_cov"):
        want = offers_table[name].transpose(*back[name].dims)
        np.testing.assert_array_equal(back[name].values, want.values)
    # the arm's own units per pair, all treated units per cell
    n_t = offers_table["n_treatment"].transpose("cell", "treatment_arm").values
    np.testing.assert_array_equal(flat["n_treatment"].values, n_t.sum(axis=1))
    np.testing.assert_array_equal(flat["n_treatment_by_outcome"].values[:, :: len(outcomes)], n_t)
    joined = join_arms(back)
    np.testing.assert_array_equal(joined["effect"].values, flat["effect"].values)


def test_density_is_the_sum_over_arms_when_the_arms_do_not_covary(offers_table):
    """With the shared control's covariance between arms removed, the pairs' hierarchies are
    independent, so the multi-arm model's log density is the sum of each arm fitted alone."""
    table = offers_table.sel(outcome=list(OUTCOMES), outcome_b=list(OUTCOMES))
    cov = table["effect_cov"].transpose(
        "cell", "treatment_arm", "outcome", "treatment_arm_b", "outcome_b"
    )
    arms = [str(a) for a in table["treatment_arm"].values]
    same = np.equal.outer(np.arange(len(arms)), np.arange(len(arms)))
    table = table.assign(
        effect_cov=cov * xr.DataArray(same, dims=("treatment_arm", "treatment_arm_b"))
    )
    options = {"factors": ("segment", "risk_band"), "pooling_scale": "none", "interactions": ()}

    def model(t):
        return model_of(inputs_from_options(t, options), options)

    joint = model(table)
    rng = np.random.default_rng(0)
    x = rng.normal(-0.5, 0.7, joint.n_free)
    total, grad = joint.logp(x)
    parts, grads = 0.0, np.zeros_like(x)
    for arm in arms:
        alone = model(arm_effects(table, arm))
        # the same spread in the joint model: "sigma_segment[renewed]" -> "[<arm>:renewed]"
        index = [
            joint.param_names.index(name.replace("[", f"[{arm}:", 1)) for name in alone.param_names
        ]
        value, g = alone.logp(x[index])
        parts += value
        grads[index] += g
    assert total == pytest.approx(parts, rel=1e-10)
    np.testing.assert_allclose(grad, grads, rtol=1e-8, atol=1e-10)


def test_multi_arm_fit_has_arm_and_outcome_dims(offers_fit, offers_table, tmp_path):
    fit = offers_fit
    arms = [str(a) for a in offers_table["treatment_arm"].values]
    assert fit.tau.dims == ("chain", "draw", "cell", "treatment_arm", "outcome")
    assert list(fit.tau["treatment_arm"].values) == arms
    assert list(fit.tau["outcome"].values) == list(OUTCOMES)
    assert fit.idata.posterior["alpha"].dims == ("chain", "draw", "cell", "outcome")
    assert fit.idata.observed_data["effect"].dims == ("obs_cell", "treatment_arm", "outcome")
    assert fit.idata.posterior_predictive["effect"].dims == (
        "chain",
        "draw",
        "obs_cell",
        "treatment_arm",
        "outcome",
    )
    assert fit.summary().index.names == ["cell", "treatment_arm", "outcome"]
    assert fit.average().dims == ("chain", "draw", "treatment_arm", "outcome")
    assert "2 treatment arms" in repr(fit) and "email: renewed" in fit._repr_html_()
    new = fit.predict_new({"region": "LATAM"}) if "region" in fit.inputs.factors else None
    assert new is None  # region is not a factor of this fit
    new = fit.predict_new({"segment": "Startup"})
    assert new.dims == ("chain", "draw", "cell", "treatment_arm", "outcome")
    assert new.sizes["cell"] == 3  # one per risk band
    # the outcome prior applies in every arm, the pair's to that arm only
    priors = fit.priors["parameters"]
    assert priors[("sigma_segment", "outreach:renewed")] == "sigma=0.05"
    assert priors[("sigma_segment", "email:renewed")] == "sigma=0.05"
    assert priors[("sigma_risk_band", "email:gross_margin")] == "sigma=7"
    assert priors[("sigma_risk_band", "outreach:gross_margin")] != "sigma=7"
    path = fit.save(tmp_path / "arms.nc")
    again = bd.Fit.load(path)
    np.testing.assert_array_equal(again.tau.values, fit.tau.values)
    assert again.tau.dims == fit.tau.dims


def test_an_interaction_naming_the_arm_is_each_arms_own_term():
    assert arm_interactions([("treatment_arm", "risk_band")]) == []
    assert arm_interactions(
        [("segment", "risk_band"), ("treatment_arm", "segment", "risk_band")]
    ) == [("segment", "risk_band")]
    assert arm_interactions([("region", "treatment_arm", "segment")]) == [("region", "segment")]
