"""The multi-market experiment simulator: shapes, kinds, determinism, known truth, Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesdecide import simulate_markets, write_markets_parquet
from bayesdecide.data.spec import OutcomeKind
from bayesdecide.simulate.markets import GROUPS, VALUE_WEIGHTS, markets_design


@pytest.fixture(scope="module")
def big():
    return simulate_markets(n=2_000_000, seed=11)


@pytest.fixture(scope="module")
def small():
    return simulate_markets(n=20_000, seed=5)


def test_shapes_columns_and_spec(small):
    data, truth, spec = small.data, small.truth, small.spec
    assert len(data) == 20_000
    assert set(spec.columns) <= set(data.columns)
    assert spec.groups == GROUPS
    assert list(truth.columns) == spec.outcome_names
    assert truth.index.names == list(GROUPS)
    assert len(truth) == 3 * 5 * 3 * 3 == 135
    assert data["customer_id"].is_unique
    assert data["customer_id"].iloc[0] == 1
    for g in GROUPS:
        assert isinstance(data[g].dtype, pd.CategoricalDtype)
    shares = pd.Series(truth.attrs["cell_share"])
    assert shares.sum() == pytest.approx(1.0)
    assert set(shares.index) == set(truth.index)


def test_cell_count_follows_parameters():
    sim = simulate_markets(
        products=("Core", "Payments"),
        regions=("Europe", "LATAM"),
        segments=("SMB", "Enterprise"),
        risk_bands=("Low risk", "High risk"),
        n=5_000,
        seed=1,
    )
    assert len(sim.truth) == 16
    assert sim.data.groupby(list(GROUPS), observed=True).ngroups == 16
    # Unknown level names get deterministic parameters.
    sim2 = simulate_markets(regions=("Atlantis", "Europe"), n=1_000, seed=1)
    again = simulate_markets(regions=("Atlantis", "Europe"), n=1_000, seed=1)
    assert len(sim2.truth) == 3 * 2 * 3 * 3
    pd.testing.assert_frame_equal(sim2.truth, again.truth)
    assert np.isfinite(sim2.truth.to_numpy()).all()


def test_outcome_kinds_valid(small):
    data, spec = small.data, small.spec
    for o in spec.outcomes:
        y = data[o.name].to_numpy()
        assert np.isfinite(y).all(), o.name
        if o.kind is OutcomeKind.BINARY:
            assert set(np.unique(y)) <= {0, 1}, o.name
        elif o.kind is OutcomeKind.COUNT:
            assert (y >= 0).all() and np.issubdtype(y.dtype, np.integer), o.name
    assert set(np.unique(data["treatment"])) == {0, 1}
    assert (data.loc[data.treatment == 0, ["contact_cost", "discount_cost"]] == 0).all().all()
    net = data["gross_margin"] + sum(
        w * data[k].astype(float) for k, w in VALUE_WEIGHTS.items() if k != "gross_margin"
    )
    np.testing.assert_allclose(net, data["net_value"], rtol=1e-5, atol=1e-3)


def test_deterministic():
    a = simulate_markets(n=30_000, seed=3)
    b = simulate_markets(n=30_000, seed=3)
    c = simulate_markets(n=30_000, seed=4)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.data["net_value"].equals(c.data["net_value"])
    pd.testing.assert_frame_equal(a.truth, c.truth)  # truth depends on effect_seed only


def test_truth_is_consistent(small):
    truth = small.truth
    net = truth["gross_margin"] + sum(
        w * truth[k] for k, w in VALUE_WEIGHTS.items() if k != "gross_margin"
    )
    np.testing.assert_allclose(truth["net_value"], net, rtol=1e-12, atol=1e-12)
    assert truth["contact_cost"].gt(0).all() and truth["support_tickets"].gt(0).all()
    assert truth[["renewed", "annoyance"]].abs().lt(0.5).all().all()
    # Simulation's helpers read the per-cell truth.
    avg = small.true_average_effect()
    share = pd.Series(truth.attrs["cell_share"]).reindex(truth.index)
    population = truth.mul(share, axis=0).sum()
    assert avg["net_value"] == pytest.approx(population["net_value"], abs=1.0)
    assert small.true_cell_effects() is truth


def test_small_region_and_losing_region():
    d = markets_design()
    by_region = d.cell_share.groupby(level="region").sum()
    assert 0.01 <= by_region["Nordics"] <= 0.02
    net = d.truth["net_value"].mul(d.cell_share).groupby(level="region").sum() / by_region
    assert net["LATAM"] < -3.0  # outreach loses money in LATAM
    assert (net.drop("LATAM") > 0).all()
    overall = float((d.truth["net_value"] * d.cell_share).sum())
    assert 0.5 < overall < 10.0  # a few dollars per customer
    # Effects vary across cells on both sides of zero (pooling and targeting matter).
    assert (d.truth["net_value"] < 0).any() and (d.truth["net_value"] > 0).any()


def test_truth_recovered_by_difference_in_means(big):
    """Per product x region, the plain difference in means is within 4.5 SEs of the truth
    averaged over the sample's cells."""
    data, truth = big.data, big.truth
    keys = ["product", "region"]
    counts = data.groupby(list(GROUPS), observed=True).size()
    weights = counts.reindex(truth.index).fillna(0.0)
    target = truth.mul(weights, axis=0).groupby(level=keys).sum()
    target = target.div(weights.groupby(level=keys).sum(), axis=0)
    outcomes = big.spec.outcome_names
    g = data.groupby([*keys, "treatment"], observed=True)[outcomes]
    mean, var, n = g.mean(), g.var(), g.size()
    diff = mean.xs(1, level="treatment") - mean.xs(0, level="treatment")
    se = np.sqrt(
        var.xs(1, level="treatment").div(n.xs(1, level="treatment"), axis=0)
        + var.xs(0, level="treatment").div(n.xs(0, level="treatment"), axis=0)
    )
    z = (diff - target.reindex(diff.index)) / se
    assert len(z) == 15
    assert np.abs(z.to_numpy()).max() < 4.5, z.round(2)
    # Sample mix matches the population mix.
    share = pd.Series(truth.attrs["cell_share"]).reindex(truth.index)
    np.testing.assert_allclose(weights / weights.sum(), share, atol=0.002)


