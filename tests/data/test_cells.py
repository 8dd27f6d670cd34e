"""cell_stats: exact sums, the same numbers from every engine, and the seed's OLS from sums."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
import xarray as xr

from bayesdecide import cell_effects, cell_stats, ols_effect
from bayesdecide.data.effects import linear_combinations
from bayesdecide.data.spec import ExperimentSpec, Outcome

VARIABLES = ("n", "sum_y", "sum_yy", "sum_x", "sum_xx", "sum_xy")


@pytest.fixture(scope="module")
def small(retention):
    """A 3,000-row slice of the seed data with every cell holding both arms."""
    df = retention.data.iloc[:3000].copy()
    spec = ExperimentSpec(
        treatment="treatment",
        outcomes=(
            Outcome("net_margin"),
            Outcome("renewed", "binary"),
            Outcome("support_tickets", "count"),
        ),
        groups=("segment", "risk_band"),
        covariates=("base_margin", "tenure_months"),
        unit_id="customer_id",
    )
    return df, spec


def assert_same(a, b, rtol=1e-9):
    for var in VARIABLES:
        np.testing.assert_allclose(a.ds[var].values, b.ds[var].values, rtol=rtol, atol=0)
    assert list(a.ds.cell.values) == list(b.ds.cell.values)


def test_sums_equal_pandas_groupby(small):
    df, spec = small
    cells = cell_stats(df, spec)
    assert cells.ds.sizes["cell"] == df.groupby(["segment", "risk_band"]).ngroups
    for (segment, band, arm), sub in df.groupby(["segment", "risk_band", "treatment"]):
        sel = cells.ds.sel(cell=f"{segment} | {band}", arm=["control", "treatment"][arm])
        assert sel["n"] == len(sub)
        np.testing.assert_allclose(sel["sum_y"].values, sub[spec.outcome_names].sum().values)
        y = sub[spec.outcome_names].to_numpy()
        x = sub[list(spec.covariates)].to_numpy()
        np.testing.assert_allclose(sel["sum_yy"].values, y.T @ y, rtol=1e-12)
        np.testing.assert_allclose(sel["sum_xx"].values, x.T @ x, rtol=1e-12)
        np.testing.assert_allclose(sel["sum_xy"].values, x.T @ y, rtol=1e-12)
    assert cells.ds["segment"].dims == ("cell",)


def test_all_engines_agree(small, tmp_path):
    df, spec = small
    reference = cell_stats(df, spec)
    assert_same(cell_stats(pl.from_pandas(df), spec), reference)
    assert_same(cell_stats(pl.from_pandas(df).lazy(), spec), reference)
    con = duckdb.connect()
    assert_same(cell_stats(con.from_df(df), spec), reference)
    parquet = tmp_path / "data.parquet"
    df.to_parquet(parquet)
    assert_same(cell_stats(parquet, spec), reference)
    assert_same(cell_stats(str(tmp_path / "*.parquet"), spec), reference)
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False, float_format="%.17g")
    assert_same(cell_stats(csv, spec), reference)


@pytest.mark.spark
def test_spark_agrees(small):
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    del pyspark
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("bayesdecide-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        df, spec = small
        sdf = spark.createDataFrame(df)
        assert_same(cell_stats(sdf, spec), cell_stats(df, spec))
    finally:
        spark.stop()


def test_regression_adjustment_reproduces_seed_ols(retention):
    cells = cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    result = ols_effect(cells, "net_margin", factors=("segment", "region"))
    assert result.estimate == pytest.approx(2.525, rel=0.01)
    assert result.estimate == pytest.approx(2.5245452148, rel=1e-9)
    assert result.n == 42_000


def test_cell_effects_match_difference_in_means(small):
    df, spec = small
    effects = cell_effects(cell_stats(df, spec), adjust=False, prior_df=0.0)
    sub = df[(df["segment"] == "SMB") & (df["risk_band"] == "Low risk")]
    t, c = sub[sub["treatment"] == 1], sub[sub["treatment"] == 0]
    cell = effects.sel(cell="SMB | Low risk")
    y = spec.outcome_names
    np.testing.assert_allclose(cell["effect"].values, (t[y].mean() - c[y].mean()).values)
    cov = t[y].cov().values / len(t) + c[y].cov().values / len(c)
    np.testing.assert_allclose(cell["effect_cov"].values, cov, rtol=1e-9)
    assert bool(cell["observed"])
    assert effects["kind"].sel(outcome="renewed") == "binary"


def test_adjustment_shrinks_variance(retention):
    cells = cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    raw = cell_effects(cells, adjust=False)
    adjusted = cell_effects(cells, adjust=True)
    # variance of the experiment-mix average effect (an unweighted sum over cells would be
    # dominated by the nine-customer Enterprise cells, whose variance is mostly the shrinkage prior)
    share = (raw["n_control"] + raw["n_treatment"]) / (raw["n_control"] + raw["n_treatment"]).sum()
    net = {"outcome": "net_margin", "outcome_b": "net_margin"}
    var = lambda e: (share**2 * e["effect_cov"].sel(net)).sum()  # noqa: E731
    assert float(var(adjusted)) < 0.65 * float(var(raw))
    # symmetric, and positive definite over the components (net margin is their exact sum)
    obs = adjusted["effect_cov"].where(adjusted["observed"], drop=True)
    assert np.allclose(obs.values, np.swapaxes(obs.values, -1, -2))
    components = [o for o in retention.spec.outcome_names if o != "net_margin"]
    sub = obs.sel(outcome=components, outcome_b=components).values
    assert np.all(np.linalg.eigvalsh(sub) > 0)


def test_net_margin_is_found_to_be_a_linear_combination(retention):
    cells = cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    derived = linear_combinations(cells)
    assert list(derived) == ["net_margin"]
    assert derived["net_margin"] == pytest.approx(
        {
            "gross_margin": 1.0,
            "contact_cost": -1.0,
            "discount_cost": -1.0,
            "support_tickets": -18.0,
            "annoyance": -35.0,
        }
    )


def test_single_arm_cell_kept_only_on_request(retention):
    from bayesdecide import DataValidationError

    with pytest.raises(DataValidationError, match="Enterprise \\| APAC \\| High risk"):
        cell_stats(retention.data, retention.spec)
    with pytest.warns(UserWarning, match="only one arm"):
        cells = cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    effects = cell_effects(cells)
    assert cells.ds.sizes["cell"] == 27
    assert int(effects["observed"].sum()) == 26
    assert np.isnan(effects["effect"].sel(cell="Enterprise | APAC | High risk")).all()
    assert cells.n_units == 42_000


def test_cell_stats_is_an_xarray_dataset(small):
    df, spec = small
    cells = cell_stats(df, spec)
    assert isinstance(cells.ds, xr.Dataset)
    assert set(cells.ds.dims) >= {"cell", "arm", "outcome", "covariate"}
    frame = cells.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert frame["n"].sum() == len(df)
