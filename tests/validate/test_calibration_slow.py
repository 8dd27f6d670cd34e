"""Calibration of ``bd.fit`` on processes with known truth (slow: ``pytest -m slow``).

Per process of ``bayesdecide.validate.PROCESSES``: 20 seeded replicates, each fitted with ``bd.fit``
(the process's factors and interactions, primary outcome, 4 chains x 500 draws after 500 tuning
steps), run once per session and checked two ways:

- ``test_targets[...]``: the targets of ``bayesdecide.validate.TARGETS`` (cell-level 90% coverage
  within 85-95%; every factor level's and the all-unit effect's 95% interval covering in >= 90% of
  replicates; every level's mean bias within +/- 0.5 posterior sd; pooled RMSE below unpooled; no
  failed replicate). Where the current engine misses them the test is a strict xfail whose reason
  gives the measured miss (docs/model.md, "Calibration"): when a change meets the targets, the
  xfail turns into a failure and the mark must come off.
- ``test_every_miss_is_the_price_of_pooling[...]``: on the correctly specified processes, every
  level the fit misses is one that normal pooling with the true mean and spread of the factor's
  levels (the oracle, ``bayesdecide.validate.oracle``) misses as much; the misspecified fits are
  flagged by the same check.
- ``test_no_regression[...]``: what the engine achieves now, as floors a change may not fall below
  (measured 2026-12-02 at 20 replicates with ``pooling_scale="auto"``; the seeds are fixed, so the
  figures are deterministic for a given engine and platform).

The truth of a cell is its population effect where the process states one
(``Simulation.true_cell_effects``; every process but ``markets``, whose truth is per cell anyway).

With 20 replicates the level-coverage target is strict against Monte Carlo noise: a level whose
intervals cover exactly 95% falls below 18 of 20 with probability 7.5%.
"""

from __future__ import annotations

import warnings

import pytest

from bayesdecide.validate import PROCESSES, TARGETS, HierarchicalFit, run_calibration
from bayesdecide.validate.metrics import ALL_LEVEL

pytestmark = pytest.mark.slow

REPLICATIONS = 20
FIT = HierarchicalFit(draws=500, chains=4)


_RUNS: dict = {}


def _run(name: str):
    """The process's calibration run, once per session."""
    if name not in _RUNS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _RUNS[name] = run_calibration(PROCESSES[name], REPLICATIONS, fit_fn=FIT)
    return _RUNS[name]


def _problems(name: str) -> list[str]:
    """Every target the process misses, each with its numbers."""
    process = PROCESSES[name]
    run = _run(name)
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


# Measured misses of the targets (20 replicates, this engine, against the population cell effects
# where the process states them): process -> reason. The markets and retention processes meet
# every target since factors with fewer than five levels are not pooled by default.
MISSES = {
    "retention_risk_band": "a misspecified hierarchy (segment left out): Enterprise covers 45%, "
    "-2.49 sd; bd.fit warns before sampling that 'segment' explains the effects",
    "multiplicative": "channel=Self-serve covers 65%, +1.73 sd; Inside sales -1.10 sd, Japan "
    "+1.12 sd; cells cover 84.0%: lift x own margin is not additive on the pooling scale, and "
    "bd.fit names the plan x channel interaction before sampling (19 of 20 replicates)",
    "multiplicative_plan_channel": "country=Japan covers 65%, +1.37 sd; United States covers 85%, "
    "-0.99 sd: the price of pooling at this truth, not the engine's: the oracle (the unpooled "
    "estimates pooled with the countries' true mean and spread) is +1.37 and -0.99 sd, covering "
    "75% and 90%; Japan's effect has the opposite sign and an unpooled se (5.1) larger than the "
    "countries' true spread (4.0)",
    "outlying_region": "product=Grocery covers 85%, +0.53 sd: the oracle +0.48 sd, and the "
    "unpooled estimates cover 85% too (the replicates' data)",
}