def test_covariate_predicts_outcome(big):
    data = big.data.iloc[:200_000]
    r = np.corrcoef(data["prior_spend"], data["gross_margin"])[0, 1]
    assert r > 0.4


def test_parquet_matches_in_memory(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    kw = dict(n=25_000, seed=9, chunk_rows=7_000, regions=("Europe", "Nordics", "LATAM"))
    out = write_markets_parquet(tmp_path / "m.parquet", **kw)
    sim = simulate_markets(**kw)
    assert pq.ParquetFile(out.path).metadata.num_row_groups == 4
    back = pd.read_parquet(out.path)
    assert len(back) == 25_000
    for g in GROUPS:
        back[g] = back[g].astype(str)
    expected = sim.data.copy()
    for g in GROUPS:
        expected[g] = expected[g].astype(str)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    pd.testing.assert_frame_equal(out.truth, sim.truth)
    assert out.spec == sim.spec
    # The chunking is part of the seed: a different block size gives other (valid) draws.
    other = simulate_markets(**{**kw, "chunk_rows": 25_000})
    assert not other.data["net_value"].equals(sim.data["net_value"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="treat_share"):
        simulate_markets(n=10, treat_share=1.0)
    with pytest.raises(ValueError, match="n="):
        simulate_markets(n=0)
    with pytest.raises(ValueError, match="regions"):
        simulate_markets(n=10, regions=("Europe", "Europe"))
    with pytest.raises(ValueError, match="region_shares"):
        simulate_markets(n=10, region_shares=(1.0, 2.0))
