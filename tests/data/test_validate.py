"""Bad input gets an error that names the column and the fix; nothing is silently dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesdecide import DataValidationError, SpecError, cell_stats
from bayesdecide.data.spec import ExperimentSpec, Outcome


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "arm": np.tile([0, 1], n // 2),
            "region": rng.choice(["A", "B"], n),
            "spend": rng.normal(10, 2, n),
            "converted": rng.integers(0, 2, n),
            "tickets": rng.poisson(1.0, n),
            "prior": rng.normal(0, 1, n),
        }
    )


@pytest.fixture
def spec():
    return ExperimentSpec(
        treatment="arm",
        outcomes=(Outcome("spend"), Outcome("converted", "binary"), Outcome("tickets", "count")),
        groups=("region",),
        covariates=("prior",),
        unit_id="id",
    )


def test_valid_data_passes(frame, spec):
    assert cell_stats(frame, spec).n_units == len(frame)


def test_missing_column_suggests_match(frame, spec):
    with pytest.raises(DataValidationError, match=r"'converted'.*did you mean 'convert'"):
        cell_stats(frame.rename(columns={"converted": "convert"}), spec)


def test_treatment_with_three_arms(frame, spec):
    frame.loc[0, "arm"] = 2
    with pytest.raises(DataValidationError, match=r"treatment column 'arm' has values \['2'\]"):
        cell_stats(frame, spec)


def test_treatment_with_one_arm(frame, spec):
    with pytest.raises(DataValidationError, match=r"no rows for arm\(s\) \[1\]"):
        cell_stats(frame.assign(arm=0), spec)


def test_string_arms(frame):
    spec = ExperimentSpec(
        treatment="arm", outcomes=("spend",), groups=("region",), arms=("ctrl", "outreach")
    )
    labelled = frame.assign(arm=frame["arm"].map({0: "ctrl", 1: "outreach"}))
    assert cell_stats(labelled, spec).ds["n"].sel(arm="treatment").sum() == 200


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("arm", np.nan, r"treatment column 'arm' has 1 missing"),
        ("region", None, r"group column 'region' has 1 missing"),
        ("spend", np.nan, r"outcome column 'spend' has 1 missing or non-finite"),
        ("spend", np.inf, r"outcome column 'spend' has 1 missing or non-finite"),
        ("prior", np.nan, r"covariate column 'prior' has 1 missing"),
        ("converted", 2, r"binary outcome column 'converted' has 1 values outside \{0, 1\}"),
        ("tickets", -1, r"count outcome column 'tickets' has 1 negative"),
        ("tickets", 0.5, r"count outcome column 'tickets' has 1 negative or non-integer"),
    ],
)
def test_bad_values(frame, spec, column, value, message):
    frame[column] = frame[column].astype(object if value is None else float)
    frame.loc[3, column] = value
    with pytest.raises(DataValidationError, match=message):
        cell_stats(frame, spec)


def test_cell_with_one_arm(frame, spec):
    frame.loc[frame["region"] == "B", "arm"] = 0
    frame.loc[0, "region"] = "C"
    frame.loc[0, "arm"] = 1
    with pytest.raises(DataValidationError, match=r"only one arm of 'arm'.*'B'"):
        cell_stats(frame, spec)


def test_empty_group_level(frame, spec):
    frame["region"] = pd.Categorical(frame["region"], categories=["A", "B", "Z"])
    with pytest.raises(
        DataValidationError, match=r"group column 'region' declares level\(s\) \['Z'\]"
    ):
        cell_stats(frame, spec)


def test_mistyped_column(frame, spec):
    frame["spend"] = frame["spend"].map(lambda v: f"${v:.2f}")
    with pytest.raises(DataValidationError, match=r"outcome column 'spend' has type VARCHAR"):
        cell_stats(frame, spec)


def test_no_rows(frame, spec):
    with pytest.raises(DataValidationError, match="no rows"):
        cell_stats(frame.iloc[:0], spec)


def test_drop_missing_outcomes_is_explicit_and_reported(frame, spec):
    frame["spend"] = frame["spend"].astype(float)
    frame.loc[[0, 2, 5], "spend"] = np.nan  # arms 0, 0, 1
    with pytest.warns(UserWarning, match="dropped rows with missing outcomes"):
        cells = cell_stats(frame, spec, drop_missing_outcomes=True)
    assert cells.dropped == {"control": 2, "treatment": 1}
    assert cells.n_units == len(frame) - 3
    complete = frame.dropna(subset=["spend"])
    np.testing.assert_allclose(
        float(cells.ds["sum_y"].sel(outcome="spend").sum()), complete["spend"].sum()
    )


def test_unreadable_inputs(tmp_path, spec):
    with pytest.raises(DataValidationError, match="does not exist"):
        cell_stats(tmp_path / "nope.parquet", spec)
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match="do not know how to read"):
        cell_stats(tmp_path / "data.xlsx", spec)
    with pytest.raises(DataValidationError, match="cannot read data of type list"):
        cell_stats([1, 2, 3], spec)


def test_spec_errors():
    with pytest.raises(SpecError, match="used twice"):
        ExperimentSpec(treatment="t", outcomes=("y", "y"))
    with pytest.raises(SpecError, match="kind 'ratio'"):
        Outcome("y", "ratio")
    with pytest.raises(SpecError, match="two distinct values"):
        ExperimentSpec(treatment="t", outcomes=("y",), arms=(1, 1))
