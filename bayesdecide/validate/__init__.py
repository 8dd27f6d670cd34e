"""Calibration of the hierarchical model on data-generating processes with known truth.

``run_calibration(PROCESSES["retention"], 20)`` simulates 20 seeded replicates, fits each
(``fit_fn``, default ``bd.fit`` with the process's factors and interactions) and returns a
:class:`CalibrationRun` whose ``summary()`` is the calibration table (cell-level 90% coverage,
level 95% coverage and bias in posterior sds, pooled vs unpooled RMSE and interval widths, the
all-unit effect) with pass/fail against :data:`TARGETS`. ``leave_level_out`` fits without one level
(a region) and checks its prediction. The processes (:mod:`bayesdecide.validate.processes`) are
written independently of the package's own generator, ``simulate_markets``. Every level row also
carries the *oracle* (:mod:`bayesdecide.validate.oracle`): the unpooled estimates pooled with the
true mean and spread of the factor's levels, which tells the price of pooling at a fixed truth
from a miss of the engine's own.
"""

from bayesdecide.validate.crossval import PIT_BOUNDS, cross_validate_levels
from bayesdecide.validate.harness import (
    SEED_ATTR,
    SUMMARY_COLUMNS,
    TARGETS,
    CalibrationRun,
    FitFunction,
    HierarchicalFit,
    Targets,
    calibration_table,
    level_table,
    run_calibration,
    summarize,
)
from bayesdecide.validate.holdout import HoldoutResult, leave_level_out
from bayesdecide.validate.metrics import add_checks, estimand_weights, replicate_records
from bayesdecide.validate.oracle import expected_bias_and_coverage, oracle_posterior
from bayesdecide.validate.processes import (
    PROCESSES,
    Process,
    simulate_plan_tiers,
    simulate_regional_coupon,
)
from bayesdecide.validate.tables import format_levels, format_summary, markdown_table

__all__ = [
    "PIT_BOUNDS",
    "PROCESSES",
    "SEED_ATTR",
    "SUMMARY_COLUMNS",
    "TARGETS",
    "CalibrationRun",
    "FitFunction",
    "HierarchicalFit",
    "HoldoutResult",
    "Process",
    "Targets",
    "add_checks",
    "calibration_table",
    "cross_validate_levels",
    "estimand_weights",
    "expected_bias_and_coverage",
    "format_levels",
    "format_summary",
    "leave_level_out",
    "level_table",
    "markdown_table",
    "oracle_posterior",
    "replicate_records",
    "run_calibration",
    "simulate_plan_tiers",
    "simulate_regional_coupon",
    "summarize",
]
