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
