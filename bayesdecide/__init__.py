"""bayesdecide: hierarchical Bayesian treatment effects from randomized experiments, turned into decisions."""

from bayesdecide.data import CellStats, cell_stats, data_fingerprint
from bayesdecide.data.adjust import AdjustedEffect, ols_effect
from bayesdecide.data.effects import average_effect, cell_effects
from bayesdecide.data.spec import (
    ExperimentSpec,
    Outcome,
    OutcomeKind,
    retention_spec,
    retention_three_arm_spec,
)
from bayesdecide.errors import BayesDecideError, DataValidationError, SpecError
from bayesdecide.simulate import (
    Simulation,
    markets_spec,
    simulate_markets,
    simulate_retention,
    simulate_retention_rollout,
    write_markets_parquet,
)

__version__ = "0.1.0"

# Model, decision and report entry points import PyMC; load them on first use so that
# ``import bayesdecide`` (simulate, validate, aggregate) stays fast. No submodule of the package
# is named like one of these (``bayesdecide.model.fitting`` holds ``fit``): importing a submodule
# sets it as an attribute of its package, which would replace the function of the same name.
_LAZY: dict[str, str | tuple[str, str]] = {
    "Fit": "bayesdecide.model.fitting",
    "fit": "bayesdecide.model.fitting",
    "fit_summary": "bayesdecide.model.fitting",
    "prior_predictive": "bayesdecide.model.fitting",
    "Prior": "bayesdecide.model.priors",
    "Decision": "bayesdecide.decide",
    "load_card": "bayesdecide.card",
    "run_card": "bayesdecide.run",
    # (module, attribute): the run registry as pandas; the module is not named like the function
    "registry": ("bayesdecide.run.registry", "registry_table"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        where = _LAZY[name]
        module, attr = where if isinstance(where, tuple) else (where, name)
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'bayesdecide' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "registry",
    "run_card",
    "average_effect",
    "cell_effects",
    "cell_stats",
    "data_fingerprint",
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
    "retention_three_arm_spec",
    "simulate_retention",
    "simulate_retention_rollout",
    "markets_spec",
    "simulate_markets",
    "write_markets_parquet",
]
