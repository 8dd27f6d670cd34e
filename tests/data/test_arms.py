"""Several treatment arms against one control: spec, cell statistics, validation and the EffectTable
with the joint covariance the shared control induces."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesdecide import ExperimentSpec, cell_effects, cell_stats, retention_spec
from bayesdecide.data.effects import arm_effects, average_effect, is_multi_arm
from bayesdecide.errors import DataValidationError, SpecError

# the seed spec's fingerprint before multi-arm specs existed: two-arm specs must keep it
RETENTION_SPEC_FINGERPRINT = "3112dcf0901a98118eb03d6de8c59af2d04a9adf5b24ffab38baffe589aa7b9d"


def _frame(seed: int = 0, n: int = 1800) -> pd.DataFrame:
    """Three arms ('c' control, 'a', 'b') in two regions; y continuous, z binary, x a covariate.
    True effects on y: arm a +1.0, arm b +2.0 in North and -1.0 in South."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["North", "South"], size=n)
    arm = rng.choice(["c", "a", "b"], size=n, p=[0.4, 0.3, 0.3])
    x = rng.normal(size=n)
    effect = np.where(arm == "a", 1.0, np.where(arm == "b", np.where(region == "North", 2, -1), 0))
    y = 3.0 + 0.8 * x + effect + rng.normal(size=n)
    z = rng.binomial(1, np.where(arm == "c", 0.3, 0.4))
    return pd.DataFrame({"region": region, "arm": arm, "x": x, "y": y, "z": z})


def _spec(**changes) -> ExperimentSpec:
    base = {
        "treatment": "arm",
        "arms": ("c", "a", "b"),
        "outcomes": ("y", "z"),
        "groups": ("region",),
        "covariates": ("x",),
    }
    return ExperimentSpec(**{**base, **changes})


def test_spec_arms_labels_and_two_arm_fingerprint():
    spec = _spec()
    assert spec.multi_arm and spec.arm_labels == ("c", "a", "b")
    assert spec.treatment_arms == ("a", "b")
    two = retention_spec()
    assert not two.multi_arm and two.arm_labels == ("control", "treatment")
    assert two.treatment_arms == ("treatment",)
    assert two.fingerprint() == RETENTION_SPEC_FINGERPRINT
    numeric = _spec(arms=(0, 1, 2))
    assert numeric.arm_labels == ("0", "1", "2")
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("arms", "match"),
    [
        (("c",), "at least one treatment arm"),
        (("c", "a", "a"), r"\['a'\] are listed more than once"),
        ((1, "1", 2), r"\['1'\] are listed more than once"),
        ((0, 0.0), "exactly two distinct values"),
    ],
)
def test_spec_rejects_bad_arms(arms, match):
    with pytest.raises(SpecError, match=match):
        _spec(arms=arms)


def test_cell_stats_has_every_arm_and_matches_pandas():
    df = _frame()
    cells = cell_stats(df, _spec())
    ds = cells.ds
    assert list(ds["arm"].values) == ["c", "a", "b"]
    expected = df.groupby(["region", "arm"]).agg(n=("y", "size"), y=("y", "sum"), z=("z", "sum"))
    for region in ("North", "South"):
        for arm in ("c", "a", "b"):
            got = ds.sel(cell=region, arm=arm)
            row = expected.loc[(region, arm)]
            assert float(got["n"]) == row["n"]
            np.testing.assert_allclose(float(got["sum_y"].sel(outcome="y")), row["y"], rtol=1e-12)
            assert float(got["sum_y"].sel(outcome="z")) == row["z"]
    assert cells.n_units == len(df)


def test_dropped_rows_are_counted_per_arm_label():
    df = _frame()
    df.loc[[0, 1, 2], "y"] = np.nan
    with pytest.warns(UserWarning, match="dropped rows"):
        cells = cell_stats(df, _spec(), drop_missing_outcomes=True)
    assert set(cells.dropped) == {"c", "a", "b"}
    assert sum(cells.dropped.values()) == 3
    assert cells.dropped[df.loc[0, "arm"]] >= 1


