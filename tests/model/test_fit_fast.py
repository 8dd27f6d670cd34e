"""Fast tests of the hierarchical model and Fit (tiny fits; mock_sample for shapes)."""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from bayesdecide.errors import SpecError
from bayesdecide.model import Prior, build_inputs, build_model, resolve_priors
from bayesdecide.model.fitting import Fit, fit, fit_summary, prior_predictive

TRUE_NET = 3.825  # all-customer true net margin effect of the seed experiment


def test_prior_objects_validate():
    assert Prior("HalfNormal", sigma=2).kwargs == {"sigma": 2.0}
    with pytest.raises(SpecError, match="not supported"):
        Prior("Beta", alpha=1)
    with pytest.raises(SpecError, match="unknown parameter"):
        Prior("HalfNormal", mu=1)
    with pytest.raises(SpecError, match="must be positive"):
        resolve_priors(["region"], [], {"sigma_region": Prior("Normal", sigma=1)})
    with pytest.raises(SpecError, match="location"):
        resolve_priors(["region"], [], {"mu": Prior("HalfCauchy", beta=1)})
    with pytest.raises(SpecError, match="unknown prior"):
        resolve_priors(["region"], [], {"sigma_product": Prior("HalfNormal", sigma=1)})
    pri = resolve_priors(["region"], [], {"sigma_region": {"family": "Exponential", "lam": 2}})
    assert pri["sigma_region"] == Prior("Exponential", lam=2)
    assert Prior.from_dict(pri["sigma_region"].to_dict()) == pri["sigma_region"]


def test_whitened_likelihood_is_mvnormal(small_table):
    inp = build_inputs(small_table)
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(len(inp.cells), len(inp.independent)))
    y = small_table["effect"].values / inp.scale
    cov = small_table["effect_cov"].values / (inp.scale[:, :, None] * inp.scale[:, None, :])
    for row, c in enumerate(inp.obs_cells):
        r = inp.z[row] - inp.whiten[row] @ theta[c]
        d = y[c] - theta[c]
        np.testing.assert_allclose(r @ r, d @ np.linalg.solve(cov[c], d), rtol=1e-6)


def test_net_margin_is_derived_on_seed(retention_table):
    inp = build_inputs(retention_table)
    assert inp.derived == ["net_margin"]
    np.testing.assert_allclose(inp.derive_weights[0], [0, 1, -1, -1, -18, -35], atol=1e-6)
    assert not inp.obs_cells.size == len(inp.cells)  # the one-arm cell has no likelihood


def test_mock_sample_dims(small_table):
    inp = build_inputs(small_table, interactions=[("fa", "fb")])
    model = build_model(inp)
    with model:
        idata = pm.sample_prior_predictive(draws=20, random_seed=1)
    tau = idata.prior["tau"]
    assert tau.dims == ("chain", "draw", "cell", "outcome")
    assert list(idata.prior["u_fa"].dims[2:]) == ["fa_level", "outcome"]
    assert list(idata.prior["fa_level"].values) == ["a1", "a2", "a3"]
    assert "u_fa_x_fb" in idata.prior


