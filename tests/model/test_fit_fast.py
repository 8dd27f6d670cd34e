"""Fast tests of the fit: the public API as a notebook uses it (tiny fits, fixed seeds)."""

import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesdecide as bd
from bayesdecide.errors import SpecError
from bayesdecide.model.fitting import Fit, FitError, fit, fit_summary, prior_predictive
from bayesdecide.model.inputs import build_inputs
from bayesdecide.model.priors import Prior, resolve_priors
from bayesdecide.model.terms import build_hierarchy

TRUE_NET = 3.825  # all-customer true net margin effect of the seed experiment
QUICK = dict(draws=150, tune=150, chains=2, progressbar=False)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_prior_objects_validate(small_table):
    assert Prior("HalfNormal", sigma=2).kwargs == {"sigma": 2.0}
    with pytest.raises(SpecError, match="not supported"):
        Prior("Beta", alpha=1)
    with pytest.raises(SpecError, match="unknown parameter"):
        Prior("HalfNormal", mu=1)
    with pytest.raises(SpecError, match="positive"):
        Prior("HalfNormal", sigma=-1)
    h = build_hierarchy(small_table, ["fa"])
    unit = np.ones(2)
    outcomes = ["y0", "y1"]
    with pytest.raises(SpecError, match="must be positive"):
        resolve_priors(h, outcomes, unit, {"sigma_fa": Prior("Normal", sigma=1)})
    with pytest.raises(SpecError, match="location"):
        resolve_priors(h, outcomes, unit, {"mu": Prior("HalfCauchy", beta=1)})
    with pytest.raises(SpecError, match="unknown prior"):
        resolve_priors(h, outcomes, unit, {"sigma_product": Prior("HalfNormal", sigma=1)})
    with pytest.raises(SpecError, match="names outcome"):
        resolve_priors(h, outcomes, unit, {"sigma_fa": {"nope": Prior("HalfNormal", sigma=1)}})
    pri = resolve_priors(h, outcomes, unit, {"sigma_fa": {"family": "Exponential", "lam": 2}})
    assert pri["sigma_fa"] == [Prior("Exponential", lam=2)] * 2
    one = resolve_priors(h, outcomes, unit, {"sigma_fa": {"y1": Prior("HalfCauchy", beta=3)}})
    assert one["sigma_fa"][1] == Prior("HalfCauchy", beta=3)
    default = resolve_priors(h, outcomes, unit, None)["sigma_fa"][0]
    assert one["sigma_fa"][0] == default  # the data-scaled default for y0
    with pytest.raises(SpecError, match="missing"):
        resolve_priors(h, outcomes, unit, {"mu": Prior("Normal", sigma=1)}, prior_scale="fixed")


def test_priors_convert_exactly_between_units():
    for p in [
        Prior("HalfNormal", sigma=3),
        Prior("HalfCauchy", beta=2),
        Prior("Exponential", lam=0.5),
        Prior("HalfStudentT", nu=3, sigma=2),
        Prior("Gamma", alpha=2, beta=0.25),
        Prior("Normal", mu=1, sigma=4),
    ]:
        rng = np.random.default_rng(0)
        a = p.scaled(10.0).sample(rng, 20000)
        b = 10.0 * p.sample(np.random.default_rng(0), 20000)
        np.testing.assert_allclose(np.median(a), np.median(b), rtol=0.05)
        np.testing.assert_allclose(p.scaled(10.0).median(), 10 * p.median(), rtol=1e-12)


def test_net_margin_is_derived_on_seed(retention_table):
    inp = build_inputs(retention_table)
    assert inp.derived == ["net_margin"]
    np.testing.assert_allclose(inp.derive_weights[0], [0, 1, -1, -1, -18, -35], atol=1e-6)
    assert inp.obs_cells.size < len(inp.cells)  # the one-arm cell has no likelihood


