"""SRM, covariate balance and sampler checks."""

from __future__ import annotations

import numpy as np
import pytest

from bayesdecide.report.checks import (
    covariate_balance,
    diagnostics_checks,
    run_checks,
    sample_ratio_mismatch,
)


def test_srm_passes_for_the_seed_split():
    r = sample_ratio_mismatch(20_975, 21_025, 0.5, 0.001)
    assert r.passes and r.observed == pytest.approx(0.807, abs=1e-3)


def test_srm_fails_for_a_broken_split():
    r = sample_ratio_mismatch(20_000, 22_000, 0.5, 0.001)
    assert not r.passes and r.observed < 1e-6
    assert "designed 0.5000" in r.detail


def test_srm_respects_the_design_share():
    assert sample_ratio_mismatch(30_000, 10_000, 0.25).passes
    assert not sample_ratio_mismatch(30_000, 10_000, 0.5).passes


def test_balance_matches_seed_means(retention_cells):
    bal = covariate_balance(retention_cells)
    assert bal.loc["base_margin", "mean_control"] == pytest.approx(226.813, abs=1e-3)
    assert bal.loc["base_margin", "mean_treatment"] == pytest.approx(224.193, abs=1e-3)
    assert (bal["smd"].abs() < 0.05).all()


def test_balance_fails_when_a_covariate_is_shifted(retention):
    from bayesdecide import cell_stats

    df = retention.data.copy()
    df.loc[df["treatment"] == 1, "tenure_months"] += 5.0  # ~0.3 SD
    with pytest.warns(UserWarning):
        cells = cell_stats(df, retention.spec, single_arm_cells="keep")
    checks = run_checks(cells, None)
    bal = next(r for r in checks.results if r.name == "Covariate balance")
    assert not bal.passes and "tenure_months" in bal.detail
    assert not checks.ok


def test_diagnostics_checks():
    ok = diagnostics_checks({"max_rhat": 1.005, "min_ess_bulk": 900, "divergences": 0})
    assert all(r.passes for r in ok)
    bad = diagnostics_checks({"max_rhat": 1.2, "min_ess_bulk": 20, "divergences": 7})
    assert [r.passes for r in bad] == [False, False, False]
    missing = diagnostics_checks({})
    assert not missing[0].passes and np.isnan(missing[0].observed)
