"""Sampler settings used when neither the caller nor the model card gives them: the one place."""

from __future__ import annotations

from types import MappingProxyType

DEFAULT_SEED = 20_240_601

# "nutpie": nutpie's NUTS on the marginal posterior of the spreads (default); "pymc": PyMC's NUTS on
# the full model (bayesdecide.model.sampling)
SAMPLERS = ("nutpie", "pymc")

FIT_DEFAULTS = MappingProxyType(
    {
        "draws": 1000,  # posterior draws per chain, after tuning
        "tune": 1000,  # tuning (warm-up) iterations per chain, discarded
        "chains": 4,
        "seed": DEFAULT_SEED,
        "target_accept": 0.8,  # PyMC's and nutpie's default; the marginal posterior has no funnels
    }
)

__all__ = ["DEFAULT_SEED", "FIT_DEFAULTS", "SAMPLERS"]
