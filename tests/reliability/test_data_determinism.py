"""Issue 15, data side: the same data give bit-identical cell statistics and the same fingerprint.

Under load DuckDB's parallel floating-point sums changed in the last bits from run to run, and with
them the lineage's data fingerprint and every posterior draw. cell_stats now sums exactly on
integer grids (bayesdecide.data.summation) and fingerprints the rows with an exact sum of row
hashes (bayesdecide.data.fingerprint), so neither depends on the thread count or the row order.
"""

from __future__ import annotations

import math
import warnings

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

import bayesdecide as bd
from bayesdecide.data import data_fingerprint

VARIABLES = ("n", "sum_y", "sum_yy", "sum_x", "sum_xx", "sum_xy")


def cell_stats(data, spec, *, threads: int | None = None, **kwargs):
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="kept 1 cell", category=UserWarning)
        return bd.cell_stats(data, spec, single_arm_cells="keep", connection=con, **kwargs)


def assert_identical(a, b):
    assert list(a.ds["cell"].values) == list(b.ds["cell"].values)
    for var in VARIABLES:
        assert np.array_equal(a.ds[var].values, b.ds[var].values), var  # bit for bit
    assert a.fingerprint == b.fingerprint


@pytest.fixture(scope="module")
def wide():
    """Outcomes spanning 16 orders of magnitude: their plain float sums depend on the order."""
    rng = np.random.default_rng(15)
    n = 20_000
    frame = pd.DataFrame(
        {
            "unit": rng.permutation(n) + 1,
            "arm": rng.integers(0, 2, n),
            "site": rng.choice(["north", "south", "east"], n),
            "spend": rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n),
            "visits": rng.poisson(3.0, n),
            "prior": rng.lognormal(3.0, 2.0, n),
        }
    )
    spec = bd.ExperimentSpec(
        treatment="arm",
        outcomes=("spend", bd.Outcome("visits", "count")),
        groups=("site",),
        covariates=("prior",),
        unit_id="unit",
    )
    return frame, spec


def test_plain_sums_of_this_data_depend_on_the_order(wide):
    frame, _ = wide
    y = frame["spend"].to_numpy()
    orders = [np.random.default_rng(s).permutation(len(y)) for s in range(5)]
    plain = {float(np.cumsum(y[o])[-1]) for o in orders}  # sequential, as one thread adds
    assert len(plain) > 1  # the precondition for the tests below to mean anything


def test_threads_and_row_order_do_not_change_a_bit(wide):
    frame, spec = wide
    reference = cell_stats(frame, spec, threads=1)
    for seed in range(3):
        shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        for threads in (1, 2, 8):
            assert_identical(cell_stats(shuffled, spec, threads=threads), reference)


def test_sums_are_exact_to_the_grid(wide):
    frame, spec = wide
    cells = cell_stats(frame, spec)
    for (site, arm), sub in frame.groupby(["site", "arm"]):
        sel = cells.ds.sel(cell=site, arm=["control", "treatment"][arm])
        y, x = sub["spend"].to_numpy(), sub["prior"].to_numpy()
        exact = {
            "sum_y": math.fsum(y),
            "sum_yy": math.fsum(y * y),
            "sum_xy": math.fsum(x * y),
            "sum_xx": math.fsum(x * x),
        }
        bound = {
            "sum_y": np.abs(frame["spend"]).max(),
            "sum_yy": frame["spend"].pow(2).max(),
            "sum_xy": np.abs(frame["spend"]).max() * frame["prior"].max(),
            "sum_xx": frame["prior"].pow(2).max(),
        }
        got = {
            "sum_y": float(sel["sum_y"].sel(outcome="spend")),
            "sum_yy": float(sel["sum_yy"].sel(outcome="spend", outcome_b="spend")),
            "sum_xy": float(sel["sum_xy"].sel(covariate="prior", outcome="spend")),
            "sum_xx": float(sel["sum_xx"].sel(covariate="prior", covariate_b="prior")),
        }
        for key, value in got.items():
            # each row loses at most half a grid step (largest term * 2**-61) to the rounding,
            # and the total is rounded once more to a double
            tolerance = len(sub) * bound[key] * 2.0**-61 + abs(exact[key]) * 2.0**-53
            assert abs(value - exact[key]) <= tolerance
        assert float(sel["sum_y"].sel(outcome="visits")) == sub["visits"].sum()  # integers: exact


