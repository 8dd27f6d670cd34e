"""Issue 15, data side: bad input gets a clear error from cell_stats, before any model fitting.

Each test feeds bad data the way a user would (a pandas frame, a CSV or Parquet file) through the
public API and checks that the message names the column (or the ids, or the levels) and the fix.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdecide as bd

KEEP = {"single_arm_cells": "keep"}  # the seed data has one cell with a single arm


@pytest.fixture
def data(retention):
    return retention.data.copy()


@pytest.fixture
def spec(retention):
    return retention.spec


def cells(data, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="kept 1 cell", category=UserWarning)
        # no numpy noise may leak from the data stage
        warnings.simplefilter("error", RuntimeWarning)
        return bd.cell_stats(data, spec, **{**KEEP, **kwargs})


# -- 1. duplicated unit ids ----------------------------------------------------------------------


DUPLICATES = (
    r"unit_id column 'customer_id' has 100 id\(s\) on more than one row: the data has 42,100 "
    r"rows but 42,000 distinct ids \(200 rows share an id\), e\.g\. 1 \(2 rows\), 2 \(2 rows\).*"
    r"drop_duplicates\('customer_id'\)"
)


def test_duplicated_ids_in_a_frame_are_an_error(data, spec):
    doubled = pd.concat([data, data.iloc[:100]], ignore_index=True)
    with pytest.raises(bd.DataValidationError, match=DUPLICATES):
        cells(doubled, spec)


def test_duplicated_ids_in_a_parquet_file_are_found_in_sql(data, spec, tmp_path):
    path = tmp_path / "doubled.parquet"
    pd.concat([data, data.iloc[:100]], ignore_index=True).to_parquet(path)
    with pytest.raises(bd.DataValidationError, match=DUPLICATES):
        cells(path, spec)


@pytest.mark.parametrize(
    ("make_ids", "shown"),
    [
        pytest.param(lambda ids: "C" + ids.astype(str), "'C4' (2 rows)", id="text ids"),
        pytest.param(lambda ids: ids * 10**12, "4000000000000 (2 rows)", id="sparse integer ids"),
    ],
)
def test_duplicated_ids_of_any_kind(data, spec, make_ids, shown):
    data["customer_id"] = make_ids(data["customer_id"])
    data.loc[7, "customer_id"] = data.loc[3, "customer_id"]
    with pytest.raises(bd.DataValidationError, match=r"has 1 id\(s\) on more than one row") as err:
        cells(data, spec)
    assert f"e.g. {shown}" in str(err.value)
    assert "42,000 rows but 41,999 distinct ids" in str(err.value)


def test_missing_unit_id_is_an_error(data, spec):
    data["customer_id"] = data["customer_id"].astype("float64")
    data.loc[[3, 9], "customer_id"] = np.nan
    with pytest.raises(bd.DataValidationError, match="unit_id column 'customer_id' has 2 missing"):
        cells(data, spec)


def test_unique_ids_pass(data, spec):
    assert cells(data, spec).n_units == 42_000


# -- 2. declared group levels --------------------------------------------------------------------


def with_levels(spec, **levels):
    return dataclasses.replace(spec, levels=levels)


REGIONS = ["Americas", "EMEA", "APAC"]


def test_undeclared_level_is_an_error_with_a_suggestion(data, spec):
    data.loc[data.index[:200], "region"] = "Emea"
    with pytest.raises(
        bd.DataValidationError,
        match=r"group column 'region' has 1 value\(s\) that are not among its declared levels "
        r"\['Americas', 'EMEA', 'APAC'\]: 'Emea' \(200 rows; did you mean 'EMEA'\?\)\. "
        r"Recode them .*replace\(\{'Emea': 'EMEA'\}\)",
    ):
        cells(data, with_levels(spec, region=REGIONS))


def test_undeclared_levels_in_a_csv_file(data, spec, tmp_path):
    data.loc[data.index[:5], "region"] = "apac "
    data.loc[data.index[5:8], "region"] = "LATAM"
    path = tmp_path / "regions.csv"
    data.to_csv(path, index=False)
    with pytest.raises(bd.DataValidationError) as err:
        cells(path, with_levels(spec, region=REGIONS))
    message = str(err.value)
    assert "'apac ' (5 rows; did you mean 'APAC'?)" in message
    assert "'LATAM' (3 rows)" in message and "did you mean 'LATAM'" not in message


def test_declared_level_without_rows_is_an_error(data, spec):
    with pytest.raises(
        bd.DataValidationError,
        match=r"group column 'region' has no rows for declared level\(s\) \['LATAM'\]",
    ):
        cells(data, with_levels(spec, region=[*REGIONS, "LATAM"]))


def test_partial_levels_allow_a_declared_level_without_rows_but_not_a_stray_label(data, spec):
    """A rollout of a targeted policy covers the treated risk bands only (`bayesdecide update`)."""
    declared = with_levels(spec, region=[*REGIONS, "LATAM"])
    got = bd.cell_stats(data, declared, single_arm_cells="keep", partial_levels=True)
    assert got.ds.sizes["cell"] == 27
    data.loc[data.index[:5], "region"] = "apac "
    with pytest.raises(bd.DataValidationError, match="not among its declared levels"):
        bd.cell_stats(data, declared, single_arm_cells="keep", partial_levels=True)


def test_declared_levels_that_match_pass(data, spec):
    declared = with_levels(spec, region=REGIONS, risk_band=["Low risk", "Medium risk", "High risk"])
    assert cells(data, declared).ds.sizes["cell"] == 27


def test_levels_must_belong_to_grouping_factors(spec):
    with pytest.raises(bd.SpecError, match="'treatment', which is not a grouping factor"):
        with_levels(spec, treatment=[0, 1])
    with pytest.raises(bd.SpecError, match=r"list \['EMEA'\] more than once"):
        with_levels(spec, region=["EMEA", "APAC", "EMEA"])


def test_levels_survive_a_round_trip_and_leave_old_fingerprints_alone(spec):
    declared = with_levels(spec, region=REGIONS)
    assert bd.ExperimentSpec.from_dict(declared.to_dict()) == declared
    assert declared.to_dict()["levels"] == {"region": REGIONS}
    assert "levels" not in spec.to_dict()  # specs without levels hash as before
    assert declared.fingerprint() != spec.fingerprint()


# -- 3. constant outcomes and covariates ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["frame", "parquet"])
def test_constant_outcome_is_an_error_without_numpy_warnings(data, spec, tmp_path, fmt):
    data["contact_cost"] = 0.0
    source = data
    if fmt == "parquet":
        source = tmp_path / "constant.parquet"
        data.to_parquet(source)
    with pytest.raises(
        bd.DataValidationError,
        match=r"outcome column 'contact_cost' is constant \(0\) in every row of both arms: it "
        r"carries no information about the effect; remove it from the spec's outcomes",
    ):
        cells(source, spec)


def test_constant_covariate_is_an_error(data, spec):
    data["seats"] = 5
    with pytest.raises(
        bd.DataValidationError,
        match=r"covariate column 'seats' is constant \(5\) in every row.*remove it from the "
        r"spec's covariates",
    ):
        cells(data, spec)


def test_outcome_constant_within_cells_but_not_overall_passes(data, spec):
    data["contact_cost"] = np.where(data["treatment"] == 1, 4.0, 0.0)
    assert cells(data, spec).n_units == 42_000


# -- 4. values too large for sums of squares -----------------------------------------------------


@pytest.mark.parametrize("fmt", ["frame", "parquet"])
def test_huge_value_is_named_before_any_linear_algebra(data, spec, tmp_path, fmt):
    data.loc[5, "gross_margin"] = 1e300
    data.loc[9, "gross_margin"] = -3e17
    source = data
    if fmt == "parquet":
        source = tmp_path / "huge.parquet"
        data.to_parquet(source)
    with pytest.raises(
        bd.DataValidationError,
        match=r"outcome column 'gross_margin' has 2 rows with a value larger than 1e\+15 in "
        r"magnitude \(the most extreme: 1e\+300\).*rescale the column",
    ):
        cells(source, spec)


def test_huge_covariate_is_an_error(data, spec):
    data.loc[11, "base_margin"] = -9.9e307
    with pytest.raises(
        bd.DataValidationError, match=r"covariate column 'base_margin' has 1 row .*-9\.9e\+307"
    ):
        cells(data, spec)


def test_spread_lost_to_rounding_is_an_error(data, spec):
    data["tenure_months"] = 1.7e9 + data["tenure_months"] * 1e-6  # a spread of 1e-4 on 1.7e9
    with pytest.raises(
        bd.DataValidationError,
        match=r"covariate column 'tenure_months' only varies between .* less than 1e-08 of its "
        r"magnitude.*Subtract a reference value",
    ):
        cells(data, spec)


def test_large_but_ordinary_values_pass_and_effects_are_finite(data, spec):
    data["gross_margin"] = data["gross_margin"] * 1e9  # dollars to nano-dollars: still fine
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        effects = bd.cell_effects(cells(data, spec))
    observed = effects["effect"].where(effects["observed"], drop=True)
    assert np.isfinite(observed.values).all()


def test_collinear_covariates_are_named_instead_of_a_linalg_error(data, spec):
    data["seats_twice"] = 2.0 * data["seats"]
    collinear = dataclasses.replace(spec, covariates=(*spec.covariates, "seats_twice"))
    with pytest.raises(
        bd.DataValidationError,
        match=r"covariate 'seats' is a linear combination of other covariates within cells "
        r"\(0\.5 x 'seats_twice'\)",
    ):
        bd.cell_effects(cells(data, collinear))


def test_covariate_fixed_by_the_groups_is_named(data, spec):
    data["region_size"] = data["region"].map({"Americas": 3.0, "EMEA": 2.0, "APAC": 1.0})
    fixed = dataclasses.replace(spec, covariates=(*spec.covariates, "region_size"))
    with pytest.raises(
        bd.DataValidationError,
        match=r"covariate\(s\) \['region_size'\] do not vary within any cell and arm",
    ):
        bd.cell_effects(cells(data, fixed))
    assert bd.cell_effects(cells(data, fixed), adjust=False)["effect"].notnull().any()


# -- 5. a CSV file with only its header ----------------------------------------------------------


NO_ROWS = r"the data has no rows"


def test_header_only_csv_has_no_rows(data, spec, tmp_path):
    path = tmp_path / "header.csv"
    data.iloc[:0].to_csv(path, index=False)
    with pytest.raises(bd.DataValidationError, match=NO_ROWS + r" \(file .*header\.csv\)"):
        cells(path, spec)


def test_empty_parquet_and_frame_say_the_same(data, spec, tmp_path):
    path = tmp_path / "empty.parquet"
    data.iloc[:0].to_parquet(path)
    for source in (path, data.iloc[:0]):
        with pytest.raises(bd.DataValidationError, match=NO_ROWS):
            cells(source, spec)


# -- 6. text in a numeric column -----------------------------------------------------------------


def test_text_in_an_object_column_names_the_column(data, spec):
    data["net_margin"] = data["net_margin"].astype(object)
    data.loc[[30_000, 30_001], "net_margin"] = "abc"
    data.loc[41_000, "net_margin"] = "n/a"
    with pytest.raises(
        bd.DataValidationError,
        match=r"outcome column 'net_margin' holds text: 3 of its 42,000 values are not numbers, "
        r"e\.g\. 'abc' \(2 rows\), 'n/a' \(1 row\); .*pd\.to_numeric",
    ):
        cells(data, spec)


def test_numbers_in_an_object_column_pass(data, spec):
    data["net_margin"] = data["net_margin"].astype(object)
    reference = cells(data.assign(net_margin=data["net_margin"].astype(float)), spec)
    assert np.array_equal(cells(data, spec).ds["sum_y"].values, reference.ds["sum_y"].values)


def test_text_in_a_csv_column_is_counted(data, spec, tmp_path):
    data["discount_cost"] = data["discount_cost"].map("{:.2f}".format)
    data.loc[12, "discount_cost"] = "unknown"
    path = tmp_path / "text.csv"
    data.to_csv(path, index=False)
    with pytest.raises(
        bd.DataValidationError,
        match=r"outcome column 'discount_cost' has type VARCHAR, not a number: 1 of its 42,000 "
        r"values is not a number, e\.g\. 'unknown' \(1 row\)",
    ):
        cells(path, spec)