def test_fit_structure_and_arviz_groups(retention_fit, retention_table):
    f = retention_fit
    tau = f.tau
    assert tau.dims == ("chain", "draw", "cell", "outcome")
    assert tau.sel(cell="SMB | EMEA | Low risk").dims == ("chain", "draw", "outcome")
    assert set(tau.groupby("region").mean()["region"].values) == {"APAC", "Americas", "EMEA"}
    post = f.idata.posterior
    assert list(post["segment_level"].values) == ["Enterprise", "Mid-market", "SMB"]
    assert not any(str(v).startswith("z_") for v in post.data_vars)  # no sampler internals
    assert "units" in post["tau"].attrs and "units" in post["sigma_region"].attrs
    for group in ("log_likelihood", "observed_data", "constant_data", "prior", "sample_stats"):
        assert group in f.idata.groups(), group
    assert f.idata.log_likelihood["effect"].dims == ("chain", "draw", "obs_cell")
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "ok"):
        assert key in f.diagnostics
    assert f.lineage["data_fingerprint"] and f.effects is retention_table
    # net margin is exactly the value combination of its parts, draw by draw
    parts = (
        tau.sel(outcome="gross_margin")
        - tau.sel(outcome="contact_cost")
        - tau.sel(outcome="discount_cost")
        - 18 * tau.sel(outcome="support_tickets")
        - 35 * tau.sel(outcome="annoyance")
    )
    np.testing.assert_allclose(parts, tau.sel(outcome="net_margin"), rtol=1e-6, atol=1e-6)
    s = f.summary(ci_prob=0.9)
    assert list(s.columns) == ["mean", "sd", "lower", "upper"] and s.attrs["ci_prob"] == 0.9
    table = f.priors
    assert table.loc[("sigma_region", "gross_margin"), "parameters"] == "sigma=10"
    assert len(repr(f)) < 400 and "<table>" in f._repr_html_()


def test_arviz_functions_work_on_the_fit(retention_fit):
    idata = retention_fit.idata
    loo = _quiet(az.loo, idata)
    assert np.isfinite(loo.elpd_loo)
    summary = az.summary(idata, var_names=["mu", "sigma_region"], kind="stats")
    assert len(summary) == 2 * 6
    other = _quiet(fit, retention_fit.effects, factors=["segment", "risk_band"], seed=3, **QUICK)
    table = _quiet(az.compare, {"with region": idata, "without region": other.idata})
    assert set(table.index) == {"with region", "without region"}


def test_seed_net_margin_covers_truth(retention_fit):
    net = retention_fit.average().sel(outcome="net_margin")
    lo, hi = np.quantile(net.values, [0.025, 0.975])
    assert lo < TRUE_NET < hi
    assert abs(float(retention_fit.cell_share.sum()) - 1) < 1e-12


def test_save_load_roundtrip_is_exact(retention_fit, tmp_path):
    path = retention_fit.save(tmp_path / "fit.nc")
    loaded = Fit.load(path)
    for group in retention_fit.idata.groups():
        a, b = getattr(retention_fit.idata, group), getattr(loaded.idata, group)
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{group}/{v}")
        for c in a.coords:
            np.testing.assert_array_equal(a[c].values.astype(str), b[c].values.astype(str))
    assert loaded.lineage == retention_fit.lineage
    assert loaded.options == retention_fit.options
    assert loaded.diagnostics == retention_fit.diagnostics
    assert loaded.spec == retention_fit.spec
    for v in retention_fit.effects.data_vars:
        np.testing.assert_array_equal(loaded.effects[v].values, retention_fit.effects[v].values)
    assert loaded.effects.attrs == retention_fit.effects.attrs
    p1 = retention_fit.predict_new({"region": "LATAM"}, seed=1)
    p2 = loaded.predict_new({"region": "LATAM"}, seed=1)
    np.testing.assert_array_equal(p1.values, p2.values)
    # what is stored: the spreads and what cannot be rebuilt, not the cell effects
    assert path.stat().st_size < retention_fit.tau.nbytes / 2