def test_pandas_polars_arrow_parquet_and_csv_agree_bit_for_bit(retention, tmp_path):
    frame, spec = retention.data, retention.spec
    reference = cell_stats(frame, spec)
    parquet = tmp_path / "retention.parquet"
    frame.to_parquet(parquet)
    csv = tmp_path / "retention.csv"
    frame.to_csv(csv, index=False, float_format="%.17g")
    polars = pl.from_pandas(frame)
    for source in (polars, polars.to_arrow(), parquet, str(tmp_path / "*.parquet"), csv):
        assert_identical(cell_stats(source, spec, threads=4), reference)
    shuffled = frame.sample(frac=1.0, random_state=1)
    shuffled.to_parquet(parquet)
    assert_identical(cell_stats(parquet, spec, threads=8), reference)


def test_data_fingerprint_is_the_cell_stats_fingerprint(retention):
    frame, spec = retention.data, retention.spec
    fingerprint = cell_stats(frame, spec).fingerprint
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert data_fingerprint(frame, spec) == fingerprint
    assert data_fingerprint(frame.iloc[::-1], spec) == fingerprint


def test_fingerprint_sees_any_change_in_the_rows(retention):
    frame, spec = retention.data, retention.spec
    fingerprint = data_fingerprint(frame, spec)
    nudged = frame.copy()
    nudged.loc[17, "net_margin"] = np.nextafter(nudged.loc[17, "net_margin"], np.inf)
    swapped = frame.copy()
    swapped.loc[[3, 4], "customer_id"] = swapped.loc[[4, 3], "customer_id"].to_numpy()
    relabelled = frame.assign(region=frame["region"].replace({"APAC": "Asia-Pacific"}))
    fewer = frame.iloc[1:]
    changed = [data_fingerprint(d, spec) for d in (nudged, swapped, relabelled, fewer)]
    assert len({fingerprint, *changed}) == 5


def test_dropping_missing_outcomes_is_deterministic_too(wide):
    frame, spec = wide
    frame = frame.copy()
    frame.loc[frame.index[::50], "spend"] = np.nan
    with pytest.warns(UserWarning, match="dropped rows with missing outcomes"):
        reference = cell_stats(frame, spec, threads=1, drop_missing_outcomes=True)
    shuffled = frame.sample(frac=1.0, random_state=7)
    with pytest.warns(UserWarning, match="dropped rows with missing outcomes"):
        again = cell_stats(shuffled, spec, threads=8, drop_missing_outcomes=True)
    assert_identical(again, reference)
    assert reference.n_units == frame["spend"].notna().sum()


@pytest.mark.spark
def test_spark_sums_are_exact_and_find_duplicates(wide):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bayesdecide-determinism")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "3")
        .getOrCreate()
    )
    try:
        frame, spec = wide
        sdf = spark.createDataFrame(frame)
        one = cell_stats(sdf.repartition(1), spec)
        many = cell_stats(sdf.repartition(7, "unit"), spec)
        for var in VARIABLES:
            assert np.array_equal(one.ds[var].values, many.ds[var].values), var
        assert one.fingerprint == many.fingerprint  # Spark's own hash: differs from DuckDB's
        duckdb_cells = cell_stats(frame, spec)
        for var in VARIABLES:
            np.testing.assert_allclose(one.ds[var].values, duckdb_cells.ds[var].values, rtol=1e-15)
        doubled = spark.createDataFrame(pd.concat([frame, frame.iloc[:3]]))
        with pytest.raises(bd.DataValidationError, match=r"has 3 id\(s\) on more than one row"):
            cell_stats(doubled, spec)
    finally:
        spark.stop()
