"""Sampler settings used when neither the caller nor the model card gives them: the one place."""

from __future__ import annotations

from types import MappingProxyType

DEFAULT_SEED = 20_240_601

# "nutpie": nutpie's NUTS on the marginal posterior of the spreads (default); "pymc": PyMC's NUTS on
# the full model (bayesdecide.model.sampling)
SAMPLERS = ("nutpie", "pymc")

# tuning (warm-up) iterations per chain when none is given, by sampler. nutpie adapts its step size
# and mass matrix to the marginal posterior's few coordinates within its first few hundred
# iterations (300 is nutpie's own default; docs/benchmarks.md has the measurements); a full model
# with every effect sampled (PyMC's NUTS, the unit-level models) keeps PyMC's 1000.
FULL_MODEL_TUNE = 1000
TUNE_DEFAULTS = MappingProxyType({"nutpie": 300, "pymc": FULL_MODEL_TUNE})

FIT_DEFAULTS = MappingProxyType(
    {
        "draws": 1000,  # posterior draws per chain, after tuning
        "tune": None,  # tuning iterations per chain, discarded; None: TUNE_DEFAULTS[sampler]
        "chains": 4,
        "seed": DEFAULT_SEED,
        "target_accept": 0.8,  # PyMC's and nutpie's default; the marginal posterior has no funnels
    }
)


def default_tune(sampler: str | None) -> int:
    """Tuning iterations per chain for ``sampler`` (``None``, or a name that is not a sampler and
    is refused where the sampler is checked: the default sampler's)."""
    return TUNE_DEFAULTS.get(sampler or SAMPLERS[0], TUNE_DEFAULTS[SAMPLERS[0]])


__all__ = [
    "DEFAULT_SEED",
    "FIT_DEFAULTS",
    "FULL_MODEL_TUNE",
    "SAMPLERS",
    "TUNE_DEFAULTS",
    "default_tune",
]
