"""SRM, covariate balance and sampler checks."""

from __future__ import annotations

import numpy as np
import pytest

from bayesdecide.decide.checks import (
    CheckThresholds,
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
    assert sample_ratio_mismatch(30_000, 10_000, 0.25, 0.001).passes
    assert not sample_ratio_mismatch(30_000, 10_000, 0.5, 0.001).passes


def test_balance_matches_seed_means(retention):
    from bayesdecide import cell_stats

    with pytest.warns(UserWarning):
        cells = cell_stats(retention.data, retention.spec, single_arm_cells="keep")
    bal = covariate_balance(cells)
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
    t = CheckThresholds()
    ok = diagnostics_checks({"max_rhat": 1.005, "min_ess_bulk": 900, "divergences": 0}, t)
    assert all(r.passes for r in ok)
    bad = diagnostics_checks({"max_rhat": 1.2, "min_ess_bulk": 20, "divergences": 7}, t)
    assert [r.passes for r in bad] == [False, False, False]
    missing = diagnostics_checks({}, t)
    assert not missing[0].passes and np.isnan(missing[0].observed)
    # the detail states the threshold the result was judged by
    loose = diagnostics_checks({"max_rhat": 3.649}, CheckThresholds(max_rhat=5.0))
    assert loose[0].passes and loose[0].detail == "largest R-hat 3.649 (must be <= 5)"


def test_loosened_thresholds_are_named():
    strict = CheckThresholds()
    loose = CheckThresholds(max_rhat=5.0, min_ess_bulk=1.0, srm_alpha=0.0001)
    assert loose.loosened_from(strict) == [
        "srm_alpha 0.001 -> 0.0001",
        "max_rhat 1.01 -> 5",
        "min_ess_bulk 400 -> 1",
    ]
    assert strict.loosened_from(loose) == []