def test_damaged_fit_files_name_the_file(tmp_path):
    for name, content in [("empty.nc", b""), ("garbage.nc", b"not a netcdf file at all")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(FitError, match=name):
            Fit.load(path)
    with pytest.raises(FitError, match="missing.nc"):
        Fit.load(tmp_path / "missing.nc")


def test_predict_new_level(retention_fit):
    p = retention_fit.predict_new({"region": "LATAM"}, seed=2)
    assert p.dims == ("chain", "draw", "cell", "outcome")
    assert p.sizes["cell"] == 9 and set(p["region"].values) == {"LATAM"}
    np.testing.assert_allclose(float(p["cell_share"].sum()), 1.0)
    one = retention_fit.predict_new(
        {"region": "LATAM", "segment": "SMB", "risk_band": "Low risk"}, seed=2
    )
    assert one.sizes["cell"] == 1
    known = retention_fit.tau.sel(cell="SMB | EMEA | Low risk", outcome="renewed")
    new = one.sel(outcome="renewed").isel(cell=0)
    assert float(new.std()) > float(known.std())  # a new region is more uncertain
    # a known cell predicts as itself
    same = retention_fit.predict_new({"region": "EMEA", "segment": "SMB", "risk_band": "Low risk"})
    np.testing.assert_array_equal(
        same.isel(cell=0).transpose("chain", "draw", "outcome").values,
        retention_fit.tau.sel(cell="SMB | EMEA | Low risk").values,
    )
    level = retention_fit.predict_level({"region": "LATAM"}, seed=2)
    assert level.dims == ("chain", "draw", "outcome")
    np.testing.assert_allclose(level.values, (p * p["cell_share"]).sum("cell").values)
    with pytest.raises(SpecError, match="unknown factor"):
        retention_fit.predict_new({"country": "X"})


def test_new_level_carries_the_population_mean_uncertainty(make_table):
    # one factor, many well-measured levels: a new level's spread is sqrt(var(mu) + sigma^2),
    # wider than sigma alone (a zero-sum model would give about sigma only)
    table = make_table(seed=5, n_outcomes=1)
    f = _quiet(fit, table, factors=["fa"], seed=2, draws=400, tune=300, chains=2, progressbar=False)
    new = f.predict_new({"fa": "a_new"}, seed=3).isel(cell=0).sel(outcome="y0")
    post = f.idata.posterior
    # fa has three levels: its spread is fixed (not pooled), a constant, not a posterior draw
    assert "sigma_fa" not in post
    sigma_fa = float(f.idata.constant_data["sigma_fa"].sel(outcome="y0"))
    r = float(f.inputs.relative_scale_for({"fa": "a_new"})[0])
    implied = r * np.sqrt(
        float(post["mu"].var()) + sigma_fa**2 + float((post["sigma_cell"] ** 2).mean())
    )
    assert abs(float(new.std()) / implied - 1) < 0.15


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
    kw = dict(groups=["fa", "fb"], seed=11, **QUICK)
    f1 = _quiet(fit_summary, frame, estimate="est", std_error="se", **kw)
    f2 = _quiet(fit_summary, frame, estimate="est", std_error="se", **kw)
    np.testing.assert_array_equal(f1.tau.values, f2.tau.values)
    assert list(f1.tau["outcome"].values) == ["est"]
    # PyMC's name for the seed gives the same draws
    f3 = _quiet(
        fit_summary, frame, estimate="est", std_error="se", groups=["fa", "fb"],
        random_seed=11, **QUICK,
    )  # fmt: skip
    np.testing.assert_array_equal(f1.tau.values, f3.tau.values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"draws": 0}, "draws=0"),
        ({"draws": -5}, "draws=-5"),
        ({"chains": 0}, "chains=0"),
        ({"tune": -1}, "tune=-1"),
        ({"target_accept": 1.5}, "target_accept=1.5"),
        ({"seed": 1, "random_seed": 2}, "differ"),
        ({"random_sed": 1}, "random_sed"),
        ({"sampler": "stan"}, "sampler='stan'"),
        ({"pooling_scale": "log"}, "pooling_scale"),
        ({"prior_scale": "flat"}, "prior_scale"),
    ],
)
def test_bad_settings_are_named_before_sampling(small_table, kwargs, message, monkeypatch):
    import bayesdecide.model.fitting as fitting

    def never(*a, **k):  # nothing may be sampled before the settings are checked
        raise AssertionError("sampled")

    monkeypatch.setattr(fitting, "sample", never)
    with pytest.raises(SpecError, match=message):
        fit(small_table, **kwargs)


