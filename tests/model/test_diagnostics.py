"""The vectorised diagnostics equal ArviZ's, element by element."""

import arviz as az
import numpy as np
import xarray as xr

from bayesdecide.model.diagnostics import bfmi, diagnose, ess_bulk, ess_tail, rhat_rank


def _ar1(rng, n_series, chains, draws, phi):
    x = np.zeros((n_series, chains, draws))
    e = rng.standard_normal((n_series, chains, draws))
    for t in range(1, draws):
        x[:, :, t] = phi[:, None] * x[:, :, t - 1] + e[:, :, t]
    return x


def test_rhat_and_ess_equal_arviz():
    rng = np.random.default_rng(0)
    phi = np.linspace(0.0, 0.95, 12)
    x = _ar1(rng, 12, 4, 301, phi)  # odd draws: split chains drop the middle draw
    x[3, 1] += 0.8  # one chain off: R-hat well above 1
    x[5] = np.exp(x[5])  # skewed
    x[7] = np.round(x[7])  # ties
    x[9] = 2.5  # constant
    ds = xr.Dataset({"v": (("series", "chain", "draw"), x)}).transpose("chain", "draw", "series")
    np.testing.assert_allclose(rhat_rank(x), az.rhat(ds)["v"].values, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(
        ess_bulk(x), az.ess(ds, method="bulk")["v"].values, rtol=1e-9, equal_nan=True
    )
    np.testing.assert_allclose(
        ess_tail(x), az.ess(ds, method="tail")["v"].values, rtol=1e-9, equal_nan=True
    )


def test_diagnose_flags_problems():
    rng = np.random.default_rng(1)
    good = rng.standard_normal((4, 500, 3))
    post = xr.Dataset({"a": (("chain", "draw", "k"), good)})
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((4, 500), bool)),
            "energy": (("chain", "draw"), rng.standard_normal((4, 500))),
        }
    )
    ok = diagnose(post, stats)
    assert ok["ok"] and ok["divergences"] == 0 and ok["max_rhat"] < 1.01
    bad = good.copy()
    bad[0] += 3.0
    assert not diagnose(xr.Dataset({"a": (("chain", "draw", "k"), bad)}), stats)["ok"]
    div = stats.copy()
    div["diverging"] = div["diverging"].copy(data=np.eye(4, 500, dtype=bool))
    out = diagnose(post, div)
    assert out["divergences"] == 4 and not out["ok"]


def test_diagnose_in_chunks_equals_series_by_series():
    """``diagnose`` splits thousands of series into chunks on threads and ranks them with one
    sort each; every figure equals the single-call functions (which equal ArviZ's, above)."""
    rng = np.random.default_rng(2)
    x = _ar1(rng, 1100, 4, 200, np.linspace(0.0, 0.9, 1100))
    x[10] = np.round(x[10])  # ties
    x[11] = 1.5  # constant
    post = xr.Dataset({"v": (("series", "chain", "draw"), x)}).transpose("chain", "draw", "series")
    out = diagnose(post, None)
    assert out["max_rhat"] == np.nanmax(rhat_rank(x))
    assert out["min_ess_bulk"] == np.nanmin(ess_bulk(x))
    assert out["min_ess_tail"] == np.nanmin(ess_tail(x))
    one_chain = diagnose(post.isel(chain=[0]), None)
    assert one_chain["max_rhat"] == 1.0
    assert one_chain["min_ess_bulk"] == np.nanmin(ess_bulk(x[:, :1]))


def test_bfmi_of_a_constant_energy_is_undefined_not_a_warning():
    """Every spread fixed (a factor of three levels, one cell per level) leaves nothing to sample:
    the energy is constant, BFMI is undefined (NaN, which passes), and nothing warns."""
    import warnings

    energy = np.vstack([np.full(50, 3.0), np.random.default_rng(0).normal(size=50)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = bfmi(energy)
    assert np.isnan(values[0]) and values[1] > 0