def test_unknown_arm_value_and_missing_arm_are_named():
    df = _frame()
    df.loc[5, "arm"] = "d"
    with pytest.raises(DataValidationError, match=r"values \['d'\] besides the arms"):
        cell_stats(df, _spec())
    with pytest.raises(DataValidationError, match=r"no rows for arm\(s\) \['b'\]"):
        cell_stats(_frame().query("arm != 'b'"), _spec())


def test_cell_without_an_arm_is_an_error_or_kept_with_nan_effects():
    df = _frame()
    df = df[~((df["region"] == "South") & (df["arm"] == "a"))]
    with pytest.raises(DataValidationError, match=r"South \(no a\)"):
        cell_stats(df, _spec())
    with pytest.warns(UserWarning, match=r"South \(no a\)"):
        cells = cell_stats(df, _spec(), single_arm_cells="keep")
    eff = cell_effects(cells)
    obs = eff["observed"].to_pandas()
    assert not obs.loc["South", "a"] and obs.loc["South", "b"] and obs.loc["North"].all()
    assert np.isnan(eff["effect"].sel(cell="South", treatment_arm="a")).all()
    cov = eff["effect_cov"].sel(cell="South")
    assert (
        np.isnan(cov.sel(treatment_arm="a")).all() and np.isnan(cov.sel(treatment_arm_b="a")).all()
    )
    assert np.isfinite(cov.sel(treatment_arm="b", treatment_arm_b="b")).all()


def test_effect_table_layout_and_unadjusted_effects_are_differences_of_means():
    df = _frame()
    eff = cell_effects(cell_stats(df, _spec()), adjust=False)
    assert is_multi_arm(eff)
    assert eff["effect"].dims == ("cell", "treatment_arm", "outcome")
    assert eff["effect_cov"].dims == (
        "cell",
        "treatment_arm",
        "outcome",
        "treatment_arm_b",
        "outcome_b",
    )
    assert eff["n_treatment"].dims == ("cell", "treatment_arm") and eff.attrs["control_arm"] == "c"
    assert list(eff["treatment_arm"].values) == ["a", "b"]
    means = df.groupby(["region", "arm"])[["y", "z"]].mean()
    for region in ("North", "South"):
        for arm in ("a", "b"):
            want = means.loc[(region, arm)] - means.loc[(region, "c")]
            got = eff["effect"].sel(cell=region, treatment_arm=arm).to_pandas()
            np.testing.assert_allclose(got[["y", "z"]], want[["y", "z"]], rtol=1e-10)


def test_joint_covariance_is_own_arm_plus_shared_control():
    cells = cell_stats(_frame(), _spec())
    eff = cell_effects(cells)
    cov = eff["effect_cov"]
    for region in ("North", "South"):
        c = cov.sel(cell=region)
        aa = c.sel(treatment_arm="a", treatment_arm_b="a").values
        bb = c.sel(treatment_arm="b", treatment_arm_b="b").values
        ab = c.sel(treatment_arm="a", treatment_arm_b="b").values
        ba = c.sel(treatment_arm="b", treatment_arm_b="a").values
        np.testing.assert_allclose(ab, ba.T)
        # the cross block is the control mean's covariance: positive on the diagonal
        assert (np.diagonal(ab) > 0).all()
        se = eff["control_se"].sel(cell=region).values
        np.testing.assert_allclose(np.diagonal(ab), se**2, rtol=1e-12)
        # each arm's own block is larger than the shared part by its own mean's variance
        assert (np.diagonal(aa) > np.diagonal(ab)).all() and (
            np.diagonal(bb) > np.diagonal(ab)
        ).all()
        full = c.transpose("treatment_arm", "outcome", "treatment_arm_b", "outcome_b").values
        assert np.linalg.eigvalsh(full.reshape(4, 4)).min() > 0