def test_tuning_length_defaults_to_the_sampler_that_runs(small_table, monkeypatch):
    """``tune`` not given: 300 for nutpie on the marginal posterior, 1000 for PyMC's NUTS on the
    full model, also when nutpie is unusable and the fit falls back to it; a given one is passed
    through; the lineage records the warm-up that ran."""
    import bayesdecide.model.sampling as sampling

    class Sampled(Exception):
        pass

    seen, unusable = [], []

    def nutpie(model, *, tune, **k):
        seen.append(("nutpie", tune))
        if unusable:
            raise sampling.FastPathUnavailable("test")
        raise Sampled

    def pymc(model, *, tune, **k):
        seen.append(("pymc", tune))
        raise Sampled

    with monkeypatch.context() as m:
        m.setattr(sampling, "sample_nutpie", nutpie)
        m.setattr(sampling, "sample_pymc", pymc)
        for kwargs in ({}, {"sampler": "pymc"}, {"tune": 77}, {"tune": 77, "sampler": "pymc"}):
            with pytest.raises(Sampled):
                fit(small_table, factors=["fa"], **kwargs)
        assert seen == [("nutpie", 300), ("pymc", 1000), ("nutpie", 77), ("pymc", 77)]
        seen.clear()
        unusable.append(True)
        with pytest.warns(RuntimeWarning, match="Falling back"), pytest.raises(Sampled):
            fit(small_table, factors=["fa"])
        assert seen == [("nutpie", 300), ("pymc", 1000)]
    f = fit(small_table, factors=["fa"], draws=50, chains=2, seed=1, progressbar=False)
    assert f.lineage["settings"]["tune"] == 300


