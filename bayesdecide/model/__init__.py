"""The hierarchical treatment-effect model: priors, inputs, PyMC model, unit-level path, diagnostics."""

from bayesdecide.model.hierarchical import build_model, level_dim
from bayesdecide.model.inputs import ModelInputs, build_inputs
from bayesdecide.model.priors import Prior, default_priors, resolve_priors
from bayesdecide.model.summary import table_from_summary

__all__ = [
    "ModelInputs",
    "Prior",
    "build_inputs",
    "build_model",
    "default_priors",
    "level_dim",
    "resolve_priors",
    "table_from_summary",
]