def test_each_arm_against_control_agrees_with_the_two_arm_table():
    """Unadjusted, arm a's effects and covariance equal a two-arm analysis of control vs a."""
    df = _frame()
    multi = arm_effects(cell_effects(cell_stats(df, _spec()), adjust=False), "a")
    two = cell_effects(cell_stats(df[df["arm"] != "b"], _spec(arms=("c", "a"))), adjust=False)
    np.testing.assert_allclose(multi["effect"].values, two["effect"].values, rtol=1e-10)
    np.testing.assert_allclose(multi["effect_cov"].values, two["effect_cov"].values, rtol=1e-8)
    np.testing.assert_array_equal(multi["n_treatment"].values, two["n_treatment"].values)
    assert multi.attrs["treatment_arm"] == "a"
    with pytest.raises(SpecError, match="no treatment arm 'x'"):
        arm_effects(cell_effects(cell_stats(df, _spec())), "x")


def test_average_effect_per_arm():
    df = _frame(n=6000)
    eff = cell_effects(cell_stats(df, _spec()))
    avg = average_effect(eff)
    assert avg["estimate"].dims == ("treatment_arm", "outcome")
    est, se = avg["estimate"].sel(outcome="y"), avg["std_error"].sel(outcome="y")
    share_north = (df["region"] == "North").mean()
    truth = {"a": 1.0, "b": 2.0 * share_north - 1.0 * (1 - share_north)}
    for arm, value in truth.items():
        assert abs(float(est.sel(treatment_arm=arm)) - value) < 4 * float(se.sel(treatment_arm=arm))


def test_shared_control_covariance_matches_replications():
    """Across 600 independent replications (cells), the empirical covariance of the two arms'
    effect estimates matches the EffectTable's cross-arm covariance (the shared control's
    variance), and is far from zero (independent arms would be wrong)."""
    rng = np.random.default_rng(7)
    reps, n = 600, 40
    rows = reps * 3 * n
    df = pd.DataFrame(
        {
            "rep": np.repeat([f"r{i:03d}" for i in range(reps)], 3 * n),
            "arm": np.tile(np.repeat(["c", "a", "b"], n), reps),
            "y": rng.normal(size=rows) * 2.0,
        }
    )
    spec = ExperimentSpec(treatment="arm", arms=("c", "a", "b"), outcomes=("y",), groups=("rep",))
    eff = cell_effects(cell_stats(df, spec), adjust=False, prior_df=0.0)
    e = eff["effect"].sel(outcome="y").values  # (reps, 2)
    empirical = np.cov(e.T)
    model = eff["effect_cov"].sel(outcome="y", outcome_b="y").mean("cell").values
    # sd 2 per unit, 40 per arm: Var(effect) = 2 * 4 / 40 = 0.2, Cov(a, b) = 4 / 40 = 0.1
    np.testing.assert_allclose(model, [[0.2, 0.1], [0.1, 0.2]], rtol=0.05)
    np.testing.assert_allclose(empirical, model, rtol=0.2)
    assert empirical[0, 1] > 0.06


def test_retention_three_arm_data(retention_three_arm_cells):
    eff = cell_effects(retention_three_arm_cells)
    assert list(eff["treatment_arm"].values) == ["outreach", "email"]
    assert int(eff["n_control"].sum() + eff["n_treatment"].sum()) == 42_000
    # the one cell without customers in either offer (kept) has no effect estimate
    missing = eff["observed"].to_pandas()
    assert list(missing.index[~missing.any(axis=1)]) == ["Enterprise | APAC | High risk"]


@pytest.fixture(scope="module")
def retention_three_arm_cells():
    from bayesdecide import simulate_retention

    sim = simulate_retention(second_offer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cell_stats(sim.data, sim.spec, single_arm_cells="keep")


def test_two_arm_effect_table_is_unchanged(retention_cells):
    eff = cell_effects(retention_cells)
    assert not is_multi_arm(eff)
    assert eff["effect"].dims == ("cell", "outcome") and "control_arm" not in eff.attrs
    assert isinstance(arm_effects(eff, "anything"), xr.Dataset)


def test_pooling_a_multi_arm_table_is_refused():
    from bayesdecide.data.combine import combine_effects

    eff = cell_effects(cell_stats(_frame(), _spec()))
    with pytest.raises(DataValidationError, match="several treatment arms"):
        combine_effects({"one": eff}, "experiment")
