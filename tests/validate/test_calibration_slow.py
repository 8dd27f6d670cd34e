"""Calibration targets of ``bd.fit`` on processes with known truth (slow: ``pytest -m slow``).

One test per process of ``bayesdecide.validate.PROCESSES``: 20 seeded replicates, each fitted with
``bd.fit`` (the process's factors and interactions, primary outcome, 4 chains x 500 draws after
500 tuning steps), checked against the targets of ``bayesdecide.validate.TARGETS``:

- cell-level 90% coverage (mean over replicates) within 85-95%;
- every factor level's and the all-unit effect's 95% interval covers in >= 90% of replicates;
- every level's mean bias within +/- 0.5 posterior sd;
- pooled RMSE of the cell effects below the unpooled RMSE;
- no replicate fails.

These tests measure the model, not the harness: on the engine of commit 8cd1155 all five fail
(docs/calibration_before.md has the numbers). Times are wall clock on 2 cores shared with other
jobs: 3.8 minutes for the five. With 20 replicates the level-coverage target is strict against
Monte Carlo noise: a level whose intervals cover exactly 95% falls below 18 of 20 with probability
7.5%, so a calibrated model can miss it at one level of a process by chance (the seeds are fixed,
so a given engine passes or fails deterministically).
"""

from __future__ import annotations

import warnings

import pytest

from bayesdecide.validate import PROCESSES, TARGETS, HierarchicalFit, run_calibration

pytestmark = pytest.mark.slow

REPLICATIONS = 20
FIT = HierarchicalFit(draws=500, chains=4)


def _problems(name: str) -> list[str]:
    """Every target the process misses, each with its numbers."""
    process = PROCESSES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_calibration(process, REPLICATIONS, fit_fn=FIT)
    summary = run.summary().iloc[0]
    problems = []
    if summary["failed"]:
        errors = "; ".join(f"seed {s}: {e}" for s, e in run.failures[["seed", "error"]].values)
        problems.append(f"{summary['failed']:.0f} replicate(s) failed: {errors}")
    if run.records.empty:
        return problems
    lo, hi = TARGETS.cell_coverage
    if not summary["pass_cell_coverage"]:
        problems.append(
            f"cell-level 90% coverage {summary['cell_cov90']:.3f} "
            f"(range {summary['cell_cov90_min']:.2f}-{summary['cell_cov90_max']:.2f}) "
            f"outside [{lo}, {hi}]"
        )
    levels = run.levels().loc[process.primary]
    for (factor, level), row in levels.iterrows():
        if not row["pass_coverage"]:
            problems.append(
                f"{factor}={level}: 95% interval covered in {row['cover95']:.0%} of replicates "
                f"(target >= {TARGETS.level_coverage:.0%}; truth {row['truth']:.2f})"
            )
        if not row["pass_bias"]:
            problems.append(
                f"{factor}={level}: mean bias {row['bias']:.2f} = {row['bias_sd']:.2f} posterior "
                f"sd (target within +/- {TARGETS.level_bias_sd})"
            )
    if not summary["pass_rmse"]:
        problems.append(
            f"pooled RMSE {summary['rmse']:.2f} not below unpooled {summary['raw_rmse']:.2f}"
        )
    return problems


def test_markets_reference():
    """simulate_markets (the package's own generator), 60,000 customers, 135 cells, net value;
    product x region. Measured: 73 s (old engine; fails the level-bias target, Low risk -0.54
    sd)."""
    problems = _problems("markets")
    assert not problems, "\n".join(problems)


def test_retention_card_hierarchy():
    """The seed's retention process with seeds 1-20, 42,000 customers, 27 cells, net margin;
    segment, region, risk band and segment x risk band. Measured: 28 s (old engine; fails High
    risk: 80% coverage, -1.12 sd)."""
    problems = _problems("retention")
    assert not problems, "\n".join(problems)


def test_retention_risk_band_only():
    """The same replicates fitted with risk band as the only factor. Measured: 23 s (old engine;
    fails every target but RMSE: all customers -3.6 sd)."""
    problems = _problems("retention_risk_band")
    assert not problems, "\n".join(problems)


def test_multiplicative_effects():
    """simulate_plan_tiers: lift x own margin, 150,000 accounts, 96 cells, net revenue; plan,
    channel, country and plan x country. Measured: 59 s (old engine; fails the channel levels,
    Japan and the United States)."""
    problems = _problems("multiplicative")
    assert not problems, "\n".join(problems)


def test_outlying_and_small_regions():
    """simulate_regional_coupon: Metro's effect has the opposite sign, four regions of 1-2%;
    150,000 shoppers, 80 cells, contribution; product, region, shopper type and product x region.
    Measured: 41 s (old engine; fails Metro's bias, +0.68 sd, and three levels narrowly)."""
    problems = _problems("outlying_region")
    assert not problems, "\n".join(problems)