def test_a_left_out_column_that_explains_the_effects_is_named_before_sampling(
    retention_table, monkeypatch
):
    """Seed 808 with risk band as the only factor: segment (Enterprise effects an order of
    magnitude above SMB's) would be pooled away; the warning names it and the fix."""
    import bayesdecide.model.fitting as fitting

    class Sampled(Exception):
        pass

    def stop(*a, **k):
        raise Sampled

    monkeypatch.setattr(fitting, "sample", stop)
    with pytest.warns(UserWarning, match=r"'segment' explains the cell effects .*Add 'segment'"):
        with pytest.raises(Sampled):
            fit(retention_table, factors=["risk_band"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the card's hierarchy: nothing left out explains anything
        with pytest.raises(Sampled):
            fit(
                retention_table,
                factors=["segment", "region", "risk_band"],
                interactions=[("segment", "risk_band")],
            )


def test_bad_inputs(small_table):
    with pytest.raises(SpecError, match="not in the EffectTable"):
        build_inputs(small_table, outcomes=["nope"])
    with pytest.raises(SpecError, match="interaction"):
        build_inputs(small_table, interactions=[("fa", "zz")])
    with pytest.raises(SpecError, match="spec"):
        fit(pd.DataFrame({"a": [1]}))
    with pytest.raises(SpecError, match="grouping column"):
        build_inputs(small_table, factors=["regoin"])


def test_divergences_trigger_one_retry(make_table, monkeypatch):
    import bayesdecide.model.fitting as fit_module

    real = fit_module.diagnose
    calls = []

    def fake(posterior, stats):
        out = real(posterior, stats)
        calls.append(out)
        if len(calls) == 1:
            out = {**out, "divergences": 5, "ok": False}
        return out

    monkeypatch.setattr(fit_module, "diagnose", fake)
    table = make_table(seed=2, n_outcomes=1)
    with pytest.warns(UserWarning, match="refitting once with target_accept=0.99"):
        f = fit(table, draws=100, tune=100, chains=2, seed=1, progressbar=False)
    assert len(calls) == 2
    assert f.lineage["retries"] == [{"target_accept": 0.8, "divergences": 5}]
    assert f.lineage["settings"]["target_accept"] == 0.99


def test_fast_path_unavailable_falls_back_with_a_warning(small_table, monkeypatch):
    import nutpie.compiled_pyfunc

    def broken(*a, **k):
        raise TypeError("PyFuncModel.__init__() missing 1 required argument: 'shared_var_keys'")

    monkeypatch.setattr(nutpie.compiled_pyfunc, "from_pyfunc", broken)
    with pytest.warns(RuntimeWarning, match="shared_var_keys"):
        f = fit(small_table, factors=["fa"], seed=1, **QUICK)
    assert f.lineage["sampler"] == "pymc"
    assert np.isfinite(f.tau.values).all()


def test_prior_predictive_original_scale(small_table):
    tau = prior_predictive(small_table, draws=50)
    assert tau.dims == ("chain", "draw", "cell", "outcome")
    assert 0.01 < float(tau.std()) < 1000


def test_top_level_fit_twice(small_table):
    a = _quiet(bd.fit, small_table, factors=["fa"], seed=5, **QUICK)
    b = _quiet(bd.fit, small_table, factors=["fa"], seed=5, **QUICK)
    np.testing.assert_array_equal(a.tau.values, b.tau.values)
    assert isinstance(a.idata.posterior, xr.Dataset)
    json.dumps(a.lineage)


def test_arviz_summary_of_a_default_fit_warns_nothing(small_table):
    """Both factors have fewer than five levels, so their spreads are fixed: constants sit in
    ``constant_data``, not the posterior, where ArviZ would warn and report a NaN R-hat."""
    f = _quiet(fit, small_table, seed=1, **QUICK)
    assert {"sigma_fa", "sigma_fb"} <= set(f.idata.constant_data.data_vars)
    assert not {"sigma_fa", "sigma_fb"} & set(f.idata.posterior.data_vars)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = az.summary(f.idata)
    assert table["r_hat"].notna().all()
    fixed = f.idata.constant_data["sigma_fa"].values
    np.testing.assert_allclose(fixed, [p.kwargs["value"] for p in f.model.priors["sigma_fa"]])


class _SlowDensity:
    """A stand-in model whose density takes ``seconds`` to be ready, as on an empty cache."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def initial_point(self, seed):
        return np.zeros(2)

    def sampler_logp(self, z):
        import time

        time.sleep(self.seconds)
        return 0.0, np.zeros_like(z)


def test_a_slow_first_density_is_announced(monkeypatch, capsys):
    """A density that is still compiling after ``ANNOUNCE_AFTER_S`` gets a line on stderr and
    one when it is ready; a ready one (numba's cache filled) gets none, nor does a fit asked
    for no progress bar."""
    from bayesdecide.model import sampling

    monkeypatch.setattr(sampling, "ANNOUNCE_AFTER_S", 0.05)
    sampling.prepare_density(_SlowDensity(0.5), announce=True)
    err = capsys.readouterr().err
    assert "preparing the compiled model density" in err and "ready after" in err
    assert "`bayesdecide compile`" in err
    sampling.prepare_density(_SlowDensity(0.5), announce=False)
    monkeypatch.setattr(sampling, "ANNOUNCE_AFTER_S", 3.0)
    sampling.prepare_density(_SlowDensity(0.0), announce=True)
    assert capsys.readouterr().err == ""
