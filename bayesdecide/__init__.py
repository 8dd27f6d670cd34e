"""bayesdecide: hierarchical Bayesian treatment effects from randomized experiments, turned into decisions."""

from bayesdecide.adjust import AdjustedEffect, ols_effect
from bayesdecide.data import CellStats, cell_stats
from bayesdecide.effects import average_effect, cell_effects
from bayesdecide.errors import BayesDecideError, DataValidationError, SpecError
from bayesdecide.simulate import (
    Simulation,
    markets_spec,
    simulate_markets,
    simulate_retention,
    write_markets_parquet,
)
from bayesdecide.spec import ExperimentSpec, Outcome, OutcomeKind, retention_spec

__version__ = "0.1.0"

__all__ = [
    "AdjustedEffect",
    "CellStats",
    "average_effect",
    "cell_effects",
    "cell_stats",
    "ols_effect",
    "BayesDecideError",
    "DataValidationError",
    "ExperimentSpec",
    "Outcome",
    "OutcomeKind",
    "Simulation",
    "SpecError",
    "__version__",
    "retention_spec",
    "simulate_retention",
    "markets_spec",
    "simulate_markets",
    "write_markets_parquet",
]
