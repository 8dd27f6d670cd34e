"""The hierarchical treatment-effect model: terms, priors, the marginal engine, the fit."""

from bayesdecide.model.inputs import ModelInputs, build_inputs
from bayesdecide.model.priors import Prior, resolve_priors
from bayesdecide.model.summary import table_from_summary
from bayesdecide.model.terms import Hierarchy, Term, build_hierarchy

__all__ = [
    "Hierarchy",
    "ModelInputs",
    "Prior",
    "Term",
    "build_hierarchy",
    "build_inputs",
    "resolve_priors",
    "table_from_summary",
]
