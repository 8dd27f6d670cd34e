"""Statistical checks with known truth (slow: run with ``pytest -m slow tests/model``)."""

import warnings

import numpy as np
import pytest

import bayesdecide as bd
from bayesdecide.model.fitting import fit

pytestmark = pytest.mark.slow
KW = dict(draws=500, tune=500, chains=2, progressbar=False)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_value_combination_matches_direct_net_margin(retention_table):
    parts = ["gross_margin", "contact_cost", "discount_cost", "support_tickets", "annoyance"]
    w = np.array([1, -1, -1, -18, -35])
    joint = _quiet(fit, retention_table, outcomes=parts, seed=3, **KW)
    direct = _quiet(fit, retention_table, outcomes=["net_margin"], seed=3, **KW)
    comb = (joint.tau.sel(outcome=parts) * w).sum("outcome")
    comb_avg = (comb * joint.cell_share).sum("cell")
    direct_avg = direct.average().sel(outcome="net_margin")
    ratio = float(comb_avg.std()) / float(direct_avg.std())
    assert 0.9 < ratio < 1.1, ratio


def test_markets_coverage_and_pooling():
    from bayesdecide.simulate.markets import simulate_markets

    covered, total, rmse_pool, rmse_raw = 0, 0, [], []
    for rep in range(20):
        sim = simulate_markets(n=60_000, seed=100 + rep)
        cells = _quiet(bd.cell_stats, sim.data, sim.spec, single_arm_cells="keep")
        table = bd.cell_effects(cells)
        outcome = "net_value"
        f = _quiet(
            fit,
            table,
            outcomes=[outcome],
            interactions=[("product", "region")],
            seed=rep,
            draws=400,
            tune=400,
            chains=2,
            progressbar=False,
        )
        truth = sim.truth.reset_index()
        key = truth[list(sim.spec.groups)].astype(str).agg(" | ".join, axis=1)
        true = truth.set_index(key)[outcome].reindex(table["cell"].values).to_numpy()
        tau = f.tau.sel(outcome=outcome)
        lo, hi = (tau.quantile(q, ("chain", "draw")).values for q in (0.05, 0.95))
        obs = table["observed"].values
        covered += int(np.sum((lo <= true) & (true <= hi)))
        total += true.size
        est = tau.mean(("chain", "draw")).values
        raw = table["effect"].sel(outcome=outcome).values
        rmse_pool.append(np.sqrt(np.mean((est[obs] - true[obs]) ** 2)))
        rmse_raw.append(np.sqrt(np.mean((raw[obs] - true[obs]) ** 2)))
    coverage = covered / total
    print(
        f"90% coverage {coverage:.3f}; RMSE pooled {np.mean(rmse_pool):.2f} raw {np.mean(rmse_raw):.2f}"
    )
    assert 0.85 <= coverage <= 0.95, coverage
    assert np.mean(rmse_pool) <= 0.75 * np.mean(rmse_raw)


def test_a_thousand_cell_model_passes_its_diagnostics_at_default_settings():
    """12 products x 10 regions x 3 segments x 3 risk bands = 1,080 cells, 7 outcomes (net value
    derived), every factor pooled, default settings (4 chains x (1000 + 1000)): the card's
    thresholds hold (benchmarks/fit_scale.py times the larger sizes)."""
    from bayesdecide.simulate.markets import simulate_markets

    sim = simulate_markets(
        [f"P{i}" for i in range(12)], [f"R{i}" for i in range(10)], n=400_000, seed=1
    )
    cells = _quiet(bd.cell_stats, sim.data, sim.spec, single_arm_cells="keep")
    table = bd.cell_effects(cells)
    assert table.sizes["cell"] == 1080
    f = _quiet(fit, table, factors=["product", "region", "segment", "risk_band"], progressbar=False)
    d = f.diagnostics
    assert d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400 and d["divergences"] == 0, d
    assert d["ok"] and not f.lineage["retries"], d