# Floors at what the engine achieves now: (min cell coverage, max cell coverage, min level
# coverage, max |level bias| in sds). Measured with the defaults against the population cell
# effects (2026-12-02; cell coverage, worst level coverage, worst |bias|): markets 0.934, 0.90,
# 0.50; retention 0.926, 0.90, 0.45; risk band only 0.76, 0.45, 2.49; multiplicative 0.840,
# 0.65, 1.73; with plan x channel 0.90, 0.65, 1.37; outlying region 0.911, 0.85, 0.54.
FLOORS = {
    "markets": (0.85, 0.95, 0.90, 0.6),
    "retention": (0.85, 0.95, 0.85, 0.6),
    "retention_risk_band": (0.70, 0.95, 0.40, 2.7),
    "multiplicative": (0.83, 0.95, 0.55, 1.85),
    "multiplicative_plan_channel": (0.88, 0.95, 0.60, 1.5),
    "outlying_region": (0.85, 0.95, 0.80, 0.75),
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=MISSES[n]))
        if n in MISSES
        else n
        for n in PROCESSES
    ],
)
def test_targets(name):
    problems = _problems(name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_no_regression(name):
    run = _run(name)
    summary = run.summary().iloc[0]
    levels = run.levels().loc[PROCESSES[name].primary]
    lo, hi, level_cov, bias_sd = FLOORS[name]
    assert not summary["failed"], run.failures
    assert lo <= summary["cell_cov90"] <= hi, summary["cell_cov90"]
    assert levels["cover95"].min() >= level_cov, levels["cover95"].idxmin()
    assert levels["bias_sd"].abs().max() <= bias_sd, levels["bias_sd"].abs().idxmax()
    # pooling at least a quarter better than the per-cell estimates (measured: 9-42% of them)
    assert summary["rmse"] <= 0.75 * summary["raw_rmse"], (summary["rmse"], summary["raw_rmse"])


# The processes whose hierarchy is the one that generated them (no left-out column or interaction).
CORRECTLY_SPECIFIED = ("markets", "retention", "multiplicative_plan_channel", "outlying_region")


def _unexplained(name: str) -> list[str]:
    """The level misses of the fit that the oracle does not share (see the test below)."""
    run = _run(name)
    levels = run.levels().loc[PROCESSES[name].primary].drop(index=("all", ALL_LEVEL))
    problems = []
    for key, row in levels.iterrows():
        n = row["replicates"]
        covered, oracle, raw = (row[c] * n for c in ("cover95", "oracle_cover95", "raw_cover95"))
        gap = row["bias_sd"] - row["oracle_bias_sd"]
        if not row["pass_bias"] and abs(gap) > 0.3:
            problems.append(f"{key}: bias {row['bias_sd']:+.2f} sd, {gap:+.2f} from the oracle's")
        if not row["pass_coverage"] and covered < min(oracle, raw) - 0.15 * n:
            problems.append(
                f"{key}: covered {covered:.0f} of {n:.0f}, the oracle {oracle:.0f}, "
                f"the unpooled estimates {raw:.0f}"
            )
    return problems


@pytest.mark.parametrize("name", CORRECTLY_SPECIFIED)
def test_every_miss_is_the_price_of_pooling(name):
    """Where the fit misses a level target on a correctly specified process, the oracle (the same
    unpooled estimates pooled with the true mean and spread of the factor's levels:
    ``bayesdecide.validate.oracle``) misses it as much: the fit's bias within 0.3 posterior sd of
    the oracle's in the same replicates, and its coverage at most 15% of the replicates below the
    oracle's or the unpooled estimates' (a miss the data make too). Measured at 20 replicates:
    Japan +1.37 sd against the oracle's +1.37 (covering 13 against 15 of 20), the United States
    -0.99 against -0.99, Grocery +0.53 against +0.48 (17 of 20 each, as the unpooled estimates);
    markets and retention miss nothing. A miss of the engine's own would show as a gap."""
    problems = _unexplained(name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["multiplicative", "retention_risk_band"])
def test_a_left_out_term_is_not_mistaken_for_the_price_of_pooling(name):
    """The same check flags the misspecified fits (plan x channel left out; segment left out):
    Self-serve +1.73 sd against the oracle's +0.09 (20 replicates), Enterprise -2.48 against -0.51."""
    assert _unexplained(name)


def test_student_t_levels_let_the_outlying_region_escape():
    """``level_nu`` on the process with one outlying region (Metro, about -7.8 against regions
    near +1): Metro is pulled in less and the cells are estimated better than with normal level
    effects, with cell coverage still on target. Measured (20 replicates): Metro +0.28 sd against
    +0.47, RMSE 1.02 against 1.11, cell coverage 91.6%."""
    import bayesdecide as bd

    name = "outlying_region"
    process = PROCESSES[name]
    normal = _run(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tails = run_calibration(
            process,
            REPLICATIONS,
            fit_fn=HierarchicalFit(
                draws=500, chains=4, options={"priors": {"level_nu": bd.Prior("Fixed", value=4)}}
            ),
        )
    assert not tails.summary().iloc[0]["failed"], tails.failures
    factor, outlier = process.holdout
    bias = {
        k: abs(r.levels().loc[(process.primary, factor, outlier), "bias_sd"])
        for k, r in (("normal", normal), ("tails", tails))
    }
    assert bias["tails"] < 0.8 * bias["normal"], bias
    assert bias["tails"] < 0.4, bias
    rmse = {k: r.summary().iloc[0]["rmse"] for k, r in (("normal", normal), ("tails", tails))}
    assert rmse["tails"] < 0.97 * rmse["normal"], rmse
    lo, hi = TARGETS.cell_coverage
    assert lo <= tails.summary().iloc[0]["cell_cov90"] <= hi
