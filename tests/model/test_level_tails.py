"""Student-t level effects (``level_nu``): an outlying level escapes the pooling its factor's
spread imposes under normal level effects; the fit is reproducible and reloads exactly."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd
from bayesdecide.errors import SpecError

QUICK = dict(draws=300, tune=300, chains=2, progressbar=False, seed=5)
OUTLIER = "R9"


def _frame() -> pd.DataFrame:
    """10 regions x 3 products of published estimates (se 0.6); region R9's true effect is 8
    below the others', whose region effects have sd 0.5."""
    rng = np.random.default_rng(12)
    region = {f"R{i}": rng.normal(0.0, 0.5) for i in range(10)}
    region[OUTLIER] = -8.0
    product = {"P0": -0.3, "P1": 0.0, "P2": 0.4}
    rows = []
    for r, ur in region.items():
        for p, up in product.items():
            truth = 2.0 + ur + up
            rows.append({"region": r, "product": p, "truth": truth, "se": 0.6})
    frame = pd.DataFrame(rows)
    frame["est"] = frame["truth"] + rng.normal(0.0, 0.6, len(frame))
    return frame


def _fit(frame: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit_summary(
            frame, estimate="est", std_error="se", groups=["region", "product"], **QUICK, **kw
        )


@pytest.fixture(scope="module")
def fits():
    frame = _frame()
    normal = _fit(frame)
    tails = _fit(frame, priors={"level_nu": bd.Prior("Fixed", value=3)})
    return frame, normal, tails


def test_an_outlying_level_is_pooled_less(fits):
    frame, normal, tails = fits
    truth = frame.groupby("region")["truth"].mean()
    error, spread = {}, {}
    for name, f in (("normal", normal), ("tails", tails)):
        tau = f.tau.isel(outcome=0).mean(("chain", "draw")).values
        region = f.idata.posterior["region"].values
        error[name] = pd.Series(tau, index=region).groupby(level=0).mean() - truth
        spread[name] = float(f.idata.posterior["sigma_region"].median())
    # normal levels: the outlier inflates the region spread (2.7 here, truth 0.5), so the other
    # regions are hardly pooled; Student-t levels: the outlier's own weight absorbs it
    assert spread["tails"] < 0.5 * spread["normal"]
    rmse = {k: float(np.sqrt((e.drop(OUTLIER) ** 2).mean())) for k, e in error.items()}
    assert rmse["tails"] < 0.9 * rmse["normal"]  # 0.22 against 0.27
    assert abs(error["tails"][OUTLIER]) <= abs(error["normal"][OUTLIER])
    weight = tails.idata.posterior["level_scale_region"].median(("chain", "draw")).to_series()
    assert weight.idxmax() == OUTLIER
    assert weight[OUTLIER] > 5 * weight.drop(OUTLIER).max()
    assert "level_scale_region" not in normal.idata.posterior


def test_student_t_levels_are_reproducible_and_reload_exactly(fits, tmp_path):
    frame, _, tails = fits
    again = _fit(frame, priors={"level_nu": bd.Prior("Fixed", value=3)})
    np.testing.assert_array_equal(again.tau.values, tails.tau.values)
    path = tmp_path / "fit.nc"
    tails.save(path)
    loaded = bd.Fit.load(path)
    np.testing.assert_array_equal(loaded.tau.values, tails.tau.values)
    np.testing.assert_array_equal(
        loaded.idata.posterior["level_scale_product"].values,
        tails.idata.posterior["level_scale_product"].values,
    )
    # a new region's effect is Student-t: heavier tails than a normal with its sd
    new = loaded.predict_new({"region": "R_new", "product": "P0"}, seed=1)
    draws = new.isel(cell=0, outcome=0).values.ravel()
    assert np.isfinite(draws).all()
    z = (draws - draws.mean()) / draws.std()
    assert np.mean(z**4) > 3.5  # excess kurtosis of the t mixture (a normal gives 3)


def test_level_nu_takes_a_fixed_number_of_degrees_of_freedom():
    with pytest.raises(SpecError, match="level_nu"):
        _fit(_frame(), priors={"level_nu": bd.Prior("HalfNormal", sigma=3)})


def test_the_reference_model_has_the_same_level_weights(fits):
    """``sampler="pymc"`` samples the reference model, whose level weights carry the marginal
    engine's parameter names, so its draws map one to one."""
    from bayesdecide.model.reference import build_reference_model

    _, _, tails = fits
    ref = build_reference_model(tails.model)
    free = {rv.name for rv in ref.free_RVs}
    assert set(tails.model.param_names) <= free
    weights = [n for n in tails.model.param_names if n.startswith("level_scale[")]
    assert len(weights) == 10 + 3  # every region and product
    assert ref[weights[0]].owner.op.name == "invgamma"
