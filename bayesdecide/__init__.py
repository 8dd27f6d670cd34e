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

# Model, decision and report entry points import PyMC; load them on first use so that
# ``import bayesdecide`` (simulate, validate, aggregate) stays fast.
_LAZY = {
    "Fit": "bayesdecide.fit",
    "fit": "bayesdecide.fit",
    "fit_summary": "bayesdecide.fit",
    "prior_predictive": "bayesdecide.fit",
    "Prior": "bayesdecide.model.priors",
    "Decision": "bayesdecide.decide",
    "load_card": "bayesdecide.card",
    "run_card": "bayesdecide.pipeline",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayesdecide' has no attribute {name!r}")


__all__ = [
    "AdjustedEffect",
    "CellStats",
    "Decision",
    "Fit",
    "Prior",
    "fit",
    "fit_summary",
    "load_card",
    "prior_predictive",
    "run_card",
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
