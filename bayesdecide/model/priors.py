"""Typed prior objects for the hierarchical effect model.

Every prior is a small frozen :class:`Prior` (a family name plus its parameters) and every one is
overridable by name when fitting::

    fit(table, priors={"sigma_region": Prior("HalfCauchy", beta=0.5), "mu": Prior("Normal", sigma=1)})

Names: ``mu`` (per-outcome hypermean), ``sigma_<factor>`` (spread of a factor's level effects),
``sigma_<f1>_x_<f2>`` (spread of an interaction), ``sigma_cell`` (spread of cell deviations) and
``cell_nu`` (degrees of freedom of the Student-t cell deviations; a positive prior or a fixed
number via ``Prior("Fixed", value=4)``).

All priors live on the model's *standardised* scale (see :mod:`bayesdecide.model.hierarchical`):
an effect of 1 there is one "typical observed effect" of that outcome, so one set of defaults fits
dollars, probabilities and ticket counts alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pymc as pm

from bayesdecide.errors import SpecError

LOCATION_FAMILIES = {"Normal": ("mu", "sigma"), "StudentT": ("nu", "mu", "sigma")}
POSITIVE_FAMILIES = {
    "HalfNormal": ("sigma",),
    "HalfCauchy": ("beta",),
    "Exponential": ("lam",),
    "HalfStudentT": ("nu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "Fixed": ("value",),
}
_DEFAULT_PARAMS = {"Normal": {"mu": 0.0}, "StudentT": {"mu": 0.0}}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``Prior("HalfNormal", sigma=0.5)``.

    ``family`` is one of Normal, StudentT (locations: ``mu``) or HalfNormal, HalfCauchy,
    Exponential, HalfStudentT, Gamma (spreads, positive). ``Fixed`` (``value=``) pins a parameter.
    Parameters are keyword arguments of the matching PyMC distribution.
    """

    family: str
    params: tuple[tuple[str, float], ...] = field(default=())

    def __init__(self, family: str, **params: float) -> None:
        known = {**LOCATION_FAMILIES, **POSITIVE_FAMILIES}
        if family not in known:
            raise SpecError(f"prior family {family!r} is not supported; use one of {sorted(known)}")
        allowed = known[family]
        extra = set(params) - set(allowed)
        if extra:
            raise SpecError(
                f"Prior({family!r}) got unknown parameter(s) {sorted(extra)}; "
                f"its parameters are {list(allowed)}"
            )
        merged = {**_DEFAULT_PARAMS.get(family, {}), **params}
        missing = [p for p in allowed if p not in merged]
        if missing:
            raise SpecError(f"Prior({family!r}) needs parameter(s) {missing}")
        for name, value in merged.items():
            if name != "mu" and not float(value) > 0:
                raise SpecError(f"Prior({family!r}): parameter {name}={value} must be positive")
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "params", tuple(sorted((k, float(v)) for k, v in merged.items())))

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    @property
    def positive(self) -> bool:
        return self.family in POSITIVE_FAMILIES

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **self.kwargs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prior:
        d = dict(d)
        return cls(d.pop("family"), **d)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"Prior({self.family!r}{', ' if args else ''}{args})"

    def create(self, name: str, dims: Any = None) -> Any:
        """The PyMC random variable (or constant for ``Fixed``) inside the current model."""
        if self.family == "Fixed":
            return self.kwargs["value"]
        dist = getattr(pm, self.family)
        return dist(name, dims=dims, **self.kwargs)


def default_priors(factors: list[str], interactions: list[str]) -> dict[str, Prior]:
    """Weakly informative defaults on the standardised scale (1 = a typical observed effect).

    - ``mu ~ Normal(0, 1.5)``: the hypermean of an outcome is within a few typical effects of 0.
    - ``sigma_<factor> ~ Gamma(2, 2)`` (mean 1, mode 0.5): a factor moves effects by about one
      typical effect. A boundary-avoiding Gamma(2) rather than a HalfNormal because factors with
      2-3 levels barely identify their spread: a prior with mass at 0 lets the posterior collapse
      the spread and shrink real level differences (the Enterprise pitfall, docs/model.md), and
      the funnel at 0 causes divergences (Chung et al. 2013, boundary-avoiding priors).
    - ``sigma_<f1>_x_<f2> ~ Gamma(2, 4)`` (mean 0.5): interactions smaller than main effects.
    - ``sigma_cell ~ Gamma(2, 4)`` (mean 0.5) with Student-t(``cell_nu``) cell deviations,
      ``cell_nu = Fixed(4)``: heavy tails let a single well-measured cell escape the pooling.
    """
    priors: dict[str, Prior] = {"mu": Prior("Normal", mu=0.0, sigma=1.5)}
    for f in factors:
        priors[f"sigma_{f}"] = Prior("Gamma", alpha=2.0, beta=2.0)
    for name in interactions:
        priors[f"sigma_{name}"] = Prior("Gamma", alpha=2.0, beta=4.0)
    priors["sigma_cell"] = Prior("Gamma", alpha=2.0, beta=4.0)
    priors["cell_nu"] = Prior("Fixed", value=4.0)
    return priors


def resolve_priors(
    factors: list[str], interactions: list[str], overrides: Mapping[str, Any] | None
) -> dict[str, Prior]:
    """Defaults merged with user overrides (user wins); validates names and families."""
    priors = default_priors(factors, interactions)
    for name, value in (overrides or {}).items():
        if name not in priors:
            raise SpecError(f"unknown prior {name!r}; priors of this model are {sorted(priors)}")
        prior = value if isinstance(value, Prior) else Prior.from_dict(value)
        if name == "mu" and prior.positive:
            raise SpecError(f"prior 'mu' is a location: use Normal or StudentT, not {prior.family}")
        if name != "mu" and not prior.positive:
            raise SpecError(
                f"prior {name!r} is a spread and must be positive: use one of "
                f"{sorted(set(POSITIVE_FAMILIES) - {'Fixed'})} (got {prior.family})"
            )
        priors[name] = prior
    return priors


__all__ = ["Prior", "default_priors", "resolve_priors"]