def test_interaction_sums_to_zero_along_each_margin(retention_table):
    """The interaction cannot absorb main effects: zero along every member's margin."""
    inp = build_inputs(retention_table, interactions=[("segment", "risk_band")])
    name = "segment_x_risk_band"
    grid_labels = [f"{s} | {r}" for s in inp.levels["segment"] for r in inp.levels["risk_band"]]
    assert inp.levels[name] == grid_labels  # the full grid, row-major
    assert len(inp.levels[name]) == 9
    labels = [
        f"{s} | {r}"
        for s, r in zip(retention_table["segment"].values, retention_table["risk_band"].values)
    ]
    assert [inp.levels[name][i] for i in inp.codes[name]] == labels
    model = build_model(inp)
    u = pm.draw(model[f"u_{name}"], draws=5, random_seed=3)  # (draw, level, outcome)
    grid = u.reshape(5, 3, 3, -1)
    np.testing.assert_allclose(grid.sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(grid.sum(axis=2), 0, atol=1e-9)
    assert np.abs(grid).max() > 0


def test_centring_weights_follow_the_information(retention_table):
    """Precisely measured, clearly heterogeneous elements are centred; unmeasured ones are not."""
    inp = build_inputs(retention_table, interactions=[("segment", "risk_band")])
    for weights in inp.centred.values():
        assert np.all((weights >= 0) & (weights <= 1))
    k = inp.independent.index("contact_cost")  # segment alone moves contact cost: $3.5/9/28
    assert inp.centred["segment"][:, k].min() > 0.9
    one_arm = inp.cells.index("Enterprise | APAC | High risk")
    assert np.all(inp.centred["cell"][one_arm] == 0)  # no estimate: the prior alone


def test_prior_predictive_original_scale(small_table):
    tau = prior_predictive(small_table, draws=200, seed=3)
    assert tau.dims == ("chain", "draw", "cell", "outcome")
    assert list(tau["fa"].values) == list(small_table["fa"].values)
    sd = float(tau.std())
    assert 0.1 < sd < 100  # scaled to effects of about 1


def test_seed_net_margin_covers_truth(retention_fit):
    fit_ = retention_fit
    net = fit_.average().sel(outcome="net_margin")
    lo, hi = np.quantile(net.values, [0.05, 0.95])
    assert lo < TRUE_NET < hi
    assert 1.8 < float(net.mean()) < 4.0
    assert abs(float(fit_.cell_share.sum()) - 1) < 1e-12


def test_fit_structure(retention_fit, retention_table):
    f = retention_fit
    tau = f.tau
    assert tau.dims == ("chain", "draw", "cell", "outcome")
    assert tau.sel(cell="SMB | EMEA | Low risk").dims == ("chain", "draw", "outcome")
    by_region = tau.groupby("region").mean()
    assert set(by_region["region"].values) == {"APAC", "Americas", "EMEA"}
    assert list(f.idata.posterior["segment_level"].values) == ["Enterprise", "Mid-market", "SMB"]
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"):
        assert key in f.diagnostics
    assert isinstance(f.diagnostics_ok, bool)
    assert f.lineage["data_fingerprint"]
    assert f.effects is retention_table
    # net margin is exactly the value combination of its parts, draw by draw
    parts = (
        tau.sel(outcome="gross_margin")
        - tau.sel(outcome="contact_cost")
        - tau.sel(outcome="discount_cost")
        - 18 * tau.sel(outcome="support_tickets")
        - 35 * tau.sel(outcome="annoyance")
    )
    np.testing.assert_allclose(parts, tau.sel(outcome="net_margin"), rtol=1e-6, atol=1e-6)
    s = f.summary()
    assert {"estimate", "sd", "lower", "upper"} <= set(s.columns)


def test_save_load_roundtrip(retention_fit, tmp_path):
    path = retention_fit.save(tmp_path / "fit.nc")
    loaded = Fit.load(path)
    for group in retention_fit.idata.groups():
        a, b = getattr(retention_fit.idata, group), getattr(loaded.idata, group)
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values)
        for c in a.coords:
            np.testing.assert_array_equal(a[c].values.astype(str), b[c].values.astype(str))
    assert loaded.lineage == retention_fit.lineage
    assert loaded.options == retention_fit.options
    assert loaded.diagnostics == retention_fit.diagnostics
    assert loaded.spec == retention_fit.spec
    for v in retention_fit.effects.data_vars:
        np.testing.assert_array_equal(loaded.effects[v].values, retention_fit.effects[v].values)
    assert loaded.effects.attrs == retention_fit.effects.attrs
    xtau = loaded.tau.groupby("risk_band").mean()
    assert xtau.sizes["risk_band"] == 3
    p1 = retention_fit.predict_new({"region": "LATAM"}, seed=1)
    p2 = loaded.predict_new({"region": "LATAM"}, seed=1)
    np.testing.assert_array_equal(p1.values, p2.values)


def test_predict_new_level(retention_fit):
    p = retention_fit.predict_new({"region": "LATAM"}, seed=2)
    assert p.dims == ("chain", "draw", "cell", "outcome")
    assert p.sizes["cell"] == 9
    assert set(p["region"].values) == {"LATAM"}
    one = retention_fit.predict_new(
        {"region": "LATAM", "segment": "SMB", "risk_band": "Low risk"}, seed=2
    )
    assert one.sizes["cell"] == 1
    known = retention_fit.tau.sel(cell="SMB | EMEA | Low risk", outcome="renewed")
    new = one.sel(outcome="renewed").isel(cell=0)
    assert float(new.std()) > float(known.std())  # a new region is more uncertain


def test_same_seed_same_draws_and_summary_input(make_table):
    table = make_table(seed=4, n_outcomes=1)
    frame = pd.DataFrame(
        {
            "fa": table["fa"].values,
            "fb": table["fb"].values,
            "est": table["effect"].values[:, 0],
            "se": np.sqrt(table["effect_cov"].values[:, 0, 0]),
        }
    )
    kw = dict(draws=150, tune=150, chains=2, seed=11, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1 = fit_summary(frame, estimate="est", std_error="se", groups=["fa", "fb"], **kw)
        f2 = fit_summary(frame, estimate="est", std_error="se", groups=["fa", "fb"], **kw)
    np.testing.assert_array_equal(f1.tau.values, f2.tau.values)
    assert f1.tau.dims == ("chain", "draw", "cell", "outcome")
    assert list(f1.tau["outcome"].values) == ["est"]
    assert f1.lineage["data_fingerprint"] == f2.lineage["data_fingerprint"]


def test_bad_inputs(small_table):
    with pytest.raises(SpecError, match="not in the EffectTable"):
        build_inputs(small_table, outcomes=["nope"])
    with pytest.raises(SpecError, match="interaction"):
        build_inputs(small_table, interactions=[("fa", "zz")])
    with pytest.raises(SpecError, match="spec"):
        fit(pd.DataFrame({"a": [1]}))


def test_divergences_trigger_one_retry(make_table, monkeypatch):
    import bayesdecide.model.fitting as fit_module

    real = fit_module.diagnose
    calls = []

    def fake(idata, var_names=None):
        out = real(idata, var_names)
        calls.append(out)
        if len(calls) == 1:
            out = {**out, "divergences": 5, "ok": False}
        return out

    monkeypatch.setattr(fit_module, "diagnose", fake)
    table = make_table(seed=2, n_outcomes=1)
    with pytest.warns(UserWarning, match="refitting once with target_accept=0.99"):
        f = fit(table, draws=100, tune=100, chains=2, seed=1, progressbar=False)
    assert len(calls) == 2
    assert f.lineage["retries"] == [{"target_accept": 0.9, "divergences": 5}]
    assert f.lineage["settings"]["target_accept"] == 0.99
